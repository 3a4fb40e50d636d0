//! Two header lines: campus, clock, connections and tariff; then the campus's figures now.

use super::super::app::App;
use super::super::event::LinkState;
use super::super::widgets::format::{clock, kwh, money, money_whole, watts};
use chrono::{Datelike, TimeZone};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let s = &app.symbols;
    let t = &app.theme;
    let narrow = area.width < 100;
    let gap = if narrow { "  " } else { "   " };
    let link = |name: &str, state: &LinkState| -> Vec<Span<'static>> {
        let (sym, text, style) = match state {
            LinkState::Up(detail) => (s.online, detail.clone(), t.ok),
            LinkState::Connecting => (s.pending, "connecting".to_string(), t.pending),
            LinkState::Down(_) => (s.failed, "down".to_string(), t.error),
        };
        vec![
            Span::styled(format!("{gap}{name} "), t.header),
            Span::styled(
                format!("{sym} {text}"),
                style.bg(t.header.bg.unwrap_or_default()),
            ),
        ]
    };
    let rate = app.campus.global_rate(app.clock.now);
    let mut top = vec![
        Span::styled(
            format!(" AutoVolt {} {}", s.sep, app.settings.campus),
            t.header,
        ),
        Span::styled(
            if narrow {
                format!(
                    "  {}",
                    super::super::widgets::format::hhmm(app.clock.now, app.settings.tz)
                )
            } else {
                format!("   {}", clock(app.clock.now, app.settings.tz))
            },
            t.header,
        ),
    ];
    top.extend(link("MQTT", &app.links.mqtt));
    let feed = match (&app.links.db, &app.links.feed) {
        (LinkState::Up(_), f) => f.clone(),
        (other, _) => other.clone(),
    };
    top.extend(link("DB", &feed));
    top.push(Span::styled(
        format!("{gap}{}{rate:.2}/kWh", s.rupee),
        t.header,
    ));
    if app.settings.read_only {
        top.push(Span::styled(format!("{gap}READ-ONLY"), t.header));
    }
    let used: usize = top.iter().map(|s| s.content.chars().count()).sum();
    top.push(Span::styled(
        " ".repeat((area.width as usize).saturating_sub(used)),
        t.header,
    ));

    let mut power = 0.0;
    let mut today_wh = 0.0;
    let mut today_cost = 0.0;
    for r in 0..app.campus.rooms.len() {
        let st = app.campus.room_stats(r, &app.clock);
        power += st.power_w;
        today_wh += st.today_wh;
        today_cost += st.today_cost;
    }
    let month = app.campus.month_before_today_inr + today_cost;
    let waste: f64 = app.waste_rows().iter().map(|w| w.inr_per_hour).sum();
    let r = s.rupee;
    let second = Line::from(vec![
        Span::styled(
            format!(
                " {} {}",
                if narrow { "Now" } else { "Power now" },
                watts(power)
            ),
            t.text,
        ),
        Span::styled(
            format!("{gap}Today {} kWh {r}{}", kwh(today_wh), money(today_cost)),
            t.text,
        ),
        Span::styled(
            format!(
                "{gap}Month {r}{} {} {r}{}{}",
                money_whole(month),
                s.arrow,
                money_whole(projection(app, month)),
                if narrow { "" } else { " projected" }
            ),
            t.text,
        ),
        Span::styled(
            format!("{gap}Waste {r}{}/h", money_whole(waste)),
            if waste > 0.0 { t.warn } else { t.text },
        ),
    ]);
    frame.render_widget(Paragraph::new(vec![Line::from(top), second]), area);
}

/// Month-to-date cost scaled to the whole month by the fraction of it elapsed.
fn projection(app: &App, month_to_date: f64) -> f64 {
    let tz = app.settings.tz;
    let local = tz.from_utc_datetime(&app.clock.now.naive_utc());
    let first = local.date_naive().with_day(1).unwrap_or(local.date_naive());
    let next = if first.month() == 12 {
        chrono::NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .unwrap_or(first);
    let days = (next - first).num_days().max(1) as f64;
    let elapsed = (local.naive_local() - first.and_time(chrono::NaiveTime::MIN)).num_seconds()
        as f64
        / 86_400.0;
    if elapsed <= 0.0 {
        month_to_date
    } else {
        month_to_date / elapsed * days
    }
}
