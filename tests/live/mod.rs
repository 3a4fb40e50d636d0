//! Shared pieces of the live-pipeline tests: a campus in the database, a collector running
//! in-process, a publisher that speaks for the boards, and the firmware fixtures.
#![allow(dead_code)]

use autovolt::clock::Clock;
use autovolt::collect::{self, CollectorOptions, Committed, Stats};
use autovolt::domain::{
    Classroom, Device, DeviceConfig, DeviceStatus, DeviceType, Mac, PowerSettings, Secret, Switch,
    SwitchType,
};
use autovolt::store::Store;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const MAC_A: &str = "A4:CF:12:B3:C4:D5";
pub const SECRET_A: &str = "5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887";
pub const MAC_B: &str = "24:6F:28:AA:10:0B";
pub const SECRET_B: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
pub const PINS: [i32; 6] = [16, 17, 18, 19, 21, 22];
pub const PRICE: f64 = 8.0;

pub fn device(name: &str, mac: &str, secret: &str, classroom: autovolt::domain::Id) -> Device {
    let types = [
        SwitchType::Light,
        SwitchType::Fan,
        SwitchType::Light,
        SwitchType::Fan,
        SwitchType::Projector,
        SwitchType::Outlet,
    ];
    Device {
        id: None,
        name: name.into(),
        mac_address: Mac::parse(mac).unwrap(),
        device_type: DeviceType::Esp32,
        classroom: Some(classroom),
        ip_address: None,
        firmware_version: None,
        status: DeviceStatus::Offline,
        last_seen: None,
        device_secret: Secret::new(secret),
        last_motion_at: None,
        boot_clock: None,
        config: DeviceConfig::default(),
        switches: PINS
            .iter()
            .zip(types)
            .enumerate()
            .map(|(i, (&pin, t))| Switch {
                switch_id: format!("sw{}", i + 1),
                name: format!("{t} {}", i + 1),
                switch_type: t,
                gpio: Some(pin),
                relay_gpio: Some(pin),
                state: false,
                last_state_change: None,
                power_rating: None,
            })
            .collect(),
        created_at: None,
        updated_at: None,
    }
}

/// The indexes, the default power table at ₹8/kWh and an empty classroom `name`; its id.
pub async fn classroom(store: &Store, name: &str) -> autovolt::domain::Id {
    store.ensure_indexes().await.expect("indexes");
    store
        .save_power_settings(&PowerSettings::campus_default(PRICE))
        .await
        .expect("power settings");
    store
        .insert_classroom(&Classroom {
            id: None,
            name: name.into(),
            building: None,
            floor: None,
            created_at: None,
            updated_at: None,
        })
        .await
        .expect("classroom")
}

/// A classroom `CS-101` with the two fixture boards, and the default power table at ₹8/kWh.
pub async fn campus(store: &Store) -> (Device, Device) {
    let room = classroom(store, "CS-101").await;
    let mut a = device("CS-101-A", MAC_A, SECRET_A, room);
    a.id = Some(store.insert_device(&a).await.expect("device A"));
    let mut b = device("CS-101-B", MAC_B, SECRET_B, room);
    b.id = Some(store.insert_device(&b).await.expect("device B"));
    (a, b)
}

/// A collector running in this process.
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<Stats, collect::CollectError>>,
    pub commits: mpsc::UnboundedReceiver<Committed>,
    pub committed: usize,
}

pub fn options(client_id: &str) -> CollectorOptions {
    let mut o = CollectorOptions::new(client_id, chrono_tz::Asia::Kolkata);
    // The scripts move the clock an hour on between the boards' first messages and the rest;
    // boards silent that long would rightly go offline in between (the offline test sets its own).
    o.offline_after = Duration::from_secs(3 * 3600);
    o.sweep_every = Duration::from_millis(100);
    o.presence_every = Duration::from_millis(100);
    o.status_every = Duration::from_millis(500);
    o
}

/// Starts a collector and waits until it is subscribed.
pub async fn start(
    store: &Store,
    url: &str,
    options: CollectorOptions,
    clock: Arc<dyn Clock>,
) -> Running {
    let subscribed = options.subscribed.clone();
    let shutdown = CancellationToken::new();
    let (tx, commits) = mpsc::unbounded_channel();
    let task = tokio::spawn(collect::run(
        store.clone(),
        url.to_string(),
        options,
        clock,
        shutdown.clone(),
        Some(tx),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !subscribed.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            std::time::Instant::now() < deadline,
            "the collector did not subscribe in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running {
        shutdown,
        task,
        commits,
        committed: 0,
    }
}

impl Running {
    /// Waits until `n` messages in total have been committed by this collector.
    pub async fn wait_committed(&mut self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.committed < n {
            match tokio::time::timeout_at(deadline, self.commits.recv()).await {
                Ok(Some(c)) => self.committed += c.payloads.len(),
                Ok(None) => panic!("the collector stopped after {} messages", self.committed),
                Err(_) => panic!("only {} of {n} messages committed in 30 s", self.committed),
            }
        }
    }

    /// Drains what was committed so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(c) = self.commits.try_recv() {
            self.committed += c.payloads.len();
        }
    }

    pub async fn stop(self) -> Stats {
        self.shutdown.cancel();
        self.task.await.expect("collector task").expect("collector")
    }

    /// Kills the collector without letting it finish anything (no acknowledgements, no flush).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
        // A process restart takes a moment: the broker sees the old connection close first.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A plain MQTT client that publishes as the boards do (QoS 1) and keeps its session.
pub struct Publisher {
    pub client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    pub async fn connect(url: &str, id: &str) -> Publisher {
        let addr = autovolt::mqtt::connection::BrokerAddress::parse(url).unwrap();
        let mut o = MqttOptions::new(id, addr.host, addr.port);
        o.set_clean_session(false);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o.set_inflight(100);
        let (client, mut eventloop) = AsyncClient::new(o, 10_000);
        let task = tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Publisher { client, task }
    }

    pub async fn publish(&self, topic: &str, payload: &[u8]) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .await
            .expect("publish");
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// (topic, payload bytes, note) of a fixture file.
pub fn fixture(name: &str) -> Vec<(String, Vec<u8>, String)> {
    let path = format!("/work/shared/fixtures/firmware/{name}");
    std::fs::read_to_string(path)
        .expect("fixture")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("fixture line");
            let topic = v["topic"].as_str().unwrap().to_string();
            let payload = match (&v["payload"], &v["payload_text"]) {
                (serde_json::Value::String(s), _) => s.as_bytes().to_vec(),
                (serde_json::Value::Null, serde_json::Value::String(t)) => t.as_bytes().to_vec(),
                (p, _) => serde_json::to_vec(p).unwrap(),
            };
            (topic, payload, v["note"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// A board's message, shaped like the firmware's.
pub fn switch_event(
    mac: &str,
    secret: &str,
    gpio: i32,
    state: bool,
    source: &str,
    ts: u32,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mac": mac, "secret": secret, "type": "switch_event", "gpio": gpio, "state": state,
        "source": source, "timestamp": ts,
    }))
    .unwrap()
}

pub fn heartbeat(mac: &str, uptime: u32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "mac": mac, "status": "heartbeat", "heap": 187332, "uptime": uptime,
    }))
    .unwrap()
}

pub fn snapshot(mac: &str, secret: &str, on: &[i32]) -> Vec<u8> {
    let switches: Vec<serde_json::Value> = PINS
        .iter()
        .map(|p| serde_json::json!({"gpio": p, "state": on.contains(p), "manual_override": false}))
        .collect();
    serde_json::to_vec(&serde_json::json!({"mac": mac, "secret": secret, "switches": switches}))
        .unwrap()
}

/// All ledger rows of a database, oldest first.
pub async fn ledger(store: &Store) -> Vec<autovolt::domain::LedgerRow> {
    let mut rows = store
        .ledger_page(&autovolt::store::LedgerQuery::default(), None, 10_000)
        .await
        .unwrap()
        .rows;
    rows.sort_by_key(|r| (r.start_ts, r.switch_id.clone()));
    rows
}

/// Activity actions of a database, sorted, as (action, switchId).
pub async fn actions(store: &Store) -> Vec<(String, Option<String>)> {
    let mut rows: Vec<_> = store
        .recent_activity(10_000, None, &autovolt::store::ActivityFilter::default())
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|a| (a.action, a.switch_id))
        .collect();
    rows.sort();
    rows
}

/// A board's `millis()` given the wall instant it booted.
pub fn millis_since(boot: autovolt::domain::Instant, at: autovolt::domain::Instant) -> u32 {
    (at - boot).num_milliseconds() as u32
}

/// A board's day of switching, in steps of related messages published together: each relay goes
/// on and then off at its wall switch, each change as a `switch_event` delivered twice plus the
/// snapshot after it. (A commanded change is its sender's to record, so a wall switch is what
/// makes the collector write activity.)
pub fn cycles(mac: &str, secret: &str, n: usize) -> Vec<Vec<(&'static str, Vec<u8>)>> {
    let mut steps = vec![];
    for k in 0..n {
        let pin = PINS[k % PINS.len()];
        let on_at = up(1_000 + 10_000 * k as u32);
        for (state, ts) in [(true, on_at), (false, on_at + 5_000)] {
            let ev = switch_event(mac, secret, pin, state, "manual", ts);
            let on: &[i32] = if state { &[pin] } else { &[] };
            steps.push(vec![
                ("esp32/telemetry", ev.clone()),
                ("esp32/telemetry", ev),
                ("esp32/state", snapshot(mac, secret, on)),
            ]);
        }
    }
    steps
}

/// What `cycles` for both fixture boards must leave: rows, `manual_on` and `manual_off` entries per
/// board.
pub async fn assert_cycles_counted_once(store: &Store, n: usize, tolerance_secs: f64) {
    let rows = ledger(store).await;
    assert_eq!(rows.len(), 2 * n, "ledger rows: {rows:#?}");
    for r in &rows {
        assert!(
            (r.switch_on_duration_seconds - 5.0).abs() <= tolerance_secs,
            "{r:?}"
        );
    }
    let acts = actions(store).await;
    let count = |a: &str| acts.iter().filter(|(x, _)| x == a).count();
    assert_eq!(count("manual_on"), 2 * n, "{acts:?}");
    assert_eq!(count("manual_off"), 2 * n, "{acts:?}");
    assert_eq!(count("device_online"), 2, "{acts:?}");
    for mac in [MAC_A, MAC_B] {
        let d = store
            .device_by_mac(Mac::parse(mac).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(
            d.switches.iter().all(|s| !s.state),
            "{mac} still has a relay on"
        );
    }
}

/// The fixture boards' uptime when a script anchors them: up a day, so that the hour a script's
/// clock moves on between the anchor and the rest is within their uptime and cannot pass for a
/// reboot (docs/board-clock.md).
pub const UP: u32 = 86_400_000;

/// A fixture board's `millis()` `ms` after it was anchored.
pub fn up(ms: u32) -> u32 {
    UP + ms
}

/// Anchors both boards' clocks: a heartbeat with uptime [`UP`] from each, at the clock's current
/// time.
pub async fn anchor_boards(p: &Publisher) {
    p.publish("esp32/telemetry", &heartbeat(MAC_A, UP)).await;
    p.publish("esp32/telemetry", &heartbeat(MAC_B, UP)).await;
}

/// Polls until `check` holds or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen in {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
