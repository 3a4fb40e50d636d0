//! Opening the trends view over 30 days of a 1,000-board campus (30,000 daily rollups) on the
//! FerretDB the harness starts: time from the key to the first frame that shows the history,
//! next to the time of reading the same rollups bare (`Store::daily_aggregates`, every field
//! decoded) in the same run.
//!
//! The campus is the sample's (250 classrooms × 4 boards × 6 switches); the rollups cover the 30
//! days before its day, and its day has AUTOVOLT_BENCH_TODAY_ROWS ledger rows (default 4000) for
//! the load curve. The rollups are written as another program would, then summed into campus
//! days the way `migrate up` does on an existing database (timed once); the aggregation writes a
//! day's summary with its rollups. The first frame needs the summaries of the days shown; today's
//! load curve and the month's waste (one pass over the month's ledger rows) follow it and are
//! timed on their own. Runs: AUTOVOLT_BENCH_RUNS (5).
//! Run: `cargo bench --bench trends`.

use autovolt::domain::interval::local_date;
use autovolt::domain::{
    CostCalculation, DailyAggregate, LedgerRow, Quality, Role, SwitchBreakdown, SwitchType,
};
use autovolt::servers;
use autovolt::store::{collections, AggregateQuery, Store};
use autovolt::tui::event::{Event, TrendsUpdate};
use autovolt::tui::sample;
use autovolt::tui::theme::UNICODE;
use autovolt::tui::{trends, views};
use chrono::{Days, Duration as Span};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

mod common;
use common::{env_num, percentile};

const ROOMS: usize = 250;
const BOARDS: usize = 4;
const SWITCHES: usize = 6;
const DAYS: u64 = 30;
const IST: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

/// The sample campus's rollups for the 30 days before its day, and ledger rows on its day.
async fn seed(store: &Store, today_rows: usize) -> usize {
    let snap = sample::snapshot(ROOMS, BOARDS, SWITCHES);
    let now = sample::now();
    let day = local_date(now, IST);
    let rooms: std::collections::HashMap<_, _> = snap
        .classrooms
        .iter()
        .filter_map(|c| Some((c.id?, c.name.clone())))
        .collect();
    let mut batch = Vec::with_capacity(1000);
    let mut written = 0;
    for d in 1..=DAYS {
        let date = day - Days::new(d);
        for (i, dev) in snap.devices.iter().enumerate() {
            let kwh = 2.0 + (i % 13) as f64 * 0.7 + (d % 5) as f64;
            batch.push(DailyAggregate {
                id: None,
                date_string: date.format("%Y-%m-%d").to_string(),
                classroom: dev
                    .classroom
                    .and_then(|c| rooms.get(&c).cloned())
                    .unwrap_or_default(),
                device_id: dev.id.map(|i| i.to_hex()).unwrap_or_default(),
                esp32_name: dev.name.clone(),
                total_kwh: kwh,
                on_time_sec: 3600.0 * kwh,
                cost_at_calc_time: kwh * 7.5,
                cost_per_kwh_used: 7.5,
                switch_count: SWITCHES as i32,
                switch_breakdown: dev
                    .switches
                    .iter()
                    .map(|s| SwitchBreakdown {
                        switch_id: s.switch_id.clone(),
                        switch_name: s.name.clone(),
                        energy_kwh: kwh / SWITCHES as f64,
                        on_time_sec: 600.0 * kwh,
                        cost: kwh / SWITCHES as f64 * 7.5,
                    })
                    .collect(),
                quality_score: 100.0,
                created_at: Some(now),
                updated_at: Some(now),
            });
            if batch.len() == 1000 {
                written += batch.len();
                store
                    .collection::<DailyAggregate>(collections::DAILY)
                    .insert_many(std::mem::take(&mut batch))
                    .await
                    .unwrap();
            }
        }
    }
    if !batch.is_empty() {
        written += batch.len();
        store
            .collection::<DailyAggregate>(collections::DAILY)
            .insert_many(batch)
            .await
            .unwrap();
    }
    let midnight = autovolt::domain::interval::local_midnight(day, IST);
    let span_ms = (now - midnight).num_milliseconds();
    let mut rows = Vec::with_capacity(1000);
    for i in 0..today_rows {
        let dev = &snap.devices[i % snap.devices.len()];
        let s = &dev.switches[(i / snap.devices.len()) % dev.switches.len()];
        let at = midnight + Span::milliseconds(span_ms * i as i64 / today_rows as i64);
        let secs = 300.0 + (i % 20) as f64 * 60.0;
        let wh = 75.0 * secs / 3600.0;
        rows.push(LedgerRow {
            id: None,
            device_id: dev.id.map(|i| i.to_hex()).unwrap_or_default(),
            esp32_name: dev.name.clone(),
            classroom: dev
                .classroom
                .and_then(|c| rooms.get(&c).cloned())
                .unwrap_or_default(),
            switch_id: s.switch_id.clone(),
            switch_name: s.name.clone(),
            switch_type: SwitchType::Fan,
            start_ts: at,
            end_ts: at + Span::milliseconds((secs * 1000.0) as i64),
            switch_on_duration_seconds: secs,
            delta_wh: wh,
            power_w: 75.0,
            cost_calculation: Some(CostCalculation {
                cost_per_kwh: 7.5,
                cost_inr: wh / 1000.0 * 7.5,
            }),
            quality: Quality::default(),
            created_at: Some(at),
            updated_at: Some(at),
        });
        if rows.len() == 1000 || i + 1 == today_rows {
            store
                .collection::<LedgerRow>(collections::LEDGER)
                .insert_many(std::mem::take(&mut rows))
                .ordered(false)
                .await
                .unwrap();
        }
    }
    written
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn main() {
    let runs = env_num("AUTOVOLT_BENCH_RUNS", 5) as usize;
    let today_rows = env_num("AUTOVOLT_BENCH_TODAY_ROWS", 4000) as usize;
    let dir = servers::temp_dir("autovolt-bench-trends").unwrap();
    let ferret = servers::start_ferretdb(&dir, true).expect("FerretDB (scripts/setup-servers.sh)");
    let uri = format!("mongodb://127.0.0.1:{}/bench_trends", ferret.port());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::connect(&uri, Duration::from_secs(20)).await.unwrap();
        store.migrate_up(None, false).await.unwrap();
        let started = Instant::now();
        let rollups = seed(&store, today_rows).await;
        println!(
            "seeded {rollups} daily rollups ({} boards × {DAYS} days) and {today_rows} ledger rows today in {:.1} s on {}",
            ROOMS * BOARDS,
            started.elapsed().as_secs_f64(),
            store.server()
        );
        let t = Instant::now();
        let (days, read) = store.summarize_all_days().await.unwrap();
        println!(
            "summed {read} rollups into {days} campus days in {:.1} s (once, as `migrate up` does)",
            t.elapsed().as_secs_f64()
        );
        let now = sample::now();
        let day = local_date(now, IST);
        let (from, to) = trends::days_needed(day);
        let rule = sample::settings().waste;
        let (mut bare, mut first, mut read, mut drawn, mut rooms, mut waste) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for run in 0..runs {
            // The first frame's read alone.
            let t = Instant::now();
            let alone = trends::read(&store, day).await.unwrap();
            read.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(alone.book.is_covered(day - Days::new(1)));
            // The view: the key, the read the view asks for, the first frame that shows it.
            let mut app = sample::app(ROOMS, BOARDS, SWITCHES, Role::User, UNICODE);
            app.update(Event::Resize(120, 40));
            let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
            let (tx, mut rx) = mpsc::channel(16);
            let t = Instant::now();
            let fx = app.update(Event::Key(KeyEvent::new(
                KeyCode::Char('T'),
                KeyModifiers::NONE,
            )));
            assert_eq!(fx.len(), 1, "the view asks for its history");
            let s2 = store.clone();
            let r2 = rule.clone();
            let loader = tokio::spawn(async move { trends::load(&s2, now, IST, &r2, &tx).await });
            let Some(Event::Trends(loaded)) = rx.recv().await else {
                panic!("no history");
            };
            assert!(matches!(loaded, TrendsUpdate::Loaded(_)), "{loaded:?}");
            let d = Instant::now();
            app.update(Event::Trends(loaded));
            term.draw(|f| views::render(f, &app)).unwrap();
            drawn.push(d.elapsed().as_secs_f64() * 1000.0);
            let shown = t.elapsed();
            first.push(shown.as_secs_f64() * 1000.0);
            let Some(Event::Trends(c)) = rx.recv().await else {
                panic!("no classrooms");
            };
            assert!(matches!(c, TrendsUpdate::Classrooms(_)), "{c:?}");
            rooms.push((t.elapsed() - shown).as_secs_f64() * 1000.0);
            app.update(Event::Trends(c));
            let rooms_in = t.elapsed();
            let Some(Event::Trends(w)) = rx.recv().await else {
                panic!("no ledger figures");
            };
            assert!(matches!(w, TrendsUpdate::Ledger(_)), "{w:?}");
            waste.push((t.elapsed() - rooms_in).as_secs_f64() * 1000.0);
            app.update(Event::Trends(w));
            loader.await.unwrap();
            // Baseline: the same rollups, read bare (after the view, so that what the bare read
            // leaves the server doing does not slow the view).
            let t = Instant::now();
            let all = store
                .daily_aggregates(&AggregateQuery {
                    from: Some(from.to_string()),
                    to: Some(to.to_string()),
                    ..AggregateQuery::default()
                })
                .await
                .unwrap();
            bare.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(all.len(), rollups);
            if run == 0 {
                let Some(data) = app.trends().data.as_ref() else {
                    panic!("no history loaded");
                };
                // The history shown is the rollups' own, day by day, for the campus and for
                // each classroom.
                let mut bare_days = std::collections::BTreeMap::<(String, String), (f64, f64)>::new();
                for a in &all {
                    for key in [(a.date_string.clone(), String::new()), (a.date_string.clone(), a.classroom.clone())] {
                        let e = bare_days.entry(key).or_default();
                        e.0 += a.total_kwh;
                        e.1 += a.cost_at_calc_time;
                    }
                }
                for ((date, room), (kwh, cost)) in &bare_days {
                    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
                    let scope = (!room.is_empty()).then_some(room.as_str());
                    let shown = data.book.total(d, d, scope);
                    assert!(
                        (shown.kwh - kwh).abs() < 1e-6 && (shown.cost - cost).abs() < 1e-6,
                        "{date} {room}: {shown:?} against {kwh} kWh, ₹{cost}"
                    );
                }
                let text: String = term
                    .backend()
                    .buffer()
                    .content()
                    .iter()
                    .map(|c| c.symbol())
                    .collect();
                assert!(text.contains("Daily"), "the frame shows the bars");
            }
        }
        println!(
            "trends view, first frame with 30 days of history: median {:.0} ms over {runs} runs (target ≤ 300 ms)",
            median(first.clone())
        );
        println!(
            "  the same read alone (trends::read: the campus summaries of {} days): median {:.0} ms; the update and draw of the first frame: median {:.0} ms",
            (to - from).num_days() + 1,
            median(read.clone()),
            median(drawn.clone())
        );
        println!(
            "  baseline, the same {rollups} rollups read bare (Store::daily_aggregates): median {:.0} ms",
            median(bare.clone())
        );
        println!(
            "  then the classrooms' days (for a classroom's bars): median {:.0} ms more",
            median(rooms.clone())
        );
        println!(
            "  then today's load curve and the month's waste (one pass over the month's ledger rows: here today's {today_rows}): median {:.0} ms more",
            median(waste.clone())
        );
        println!(
            "  runs (first frame / bare / classrooms / ledger figures, ms): {:?} / {:?} / {:?} / {:?}",
            first.iter().map(|v| v.round()).collect::<Vec<_>>(),
            bare.iter().map(|v| v.round()).collect::<Vec<_>>(),
            rooms.iter().map(|v| v.round()).collect::<Vec<_>>(),
            waste.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
        // A year of summaries stored (older days, each with the campus's 250 classrooms): what
        // the same reads cost once the collections hold a year. On FerretDB a read of either
        // collection goes through every document of it; on MongoDB it is an `_id` index range.
        let older = 365 - DAYS;
        let template = store.campus_days(day - Days::new(1), day - Days::new(1)).await.unwrap();
        let rooms = store.campus_day_classrooms(&template).await.unwrap();
        let classrooms = rooms.into_values().next().unwrap_or_default();
        for d in 1..=older {
            let date = day - Days::new(DAYS + d);
            store
                .write_campus_day(&autovolt::domain::trends::CampusDay {
                    date,
                    rollups: (ROOMS * BOARDS) as u32,
                    classrooms: classrooms.clone(),
                })
                .await
                .unwrap();
        }
        let (mut year_read, mut year_rooms) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t = Instant::now();
            let mut data = trends::read(&store, day).await.unwrap();
            year_read.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            store.add_classrooms(&mut data.book).await.unwrap();
            year_rooms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "with a year of summaries stored ({} days): the first frame's read median {:.0} ms, the classrooms' days median {:.0} ms",
            DAYS + older,
            median(year_read),
            median(year_rooms)
        );
        store.close().await;
    });
    drop(ferret);
}
