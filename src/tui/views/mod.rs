//! Rendering: a pure function of the `App`. The frame is header, optional banner, the current
//! view, a status line and the footer of keys; modals draw on top.

mod activity;
mod board;
mod classroom;
mod classrooms;
mod header;
mod health;
mod modal;
mod schedules;
mod tariff;
mod trends;
mod waste;

use super::app::{App, NoticeKind};
use super::components::aggregate::AggregationState;
use super::components::navigation::View;
use super::event::LinkState;
use super::keymap::Action;
use super::widgets::spark::gauge;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

/// Smallest size the layout is designed for; below it a notice asks for more room.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

struct Areas {
    header: Rect,
    banner: Option<Rect>,
    body: Rect,
    status: Rect,
    footer: Rect,
}

fn areas(app: &App, area: Rect) -> Areas {
    let banner_h = u16::from(banner(app).is_some());
    let header = Rect {
        height: 2.min(area.height),
        ..area
    };
    let banner = (banner_h == 1).then_some(Rect {
        y: area.y + 2,
        height: 1,
        ..area
    });
    let body_y = area.y + 2 + banner_h;
    let body_h = area.height.saturating_sub(4 + banner_h);
    Areas {
        header,
        banner,
        body: Rect {
            y: body_y,
            height: body_h,
            ..area
        },
        status: Rect {
            y: body_y + body_h,
            height: 1,
            ..area
        },
        footer: Rect {
            y: body_y + body_h + 1,
            height: 1,
            ..area
        },
    }
}

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "The dashboard needs at least {MIN_WIDTH}{x}{MIN_HEIGHT}; this terminal is {}{x}{}.",
            area.width,
            area.height,
            x = app.symbols().times
        );
        frame.render_widget(
            Paragraph::new(msg)
                .style(app.theme().warn)
                .wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let a = areas(app, area);
    header::render(frame, app, a.header);
    if let (Some(r), Some((text, style))) = (a.banner, banner(app)) {
        frame.render_widget(Paragraph::new(text).style(style), r);
    }
    match app.view() {
        View::Classrooms => classrooms::render(frame, app, a.body),
        View::Classroom(room) => classroom::render(frame, app, a.body, room),
        View::Board(b) => board::render(frame, app, a.body, b),
        View::Activity => activity::render(frame, app, a.body),
        View::Health => health::render(frame, app, a.body),
        View::Tariff => tariff::render(frame, app, a.body),
        View::Waste => waste::render(frame, app, a.body),
        View::Schedules => schedules::render(frame, app, a.body),
        View::Trends => trends::render(frame, app, a.body),
    }
    status(frame, app, a.status);
    footer(frame, app, a.footer);
    if let Some(m) = app.modal() {
        modal::render(frame, app, m, area);
    }
}

/// The list index under screen row `y` in the current view, for mouse clicks.
pub fn row_at(app: &App, y: u16) -> Option<usize> {
    let area = Rect::new(0, 0, app.width(), app.height());
    let body = areas(app, area).body;
    match app.view() {
        View::Classrooms => list_index(y, body.y + 2, list_rows(body), app.rooms_sel()),
        View::Classroom(room) => classroom::switch_at(app, body, room, y),
        View::Board(_) => list_index(
            y,
            body.y + board::INFO_HEIGHT + 2,
            board::switch_rows(body),
            app.list_sel(),
        ),
        View::Activity | View::Waste | View::Tariff | View::Schedules => {
            list_index(y, body.y + 2, list_rows(body), app.list_sel())
        }
        View::Health | View::Trends => None,
    }
}

/// Rows of data a bordered table with a header row shows in `body`.
fn list_rows(body: Rect) -> usize {
    body.height.saturating_sub(3) as usize
}

/// First row shown so that `selected` is visible in `rows` rows.
fn scroll_offset(selected: usize, rows: usize) -> usize {
    if rows == 0 {
        0
    } else {
        selected.saturating_sub(rows - 1)
    }
}

fn list_index(y: u16, top: u16, rows: usize, selected: usize) -> Option<usize> {
    if y < top || (y - top) as usize >= rows {
        return None;
    }
    Some(scroll_offset(selected, rows) + (y - top) as usize)
}

fn bordered<'a>(app: &App, title: Line<'a>) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_set(app.symbols().borders)
        .border_style(app.theme().border)
        .title(title)
}

/// The banner for a lost connection; the view below keeps the last known state.
fn banner(app: &App) -> Option<(String, Style)> {
    let w = app.symbols().warn;
    let style = app
        .theme()
        .error
        .add_modifier(ratatui::style::Modifier::REVERSED);
    // A database without a schema is reached: what to do about it comes first.
    if let LinkState::Unusable(reason) = &app.links().db {
        return Some((format!(" {w} {reason}"), style));
    }
    let down = |what: &str, s: &LinkState| match s {
        LinkState::Down(reason) => Some(format!("{what} unreachable ({reason})")),
        _ => None,
    };
    let parts: Vec<String> = [
        down("MQTT broker", &app.links().mqtt),
        down("database", &app.links().db),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    Some((
        format!(
            " {w} {}: showing the last known state, marked stale; reconnecting in the background",
            parts.join(", ")
        ),
        style,
    ))
}

fn status(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let line = match (app.notice(), app.aggregation()) {
        (Some((NoticeKind::Error, text)), _) => Line::from(vec![
            Span::styled(format!(" {} {text}", s.failed), app.theme().error),
            Span::styled(
                format!("  ({} dismiss)", app.keymap().label(Action::Dismiss)),
                app.theme().dim,
            ),
        ]),
        (_, Some(AggregationState::Running { date, done, total })) => Line::from(vec![
            Span::styled(format!(" Aggregating {date}  "), app.theme().accent),
            Span::styled(
                gauge(*done, *total, 30, s.gauge_full, s.gauge_empty),
                app.theme().ok,
            ),
            Span::styled(
                format!(
                    "  {done}/{total}  {} stops it",
                    app.keymap().label(Action::Back)
                ),
                app.theme().dim,
            ),
        ]),
        (_, Some(AggregationState::Stopped(summary))) => Line::from(Span::styled(
            format!(" {} aggregation stopped: {summary}", s.warn),
            app.theme().warn,
        )),
        (_, Some(AggregationState::Failed(e))) => Line::from(Span::styled(
            format!(" {} aggregation failed: {e}", s.failed),
            app.theme().error,
        )),
        (Some((NoticeKind::Info, text)), _) => Line::from(Span::styled(
            format!(" {} {text}", s.confirmed),
            app.theme().ok,
        )),
        (None, Some(AggregationState::Done(summary))) => Line::from(Span::styled(
            format!(" {} aggregation done: {summary}", s.confirmed),
            app.theme().ok,
        )),
        (None, None) => {
            let who = match (&app.operator(), app.settings().read_only) {
                (_, true) => "read-only: nothing is sent".to_string(),
                (Some(op), _) => format!("{} ({})", op.name, op.label()),
                (None, _) => "not signed in".to_string(),
            };
            Line::from(Span::styled(format!(" {who}"), app.theme().dim))
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn footer(frame: &mut Frame, app: &App, area: Rect) {
    use Action::*;
    let keys: &[(Action, &str)] = match app.view() {
        View::Classrooms => &[
            (Down, "select"),
            (Open, "open"),
            (Filter, "filter"),
            (Sort, "sort"),
            (Waste, "waste"),
            (Activity, "activity"),
            (Health, "health"),
            (Tariff, "tariff"),
            (Aggregate, "aggregate"),
            (Theme, "theme"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Classroom(_) => &[
            (Toggle, "toggle"),
            (AllOff, "all off"),
            (NextBoard, "next board"),
            (BoardInfo, "board info"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Board(_) => &[
            (Toggle, "toggle"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Activity => &[
            (Down, "scroll"),
            (Filter, "filter"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Health => &[(Back, "back"), (Help, "help"), (Quit, "quit")],
        View::Schedules => &[
            (Down, "scroll"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Tariff => &[
            (EditTariff, "change tariff"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Trends => &[
            (Down, "select"),
            (Open, "open room"),
            (NextBoard, "campus / room"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
        View::Waste => &[
            (Open, "open"),
            (AllOff, "all off"),
            (Back, "back"),
            (Help, "help"),
            (Quit, "quit"),
        ],
    };
    let mut items: Vec<(String, &str)> = keys
        .iter()
        .map(|(a, l)| (app.keymap().label(*a), *l))
        .collect();
    // On a narrow terminal drop keys from the middle: help and quit always stay.
    let width = |items: &[(String, &str)]| {
        1 + items
            .iter()
            .map(|(k, l)| k.chars().count() + l.len() + 3)
            .sum::<usize>()
    };
    while width(&items) > area.width as usize && items.len() > 2 {
        items.remove(items.len() - 3);
    }
    let mut spans = vec![Span::raw(" ")];
    for (key, label) in items {
        spans.push(Span::styled(key, app.theme().accent));
        spans.push(Span::styled(format!(" {label}  "), app.theme().dim));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Today's kWh of a scope, or `…` while today's closed rows are still loading.
pub fn today_kwh(app: &App, kwh: f64) -> String {
    if app.campus().totals.is_today_loaded() {
        crate::format::kwh(kwh * 1000.0)
    } else {
        app.symbols().pending.to_string()
    }
}

/// Today's ₹ of a scope (two decimals), or `…` while today's closed rows are still loading.
pub fn today_money(app: &App, cost: f64) -> String {
    if app.campus().totals.is_today_loaded() {
        crate::format::money(cost)
    } else {
        app.symbols().pending.to_string()
    }
}
