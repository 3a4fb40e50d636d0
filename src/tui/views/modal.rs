//! Modals drawn over the view: help, filter, tariff edit, confirmation, aggregation, sign-in.
//! In a text field the terminal cursor sits where the input says.

use super::super::app::{App, Modal};
use super::super::components::tariff_edit::TariffForm;
use super::super::keymap::Action;
use crate::format::date_time;
use ratatui::layout::{Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use tui_input::Input;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn frame_block<'a>(app: &App, title: String) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_set(app.symbols().borders)
        .border_style(app.theme().accent)
        .title(Span::styled(format!(" {title} "), app.theme().accent))
}

/// A labelled input line `Label  [ value█ ]`; returns the line and the cursor column in it.
fn field<'a>(
    app: &App,
    label: &str,
    input: &Input,
    width: usize,
    focused: bool,
    masked: bool,
) -> (Line<'a>, u16) {
    let value: String = if masked {
        "*".repeat(input.value().chars().count())
    } else {
        input.value().to_string()
    };
    let scroll = input.visual_scroll(width);
    let shown: String = value.chars().skip(scroll).take(width).collect();
    let style = if focused {
        app.theme().accent
    } else {
        app.theme().text
    };
    let prefix = format!(" {label:<9}[ ");
    let cursor = (prefix.chars().count() + input.visual_cursor().saturating_sub(scroll)) as u16;
    (
        Line::from(vec![
            Span::styled(prefix, app.theme().dim),
            Span::styled(format!("{shown:<width$}"), style),
            Span::styled(" ]", app.theme().dim),
        ]),
        cursor,
    )
}

pub fn render(frame: &mut Frame, app: &App, modal: &Modal, area: Rect) {
    let t = app.theme();
    let s = app.symbols();
    match modal {
        Modal::Help => {
            // One column when it fits, else two side by side (80×24 holds every key).
            let two = area.height < Action::ALL.len() as u16 + 5;
            let (key_w, what_w) = if two { (10, 28) } else { (22, 56) };
            let entry = |i: usize| -> Vec<Span<'static>> {
                let (action, _, what) = Action::ALL[i];
                let keys = app.keymap().labels(action).join(" ");
                vec![
                    Span::styled(
                        format!(" {:<key_w$}", crate::format::fit(&keys, key_w - 1)),
                        t.accent,
                    ),
                    Span::styled(
                        format!("{:<what_w$}", crate::format::fit(what, what_w - 1)),
                        t.text,
                    ),
                ]
            };
            let n = Action::ALL.len();
            let rows = if two { n.div_ceil(2) } else { n };
            let mut lines: Vec<Line> = (0..rows)
                .map(|i| {
                    let mut spans = entry(i);
                    if two && i + rows < n {
                        spans.extend(entry(i + rows));
                    }
                    Line::from(spans)
                })
                .collect();
            lines.push(Line::styled(
                " Mouse: click selects, wheel scrolls. Rebind keys in the config's [keys].",
                t.dim,
            ));
            lines.push(Line::styled(" Any key closes this help.", t.dim));
            let r = centered(area, if two { 80 } else { 86 }, lines.len() as u16 + 2);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).block(frame_block(app, "Keys".into())),
                r,
            );
        }
        Modal::Filter(filter) => {
            let input = filter.input();
            let r = Rect {
                y: area.y + area.height.saturating_sub(3),
                height: 3,
                ..area
            };
            let width = r.width.saturating_sub(16) as usize;
            let (line, cx) = field(app, "Filter", input, width, true, false);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(line).block(frame_block(
                    app,
                    format!("{} keep {} esc clear", s.enter, s.sep),
                )),
                r,
            );
            frame.set_cursor_position(Position::new(r.x + 1 + cx, r.y + 1));
        }
        Modal::ConfirmAllOff(confirm) => {
            let room = confirm.room();
            let name = &app.campus().rooms[room].name;
            let on: usize = app.campus().rooms[room]
                .boards
                .iter()
                .map(|&b| {
                    app.campus().boards[b]
                        .switches
                        .iter()
                        .filter(|s| s.on)
                        .count()
                })
                .sum();
            let lines = vec![
                Line::styled(
                    format!(" Switch off all {on} load(s) on in {name}?"),
                    t.warn,
                ),
                Line::from(""),
                Line::styled(
                    format!(" y / {} switch off     any other key cancel", s.enter),
                    t.dim,
                ),
            ];
            let r = centered(area, 60, 5);
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).block(frame_block(app, "All off".into())),
                r,
            );
        }
        Modal::Aggregate(form) => {
            let r = centered(area, 60, 6);
            let (line, cx) = field(app, "Date", form.input(), 30, true, false);
            let lines = vec![
                line,
                Line::from(""),
                Line::styled(
                    format!(
                        " today, yesterday or YYYY-MM-DD   {} run   esc cancel",
                        s.enter
                    ),
                    t.dim,
                ),
            ];
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).block(frame_block(app, "Run aggregation".into())),
                r,
            );
            frame.set_cursor_position(Position::new(r.x + 1 + cx, r.y + 1));
        }
        Modal::TariffEdit(form) => tariff(frame, app, form, area),
        Modal::SignIn(f) => {
            let r = centered(area, 60, 9);
            let (email, ce) = field(app, "E-mail", f.email(), 36, f.focus() == 0, false);
            let (pw, cp) = field(app, "Password", f.password(), 36, f.focus() == 1, true);
            let status = match (f.error(), f.busy()) {
                (_, true) => Line::styled(format!(" checking{}", s.pending), t.pending),
                (Some(e), _) => Line::styled(format!(" {} {e}", s.failed), t.error),
                (None, _) => Line::from(""),
            };
            let lines = vec![
                Line::styled(
                    format!(
                        " {}: sign in to act (--read-only to only watch)",
                        app.settings().campus
                    ),
                    t.text,
                ),
                Line::from(""),
                email,
                pw,
                status,
                Line::styled(
                    format!(
                        " {} next / sign in   {} switch field   esc quit",
                        s.enter, s.tab
                    ),
                    t.dim,
                ),
            ];
            frame.render_widget(Clear, r);
            frame.render_widget(
                Paragraph::new(lines).block(frame_block(app, "Sign in".into())),
                r,
            );
            let (cx, cy) = if f.focus() == 0 { (ce, 3) } else { (cp, 4) };
            frame.set_cursor_position(Position::new(r.x + 1 + cx, r.y + cy));
        }
    }
}

fn tariff(frame: &mut Frame, app: &App, form: &TariffForm, area: Rect) {
    let t = app.theme();
    let s = app.symbols();
    let now = app.clock().now;
    let current = app
        .campus()
        .tariff
        .versions
        .iter()
        .filter(|v| v.scope == crate::domain::TariffScope::Global && v.in_force_at(now))
        .max_by_key(|v| v.effective_from);
    let since = match current {
        Some(v) => format!(
            " since {} by {}",
            date_time(v.effective_from, app.settings().tz),
            v.created_by
                .as_ref()
                .map(|c| c.username.as_str())
                .unwrap_or("unknown")
        ),
        None => " (power settings)".into(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(" Current  ", t.dim),
        Span::styled(
            format!("{}{:.2}/kWh{since}", s.rupee, app.campus().global_rate(now)),
            t.text,
        ),
    ])];
    let mut cursor = (0, 0);
    for (i, label) in TariffForm::LABELS.iter().enumerate() {
        let (mut line, cx) = field(app, label, form.field(i), 22, form.focus() == i, false);
        if i == 0 {
            line.spans
                .push(Span::styled(format!(" {}/kWh", s.rupee), t.dim));
        }
        if form.focus() == i {
            cursor = (cx, 2 + i as u16);
        }
        lines.push(line);
    }
    lines.push(Line::from(""));
    let check = match (
        form.error(),
        form.saving(),
        form.price(),
        form.from(app.settings().tz),
    ) {
        (_, true, _, _) => Line::styled(format!(" saving{}", s.pending), t.pending),
        (Some(e), _, _, _) => Line::styled(format!(" {} {e}", s.failed), t.error),
        (None, _, Err(e), _) | (None, _, _, Err(e)) => {
            Line::styled(format!(" {} {e}", s.failed), t.error)
        }
        (None, _, Ok(_), Ok(_)) => Line::styled(
            format!(" {} valid: 0 < price {} 100", s.confirmed, s.le),
            t.ok,
        ),
    };
    lines.push(check);
    lines.push(Line::styled(
        format!(" {} save   {} next field   esc cancel", s.enter, s.tab),
        t.dim,
    ));
    let r = centered(area, 64, lines.len() as u16 + 2);
    frame.render_widget(Clear, r);
    frame.render_widget(
        Paragraph::new(lines).block(frame_block(app, "Change tariff (global)".into())),
        r,
    );
    frame.set_cursor_position(Position::new(r.x + 1 + cursor.0, r.y + cursor.1));
}
