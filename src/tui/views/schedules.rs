//! Schedules: what switches when, and each one's next run (campus time).

use super::super::app::App;
use super::{bordered, list_rows, scroll_offset};
use crate::domain::Schedule;
use crate::format::{clock, fit};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

/// The classrooms a schedule switches something in, by name.
fn rooms_of(app: &App, s: &Schedule) -> String {
    let mut names: Vec<&str> = s
        .switches
        .iter()
        .filter_map(|w| app.campus().board_by_id(&w.device_id.to_hex()))
        .map(|b| {
            app.campus().rooms[app.campus().boards[b].room]
                .name
                .as_str()
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        app.symbols().dash.to_string()
    } else {
        names.join(", ")
    }
}

/// "next Tue 24 Nov 18:00 IST: off" (campus time), or why there is none.
pub fn next_text(app: &App, s: &Schedule) -> String {
    if !s.enabled {
        return "disabled".into();
    }
    match s.next_after(app.clock().now, app.settings().tz) {
        Some(t) => clock(t, app.settings().tz),
        None => format!("{} none left", app.symbols().dash),
    }
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let tz = app.settings().tz;
    let rows_fit = list_rows(area);
    let off = scroll_offset(sel, rows_fit);
    let rows: Vec<Row> = app
        .schedules()
        .iter()
        .enumerate()
        .skip(off)
        .take(rows_fit)
        .map(|(i, sc)| {
            let marker = if i == sel { s.selected } else { " " };
            let state = if sc.enabled {
                format!("{} on", s.online)
            } else {
                format!("{} off", s.offline)
            };
            let row = Row::new(vec![
                format!("{marker}{}", fit(&sc.name, 22)),
                sc.describe_when(tz),
                sc.action.clone(),
                sc.switches.len().to_string(),
                fit(&rooms_of(app, sc), 12),
                state,
                next_text(app, sc),
            ])
            .style(if sc.enabled { t.text } else { t.dim });
            if i == sel {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let enabled = app.schedules().iter().filter(|s| s.enabled).count();
    let title = Line::from(vec![
        Span::styled(
            format!(" Schedules ({}, {enabled} enabled) ", app.schedules().len()),
            t.accent,
        ),
        Span::styled(
            format!(
                "{} run by the collectors; `autovolt schedule` changes them ",
                s.rule
            ),
            t.dim,
        ),
    ]);
    let table = Table::new(
        rows,
        [
            Constraint::Length(23),
            Constraint::Length(32),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Min(12),
        ],
    )
    .header(
        Row::new(vec![
            " Name", "When", "Action", "Switches", "Rooms", "State", "Next run",
        ])
        .style(t.dim),
    )
    .block(bordered(app, title));
    frame.render_widget(table, area);
}
