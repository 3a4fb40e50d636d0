//! Health: database, broker, collector and boards, as the on-call check prints it.

use super::super::app::App;
use super::super::event::LinkState;
use super::super::event::LARGEST_COLLECTIONS;
use super::super::model::Presence;
use super::bordered;
use crate::format::{age, fit};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let s = app.symbols();
    let t = app.theme();
    let h = app.db_health();
    let dot = |state: &LinkState| match state {
        LinkState::Up(_) => Span::styled(format!("{} ", s.online), t.ok),
        LinkState::Connecting => Span::styled(format!("{} ", s.pending), t.pending),
        LinkState::Down(_) | LinkState::Unusable(_) => {
            Span::styled(format!("{} ", s.failed), t.error)
        }
    };
    let label = |k: &str| Span::styled(format!(" {k:<10}"), t.accent);
    let mut lines = Vec::new();

    let latency = h
        .latency_ms
        .map(|l| format!("{l:.1} ms"))
        .unwrap_or_else(|| s.dash.into());
    let feed = match &app.links().feed {
        LinkState::Up(mode) => format!("change feed: {mode}"),
        LinkState::Connecting => "change feed: starting".into(),
        LinkState::Down(e) | LinkState::Unusable(e) => format!("change feed: down ({e})"),
    };
    let schema = h
        .schema_version
        .map(|v| format!(" {} schema v{v}", s.sep))
        .unwrap_or_default();
    let server = if h.server.is_empty() {
        "server unknown".to_string()
    } else {
        h.server.clone()
    };
    let mut db = vec![
        label("MongoDB"),
        dot(&app.links().db),
        Span::styled(
            format!("{latency}   {server} {} {feed}{schema}", s.sep),
            t.text,
        ),
    ];
    if let LinkState::Down(e) | LinkState::Unusable(e) = &app.links().db {
        db.push(Span::styled(format!("   {e}"), t.error));
    }
    lines.push(Line::from(db));
    if !h.capabilities.is_empty() {
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(13)),
            Span::styled(h.capabilities.clone(), t.dim),
        ]));
    }

    let mqtt_state = match &app.links().mqtt {
        LinkState::Up(_) => format!("connected {}", app.settings().mqtt_url),
        LinkState::Connecting => format!("connecting to {}", app.settings().mqtt_url),
        LinkState::Down(e) | LinkState::Unusable(e) => format!("down: {e}"),
    };
    lines.push(Line::from(vec![
        label("MQTT"),
        dot(&app.links().mqtt),
        Span::styled(
            format!(
                "{mqtt_state} {d} {} msg/min {d} {} rejected",
                app.msgs_per_minute(),
                app.rejected(),
                d = s.sep
            ),
            t.text,
        ),
    ]));

    let lag = h
        .newest_telemetry
        .map(|n| format!("lag {}", age(app.clock().now, n)))
        .unwrap_or_else(|| "no telemetry yet".into());
    let agg = h.last_aggregation.clone().unwrap_or_else(|| "never".into());
    let collector_ok = h
        .newest_telemetry
        .is_some_and(|n| (app.clock().now - n).num_seconds() < 120);
    lines.push(Line::from(vec![
        label("Collector"),
        if collector_ok {
            Span::styled(format!("{} ", s.online), t.ok)
        } else {
            Span::styled(format!("{} ", s.warn), t.warn)
        },
        Span::styled(format!("{lag} {} last aggregation {agg}", s.sep), t.text),
    ]));

    let totals = &app.campus().totals;
    let today = if totals.is_today_loaded() {
        match (h.reconcile_took, h.reconcile_every) {
            (Some(took), Some(every)) => format!(
                "today's totals live, reconciled with the ledger every {} (last took {:.1} s)",
                crate::format::duration(every),
                took.as_secs_f64()
            ),
            _ => "today's totals live".to_string(),
        }
    } else {
        format!("loading today's totals{}", s.pending)
    };
    let unreadable = if h.unreadable > 0 {
        format!(
            " {} skipped: {}",
            s.sep,
            h.unreadable_reason.as_deref().unwrap_or("")
        )
    } else {
        String::new()
    };
    let failed: i64 = h
        .dead_letters
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with("failed/"))
        .map(|(_, n)| n)
        .sum();
    let letters: i64 = h.dead_letters.iter().flatten().map(|(_, n)| n).sum();
    let unreadable = if letters > 0 {
        let by: Vec<String> = h
            .dead_letters
            .iter()
            .flatten()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        format!(
            "{unreadable} {} {letters} dead letter(s) ({}){}",
            s.sep,
            by.join(", "),
            if failed > 0 {
                ": not in the books until replayed (autovolt rejected list)"
            } else {
                ""
            }
        )
    } else {
        unreadable
    };
    lines.push(Line::from(vec![
        label("Books"),
        if totals.is_today_loaded() && h.unreadable == 0 && failed == 0 {
            Span::styled(format!("{} ", s.online), t.ok)
        } else if h.unreadable > 0 || failed > 0 {
            Span::styled(format!("{} ", s.warn), t.warn)
        } else {
            Span::styled(format!("{} ", s.pending), t.pending)
        },
        Span::styled(format!("{today}{unreadable}"), t.text),
    ]));

    let mut offline = Vec::new();
    let mut online = 0;
    for b in &app.campus().boards {
        match app.clock().presence(b.last_seen) {
            Presence::Offline => offline.push(b),
            _ => online += 1,
        }
    }
    let total = app.campus().boards.len();
    let list: Vec<String> = offline
        .iter()
        .take(6)
        .map(|b| match b.last_seen {
            Some(ts) => format!("{} {}", b.name, age(app.clock().now, ts)),
            None => format!("{} never", b.name),
        })
        .collect();
    let more = if offline.len() > list.len() {
        format!(", +{}", offline.len() - list.len())
    } else {
        String::new()
    };
    let boards_dot = if offline.is_empty() {
        Span::styled(format!("{} ", s.online), t.ok)
    } else {
        Span::styled(format!("{} ", s.warn), t.warn)
    };
    lines.push(Line::from(vec![
        label("Boards"),
        boards_dot,
        Span::styled(
            format!(
                "{online}/{total} online {d} {} offline{} {d} {} unregistered MAC(s) seen",
                offline.len(),
                if list.is_empty() {
                    String::new()
                } else {
                    format!(" ({}{more})", list.join(", "))
                },
                app.campus().unregistered.len(),
                d = s.sep
            ),
            t.text,
        ),
    ]));
    if !app.campus().unregistered.is_empty() {
        let macs: Vec<String> = app
            .campus()
            .unregistered
            .iter()
            .rev()
            .take(4)
            .map(|m| m.to_string())
            .collect();
        lines.push(Line::from(vec![
            Span::raw(" ".repeat(13)),
            Span::styled(format!("unregistered: {}", macs.join(", ")), t.dim),
        ]));
    }
    lines.push(Line::raw(""));
    let sizes = app.sizes();
    let measuring = sizes.loading.map(|since| {
        format!(
            "measuring every collection{} {}",
            s.pending,
            age(app.clock().now, since)
        )
    });
    let failed = sizes
        .error
        .as_ref()
        .map(|e| format!("not measured: {e}; measured again in a while"));
    match &h.largest {
        None => lines.push(Line::from(vec![
            label("Storage"),
            Span::styled(
                measuring
                    .or(failed)
                    .unwrap_or_else(|| "measured while this view is open".to_string()),
                t.dim,
            ),
        ])),
        Some(largest) => {
            let sized = largest.iter().any(|c| c.storage_bytes.is_some());
            let when = match sizes.measured {
                Some((at, took)) => format!(
                    ", measured {} ago in {:.1} s",
                    age(app.clock().now, at),
                    took.as_secs_f64()
                ),
                None => String::new(),
            };
            let mut title = vec![
                label("Storage"),
                Span::styled(
                    if sized {
                        format!("largest collections{when}")
                    } else {
                        format!(
                            "largest collections{when} (counts only: the server gives no sizes)"
                        )
                    },
                    t.text,
                ),
            ];
            if let Some(m) = measuring.or(failed) {
                title.push(Span::styled(format!(" · {m}"), t.dim));
            }
            lines.push(Line::from(title));
            lines.push(Line::from(Span::styled(
                format!(
                    "{:13}{:<26} {:>12} {:>10} {:>11}",
                    "", "collection", "documents", "storage", "index size"
                ),
                t.dim,
            )));
            use crate::format::{grouped, size};
            for c in largest.iter().take(LARGEST_COLLECTIONS) {
                lines.push(Line::from(Span::styled(
                    format!(
                        "{:13}{:<26} {:>12} {:>10} {:>11}",
                        "",
                        fit(&c.name, 26),
                        grouped(c.documents),
                        size(c.storage_bytes),
                        size(c.index_bytes)
                    ),
                    t.text,
                )));
            }
            let shown = largest.iter().take(LARGEST_COLLECTIONS);
            if let Some(why) = shown
                .filter_map(|c| c.sizes_unknown_because.as_deref())
                .next()
            {
                lines.push(Line::from(Span::styled(
                    format!("{:13}unknown sizes: {why}", ""),
                    t.dim,
                )));
            }
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(bordered(
                app,
                Line::from(Span::styled(" Health ", t.accent)),
            )),
        area,
    );
}
