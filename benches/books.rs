//! The energy books' benchmark: aggregation next to a bare scan of the same rows, and the running
//! totals' tick next to the same sums worked out from scratch, each pair measured in the same run.
//!
//! Sizes (environment):
//! - `AUTOVOLT_BENCH_BOARDS` (1000) × 6 switches × `AUTOVOLT_BENCH_INTERVALS` (17) rows for the day;
//! - `AUTOVOLT_BENCH_MONTH_DAYS` (30) days of `AUTOVOLT_BENCH_MONTH_BOARDS` (30) boards for the
//!   month (1000 for the full 100,000 rows a day);
//! - `AUTOVOLT_BENCH_TICKS` (2000) ticks;
//! - `AUTOVOLT_BENCH_MONGODB_URI` to use a server instead of a private FerretDB.

use autovolt::domain::interval::local_midnight;
use autovolt::domain::tariff::{CostVersion, TariffBook, TariffScope};
use autovolt::domain::totals::{
    open_amount_from_scratch, Amount, ClosedSwitch, DayTotal, OpenSwitch, RunningTotals,
};
use autovolt::domain::{
    CostCalculation, Instant, LedgerRow, PowerSettings, Quality, SwitchType, TriggeredBy,
};
use autovolt::store::aggregation::{day_range, AggregationRequest};
use autovolt::store::{collections, Store};
use bson::doc;
use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use futures::TryStreamExt;
use std::collections::HashMap;
use std::time::{Duration as StdDuration, Instant as Clock};
use tokio_util::sync::CancellationToken;

const IST: Tz = chrono_tz::Asia::Kolkata;
const KINDS: [SwitchType; 6] = [
    SwitchType::Light,
    SwitchType::Light,
    SwitchType::Fan,
    SwitchType::Fan,
    SwitchType::Projector,
    SwitchType::Ac,
];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn device_id(board: usize) -> String {
    format!("{board:024x}")
}

fn classroom(board: usize) -> String {
    format!("CS-{}", 100 + board / 10)
}

/// `intervals` rows per switch for every board on `date`, at ₹7.5 before noon and ₹9 after.
fn day_rows(date: NaiveDate, boards: usize, intervals: usize) -> Vec<LedgerRow> {
    let midnight = local_midnight(date, IST);
    let settings = PowerSettings::campus_default(7.5);
    let slot = 86_400 / intervals as i64;
    let mut rows = Vec::with_capacity(boards * 6 * intervals);
    for b in 0..boards {
        for (s, kind) in KINDS.iter().enumerate() {
            let watts = settings.watts_of(kind).unwrap_or(50.0);
            for k in 0..intervals {
                let offset = (b as i64 * 7 + s as i64 * 13) % (slot / 3);
                let start = midnight + Duration::seconds(k as i64 * slot + offset);
                let secs = (slot / 2) as f64;
                let rate = if k * 2 < intervals { 7.5 } else { 9.0 };
                let wh = watts * secs / 3600.0;
                rows.push(LedgerRow {
                    id: None,
                    device_id: device_id(b),
                    esp32_name: format!("board-{b}"),
                    classroom: classroom(b),
                    switch_id: format!("sw{}", s + 1),
                    switch_name: format!("{kind} {}", s + 1),
                    switch_type: kind.clone(),
                    start_ts: start,
                    end_ts: start + Duration::seconds(secs as i64),
                    switch_on_duration_seconds: secs,
                    delta_wh: wh,
                    power_w: watts,
                    cost_calculation: Some(CostCalculation {
                        cost_per_kwh: rate,
                        cost_inr: wh / 1000.0 * rate,
                    }),
                    quality: Quality::default(),
                    created_at: None,
                    updated_at: None,
                });
            }
        }
    }
    rows
}

async fn seed(store: &Store, rows: &[LedgerRow]) -> StdDuration {
    let started = Clock::now();
    for chunk in rows.chunks(10_000) {
        store
            .collection::<LedgerRow>(collections::LEDGER)
            .insert_many(chunk)
            .ordered(false)
            .await
            .expect("seeding the ledger");
    }
    started.elapsed()
}

/// Reads the rows of `[from, to)` with the projection the aggregation uses, doing nothing with
/// them: the least any aggregation must do.
async fn bare_scan(store: &Store, from: Instant, to: Instant) -> (u64, StdDuration) {
    let started = Clock::now();
    let mut cursor = store
        .collection::<bson::RawDocumentBuf>(collections::LEDGER)
        .find(doc! {"start_ts": {
            "$gte": bson::DateTime::from_chrono(from),
            "$lt": bson::DateTime::from_chrono(to),
        }})
        .projection(doc! {
            "_id": 0, "device_id": 1, "switch_id": 1, "classroom": 1, "esp32_name": 1,
            "switch_name": 1, "quality": 1, "delta_wh": 1, "switch_on_duration_seconds": 1,
            "cost_calculation": 1, "start_ts": 1,
        })
        .await
        .expect("scan");
    let mut n = 0;
    while cursor.try_next().await.expect("scan").is_some() {
        n += 1;
    }
    (n, started.elapsed())
}

async fn aggregate(store: &Store, from: NaiveDate, to: NaiveDate) -> (u64, usize, StdDuration) {
    let started = Clock::now();
    let s = store
        .aggregate(
            &AggregationRequest {
                from,
                to,
                tz: IST,
                triggered_by: TriggeredBy::System,
                by: None,
                break_locks: false,
            },
            None,
            &CancellationToken::new(),
        )
        .await
        .expect("aggregation");
    (s.ledger_rows, s.daily_written, started.elapsed())
}

fn secs(d: StdDuration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

async fn aggregation_pair(label: &str, store: &Store, from: NaiveDate, to: NaiveDate) {
    let (a, b) = (day_range(from, IST).0, day_range(to, IST).1);
    let (n, scan1) = bare_scan(store, a, b).await;
    let (_, scan2) = bare_scan(store, a, b).await;
    let (rows, written, first) = aggregate(store, from, to).await;
    let scan_before = scan1.min(scan2);
    let (_, rewritten, again) = aggregate(store, from, to).await;
    // A scan after the runs too, so that drift on a shared machine shows.
    let (_, scan3) = bare_scan(store, a, b).await;
    let scan = scan_before.min(scan3);
    assert_eq!(rows, n, "the aggregation read other rows than the scan");
    assert_eq!(rewritten, 0, "a re-run rewrote aggregates");
    println!("{label}: {n} ledger rows");
    println!(
        "  bare scan (baseline)            {}  (fastest of {}, {} before and {} after)",
        secs(scan),
        secs(scan1),
        secs(scan2),
        secs(scan3)
    );
    println!(
        "  aggregation, first run          {}  = {:.2}× the scan  ({written} daily aggregates written)",
        secs(first),
        first.as_secs_f64() / scan.as_secs_f64()
    );
    println!(
        "  aggregation, re-run (no change) {}  = {:.2}× the scan  (target ≤ 1.5×)",
        secs(again),
        again.as_secs_f64() / scan.as_secs_f64()
    );
}

fn tariffs(today: NaiveDate) -> TariffBook {
    let noon = local_midnight(today, IST) + Duration::hours(12);
    let version = |price, from, until: Option<Instant>, scope, room: Option<String>| CostVersion {
        id: None,
        cost_per_kwh: price,
        effective_from: from,
        effective_until: until,
        scope,
        classroom: room,
        device_id: None,
        created_by: None,
        notes: None,
        is_active: until.is_none(),
        created_at: None,
        updated_at: None,
    };
    let mut versions = vec![
        version(
            7.5,
            noon - Duration::days(60),
            Some(noon),
            TariffScope::Global,
            None,
        ),
        version(9.0, noon, None, TariffScope::Global, None),
    ];
    for c in 0..5 {
        versions.push(version(
            11.0,
            noon - Duration::days(10),
            None,
            TariffScope::Classroom,
            Some(classroom(c * 10)),
        ));
    }
    TariffBook::new(versions, 7.5)
}

/// The naive way: every tick, every switch's closed sum plus its open interval worked out from
/// scratch, summed into maps per device and classroom.
fn from_scratch(
    closed: &[ClosedSwitch],
    open: &[OpenSwitch],
    book: &TariffBook,
    midnight: Instant,
    now: Instant,
) -> Amount {
    let mut devices: HashMap<&str, Amount> = HashMap::new();
    let mut rooms: HashMap<&str, Amount> = HashMap::new();
    let mut campus = Amount::default();
    for c in closed {
        let d = devices.entry(&c.device_id).or_default();
        d.kwh += c.amount.kwh;
        d.cost += c.amount.cost;
        let r = rooms.entry(&c.classroom).or_default();
        r.kwh += c.amount.kwh;
        r.cost += c.amount.cost;
    }
    for o in open {
        let a = open_amount_from_scratch(o, book, midnight, now);
        let d = devices.entry(&o.device_id).or_default();
        d.kwh += a.kwh;
        d.cost += a.cost;
        let r = rooms.entry(&o.classroom).or_default();
        r.kwh += a.kwh;
        r.cost += a.cost;
    }
    for a in rooms.values() {
        campus.kwh += a.kwh;
        campus.cost += a.cost;
    }
    campus
}

fn tick_pair() {
    let boards = env_usize("AUTOVOLT_BENCH_BOARDS", 1000);
    let ticks = env_usize("AUTOVOLT_BENCH_TICKS", 2000);
    let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");
    let midnight = local_midnight(today, IST);
    let book = tariffs(today);
    let mut closed = Vec::new();
    let mut open = Vec::new();
    for b in 0..boards {
        for s in 0..6 {
            closed.push(ClosedSwitch {
                device_id: device_id(b),
                switch_id: format!("sw{}", s + 1),
                classroom: classroom(b),
                amount: Amount {
                    kwh: 0.1 * (s + 1) as f64,
                    cost: 0.8 * (s + 1) as f64,
                },
            });
            if (b + s) % 2 == 0 {
                open.push(OpenSwitch {
                    device_id: device_id(b),
                    switch_id: format!("sw{}", s + 1),
                    classroom: classroom(b),
                    since: midnight + Duration::minutes(((b * 37 + s * 11) % 900) as i64),
                    power_w: [40.0, 40.0, 75.0, 75.0, 200.0, 1500.0][s],
                });
            }
        }
    }
    let history: Vec<DayTotal> = (1..=23)
        .flat_map(|d| {
            (0..boards).map(move |b| DayTotal {
                date: NaiveDate::from_ymd_opt(2026, 11, d).expect("date"),
                device_id: device_id(b),
                classroom: classroom(b),
                amount: Amount {
                    kwh: 5.0,
                    cost: 40.0,
                },
            })
        })
        .collect();
    let start = midnight + Duration::hours(16);
    let mut totals = RunningTotals::new(IST, start, book.clone());
    totals.reconcile(today, &closed, start);
    totals.load_history(today, &history);
    for o in &open {
        totals.switch_on(o);
    }

    let started = Clock::now();
    let mut check = 0.0;
    for i in 0..ticks {
        totals.tick(start + Duration::seconds(i as i64));
        check += totals.campus().today.kwh;
    }
    let tick = started.elapsed() / ticks as u32;

    let scratch_ticks = (ticks / 10).max(1);
    let started = Clock::now();
    let mut reference = Amount::default();
    for i in 0..scratch_ticks {
        reference = from_scratch(
            &closed,
            &open,
            &book,
            midnight,
            start + Duration::seconds(i as i64),
        );
    }
    let scratch = started.elapsed() / scratch_ticks as u32;
    totals.tick(start + Duration::seconds(scratch_ticks as i64 - 1));
    let diff = (totals.campus().today.cost - reference.cost).abs();
    assert!(diff < 1e-6, "tick and from-scratch disagree by ₹{diff}");
    assert!(check > 0.0);
    println!(
        "running totals: {boards} boards × 6 switches, {} on, {ticks} ticks",
        open.len()
    );
    println!(
        "  from scratch per tick (baseline) {:.3} ms",
        scratch.as_secs_f64() * 1000.0
    );
    println!(
        "  incremental tick                 {:.3} ms  = {:.1}× faster  (target ≤ 1 ms)",
        tick.as_secs_f64() * 1000.0,
        scratch.as_secs_f64() / tick.as_secs_f64()
    );
}

async fn store_for(label: &str, base: &str) -> Store {
    let uri = format!(
        "{}/bench_books_{label}_{}",
        base.trim_end_matches('/'),
        std::process::id()
    );
    let store = Store::connect(&uri, StdDuration::from_secs(10))
        .await
        .expect("connect");
    store.ensure_indexes().await.expect("indexes");
    store
}

fn main() {
    tick_pair();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (_server, base) = match std::env::var("AUTOVOLT_BENCH_MONGODB_URI") {
            Ok(uri) => (None, uri),
            Err(_) => {
                let dir = autovolt::servers::temp_dir("autovolt-bench-ferretdb").expect("dir");
                let server = autovolt::servers::start_ferretdb(&dir, true).expect("FerretDB");
                let uri = format!("mongodb://127.0.0.1:{}", server.port());
                (Some(server), uri)
            }
        };
        let boards = env_usize("AUTOVOLT_BENCH_BOARDS", 1000);
        let intervals = env_usize("AUTOVOLT_BENCH_INTERVALS", 17);
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).expect("date");

        let store = store_for("day", &base).await;
        println!("server: {}", store.server());
        let rows = day_rows(day, boards, intervals);
        let seeded = seed(&store, &rows).await;
        println!("seeded {} rows for one day in {}", rows.len(), secs(seeded));
        drop(rows);
        aggregation_pair("one day", &store, day, day).await;
        store.database().drop().await.expect("drop");

        let days = env_usize("AUTOVOLT_BENCH_MONTH_DAYS", 30);
        let month_boards = env_usize("AUTOVOLT_BENCH_MONTH_BOARDS", 30);
        let store = store_for("month", &base).await;
        let first = NaiveDate::from_ymd_opt(2026, 11, 1).expect("date");
        let mut total = 0;
        let mut seeding = StdDuration::ZERO;
        for d in first.iter_days().take(days) {
            let rows = day_rows(d, month_boards, intervals);
            total += rows.len();
            seeding += seed(&store, &rows).await;
        }
        println!("seeded {total} rows over {days} days in {}", secs(seeding));
        let last = first + Duration::days(days as i64 - 1);
        aggregation_pair("one month", &store, first, last).await;
        store.database().drop().await.expect("drop");
    });
}
