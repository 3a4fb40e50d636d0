//! Trends: the month in one line, daily ₹ of the last days as bars (tariff changes marked), today's
//! load in 15-minute slots (the hours outside campus hours shaded), and the costliest rooms of the
//! month. A narrow screen shows fewer bars and wider slots, with the same meaning.

use super::super::app::App;
use super::{bordered, scroll_offset};
use crate::domain::interval::local_date;
use crate::domain::trends::{change_percent, days_in, month_against_last, project, LoadCurve};
use crate::format::{fit, kwh, money_whole};
use chrono::{Datelike, Days, NaiveDate, Timelike};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::bar;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph, Row, Table};
use ratatui::Frame;

/// Bars drawn with ASCII only.
const ASCII_BARS: bar::Set = bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "#",
    five_eighths: "#",
    half: "=",
    three_eighths: "=",
    one_quarter: "_",
    one_eighth: "_",
    empty: " ",
};

fn ascii(app: &App) -> bool {
    *app.symbols() == super::super::theme::ASCII
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let h = area.height;
    let bars_h = ((h.saturating_sub(2)) / 3).max(6);
    let curve_h = ((h.saturating_sub(2)) / 4).max(5);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(2),
            Constraint::Length(bars_h),
            Constraint::Length(curve_h),
            Constraint::Min(4),
        ])
        .split(area);
    summary(frame, app, rows[0]);
    daily_bars(frame, app, rows[1]);
    load_curve(frame, app, rows[2]);
    tops(frame, app, rows[3]);
}

/// The scope the charts show, as people read it.
fn scope_name(app: &App) -> String {
    match &app.trends().scope {
        None => "Campus".into(),
        Some(n) if n.is_empty() => super::super::model::UNASSIGNED.into(),
        Some(n) => n.clone(),
    }
}

/// Today's running totals of the scope.
fn today_totals(app: &App) -> crate::domain::totals::Totals {
    match &app.trends().scope {
        None => app.campus().totals.campus(),
        Some(n) => app.campus().totals.classroom(n).unwrap_or_default(),
    }
}

fn summary(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let t = app.theme();
    let rupee = s.rupee;
    let today = app.campus().totals.day();
    let totals = today_totals(app);
    let mut first = vec![Span::styled(format!(" {} ", scope_name(app)), t.header)];
    let mut second = vec![Span::raw(" ")];
    let history_ready =
        app.campus().totals.is_history_loaded() && app.campus().totals.is_today_loaded();
    if history_ready {
        first.push(Span::raw(format!(
            "month {rupee}{}",
            money_whole(totals.month_to_date.cost)
        )));
    } else {
        first.push(Span::styled(format!("month {}", s.pending), t.dim));
    }
    if let Some(data) = &app.trends().data {
        let scope = app.trends().scope.as_deref();
        // The projection of the header (the running totals' own days), with the range of those
        // days: month-to-date, then their lowest, average, highest.
        let recent = app.campus().totals.recent_days(scope);
        let left = app.campus().totals.days_left(app.clock().now);
        if let (true, Some(p)) = (history_ready, project(totals.month_to_date, &recent, left)) {
            let (low, high) = (money_whole(p.low.cost), money_whole(p.high.cost));
            // Days alike give no range.
            let range = if low == high {
                String::new()
            } else {
                format!(" ({rupee}{low}{}{rupee}{high})", s.dash)
            };
            first.push(Span::raw(format!(
                " {} {rupee}{} projected{range}",
                s.arrow,
                money_whole(p.expected.cost),
            )));
        }
        if let Some(m) = month_against_last(today) {
            let now = data.book.total(m.this.0, m.this.1, scope).cost;
            let before = data.book.total(m.last.0, m.last.1, scope).cost;
            let change = change_percent(now, before)
                .map(|p| format!(" ({p:+.1}%)"))
                .unwrap_or_default();
            second.push(Span::raw(format!(
                "{} {rupee}{} vs {} {rupee}{}{change}   ",
                day_range(m.this),
                money_whole(now),
                day_range(m.last),
                money_whole(before)
            )));
        }
        let changes = tariff_changes(
            app,
            data.from
                .max(first_bar_day(today, super::super::trends::DAYS_SHOWN)),
            today,
        );
        if changes.is_empty() {
            second.push(Span::styled("no tariff change in the days shown", t.dim));
        } else {
            let listed: Vec<String> = changes
                .iter()
                .map(|(d, p)| format!("{} {rupee}{p:.2}", d.format("%d %b")))
                .collect();
            second.push(Span::styled(
                format!("^ tariff changed: {}", listed.join(", ")),
                t.accent,
            ));
        }
        let not_aggregated = first_bar_day(today, super::super::trends::DAYS_SHOWN)
            .max(data.from)
            .iter_days()
            .take_while(|d| *d < today)
            .filter(|d| !data.book.is_covered(*d))
            .count();
        if not_aggregated > 0 {
            second.push(Span::styled(
                format!(
                    "  {} {not_aggregated} day(s) not aggregated (shown empty)",
                    s.warn
                ),
                t.warn,
            ));
        }
    }
    if app.trends().loading && app.trends().data.is_none() {
        second.push(Span::styled(
            format!("reading the history {}", s.pending),
            t.dim,
        ));
    }
    if let Some(e) = &app.trends().error {
        second.push(Span::styled(format!("  {} {e}", s.failed), t.error));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

/// `1–23 Nov`.
fn day_range((a, b): (NaiveDate, NaiveDate)) -> String {
    if a == b {
        a.format("%-d %b").to_string()
    } else {
        format!("{}-{}", a.format("%-d"), b.format("%-d %b"))
    }
}

/// The first of `n` days ending today.
fn first_bar_day(today: NaiveDate, n: u64) -> NaiveDate {
    today
        .checked_sub_days(Days::new(n.saturating_sub(1)))
        .unwrap_or(today)
}

/// The days within `from..=to` on which a tariff version started, with its price (campus-wide
/// versions and the scope's own).
fn tariff_changes(app: &App, from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, f64)> {
    let tz = app.settings().tz;
    let mut out: Vec<(NaiveDate, f64)> = app
        .campus()
        .tariff
        .versions
        .iter()
        .filter(|v| match &app.trends().scope {
            None => v.scope == crate::domain::TariffScope::Global,
            Some(room) => v.applies_to("", room) || v.scope == crate::domain::TariffScope::Global,
        })
        .map(|v| (local_date(v.effective_from, tz), v.cost_per_kwh))
        .filter(|(d, _)| *d >= from && *d <= to)
        .collect();
    out.sort_by_key(|(d, _)| *d);
    out.dedup_by_key(|(d, _)| *d);
    out
}

fn daily_bars(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let t = app.theme();
    let today = app.campus().totals.day();
    let inner_w = area.width.saturating_sub(2);
    // Two columns a bar and one between: as many days as fit, at most 30.
    let n = ((inner_w + 1) / 3).clamp(1, super::super::trends::DAYS_SHOWN as u16) as u64;
    let from = first_bar_day(today, n);
    let scope = app.trends().scope.as_deref();
    let mut values: Vec<f64> = match &app.trends().data {
        Some(d) => d
            .book
            .series(from, today.pred_opt().unwrap_or(today), scope)
            .iter()
            .map(|a| a.cost)
            .collect(),
        None => vec![0.0; days_in(from, today).saturating_sub(1)],
    };
    let today_cost = today_totals(app).today.cost;
    values.push(today_cost);
    let max = values.iter().copied().fold(0.0, f64::max);
    let title = Line::from(vec![
        Span::styled(
            format!(
                " Daily {} {} last {n} days {} {} ",
                s.rupee,
                s.sep,
                s.sep,
                scope_name(app)
            ),
            t.header,
        ),
        Span::styled(
            match &app.trends().data {
                Some(d) if scope.is_some() && !d.book.has_rooms(d.from, d.to) => {
                    format!("reading the classrooms' days {} ", s.pending)
                }
                _ => format!("tallest {}{} ", s.rupee, money_whole(max)),
            },
            t.dim,
        ),
    ]);
    let block = bordered(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 3 {
        return;
    }
    let changes: Vec<NaiveDate> = tariff_changes(app, from, today)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let bars: Vec<Bar> = from
        .iter_days()
        .zip(values.iter())
        .map(|(d, v)| {
            let style = if d == today {
                t.accent
            } else if changes.contains(&d) {
                t.warn
            } else {
                t.ok
            };
            Bar::default()
                .value(v.max(0.0).round() as u64)
                .text_value(String::new())
                .label(Line::from(format!("{:02}", d.day())))
                .style(style)
        })
        .collect();
    let chart_area = Rect {
        height: inner.height - 1,
        ..inner
    };
    let mut chart = BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .bar_width(2)
        .bar_gap(1)
        .label_style(t.dim);
    if ascii(app) {
        chart = chart.bar_set(ASCII_BARS);
    }
    frame.render_widget(chart, chart_area);
    // The marks under the days: tariff changes, and today (so far).
    let mut marks = String::new();
    for d in from.iter_days().take(values.len()) {
        let m = if changes.contains(&d) {
            "^^"
        } else if d == today {
            "**"
        } else {
            "  "
        };
        marks.push_str(m);
        marks.push(' ');
    }
    let legend = "  ^ tariff change  * today so far";
    let line = Line::from(vec![
        Span::styled(marks.trim_end().to_string(), t.accent),
        Span::styled(legend, t.dim),
    ]);
    frame.render_widget(
        Paragraph::new(line),
        Rect {
            y: inner.y + inner.height - 1,
            height: 1,
            ..inner
        },
    );
}

/// Today's load of the scope: the ledger's closed rows read with the trends, and what is on now.
fn today_curve(app: &App) -> LoadCurve {
    let tz = app.settings().tz;
    let day = app.campus().totals.day();
    let mut curve = LoadCurve::new(day, tz);
    let read_today = app.trends().data.as_ref().is_some_and(|d| d.day == day);
    if let Some(ledger) = app.trends().ledger.as_ref().filter(|_| read_today) {
        for (room, c) in &ledger.curves {
            if app.trends().scope.as_ref().is_some_and(|s| s != room) {
                continue;
            }
            for (acc, k) in curve.kwh.iter_mut().zip(&c.kwh) {
                *acc += k;
            }
        }
    }
    let now = app.clock().now;
    for (ri, room) in app.campus().rooms.iter().enumerate() {
        let name = app.campus().ledger_classroom(ri);
        if app.trends().scope.as_deref().is_some_and(|s| s != name) {
            continue;
        }
        for &bi in &room.boards {
            for sw in app.campus().boards[bi].switches.iter().filter(|s| s.on) {
                if let Some(since) = sw.since {
                    curve.add_power(since.max(curve.start), now, sw.watts);
                }
            }
        }
    }
    curve
}

fn load_curve(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let t = app.theme();
    let curve = today_curve(app);
    let inner_w = area.width.saturating_sub(2) as usize;
    // One slot a column where they fit; else 30-minute or hourly bars.
    let by = [1usize, 2, 4, 8]
        .into_iter()
        .find(|b| curve.kwh.len().div_ceil(*b) <= inner_w)
        .unwrap_or(8);
    let minutes = crate::domain::trends::SLOT_MINUTES as usize * by;
    let merged = curve.merged(by);
    let per_hour = 60.0 / minutes as f64;
    let peak = merged.iter().map(|(_, k)| k * per_hour).fold(0.0, f64::max);
    let rule = &app.settings().waste;
    let title = Line::from(vec![
        Span::styled(
            format!(
                " Today's load {} kW per {minutes} min {} {} ",
                s.sep,
                s.sep,
                scope_name(app)
            ),
            t.header,
        ),
        Span::styled(
            if app.trends().ledger.is_none() && app.trends().loading {
                format!("reading today's ledger {} ", s.pending)
            } else {
                format!(
                    "peak {:.2} kW {} {} kWh {} shaded: outside campus hours ",
                    peak,
                    s.sep,
                    kwh(curve.total() * 1000.0),
                    s.sep
                )
            },
            t.dim,
        ),
    ]);
    let block = bordered(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height < 2 {
        return;
    }
    let bars: Vec<Bar> = merged
        .iter()
        .map(|(start, k)| {
            let style = if rule.open_at(*start) { t.ok } else { t.warn };
            Bar::default()
                .value((k * per_hour * 1000.0).round() as u64)
                .text_value(String::new())
                .style(style)
        })
        .collect();
    let mut chart = BarChart::default()
        .data(BarGroup::default().bars(&bars))
        .bar_width(1)
        .bar_gap(0);
    if ascii(app) {
        chart = chart.bar_set(ASCII_BARS);
    }
    frame.render_widget(
        chart,
        Rect {
            height: inner.height - 1,
            ..inner
        },
    );
    // The shading row: closed hours marked, with the hour every 6 hours.
    let shade = if ascii(app) { '.' } else { '░' };
    let mut row: Vec<char> = merged
        .iter()
        .map(|(start, _)| if rule.open_at(*start) { ' ' } else { shade })
        .collect();
    for (i, (start, _)) in merged.iter().enumerate() {
        let local = start.with_timezone(&app.settings().tz);
        if local.minute() == 0 && local.hour() % 6 == 0 {
            for (j, c) in format!("{:02}", local.hour()).chars().enumerate() {
                if let Some(slot) = row.get_mut(i + j) {
                    *slot = c;
                }
            }
        }
    }
    frame.render_widget(
        Paragraph::new(Line::styled(row.into_iter().collect::<String>(), t.dim)),
        Rect {
            y: inner.y + inner.height - 1,
            height: 1,
            ..inner
        },
    );
}

fn tops(frame: &mut Frame, app: &App, area: Rect) {
    let sel = app.list_sel();
    let s = app.symbols();
    let t = app.theme();
    let halves = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(area);
    let (cost, waste) = app.trends_tops();
    let rows_fit = area.height.saturating_sub(3) as usize;
    let name = |n: &str| {
        if n.is_empty() {
            super::super::model::UNASSIGNED.to_string()
        } else {
            n.to_string()
        }
    };
    let table =
        |items: &[(String, f64)], offset: usize, selected_style: Style| -> Vec<Row<'static>> {
            let first = scroll_offset(sel.saturating_sub(offset).min(items.len()), rows_fit);
            items
                .iter()
                .enumerate()
                .skip(if sel >= offset { first } else { 0 })
                .take(rows_fit)
                .map(|(i, (n, v))| {
                    let here = sel == offset + i;
                    let marker = if here { s.selected } else { " " };
                    let row = Row::new(vec![
                        format!("{marker}{:>2} {}", i + 1, fit(&name(n), 14)),
                        format!("{:>10}", money_whole(*v)),
                    ]);
                    if here {
                        row.style(selected_style)
                    } else {
                        row
                    }
                })
                .collect()
        };
    let widths = [Constraint::Min(18), Constraint::Length(11)];
    let cost_title = Line::from(Span::styled(
        format!(" Top rooms by {} this month ", s.rupee),
        t.header,
    ));
    frame.render_widget(
        Table::new(table(&cost, 0, t.selected), widths)
            .header(Row::new(vec!["    Room".to_string(), format!("{:>10}", s.rupee)]).style(t.dim))
            .block(bordered(app, cost_title)),
        halves[0],
    );
    let waste_title = Line::from(Span::styled(
        format!(
            " Top rooms by waste {} this month (outside hours) ",
            s.rupee
        ),
        t.warn,
    ));
    let waste_rows = table(&waste, cost.len(), t.selected);
    let empty = waste_rows.is_empty();
    frame.render_widget(
        Table::new(waste_rows, widths)
            .header(Row::new(vec!["    Room".to_string(), format!("{:>10}", s.rupee)]).style(t.dim))
            .block(bordered(app, waste_title)),
        halves[1],
    );
    if empty {
        let msg = if app.trends().ledger.is_some() {
            format!(
                "  {} nothing used outside campus hours this month",
                s.confirmed
            )
        } else if app.trends().loading {
            format!("  reading this month's ledger {}", s.pending)
        } else {
            format!("  {}", s.dash)
        };
        frame.render_widget(
            Paragraph::new(Line::styled(msg, t.dim)),
            Rect {
                x: halves[1].x + 1,
                y: halves[1].y + 2,
                width: halves[1].width.saturating_sub(2),
                height: 1,
            },
        );
    }
}
