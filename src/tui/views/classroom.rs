//! One classroom: its boards and their switches as a grid, with the state of every command.

use super::super::app::App;
use super::super::model::{Presence, ToggleState};
use super::{bordered, scroll_offset, today_kwh, today_money};
use crate::format::{age, fit, hhmm, watts};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// A line of the grid: a board's heading or one of its switches (by index in the classroom).
#[derive(Debug, Clone, Copy, PartialEq)]
enum GridLine {
    Board(usize),
    Switch(usize),
}

fn lines(app: &App, room: usize) -> Vec<GridLine> {
    let mut out = Vec::new();
    let mut flat = 0;
    for &bi in &app.campus().rooms[room].boards {
        out.push(GridLine::Board(bi));
        for _ in &app.campus().boards[bi].switches {
            out.push(GridLine::Switch(flat));
            flat += 1;
        }
    }
    out
}

/// Grid lines fit below the summary line, the border and the column header.
fn grid_rows(area: Rect) -> usize {
    area.height.saturating_sub(4) as usize
}

fn offset(app: &App, all: &[GridLine], rows: usize) -> usize {
    let sel_line = all
        .iter()
        .position(|l| *l == GridLine::Switch(app.switch_sel()))
        .unwrap_or(0);
    scroll_offset(sel_line, rows)
}

pub fn switch_at(app: &App, area: Rect, room: usize, y: u16) -> Option<usize> {
    let all = lines(app, room);
    let rows = grid_rows(area);
    let top = area.y + 3;
    if y < top || (y - top) as usize >= rows {
        return None;
    }
    match all.get(offset(app, &all, rows) + (y - top) as usize) {
        Some(GridLine::Switch(i)) => Some(*i),
        _ => None,
    }
}

pub fn render(frame: &mut Frame, app: &App, area: Rect, room: usize) {
    let sel = app.switch_sel();
    let s = app.symbols();
    let t = app.theme();
    let r = &app.campus().rooms[room];
    let st = app.campus().room_stats(room, app.clock());
    let place = match (&r.building, r.floor) {
        (Some(b), Some(f)) => format!(" {} {b}, floor {f}", s.sep),
        (Some(b), None) => format!(" {} {b}", s.sep),
        _ => String::new(),
    };
    let summary = Line::from(vec![
        Span::styled(format!(" {}{place}", r.name), t.accent),
        Span::styled(
            format!(
                "   {}/{} boards online   {} on   {}   today {} kWh {}{}",
                st.boards_online,
                st.boards_total,
                st.switches_on,
                watts(st.power_w),
                today_kwh(app, st.totals.today.kwh),
                s.rupee,
                today_money(app, st.totals.today.cost)
            ),
            t.text,
        ),
    ]);
    frame.render_widget(Paragraph::new(summary), Rect { height: 1, ..area });
    let grid = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(1),
        ..area
    };
    let all = lines(app, room);
    let rows_fit = grid_rows(area);
    let off = offset(app, &all, rows_fit);
    let wide = area.width >= 100;
    let rows: Vec<Line> = all
        .iter()
        .skip(off)
        .take(rows_fit)
        .map(|l| match *l {
            GridLine::Board(bi) => board_line(app, bi),
            GridLine::Switch(i) => {
                let (bi, si) = app.flat_switches(room)[i];
                switch_line(app, bi, si, i == sel, wide)
            }
        })
        .collect();
    let mut text = vec![grid_header(app, wide)];
    text.extend(rows);
    let mut title = vec![Span::styled(format!(" {} ", r.name), t.accent)];
    if let Some((at, sc)) = app.next_scheduled(room) {
        title.push(Span::styled(
            format!(
                "{} next scheduled: {} {} ({}) ",
                s.rule,
                sc.action,
                crate::format::clock(at, app.settings().tz),
                fit(&sc.name, 24)
            ),
            t.dim,
        ));
    }
    let block = bordered(app, Line::from(title));
    frame.render_widget(Paragraph::new(text).block(block), grid);
}

/// The column headings of the switch grid.
pub fn grid_header(app: &App, wide: bool) -> Line<'static> {
    let rupee = format!("Today {}", app.symbols().rupee);
    let mut header = vec![pad("  Switch", NAME_W)];
    if wide {
        header.push(pad("Type", TYPE_W));
    }
    header.push(pad("State", STATE_W));
    if wide {
        header.push(pad("Since", SINCE_W));
    }
    header.push(lpad("Power", POWER_W));
    header.push(lpad("Today kWh", KWH_W));
    header.push(lpad(&rupee, COST_W));
    Line::styled(header.concat(), app.theme().dim)
}

const NAME_W: usize = 19;
const TYPE_W: usize = 11;
const STATE_W: usize = 10;
const SINCE_W: usize = 7;
const POWER_W: usize = 9;
const KWH_W: usize = 11;
const COST_W: usize = 10;

fn pad(s: &str, w: usize) -> String {
    format!("{:<w$}", fit(s, w.saturating_sub(1)))
}

fn lpad(s: &str, w: usize) -> String {
    format!("{:>w$}", fit(s, w.saturating_sub(1)))
}

/// A board's heading: name, MAC, and whether its values are live or stale.
fn board_line(app: &App, bi: usize) -> Line<'static> {
    let s = app.symbols();
    let t = app.theme();
    let b = &app.campus().boards[bi];
    let presence = app.clock().presence(b.last_seen);
    let seen = b
        .last_seen
        .map(|ts| age(app.clock().now, ts))
        .unwrap_or_else(|| "never".into());
    let (text, style) = match presence {
        Presence::Online if app.live_ok() => (
            format!("{} online {} seen {seen} ago", s.online, s.sep),
            t.ok,
        ),
        Presence::Online | Presence::Stale => (
            format!(
                "{} stale {} last seen {seen} ago (values stale)",
                s.warn, s.sep
            ),
            t.stale,
        ),
        Presence::Offline => (
            format!(
                "{} OFFLINE {} last seen {seen} ago (values stale)",
                s.offline, s.sep
            ),
            t.offline,
        ),
    };
    Line::from(vec![
        Span::styled(format!("Board {}  ", b.name), t.accent),
        Span::styled(format!("{}  ", b.mac), t.dim),
        Span::styled(text, style),
    ])
}

/// One switch: the state has a symbol and a word, never colour alone.
pub fn switch_line(app: &App, bi: usize, si: usize, selected: bool, wide: bool) -> Line<'static> {
    let s = app.symbols();
    let t = app.theme();
    let b = &app.campus().boards[bi];
    let sw = &b.switches[si];
    let presence = app.clock().presence(b.last_seen);
    let stale = presence != Presence::Online || !app.live_ok();
    let (state_text, state_style): (String, Style) = if sw.on {
        (format!("{} ON", s.on), t.on)
    } else {
        (format!("{} off", s.off), t.off)
    };
    let state_style = match presence {
        Presence::Offline => t.offline,
        _ if stale => t.stale,
        _ => state_style,
    };
    let (mark, mark_style, tail) = match &sw.toggle {
        ToggleState::Pending { want, .. } => (
            s.pending.to_string(),
            t.pending,
            Some((
                format!(
                    "pending: turning {}, waiting for the board",
                    if *want { "on" } else { "off" }
                ),
                t.pending,
            )),
        ),
        ToggleState::Confirmed { .. } => (s.confirmed.to_string(), t.ok, None),
        ToggleState::Failed { reason } => (
            s.failed.to_string(),
            t.error,
            Some((reason.clone(), t.error)),
        ),
        ToggleState::Idle => (String::new(), t.text, None),
    };
    let base = if presence == Presence::Offline {
        t.offline
    } else {
        t.text
    };
    let marker = if selected { s.selected } else { " " };
    let mut spans = vec![Span::styled(
        pad(&format!("{marker} {}", sw.name), NAME_W),
        base,
    )];
    if wide {
        spans.push(Span::styled(pad(sw.kind.as_str(), TYPE_W), base));
    }
    let state_w = state_text.chars().count();
    spans.push(Span::styled(state_text, state_style));
    let mark_text = if mark.is_empty() {
        String::new()
    } else {
        format!(" {mark}")
    };
    let used = state_w + mark_text.chars().count();
    spans.push(Span::styled(mark_text, mark_style));
    spans.push(Span::styled(
        " ".repeat(STATE_W.saturating_sub(used).max(1)),
        base,
    ));
    match tail {
        Some((text, style)) => spans.push(Span::styled(text, style)),
        None => {
            let today = app.campus().switch_totals(b, sw).today;
            if wide {
                let since = match (sw.on, sw.since) {
                    (true, Some(ts)) => hhmm(ts, app.settings().tz),
                    _ => s.dash.to_string(),
                };
                spans.push(Span::styled(pad(&since, SINCE_W), base));
            }
            let power = if sw.on {
                watts(sw.watts)
            } else {
                s.dash.to_string()
            };
            spans.push(Span::styled(lpad(&power, POWER_W), base));
            spans.push(Span::styled(lpad(&today_kwh(app, today.kwh), KWH_W), base));
            spans.push(Span::styled(
                lpad(&today_money(app, today.cost), COST_W),
                base,
            ));
        }
    }
    let line = Line::from(spans);
    if selected {
        line.style(t.selected)
    } else {
        line
    }
}
