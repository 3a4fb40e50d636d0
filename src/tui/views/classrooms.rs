//! Home: every classroom with its boards, switches on, power and today's energy and cost.

use super::super::app::App;
use super::super::event::LinkState;
use super::super::widgets::spark::sparkline;
use super::{bordered, list_rows, scroll_offset, today_kwh, today_money};
use crate::format::{fit, watts};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Padding, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.rooms_sel();
    let s = app.symbols();
    let t = app.theme();
    let rooms = app.visible_rooms();
    let rows_fit = list_rows(area);
    let offset = scroll_offset(sel, rows_fit);
    let wide = area.width >= 110;
    let spark_w = if wide {
        (area.width as usize).saturating_sub(96).clamp(8, 40)
    } else {
        0
    };
    let mut title = vec![Span::styled(
        format!(
            " Classrooms ({}) {} sort: {} {} ",
            rooms.len(),
            s.rule,
            app.sort().label(),
            if app.sort() == super::super::components::classrooms::SortKey::Name {
                s.sort_asc
            } else {
                s.sort_desc
            }
        ),
        t.accent,
    )];
    if !app.filter().is_empty() {
        title.push(Span::styled(
            format!("{} filter: {} ", s.rule, app.filter()),
            t.warn,
        ));
    }
    if !app.loaded() && !matches!(app.links().db, LinkState::Unusable(_)) {
        title.push(Span::styled(
            format!("{} loading{} ", s.rule, s.pending),
            t.pending,
        ));
    }
    // A database without a schema has no campus to show: what to do instead, at any width.
    if let (LinkState::Unusable(why), true) = (&app.links().db, app.campus().rooms.is_empty()) {
        let text = vec![
            Line::from(""),
            Line::from(Span::styled(format!("{} {why}.", s.failed), t.error)),
            Line::from(""),
            Line::from(Span::styled(
                "The campus shows here once the database has a schema.",
                t.dim,
            )),
        ];
        let note = Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(bordered(app, Line::from(title)).padding(Padding::horizontal(1)));
        frame.render_widget(note, area);
        return;
    }
    let mut header = vec!["Room", "Boards", "On", "Power", "Today kWh", "Today ₹"];
    if s.rupee != "₹" {
        header[5] = "Today Rs";
    }
    if wide {
        header.push("Power, last 2 h");
    }
    header.push("Alerts");
    let rows: Vec<Row> = rooms
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows_fit)
        .map(|(i, &ri)| {
            let r = &app.campus().rooms[ri];
            let st = app.campus().room_stats(ri, app.clock());
            let selected = i == sel;
            let offline = st.boards_total - st.boards_online;
            let mut alerts = Vec::new();
            if offline > 0 {
                alerts.push(Span::styled(format!("{} {offline} off", s.failed), t.error));
            }
            let boards_style = if offline > 0 { t.warn } else { t.text };
            let marker = if selected { s.selected } else { " " };
            let mut cells = vec![
                Cell::from(format!("{marker}{}", fit(&r.name, 14))),
                Cell::from(Span::styled(
                    format!("{}/{}", st.boards_online, st.boards_total),
                    boards_style,
                )),
                Cell::from(Span::styled(
                    st.switches_on.to_string(),
                    if st.switches_on > 0 { t.on } else { t.off },
                )),
                Cell::from(watts(st.power_w)),
                Cell::from(Line::from(today_kwh(app, st.totals.today.kwh)).right_aligned()),
                Cell::from(Line::from(today_money(app, st.totals.today.cost)).right_aligned()),
            ];
            if wide {
                cells.push(Cell::from(Span::styled(
                    sparkline(r.power_history.iter(), spark_w, s.bars),
                    t.accent,
                )));
            }
            cells.push(Cell::from(Line::from(alerts)));
            let row = Row::new(cells).style(t.text);
            if selected {
                row.style(t.selected)
            } else {
                row
            }
        })
        .collect();
    let mut widths = vec![
        Constraint::Length(15),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(11),
    ];
    if wide {
        widths.push(Constraint::Length(spark_w as u16));
    }
    widths.push(Constraint::Min(8));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.dim))
        .block(bordered(app, Line::from(title)));
    frame.render_widget(table, area);
}
