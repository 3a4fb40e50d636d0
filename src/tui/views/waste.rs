//! Waste: classrooms with loads on and nobody there, or on outside campus hours, costliest first.

use super::super::app::App;
use super::{bordered, list_rows, scroll_offset};
use crate::format::{fit, hhmm, money};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let rows_all = app.waste_rows();
    let total: f64 = rows_all.iter().map(|w| w.inr_per_hour).sum();
    let rows_fit = list_rows(area);
    let off = scroll_offset(sel, rows_fit);
    let action = format!(
        "{}: all off",
        app.keymap().label(super::super::keymap::Action::AllOff)
    );
    let rows: Vec<Row> = rows_all
        .iter()
        .enumerate()
        .skip(off)
        .take(rows_fit)
        .map(|(i, w)| {
            let marker = if i == sel { s.selected } else { " " };
            let row = Row::new(vec![
                format!("{marker}{}", fit(&app.campus().rooms[w.room].name, 12)),
                fit(&w.loads, 18),
                w.reason.describe(),
                w.since
                    .map(|t| hhmm(t, app.settings().tz))
                    .unwrap_or_else(|| s.dash.into()),
                format!("{:>8}", money(w.inr_per_hour)),
                action.clone(),
            ])
            .style(t.warn);
            if i == sel {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let title = Line::from(Span::styled(
        format!(" Waste now: {}{}/h ", s.rupee, money(total)),
        t.warn,
    ));
    let per_hour = format!("{}/h", s.rupee);
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(13),
            Constraint::Length(18),
            Constraint::Length(30),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(vec![
            "  Room", "Loads on", "Why", "Since", &per_hour, "Action",
        ])
        .style(t.dim),
    )
    .block(bordered(app, title));
    frame.render_widget(table, area);
    if empty {
        let msg = ratatui::widgets::Paragraph::new(Line::styled(
            format!(
                "  {} nothing wasted right now: no loads on in empty rooms or after hours",
                s.confirmed
            ),
            t.ok,
        ));
        frame.render_widget(
            msg,
            Rect {
                y: area.y + 2,
                height: 1,
                x: area.x + 1,
                width: area.width.saturating_sub(2),
            },
        );
    }
}
