//! Tariff: the rate in force per scope and the history of changes.

use super::super::app::App;
use super::super::keymap::Action;
use super::{bordered, list_rows, scroll_offset};
use crate::domain::TariffScope;
use crate::format::{date_time, fit};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let now = app.clock().now;
    let tz = app.settings().tz;
    let mut versions: Vec<_> = app.campus().tariff.versions.iter().collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.effective_from));
    let rows_fit = list_rows(area);
    let off = scroll_offset(sel, rows_fit);
    let rows: Vec<Row> = versions
        .iter()
        .enumerate()
        .skip(off)
        .take(rows_fit)
        .map(|(i, v)| {
            let scope = match (&v.scope, &v.classroom, &v.device_id) {
                (TariffScope::Classroom, Some(c), _) => format!("classroom {c}"),
                (TariffScope::Device, _, Some(d)) => format!("device {}", fit(d, 8)),
                (other, _, _) => other.as_str().to_string(),
            };
            let in_force = v.in_force_at(now);
            let marker = if i == sel { s.selected } else { " " };
            let row = Row::new(vec![
                format!(
                    "{marker}{}",
                    if in_force {
                        format!("{} in force", s.online)
                    } else {
                        String::new()
                    }
                ),
                format!("{}{:.2}/kWh", s.rupee, v.cost_per_kwh),
                scope,
                date_time(v.effective_from, tz),
                v.effective_until
                    .map(|u| date_time(u, tz))
                    .unwrap_or_else(|| s.dash.into()),
                v.created_by
                    .as_ref()
                    .map(|c| c.username.clone())
                    .unwrap_or_default(),
                v.notes.clone().unwrap_or_default(),
            ])
            .style(if in_force { t.on } else { t.text });
            if i == sel {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let fallback = app
        .campus()
        .settings
        .as_ref()
        .map(|p| {
            format!(
                "power settings {}{:.2}/kWh (v{})",
                s.rupee, p.electricity_price, p.version
            )
        })
        .unwrap_or_else(|| "no power settings".into());
    let title = Line::from(vec![
        Span::styled(
            format!(
                " Tariff: {}{:.2}/kWh now ",
                s.rupee,
                app.campus().global_rate(now)
            ),
            t.accent,
        ),
        Span::styled(
            format!(
                "{r} fallback: {fallback} {r} {} change ",
                app.keymap().label(Action::EditTariff),
                r = s.rule
            ),
            t.dim,
        ),
    ]);
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(13),
            Constraint::Length(18),
            Constraint::Length(18),
            Constraint::Length(18),
            Constraint::Length(12),
            Constraint::Min(6),
        ],
    )
    .header(Row::new(vec!["", "Rate", "Scope", "From", "Until", "By", "Note"]).style(t.dim))
    .block(bordered(app, title));
    frame.render_widget(table, area);
}
