//! Two header lines: campus, clock, connections and tariff; then the campus's figures now.

use super::super::app::App;
use super::super::event::LinkState;
use crate::format::{clock, kwh, money, money_whole, watts};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let t = app.theme();
    let narrow = area.width < 100;
    let gap = if narrow { "  " } else { "   " };
    let link = |name: &str, state: &LinkState| -> Vec<Span<'static>> {
        let (sym, text, style) = match state {
            LinkState::Up(detail) => (s.online, detail.clone(), t.ok),
            LinkState::Connecting => (s.pending, "connecting".to_string(), t.pending),
            LinkState::Down(_) => (s.failed, "down".to_string(), t.error),
            LinkState::Unusable(_) => (s.failed, "unusable".to_string(), t.error),
        };
        vec![
            Span::styled(format!("{gap}{name} "), t.header),
            Span::styled(
                format!("{sym} {text}"),
                style.bg(t.header.bg.unwrap_or_default()),
            ),
        ]
    };
    let rate = app.campus().global_rate(app.clock().now);
    let mut top = vec![
        Span::styled(
            format!(" AutoVolt {} {}", s.sep, app.settings().campus),
            t.header,
        ),
        Span::styled(
            if narrow {
                format!(
                    "  {}",
                    crate::format::hhmm(app.clock().now, app.settings().tz)
                )
            } else {
                format!("   {}", clock(app.clock().now, app.settings().tz))
            },
            t.header,
        ),
    ];
    top.extend(link("MQTT", &app.links().mqtt));
    let feed = match (&app.links().db, &app.links().feed) {
        (LinkState::Up(_), f) => f.clone(),
        (other, _) => other.clone(),
    };
    top.extend(link("DB", &feed));
    top.push(Span::styled(
        format!("{gap}{}{rate:.2}/kWh", s.rupee),
        t.header,
    ));
    if app.settings().read_only {
        top.push(Span::styled(format!("{gap}READ-ONLY"), t.header));
    }
    let used: usize = top.iter().map(|s| s.content.chars().count()).sum();
    top.push(Span::styled(
        " ".repeat((area.width as usize).saturating_sub(used)),
        t.header,
    ));

    let power: f64 = (0..app.campus().rooms.len())
        .map(|r| app.campus().room_stats(r, app.clock()).power_w)
        .sum();
    let totals = &app.campus().totals;
    let campus = totals.campus();
    let waste: f64 = app.waste_rows().iter().map(|w| w.inr_per_hour).sum();
    let r = s.rupee;
    let today = if totals.is_today_loaded() {
        format!(
            "{gap}Today {} kWh {r}{}",
            kwh(campus.today.kwh * 1000.0),
            money(campus.today.cost)
        )
    } else {
        format!("{gap}Today loading{}", s.pending)
    };
    let month = match (totals.is_history_loaded(), campus.month_projection) {
        (false, _) => format!("{gap}Month loading{}", s.pending),
        (true, Some(p)) => format!(
            "{gap}Month {r}{} {} {r}{}{}",
            money_whole(campus.month_to_date.cost),
            s.arrow,
            money_whole(p.cost),
            if narrow { "" } else { " projected" }
        ),
        (true, None) => format!(
            "{gap}Month {r}{}{}",
            money_whole(campus.month_to_date.cost),
            if narrow {
                ""
            } else {
                " (projected after a full day)"
            }
        ),
    };
    let second = Line::from(vec![
        Span::styled(
            format!(
                " {} {}",
                if narrow { "Now" } else { "Power now" },
                watts(power)
            ),
            t.text,
        ),
        Span::styled(today, t.text),
        Span::styled(month, t.text),
        Span::styled(
            format!("{gap}Waste {r}{}/h", money_whole(waste)),
            if waste > 0.0 { t.warn } else { t.text },
        ),
    ]);
    frame.render_widget(Paragraph::new(vec![Line::from(top), second]), area);
}
