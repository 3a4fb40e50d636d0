//! The dashboard's indexed queries, each next to a full collection scan on the same server in
//! the same run, and batch versus one-by-one insert throughput.
//!
//! Server: AUTOVOLT_BENCH_MONGODB_URI, else a private FerretDB 1.24.2 (SQLite) in a temp dir.
//! Sizes: AUTOVOLT_BENCH_ROWS (ledger rows, default 1,000,000), AUTOVOLT_BENCH_ITERS (samples per
//! indexed query, default 200), AUTOVOLT_BENCH_SCANS (full-scan samples, default 5),
//! AUTOVOLT_BENCH_INSERTS (rows for the insert comparison, default 2,000).
//! Run: `cargo bench --bench store_queries`.

use autovolt::domain::{CostCalculation, Id};
use autovolt::domain::{CostVersion, Device, Instant, LedgerRow, Mac, PowerSettings, Quality};
use autovolt::seed::{generate, SeedOptions};
use autovolt::store::{collections, LedgerQuery, Store};
use bson::{doc, Document};
use chrono::{Duration, TimeZone, Utc};
use futures::TryStreamExt;
use std::time::Instant as Clock;

const CLASSROOMS: usize = 50;
const DEVICES_PER_CLASSROOM: usize = 4;
const SEED_BATCH: usize = 5_000;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.replace(['_', ','], "").parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not a number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

fn base() -> Instant {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Row `k` of a device's switch: 20 minutes on, every 30 minutes.
fn row(device: &Device, classroom: &str, switch: usize, k: i64) -> LedgerRow {
    let s = &device.switches[switch];
    let start = base() + Duration::minutes(30 * k);
    let power = 40.0 + 10.0 * switch as f64;
    let seconds = 1200.0;
    let wh = power * seconds / 3600.0;
    LedgerRow {
        id: None,
        device_id: device.id.map(|i| i.to_hex()).unwrap_or_default(),
        esp32_name: device.name.clone(),
        classroom: classroom.to_string(),
        switch_id: s.switch_id.clone(),
        switch_name: s.name.clone(),
        switch_type: s.switch_type.clone(),
        start_ts: start,
        end_ts: start + Duration::seconds(1200),
        switch_on_duration_seconds: seconds,
        delta_wh: wh,
        power_w: power,
        cost_calculation: Some(CostCalculation {
            cost_per_kwh: 7.5,
            cost_inr: wh / 1000.0 * 7.5,
        }),
        quality: Quality::default(),
        created_at: None,
        updated_at: None,
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    n: usize,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        n: ms.len(),
    }
}

async fn sample<F, Fut>(n: usize, mut f: F) -> Stats
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        let t = Clock::now();
        f(i).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stats(ms)
}

/// A full scan: a filter on a field no document has and no index covers, so every document is read.
async fn full_scan(store: &Store, collection: &str, n: usize) -> Stats {
    sample(n, |_| async move {
        let found: Vec<Document> = store
            .collection::<Document>(collection)
            .find(doc! {"no_such_field": "x"})
            .await
            .expect("scan")
            .try_collect()
            .await
            .expect("scan");
        assert!(found.is_empty());
    })
    .await
}

fn line(name: &str, q: &Stats, scan: &Stats) {
    println!(
        "{name:<38} {:>9.2} {:>9.2}   {:>11.2} {:>9.2}   {:>8.1}×   (n={}/{})",
        q.p50,
        q.p99,
        scan.p50,
        scan.p99,
        scan.p50 / q.p50.max(1e-9),
        q.n,
        scan.n
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let rows_wanted = env_usize("AUTOVOLT_BENCH_ROWS", 1_000_000);
    let iters = env_usize("AUTOVOLT_BENCH_ITERS", 200).max(1);
    let scans = env_usize("AUTOVOLT_BENCH_SCANS", 5).max(1);
    let inserts = env_usize("AUTOVOLT_BENCH_INSERTS", 2_000).max(1);

    let (_server, uri) = match std::env::var("AUTOVOLT_BENCH_MONGODB_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let dir = autovolt::servers::temp_dir("autovolt-bench-ferretdb").expect("temp dir");
            let server = autovolt::servers::start_ferretdb(&dir, true)
                .unwrap_or_else(|e| panic!("FerretDB could not start: {e}"));
            let uri = format!("mongodb://127.0.0.1:{}/", server.port());
            (Some(server), uri)
        }
    };
    let db = format!("bench_{}", std::process::id());
    let uri = match uri.split_once('?') {
        Some((a, q)) => format!("{}/{db}?{q}", a.trim_end_matches('/')),
        None => format!("{}/{db}", uri.trim_end_matches('/')),
    };
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.migrate_up(None, false).await.expect("migrate");

    let campus = generate(
        &SeedOptions {
            classrooms: CLASSROOMS,
            devices_per_classroom: DEVICES_PER_CLASSROOM,
            seed: Some(1),
        },
        Utc::now(),
    );
    store
        .collection::<Device>(collections::DEVICES)
        .insert_many(&campus.devices)
        .await
        .expect("devices");
    store
        .collection::<PowerSettings>(collections::POWER_SETTINGS)
        .insert_one(&campus.power_settings)
        .await
        .expect("settings");
    store
        .collection::<CostVersion>(collections::COST_VERSIONS)
        .insert_one(&campus.cost_version)
        .await
        .expect("tariff");
    let room_of = |d: &Device| -> String {
        campus
            .classrooms
            .iter()
            .find(|c| c.id == d.classroom)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };

    let slots = campus.devices.len() * 6;
    let per_slot = rows_wanted.div_ceil(slots) as i64;
    let t = Clock::now();
    let mut batch = Vec::with_capacity(SEED_BATCH);
    let mut seeded = 0usize;
    'fill: for k in 0..per_slot {
        for d in &campus.devices {
            let room = room_of(d);
            for s in 0..6 {
                batch.push(row(d, &room, s, k));
                if batch.len() == SEED_BATCH || seeded + batch.len() == rows_wanted {
                    seeded += store
                        .insert_ledger_rows(&batch)
                        .await
                        .expect("seed rows")
                        .inserted as usize;
                    batch.clear();
                    if seeded >= rows_wanted {
                        break 'fill;
                    }
                }
            }
        }
    }
    let seed_secs = t.elapsed().as_secs_f64();
    let days = (per_slot as f64 * 30.0 / 1440.0).ceil().max(1.0) as i64;

    println!();
    println!(
        "store_queries · {} · {seeded} ledger rows over {days} day(s) · {} devices in {CLASSROOMS} classrooms",
        store.server(),
        campus.devices.len()
    );
    println!(
        "seeded with insert_many batches of {SEED_BATCH} in {seed_secs:.1} s ({:.0} rows/s)",
        seeded as f64 / seed_secs
    );
    println!();
    println!(
        "{:<38} {:>9} {:>9}   {:>11} {:>9}   {:>9}",
        "query (ms)", "p50", "p99", "scan p50", "scan p99", "scan/query"
    );

    let macs: Vec<Mac> = campus.devices.iter().map(|d| d.mac_address).collect();
    let by_mac = sample(iters, |i| {
        let store = &store;
        let mac = macs[i * 7919 % macs.len()];
        async move {
            assert!(store.device_by_mac(mac).await.expect("by mac").is_some());
        }
    })
    .await;
    let scan_devices = full_scan(&store, collections::DEVICES, iters.min(50)).await;
    line("device by MAC", &by_mac, &scan_devices);

    let scan_ledger = full_scan(&store, collections::LEDGER, scans).await;
    let day_of = |i: usize| base() + Duration::days((i as i64 * 31) % days);
    let page = sample(iters, |i| {
        let store = &store;
        let d = &campus.devices[i * 13 % campus.devices.len()];
        let day = day_of(i);
        async move {
            let q = LedgerQuery {
                device_id: d.id.map(|x: Id| x.to_hex()),
                from: Some(day),
                to: Some(day + Duration::days(1)),
                ..Default::default()
            };
            let p = store.ledger_page(&q, None, 100).await.expect("page");
            assert!(!p.rows.is_empty());
        }
    })
    .await;
    line("one device's ledger page for a day", &page, &scan_ledger);

    let room_day = sample(iters, |i| {
        let store = &store;
        let room = campus.classrooms[i * 17 % campus.classrooms.len()]
            .name
            .clone();
        let day = day_of(i);
        async move {
            let q = LedgerQuery {
                classroom: Some(room),
                from: Some(day),
                to: Some(day + Duration::days(1)),
                ..Default::default()
            };
            let p = store
                .ledger_page(&q, None, autovolt::store::ledger::MAX_PAGE)
                .await
                .expect("room day");
            assert!(!p.rows.is_empty());
        }
    })
    .await;
    line("one classroom's rows for a day", &room_day, &scan_ledger);

    // Insert throughput, on rows of a device id of their own so they never collide.
    let mut fresh: Vec<LedgerRow> = Vec::with_capacity(inserts * 2);
    for k in 0..(inserts * 2) as i64 {
        let mut r = row(&campus.devices[0], "Bench", 0, k);
        r.device_id = "bench-insert".into();
        fresh.push(r);
    }
    let (many_rows, one_rows) = fresh.split_at(inserts);
    let t = Clock::now();
    for chunk in many_rows.chunks(1000) {
        store.insert_ledger_rows(chunk).await.expect("insert_many");
    }
    let many = inserts as f64 / t.elapsed().as_secs_f64();
    let t = Clock::now();
    for r in one_rows {
        store
            .insert_ledger_rows(std::slice::from_ref(r))
            .await
            .expect("insert one");
    }
    let one = inserts as f64 / t.elapsed().as_secs_f64();
    println!();
    println!(
        "insert_many (batches of 1000)  {many:>10.0} rows/s   one by one {one:>10.0} rows/s   ({:.1}×, {inserts} rows each)",
        many / one
    );
    println!();
    println!(
        "Figures are from this machine and this server; quote FerretDB results as ratios only."
    );
    let _ = store.database().drop().await;
}
