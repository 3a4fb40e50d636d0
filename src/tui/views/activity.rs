//! The live activity log: who did what, where and when, newest first.

use super::super::app::App;
use super::board::who;
use super::{bordered, list_rows, scroll_offset};
use crate::format::{date_time, fit};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let items = app.visible_activity();
    let rows_fit = list_rows(area);
    let off = scroll_offset(sel, rows_fit);
    let rows: Vec<Row> = items
        .iter()
        .enumerate()
        .skip(off)
        .take(rows_fit)
        .map(|(i, a)| {
            let marker = if i == sel { s.selected } else { " " };
            let row = Row::new(vec![
                format!("{marker}{}", date_time(a.timestamp, app.settings().tz)),
                fit(&a.action, 16),
                fit(a.classroom.as_deref().unwrap_or(s.dash), 14),
                fit(a.switch_name.as_deref().unwrap_or(s.dash), 18),
                who(a),
            ])
            .style(t.text);
            if i == sel {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let mut title = vec![Span::styled(
        format!(" Activity ({}) ", items.len()),
        t.accent,
    )];
    if !app.filter().is_empty() {
        title.push(Span::styled(
            format!("{} filter: {} ", s.rule, app.filter()),
            t.warn,
        ));
    }
    let table = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(16),
            Constraint::Length(14),
            Constraint::Length(18),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(vec!["  When", "Action", "Classroom", "Switch", "Who"]).style(t.dim))
    .block(bordered(app, Line::from(title)));
    frame.render_widget(table, area);
}
