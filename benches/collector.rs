//! Collector throughput and latency, next to two ceilings measured in the same run, and campuses
//! of simulated boards for what a fleet costs the database.
//!
//! Sizes (environment): BENCH_MESSAGES (default 10000) messages from BENCH_BOARDS (200) boards for
//! throughput from a cold start (every board's first contact), then BENCH_ROUNDS (6) rounds of as
//! many sustained, each after a ceiling round, with BENCH_BATCH overriding the collector's batch
//! size; BENCH_LATENCY_RATE (500 msg/s) for BENCH_LATENCY_SECS (5) for latency.
//!
//! Campuses of BENCH_CAMPUS_SIZES (200,600,2000) boards with the firmware's 30 s reports, the
//! collector as its own process, each in a database of its own: FerretDB's CPU with the collector
//! idle for BENCH_IDLE_SECS (10) s (the baseline), the time until every board is known online
//! after all power up at once (heard: their presence stored; and marked online in `devices`;
//! counted every BENCH_COUNT_SECS (1) s, at most BENCH_POWERUP_SECS (90) s), FerretDB's
//! and the collector's CPU at steady state (from BENCH_STEADY_AFTER (40) s after power-up, for
//! BENCH_STEADY_SECS (30) s, sampled every BENCH_SAMPLE_SECS (10) s), then messages sent, received
//! and committed once the boards stop (the collector given BENCH_DRAIN_SECS (60) s to catch up).
//! BENCH_ONLY=campus runs the campuses alone; BENCH_AUTOVOLT_BIN names another build's binary to
//! run as the collector; BENCH_FERRETDB_LOG=debug keeps FerretDB's log of every command and its
//! SQL (the way to see what a message costs it).
//!
//! The two Prometheus crates side by side: `metrics-exporter-prometheus`, the collector's, and
//! `prometheus-client` behind the same `metrics` facade: BENCH_RECORD_BATCHES (20000) batches
//! recorded alone, then the collector recording into each in BENCH_CRATE_TURNS (4) turns of
//! BENCH_MESSAGES messages and twice the latency run.
//!
//! Servers: a private FerretDB (SQLite) and Mosquitto, started here. FerretDB figures are ratios,
//! not MongoDB absolutes.

use autovolt::clock::SystemClock;
use autovolt::collect::{self, CollectorMetrics, CollectorOptions, Committed, Stats};
use autovolt::domain::telemetry::{event_hash, without_secret};
use autovolt::domain::{
    dates, Classroom, Device, DeviceConfig, DeviceStatus, DeviceType, Switch, SwitchType,
    TelemetryEvent,
};
use autovolt::servers;
use autovolt::simulate::{self, BoardSpec, SimulateOptions};
use autovolt::store::indexes::index_specs;
use autovolt::store::Store;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod common;
use common::{env_num, percentile};
#[path = "common/client_recorder.rs"]
mod client_recorder;
use client_recorder::ClientRecorder;

async fn register(store: &Store, boards: &[BoardSpec]) {
    store.ensure_indexes().await.expect("indexes");
    let room = store
        .insert_classroom(&Classroom {
            id: None,
            name: "Bench Hall".into(),
            building: None,
            floor: None,
            created_at: None,
            updated_at: None,
        })
        .await
        .expect("classroom");
    for (i, b) in boards.iter().enumerate() {
        let d = Device {
            id: None,
            name: format!("bench-{i:05}"),
            mac_address: b.mac,
            device_type: DeviceType::Esp32,
            classroom: Some(room),
            ip_address: None,
            firmware_version: None,
            status: DeviceStatus::Offline,
            last_seen: None,
            device_secret: b.secret.clone(),
            last_motion_at: None,
            boot_clock: None,
            config: DeviceConfig::default(),
            switches: b
                .pins
                .iter()
                .enumerate()
                .map(|(k, &pin)| Switch {
                    switch_id: format!("sw{}", k + 1),
                    name: format!("switch {}", k + 1),
                    switch_type: SwitchType::Light,
                    gpio: Some(pin),
                    relay_gpio: Some(pin),
                    state: false,
                    last_state_change: None,
                    power_rating: None,
                })
                .collect(),
            created_at: None,
            updated_at: None,
        };
        store.insert_device(&d).await.expect("device");
    }
}

/// The boards' common boot instant: heartbeats carry real uptimes, as boards do.
fn boot() -> Instant {
    static BOOT: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BOOT.get_or_init(Instant::now)
}

/// Message `i` of a run: heartbeats and snapshots in turn, each one distinct.
fn message(boards: &[BoardSpec], i: usize) -> (&'static str, Vec<u8>) {
    let b = &boards[i % boards.len()];
    let mac = b.mac.to_string();
    if i.is_multiple_of(2) {
        let uptime = 600_000 + boot().elapsed().as_millis() as u64;
        let v = serde_json::json!({"mac": mac, "status": "heartbeat", "heap": 187332, "uptime": uptime, "detectionAllowed": true, "scheduleEnabled": false, "seq": i});
        ("esp32/telemetry", serde_json::to_vec(&v).unwrap())
    } else {
        let switches: Vec<_> = b
            .pins
            .iter()
            .map(|p| serde_json::json!({"gpio": p, "state": false, "manual_override": false}))
            .collect();
        // A board repeats the same snapshot (and two heartbeats can fall in one millisecond); an
        // extra `seq` field, ignored by the parser, makes each message distinct, so that every
        // message is stored and a loss would show in the count.
        let v = serde_json::json!({"mac": mac, "secret": b.secret.expose(), "switches": switches, "seq": i});
        ("esp32/state", serde_json::to_vec(&v).unwrap())
    }
}

fn mqtt_client(url: &str, id: &str, clean: bool) -> (AsyncClient, rumqttc::EventLoop) {
    let addr = autovolt::mqtt::connection::BrokerAddress::parse(url).unwrap();
    let mut o = MqttOptions::new(id, addr.host, addr.port);
    o.set_clean_session(clean);
    o.set_inflight(100);
    o.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(o, 10_000)
}

/// Publishes messages `range` as fast as the broker takes them, built at publish time; returns
/// each payload's publish time.
async fn publish_all(
    url: &str,
    boards: &[BoardSpec],
    range: std::ops::Range<usize>,
) -> HashMap<Vec<u8>, Instant> {
    let (client, mut el) = mqtt_client(url, "bench-publisher", true);
    let total = range.len();
    // Runs until the broker has acknowledged every message (a publish returns once queued).
    let pump = tokio::spawn(async move {
        let mut acked = 0;
        while acked < total {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let mut sent = HashMap::with_capacity(range.len());
    for i in range {
        let (topic, payload) = message(boards, i);
        sent.insert(payload.clone(), Instant::now());
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(300), pump)
        .await
        .expect("the broker did not acknowledge every publish")
        .unwrap();
    sent
}

/// Ceiling 1: `insert_many` of the equivalent telemetry documents, in batches of 100, into a fresh
/// collection: bare, or with the indexes `telemetryevents` has (the like-for-like ceiling: the
/// collector's inserts maintain them, the unique `event_hash` one dropping duplicates). The
/// documents go in in parts, each timed, as the collector's messages do, so that each part of the
/// collector is compared with inserts into a collection as full as the one it writes to (inserts
/// slow down as a collection and its indexes grow).
struct InsertCeiling {
    coll: mongodb::Collection<TelemetryEvent>,
    docs: Vec<TelemetryEvent>,
    done: usize,
}

impl InsertCeiling {
    async fn create(
        store: &Store,
        msgs: &[(&'static str, Vec<u8>)],
        boards: usize,
        name: &str,
        indexed: bool,
    ) -> InsertCeiling {
        let now = dates::now_millis();
        let docs = msgs
            .iter()
            .enumerate()
            .map(|(i, (topic, p))| {
                let v: serde_json::Value = serde_json::from_slice(p).unwrap();
                let payload = without_secret(v);
                // A millisecond apart, like a stream: the indexes on `received_at` see ascending
                // times, as with the collector.
                let at = now + chrono::Duration::milliseconds(i as i64);
                TelemetryEvent {
                    device_id: Some(format!("{:024x}", i % boards)),
                    mac: "00:00:00:00:00:00".into(),
                    classroom: "Bench Hall".into(),
                    topic: topic.to_string(),
                    event_type: "state".into(),
                    received_at: at,
                    event_hash: event_hash(topic, &payload, at),
                    payload,
                    created_at: Some(at),
                    updated_at: Some(at),
                }
            })
            .collect();
        let coll = store.collection::<TelemetryEvent>(name);
        if indexed {
            for spec in index_specs(store.capabilities())
                .into_iter()
                .filter(|s| s.collection == "telemetryevents")
            {
                let options = IndexOptions::builder()
                    .name(spec.name)
                    .unique(spec.unique.then_some(true))
                    .expire_after(spec.expire_after)
                    .build();
                let model = IndexModel::builder()
                    .keys(spec.keys)
                    .options(options)
                    .build();
                coll.create_index(model).await.expect("ceiling index");
            }
        }
        InsertCeiling {
            coll,
            docs,
            done: 0,
        }
    }

    /// Inserts the next `count` documents; returns the rate, in documents per second.
    async fn insert(&mut self, count: usize) -> f64 {
        let part = &self.docs[self.done..(self.done + count).min(self.docs.len())];
        let start = Instant::now();
        for chunk in part.chunks(100) {
            self.coll.insert_many(chunk).ordered(false).await.unwrap();
        }
        self.done += part.len();
        part.len() as f64 / start.elapsed().as_secs_f64()
    }
}

/// Ceiling 2: a bare subscriber (QoS 1, automatic acknowledgements) receiving the same messages.
async fn subscriber_ceiling(url: &str, boards: &[BoardSpec], n: usize) -> f64 {
    let (client, mut el) = mqtt_client(url, "bench-bare-subscriber", true);
    client.subscribe("esp32/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = el.poll().await {
            break;
        }
    }
    let counter = tokio::spawn(async move {
        let mut got = 0usize;
        let mut first = None;
        while got < n {
            if let Ok(Event::Incoming(Packet::Publish(_))) = el.poll().await {
                first.get_or_insert_with(Instant::now);
                got += 1;
            }
        }
        first.map(|f| f.elapsed()).unwrap_or_default()
    });
    publish_all(url, boards, 0..n).await;
    let elapsed = tokio::time::timeout(Duration::from_secs(300), counter)
        .await
        .expect("bare subscriber timed out")
        .unwrap();
    n as f64 / elapsed.as_secs_f64()
}

struct CollectorRun {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<collect::Stats, collect::CollectError>>,
    commits: mpsc::UnboundedReceiver<Committed>,
}

async fn start_collector(
    store: &Store,
    url: &str,
    id: &str,
    metrics: Arc<CollectorMetrics>,
) -> CollectorRun {
    let mut o = CollectorOptions::new(id, chrono_tz::Asia::Kolkata);
    o.batch_max = env_num("BENCH_BATCH", o.batch_max as u64) as usize;
    o.metrics = metrics;
    let subscribed = o.subscribed.clone();
    let shutdown = CancellationToken::new();
    let (tx, commits) = mpsc::unbounded_channel();
    let task = tokio::spawn(collect::run(
        store.clone(),
        url.to_string(),
        o,
        Arc::new(SystemClock),
        shutdown.clone(),
        Some(tx),
    ));
    while !subscribed.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    CollectorRun {
        shutdown,
        task,
        commits,
    }
}

/// Waits for `n` committed messages; returns (commit time per payload).
async fn wait_commits(run: &mut CollectorRun, n: usize) -> HashMap<Vec<u8>, Instant> {
    let mut at = HashMap::with_capacity(n);
    while at.len() < n {
        match tokio::time::timeout(Duration::from_secs(120), run.commits.recv()).await {
            Ok(Some(c)) => {
                for p in c.payloads {
                    at.insert(p, c.at);
                }
            }
            _ => panic!("only {} of {n} messages committed", at.len()),
        }
    }
    at
}

/// Publishes messages from `from` at `rate` a second for `secs`; returns each one's publish →
/// commit time in ms, sorted.
async fn latency(
    run: &mut CollectorRun,
    url: &str,
    boards: &[BoardSpec],
    from: usize,
    rate: u64,
    secs: u64,
) -> Vec<f64> {
    let total = (rate * secs) as usize;
    let (client, mut el) = mqtt_client(url, "bench-latency-publisher", true);
    let pump = tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let mut sent_at = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    for i in from..from + total {
        tick.tick().await;
        let (topic, payload) = message(boards, i);
        sent_at.insert(payload.clone(), Instant::now());
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    let done = wait_commits(run, total).await;
    pump.abort();
    let mut lat: Vec<f64> = done
        .iter()
        .filter_map(|(p, at)| sent_at.get(p).map(|s| (*at - *s).as_secs_f64() * 1000.0))
        .collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    lat
}

/// A collector recording into one crate's metrics, scraped every second while it runs.
struct Variant {
    name: &'static str,
    metrics: Arc<CollectorMetrics>,
}

fn variants() -> [Variant; 2] {
    let client = ClientRecorder::default();
    [
        Variant {
            name: "metrics-exporter-prometheus 0.17",
            metrics: Arc::default(),
        },
        Variant {
            name: "prometheus-client 0.24",
            metrics: Arc::new(CollectorMetrics::with_recorder(client.clone(), client)),
        },
    ]
}

/// Starts a collector recording into `v`, and a scraper that renders its metrics every second;
/// returns once its start-up work (reading the fleet, its first status and presence writes) is
/// done, so that each turn measures the steady state.
async fn start_variant(store: &Store, url: &str, v: &Variant) -> (CollectorRun, CancellationToken) {
    let run = start_collector(store, url, "bench-crates", v.metrics.clone()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stop = CancellationToken::new();
    let (m, s) = (v.metrics.clone(), stop.clone());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        while s.run_until_cancelled(every.tick()).await.is_some() {
            std::hint::black_box(m.render());
        }
    });
    (run, stop)
}

async fn stop_variant((run, scraper): (CollectorRun, CancellationToken)) {
    scraper.cancel();
    run.shutdown.cancel();
    let _ = run.task.await;
}

/// Ns per message of recording `batches` batches of `batch` as the collector does after each
/// commit (an acknowledgement lag per message, the batch's write time, the counts), and the p99
/// of one batch's recording in µs.
fn record_cost(metrics: &CollectorMetrics, batches: u64, batch: usize) -> (f64, f64) {
    let mut stats = Stats::default();
    let arrived = vec![Instant::now(); batch];
    let mut per_batch = Vec::with_capacity(batches as usize);
    let start = Instant::now();
    for i in 0..batches {
        stats.received += batch as i64;
        stats.committed += batch as i64 - 1;
        stats.transitions += 3;
        stats.ledger_rows += 3;
        if i % 10 == 0 {
            stats.reject("not_json");
        }
        let t = Instant::now();
        metrics.acknowledged(&arrived);
        metrics.batch_written(Duration::from_millis(3));
        metrics.counted(&stats);
        per_batch.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = start.elapsed();
    metrics.upkeep();
    per_batch.sort_by(f64::total_cmp);
    (
        total.as_secs_f64() * 1e9 / (batches as f64 * batch as f64),
        percentile(&per_batch, 0.99),
    )
}

/// Mean µs of a scrape's render, and the text's size.
fn render_cost(metrics: &CollectorMetrics, renders: u64) -> (f64, usize) {
    let size = metrics.render().len();
    let start = Instant::now();
    for _ in 0..renders {
        std::hint::black_box(metrics.render());
    }
    (start.elapsed().as_secs_f64() * 1e6 / renders as f64, size)
}

/// The two Prometheus crates on the collector's hot path, in this run: the metrics alone (what
/// recording a batch and rendering a scrape cost), then the whole collector recording into each,
/// in turns (ABBA) of `n` messages as fast as they come and then `rate` a second for `secs`.
async fn compare_metrics_crates(
    store: &Store,
    url: &str,
    boards: &[BoardSpec],
    mut from: usize,
    n: usize,
    rate: u64,
    secs: u64,
) {
    let turns = env_num("BENCH_CRATE_TURNS", 4).max(1) as usize;
    let batches = env_num("BENCH_RECORD_BATCHES", 20_000);
    let batch = CollectorOptions::new("defaults", chrono_tz::Asia::Kolkata).batch_max;
    println!("metrics crates, each recording every family the collector shows through the same calls (the `metrics` facade):");
    println!(
        "  {:<34} {:>10} {:>14} {:>12} {:>10} {:>7}",
        "alone", "ns/msg", "batch p99 µs", "render µs", "bytes", ""
    );
    for v in variants() {
        let (ns, p99) = record_cost(&v.metrics, batches, batch);
        let (render, size) = render_cost(&v.metrics, 2_000);
        println!(
            "  {:<34} {ns:>10.1} {p99:>14.1} {render:>12.1} {size:>10}",
            v.name
        );
    }
    let crates = variants();
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut secs_spent = [0.0f64; 2];
    for t in 0..turns {
        let order = if t % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let mut run = start_variant(store, url, &crates[k]).await;
            let start = Instant::now();
            publish_all(url, boards, from..from + n).await;
            from += n;
            let done = wait_commits(&mut run.0, n).await;
            let last = done.values().max().copied().unwrap_or(start);
            let took = (last - start).as_secs_f64();
            rates[k].push(n as f64 / took);
            secs_spent[k] += took;
            stop_variant(run).await;
        }
    }
    let mut lat: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for k in [0, 1, 1, 0] {
        let mut run = start_variant(store, url, &crates[k]).await;
        let l = latency(&mut run.0, url, boards, from, rate, secs).await;
        from += (rate * secs) as usize;
        lat[k].extend(l);
        stop_variant(run).await;
    }
    println!(
        "  {:<34} {:>10} {:>14} {:>12} {:>10} {:>10}",
        format!("in the collector, {turns} turns each"),
        "msg/s",
        "turn median",
        "lowest",
        "p50 ms",
        "p99 ms"
    );
    for k in 0..2 {
        rates[k].sort_by(f64::total_cmp);
        lat[k].sort_by(f64::total_cmp);
        println!(
            "  {:<34} {:>10.0} {:>14.0} {:>12.0} {:>10.1} {:>10.1}",
            crates[k].name,
            (turns * n) as f64 / secs_spent[k],
            percentile(&rates[k], 0.5),
            rates[k][0],
            percentile(&lat[k], 0.5),
            percentile(&lat[k], 0.99),
        );
    }
    println!("  (latency: {rate} msg/s for {secs} s twice each; the metrics scraped every second)");
}

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / hz, rss_kb))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_CAMPUS_SIZES")
        .unwrap_or_else(|_| "200,600,2000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let campus_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "campus");

    let ferret_dir = servers::temp_dir("autovolt-bench-ferretdb").unwrap();
    // BENCH_FERRETDB_LOG=debug keeps FerretDB's log (every command) in its directory, printed here.
    let ferret = match std::env::var("BENCH_FERRETDB_LOG") {
        Ok(level) => {
            println!("FerretDB's log: {}/server.log", ferret_dir.display());
            servers::start_ferretdb_with(&ferret_dir, false, &[format!("--log-level={level}")])
        }
        Err(_) => servers::start_ferretdb(&ferret_dir, true),
    }
    .expect("FerretDB");
    let mosq_dir = servers::temp_dir("autovolt-bench-mosquitto").unwrap();
    let mosquitto = servers::start_mosquitto(&mosq_dir, true).expect("Mosquitto");
    let base = format!("mongodb://127.0.0.1:{}/", ferret.port());
    let url = format!("mqtt://127.0.0.1:{}", mosquitto.port());
    println!("servers: FerretDB 1.24.2 (SQLite) and Mosquitto on loopback; 2-core machine shared with other builds");

    if !campus_only {
        throughput_and_latency(&base, &url).await;
    }
    for boards in sizes {
        campus(&base, &url, ferret.pid(), boards).await;
    }
    drop(mosquitto);
    drop(ferret);
}

/// Throughput from a cold start and sustained (next to the two ceilings), latency, and the two
/// metrics crates.
async fn throughput_and_latency(base: &str, url: &str) {
    let n = env_num("BENCH_MESSAGES", 10_000) as usize;
    let n_boards = env_num("BENCH_BOARDS", 200) as usize;
    let rounds = env_num("BENCH_ROUNDS", 6).max(1) as usize;
    let latency_rate = env_num("BENCH_LATENCY_RATE", 500);
    let latency_secs = env_num("BENCH_LATENCY_SECS", 5);
    let url = url.to_string();

    // Throughput, zero loss.
    let store = Store::connect(&format!("{base}bench_throughput"), Duration::from_secs(10))
        .await
        .unwrap();
    let boards = simulate::generated(n_boards, 42);
    register(&store, &boards).await;
    let msgs: Vec<_> = (0..(1 + rounds) * n).map(|i| message(&boards, i)).collect();
    // A database of its own (on FerretDB's SQLite backend, a file and a writer of its own): the
    // ceiling waits for no write of the collector's, whose own writes wait for each other.
    let ceiling_store = Store::connect(&format!("{base}bench_ceiling"), Duration::from_secs(10))
        .await
        .unwrap();
    let mut bare_coll = InsertCeiling::create(
        &ceiling_store,
        &msgs,
        n_boards,
        "telemetryceiling_bare",
        false,
    )
    .await;
    let bare_first = bare_coll.insert(n).await;
    let bare_after = bare_coll.insert(rounds * n).await;
    let mut ceiling = InsertCeiling::create(
        &ceiling_store,
        &msgs,
        n_boards,
        "telemetryceiling_indexed",
        true,
    )
    .await;
    let ceiling_first = ceiling.insert(n).await;
    let bare = subscriber_ceiling(&url, &boards, n).await;
    let mut run = start_collector(&store, &url, "bench-collector", Arc::default()).await;
    let start = Instant::now();
    publish_all(&url, &boards, n..2 * n).await;
    let committed = wait_commits(&mut run, n).await;
    let last = committed.values().max().copied().unwrap_or(start);
    let throughput = n as f64 / (last - start).as_secs_f64();
    let defaults = CollectorOptions::new("defaults", chrono_tz::Asia::Kolkata);
    println!(
        "throughput ({n} messages from {n_boards} boards, then {rounds} rounds of {n} more; collector batches of ≤ {}):",
        env_num("BENCH_BATCH", defaults.batch_max as u64)
    );
    println!("  ceiling: bare QoS 1 subscriber                        {bare:>9.0} msg/s");
    println!(
        "  raw insert_many into a bare collection, batches of 100: first {n} {bare_first:.0} docs/s, next {} {bare_after:.0} docs/s",
        rounds * n
    );
    let lower_first = ceiling_first.min(bare);
    println!(
        "  first {n} messages (first contact): ceiling (indexed insert_many) {ceiling_first:>6.0} docs/s, collector {throughput:>6.0} msg/s = {:.0} %",
        100.0 * throughput / lower_first
    );
    // Sustained, every board now online and its clock anchored (first contact is a one-off write
    // per board). The machine's speed drifts (it is shared), so the ceiling and the collector take
    // turns, each round inserting as many documents as the collector then stores, and each round
    // compares the two. Over the rounds the collector's periodic writes (presence, status) weigh
    // as they do in steady state.
    println!("  sustained, in rounds:   ceiling (indexed insert_many)   collector    collector / lower ceiling");
    let mut ratios = Vec::with_capacity(rounds);
    let (mut collector_secs, mut ceiling_secs) = (0.0, 0.0);
    let mut again = HashMap::new();
    for r in 0..rounds {
        let ceiling_rate = ceiling.insert(n).await;
        let start = Instant::now();
        let from = (2 + r) * n;
        publish_all(&url, &boards, from..from + n).await;
        let done = wait_commits(&mut run, n).await;
        let last = done.values().max().copied().unwrap_or(start);
        let rate = n as f64 / (last - start).as_secs_f64();
        let ratio = rate / ceiling_rate.min(bare);
        println!(
            "    round {:>2}            {ceiling_rate:>9.0} docs/s        {rate:>9.0} msg/s   {:>5.0} %",
            r + 1,
            100.0 * ratio
        );
        ratios.push(ratio);
        collector_secs += n as f64 / rate;
        ceiling_secs += n as f64 / ceiling_rate;
        again.extend(done);
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let sustained = (rounds * n) as f64 / collector_secs;
    let ceiling_sustained = (rounds * n) as f64 / ceiling_secs;
    println!(
        "  collector, sustained: {sustained:.0} msg/s against {ceiling_sustained:.0} docs/s = {:.0} % over all rounds; per round median {:.0} %, lowest {:.0} %, highest {:.0} % (target ≥ 80 %)",
        100.0 * sustained / ceiling_sustained.min(bare),
        100.0 * percentile(&ratios, 0.5),
        100.0 * ratios[0],
        100.0 * ratios[rounds - 1]
    );
    let stored = store
        .collection::<bson::Document>("telemetryevents")
        .count_documents(bson::doc! {})
        .await
        .unwrap();
    println!(
        "  loss: {} published, {} committed, {} telemetry documents stored",
        (1 + rounds) * n,
        committed.len() + again.len(),
        stored
    );

    // Latency at a steady rate below saturation.
    let lat_from = (2 + rounds) * n;
    let lat = latency(
        &mut run,
        &url,
        &boards,
        lat_from,
        latency_rate,
        latency_secs,
    )
    .await;
    println!(
        "publish → commit latency at {latency_rate} msg/s for {latency_secs} s: p50 {:.1} ms, p99 {:.1} ms ({} samples)",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.len()
    );
    run.shutdown.cancel();
    let _ = run.task.await;

    let crates_from = lat_from + (latency_rate * latency_secs) as usize;
    compare_metrics_crates(
        &store,
        &url,
        &boards,
        crates_from,
        n,
        latency_rate,
        latency_secs,
    )
    .await;
}

/// CPU seconds a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    proc_stat(pid).map(|s| s.0).unwrap_or(f64::NAN)
}

/// The collector's status record (what it received and committed, written every 5 s and at exit).
async fn collector_status(
    store: &Store,
    id: &str,
) -> Option<autovolt::store::telemetry::CollectorStatus> {
    store
        .collector_statuses()
        .await
        .ok()?
        .into_iter()
        .find(|s| s.client_id == id)
}

/// A campus of `boards` boards with the firmware's 30 s reports against the collector as its own
/// process: FerretDB's CPU with no traffic, the time until every board is known online after all
/// power up at once, FerretDB's CPU at steady state, and messages sent / received / committed.
async fn campus(base: &str, url: &str, ferret_pid: u32, boards: usize) {
    let idle_secs = env_num("BENCH_IDLE_SECS", 10);
    let powerup_max = env_num("BENCH_POWERUP_SECS", 90);
    let steady_after = env_num("BENCH_STEADY_AFTER", 40);
    let steady_secs = env_num("BENCH_STEADY_SECS", 30);
    let sample_secs = env_num("BENCH_SAMPLE_SECS", 10).max(1);
    let drain_max = env_num("BENCH_DRAIN_SECS", 60);
    // Each count reads every device: on FerretDB at 2,000 boards about a second of its CPU.
    let count_secs = env_num("BENCH_COUNT_SECS", 1).max(1);
    let uri = format!("{base}bench_campus_{boards}");
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    // As `autovolt migrate up` leaves a database: the collector refuses one without a schema.
    store.migrate_up(None, false).await.unwrap();
    let fleet = simulate::generated(boards, 7);
    register(&store, &fleet).await;
    // The last size's boards left `esp32/status` retained: cleared, so that the collector receives
    // exactly what this fleet sends.
    {
        let (c, mut el) = mqtt_client(url, "bench-campus-clear", true);
        c.publish("esp32/status", QoS::AtLeastOnce, true, Vec::new())
            .await
            .unwrap();
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = ev {
                break;
            }
        }
        let _ = c.disconnect().await;
    }
    let id = format!("bench-campus-{boards}");
    // BENCH_AUTOVOLT_BIN runs another build's collector (an earlier commit's, for a comparison).
    let bin = std::env::var("BENCH_AUTOVOLT_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_autovolt").to_string());
    let mut child = std::process::Command::new(&bin)
        .args(["collect", "--client-id", &id])
        .env("AUTOVOLT_MONGODB_URI", &uri)
        .env("AUTOVOLT_MQTT_URL", url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("autovolt collect");
    let pid = child.id();
    let ready = Instant::now();
    while !collector_status(&store, &id)
        .await
        .is_some_and(|s| s.broker_connected)
    {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "the collector did not connect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!("campus of {boards} boards (heartbeat + snapshot every 30 s each, switching at the simulator's rate for the hour, no reboots), collector as its own process:");

    let (t0, f0, c0) = (Instant::now(), cpu_secs(ferret_pid), cpu_secs(pid));
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let dt = t0.elapsed().as_secs_f64();
    let idle_ferret = 100.0 * (cpu_secs(ferret_pid) - f0) / dt;
    let idle_collector = 100.0 * (cpu_secs(pid) - c0) / dt;
    println!(
        "  idle baseline (collector running, no boards, {idle_secs} s): FerretDB {idle_ferret:.1} % of a core, collector {idle_collector:.1} %"
    );

    let ids: Vec<autovolt::domain::Id> = store
        .fleet()
        .await
        .expect("devices")
        .iter()
        .filter_map(|d| d.id)
        .collect();
    let mut o = SimulateOptions::new(fleet, chrono_tz::Asia::Kolkata);
    o.seed = 7;
    let counters = o.counters.clone();
    let stop = CancellationToken::new();
    let (f_up, up) = (cpu_secs(ferret_pid), Instant::now());
    let sim = tokio::spawn(simulate::run(url.to_string(), o, stop.clone()));
    let devices = store.collection::<bson::Document>("devices");
    let (mut online, mut heard) = (0, 0);
    let (mut all_online, mut all_heard) = (None, None);
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    while up.elapsed() < Duration::from_secs(powerup_max) {
        tokio::time::sleep(Duration::from_secs(count_secs)).await;
        if all_heard.is_none() {
            heard = store
                .presence_of(&ids)
                .await
                .map(|p| {
                    p.values()
                        .filter(|p| p.last_seen.is_some_and(|t| t >= since))
                        .count()
                })
                .unwrap_or(0);
            if heard >= boards {
                all_heard = Some(up.elapsed());
            }
        }
        online = devices
            .count_documents(bson::doc! {"status": "online"})
            .await
            .unwrap_or(0) as usize;
        if online >= boards {
            all_online = Some(up.elapsed());
            break;
        }
    }
    match all_heard {
        Some(t) => println!(
            "  power-up, every board at once: all {boards} heard (their presence stored) after {:.1} s",
            t.as_secs_f64()
        ),
        None => println!(
            "  power-up, every board at once: {heard} of {boards} heard (their presence stored) after {powerup_max} s"
        ),
    }
    let up_secs = up.elapsed().as_secs_f64();
    let up_ferret = 100.0 * (cpu_secs(ferret_pid) - f_up) / up_secs;
    match all_online {
        Some(t) => println!(
            "  power-up, every board at once: all {boards} marked online in devices after {:.1} s (FerretDB {up_ferret:.0} % of a core meanwhile, counting included: one count every {count_secs} s)",
            t.as_secs_f64()
        ),
        None => println!(
            "  power-up, every board at once: {online} of {boards} marked online in devices after {powerup_max} s (FerretDB {up_ferret:.0} % of a core meanwhile, counting included: one count every {count_secs} s)"
        ),
    }

    // Steady state: once every board has sent its first periodic reports.
    tokio::time::sleep_until((up + Duration::from_secs(steady_after)).into()).await;
    println!(
        "  steady state from {} s after power-up, {steady_secs} s in samples of {sample_secs} s:",
        up.elapsed().as_secs()
    );
    println!(
        "    {:>6}  {:>7}  {:>13}  {:>13}  {:>22}",
        "t (s)", "msg/s", "FerretDB %", "collector %", "behind (status record)"
    );
    let steady = Instant::now();
    let (f_s, c_s, sent_s) = (cpu_secs(ferret_pid), cpu_secs(pid), counters.sent());
    let mut prev = (steady, f_s, c_s, sent_s);
    while steady.elapsed() < Duration::from_secs(steady_secs) {
        tokio::time::sleep(Duration::from_secs(sample_secs)).await;
        let (now, f, c, sent) = (
            Instant::now(),
            cpu_secs(ferret_pid),
            cpu_secs(pid),
            counters.sent(),
        );
        let dt = (now - prev.0).as_secs_f64();
        let offered = sent + counters.connections.load(Ordering::Relaxed);
        let received = collector_status(&store, &id)
            .await
            .map(|s| s.received)
            .unwrap_or(0);
        println!(
            "    {:>6.0}  {:>7.1}  {:>13.1}  {:>13.1}  {:>22}",
            up.elapsed().as_secs_f64(),
            (sent - prev.3) as f64 / dt,
            100.0 * (f - prev.1) / dt,
            100.0 * (c - prev.2) / dt,
            offered as i64 - received
        );
        prev = (now, f, c, sent);
    }
    let dt = steady.elapsed().as_secs_f64();
    let rate = (counters.sent() - sent_s) as f64 / dt;
    let steady_ferret = 100.0 * (cpu_secs(ferret_pid) - f_s) / dt;
    let steady_collector = 100.0 * (cpu_secs(pid) - c_s) / dt;
    println!(
        "    whole window: {rate:.1} msg/s; FerretDB {steady_ferret:.1} % of a core (idle {idle_ferret:.1} %), {:.2} ms of FerretDB CPU per message above idle; collector {steady_collector:.1} % (idle {idle_collector:.1} %)",
        10.0 * (steady_ferret - idle_ferret) / rate
    );

    // Stop the boards; the collector then takes what it has not taken yet.
    stop.cancel();
    let counters = match sim.await {
        Ok(Ok(c)) => c,
        _ => counters,
    };
    let offered = counters.sent() as i64 + counters.connections.load(Ordering::Relaxed) as i64;
    let stopped = Instant::now();
    let mut received = 0;
    while stopped.elapsed() < Duration::from_secs(drain_max) {
        received = collector_status(&store, &id)
            .await
            .map(|s| s.received)
            .unwrap_or(0);
        if received >= offered {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if received >= offered {
        println!(
            "  boards stopped: the collector's record showed every message received {:.1} s later (it is written every 5 s)",
            stopped.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "  boards stopped: {} messages still not received {drain_max} s later",
            offered - received
        );
    }
    // SIGINT, so the collector writes its last record and exits cleanly.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    let _ = child.wait();
    let last = collector_status(&store, &id).await;
    let stored = store
        .collection::<bson::Document>("telemetryevents")
        .count_documents(bson::doc! {})
        .await
        .unwrap_or(0);
    println!(
        "  sent {} device messages + {} esp32/status; collector received {}, committed {} (not received: {}); {stored} telemetry documents",
        counters.sent(),
        counters.connections.load(Ordering::Relaxed),
        last.as_ref().map_or(0, |s| s.received),
        last.as_ref().map_or(0, |s| s.committed),
        offered - last.as_ref().map_or(0, |s| s.received),
    );
    println!("  {}", counters.summary(boards));
}
