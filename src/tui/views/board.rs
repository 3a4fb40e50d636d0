//! One board: identity, presence, its switches and its recent activity.

use super::super::app::App;
use super::classroom::{grid_header, switch_line};
use super::{bordered, scroll_offset};
use crate::format::{age, date_time, fit, hhmm};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows of the identity panel above the switches.
pub const INFO_HEIGHT: u16 = 6;

/// Switch rows that fit (the switch block takes what the activity block leaves).
pub fn switch_rows(body: Rect) -> usize {
    switches_height(body).saturating_sub(3) as usize
}

fn switches_height(body: Rect) -> u16 {
    let rest = body.height.saturating_sub(INFO_HEIGHT);
    (rest / 2).max(rest.saturating_sub(10)).min(rest)
}

pub fn render(frame: &mut Frame, app: &App, area: Rect, bi: usize) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let b = &app.campus().boards[bi];
    let room = &app.campus().rooms[b.room];
    let presence = app.clock().presence(b.last_seen);
    let seen = b
        .last_seen
        .map(|ts| {
            format!(
                "{} ({} ago)",
                date_time(ts, app.settings().tz),
                age(app.clock().now, ts)
            )
        })
        .unwrap_or_else(|| "never".into());
    let motion = b
        .last_motion
        .map(|ts| format!("{} ago", age(app.clock().now, ts)))
        .unwrap_or_else(|| "none reported".into());
    let field = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!(" {k:<10}"), t.dim),
            Span::styled(v, t.text),
        ])
    };
    let info = vec![
        field("Board", format!("{} in {}", b.name, room.name)),
        field("MAC", b.mac.to_string()),
        field("IP", b.ip.clone().unwrap_or_else(|| s.dash.into())),
        field(
            "Firmware",
            b.firmware.clone().unwrap_or_else(|| s.dash.into()),
        ),
        field(
            "Last seen",
            format!(
                "{seen} {} {}",
                s.sep,
                format!("{presence:?}").to_lowercase()
            ),
        ),
        field("Motion", motion),
    ];
    frame.render_widget(
        Paragraph::new(info),
        Rect {
            height: INFO_HEIGHT,
            ..area
        },
    );

    let sw_h = switches_height(area);
    let sw_area = Rect {
        y: area.y + INFO_HEIGHT,
        height: sw_h,
        ..area
    };
    let rows = switch_rows(area);
    let off = scroll_offset(sel, rows);
    let wide = area.width >= 100;
    let mut lines = vec![grid_header(app, wide)];
    lines.extend(
        (0..b.switches.len())
            .skip(off)
            .take(rows)
            .map(|si| switch_line(app, bi, si, si == sel, wide)),
    );
    frame.render_widget(
        Paragraph::new(lines).block(bordered(
            app,
            Line::from(Span::styled(" Switches ", t.accent)),
        )),
        sw_area,
    );

    // The firmware history takes what the activity can spare: up to four records, while the
    // activity keeps two rows.
    let below = area.height.saturating_sub(INFO_HEIGHT + sw_h);
    let history = app
        .campus()
        .firmware
        .get(&b.id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let fw_rows = (history.len() as u16)
        .min(4)
        .min(below.saturating_sub(4 + 2));
    let fw_h = if fw_rows > 0 { fw_rows + 2 } else { 0 };
    if fw_h > 0 {
        let lines: Vec<Line> = history
            .iter()
            .take(fw_rows as usize)
            .map(|u| firmware_line(app, u))
            .collect();
        let more = history.len().saturating_sub(fw_rows as usize);
        let title = if more > 0 {
            format!(" Firmware history (+{more} older) ")
        } else {
            " Firmware history ".to_string()
        };
        frame.render_widget(
            Paragraph::new(lines).block(bordered(app, Line::from(Span::styled(title, t.accent)))),
            Rect {
                y: sw_area.y + sw_h,
                height: fw_h,
                ..area
            },
        );
    }
    let act_area = Rect {
        y: sw_area.y + sw_h + fw_h,
        height: below.saturating_sub(fw_h),
        ..area
    };
    let fit_rows = act_area.height.saturating_sub(2) as usize;
    let recent: Vec<Line> = app
        .campus()
        .activity
        .iter()
        .rev()
        .filter(|a| a.device_id.map(|d| d.to_hex()).as_deref() == Some(b.id.as_str()))
        .take(fit_rows)
        .map(|a| {
            Line::from(vec![
                Span::styled(
                    format!(" {}  ", hhmm(a.timestamp, app.settings().tz)),
                    t.dim,
                ),
                Span::styled(format!("{:<14}", fit(&a.action, 14)), t.text),
                Span::styled(
                    format!("{:<18}", fit(a.switch_name.as_deref().unwrap_or(""), 18)),
                    t.text,
                ),
                Span::styled(who(a), t.dim),
            ])
        })
        .collect();
    let recent = if recent.is_empty() {
        vec![Line::styled(" no activity in memory for this board", t.dim)]
    } else {
        recent
    };
    frame.render_widget(
        Paragraph::new(recent).block(bordered(
            app,
            Line::from(Span::styled(" Recent activity ", t.accent)),
        )),
        act_area,
    );
}

/// Who did it: the operator's name, else what triggered it.
pub fn who(a: &crate::domain::ActivityLog) -> String {
    match &a.user_name {
        Some(n) => format!("{n} ({})", a.triggered_by.as_str()),
        None => a.triggered_by.as_str().to_string(),
    }
}

/// One firmware record: when, from → to, how it went, the note.
fn firmware_line<'a>(app: &App, u: &crate::domain::FirmwareUpdate) -> Line<'a> {
    let t = app.theme();
    let when = u
        .when()
        .map(|ts| date_time(ts, app.settings().tz))
        .unwrap_or_else(|| app.symbols().dash.into());
    // Another writer's text: shown, never acted on by the terminal.
    let clean = |x: &str| -> String {
        x.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    };
    let from = if u.from_version.is_empty() {
        "?".to_string()
    } else {
        clean(&u.from_version)
    };
    let status_style = match u.status {
        crate::domain::FirmwareUpdateStatus::Success => t.ok,
        crate::domain::FirmwareUpdateStatus::Failed => t.error,
        _ => t.pending,
    };
    Line::from(vec![
        Span::styled(format!(" {when}  "), t.dim),
        Span::styled(
            format!(
                "{:>10} → {:<10} ",
                fit(&from, 10),
                fit(&clean(&u.to_version), 10)
            ),
            t.text,
        ),
        Span::styled(
            format!("{:<12}", fit(&clean(u.status.as_str()), 12)),
            status_style,
        ),
        Span::styled(fit(&clean(u.notes.as_deref().unwrap_or("")), 60), t.dim),
    ])
}
