//! Virtual boards (`autovolt simulate`): each one its own MQTT client `ESP32_<MAC>` with a last
//! will on `esp32/status`, a heartbeat and a snapshot every 30 s, daytime switching by wall switch
//! and motion, reboots at random (`--reboot-every`) or on demand ([`Fleet::reboot`]), and relay
//! commands handled exactly as the field firmware does (see [`board`]). Messages are shaped byte
//! for byte like the firmware's. A [`Timeline`] records what the relays really did, for tests to
//! hold the books against.

pub mod board;

pub use board::{Board, BoardSpec};

use crate::domain::{Mac, Secret};
use crate::mqtt::connection::{self, BrokerAccess, ConnectionError};
use crate::mqtt::message::{self, board as shape};
use crate::mqtt::topics;
use crate::store::{Store, StoreError};
use board::Applied;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, LastWill, Packet, QoS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How the fleet behaves.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub boards: Vec<BoardSpec>,
    /// Scales how often loads are switched: 1.0 is a classroom's day (about 6 changes per board per
    /// hour in working hours), 100 is a load test.
    pub rate: f64,
    /// The heartbeat and forced-snapshot period (30 s in the firmware).
    pub report_every: Duration,
    /// Each board reboots at random, on average this often (never when `None`).
    pub reboot_every: Option<Duration>,
    /// How long a reboot keeps a board down (relays off, no connection).
    pub reboot_down: Duration,
    /// The boards' uptime when the fleet starts (their clocks this far on: near 49.7 days to see
    /// the 32-bit counter wrap).
    pub uptime_at_start: Duration,
    /// Reboots on demand while the fleet runs.
    pub fleet: Fleet,
    /// Where the relays' real changes, the reboots and the timed messages are recorded, if anywhere.
    pub timeline: Option<Arc<Timeline>>,
    pub access: BrokerAccess,
    pub tz: chrono_tz::Tz,
    pub seed: u64,
    /// What the fleet has sent so far, readable while it runs.
    pub counters: Arc<Counters>,
}

impl SimulateOptions {
    pub fn new(boards: Vec<BoardSpec>, tz: chrono_tz::Tz) -> Self {
        SimulateOptions {
            boards,
            rate: 1.0,
            report_every: Duration::from_secs(30),
            reboot_every: None,
            reboot_down: Duration::from_secs(2),
            uptime_at_start: Duration::ZERO,
            fleet: Fleet::default(),
            timeline: None,
            access: BrokerAccess::default(),
            tz,
            seed: rand::random(),
            counters: Arc::default(),
        }
    }
}

/// Reboots boards of a running fleet on demand.
#[derive(Debug, Clone)]
pub struct Fleet {
    reboots: tokio::sync::broadcast::Sender<Option<Mac>>,
}

impl Default for Fleet {
    fn default() -> Fleet {
        Fleet {
            reboots: tokio::sync::broadcast::channel(64).0,
        }
    }
}

impl Fleet {
    /// Reboots one board (`Some`) or every board at once (`None`, a campus power cut).
    pub fn reboot(&self, board: Option<Mac>) {
        let _ = self.reboots.send(board);
    }
}

/// What a simulated board really did, with the wall time it did it at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Happened {
    /// A relay changed (`gpio`, `state`): the load on or off.
    Relay { gpio: i32, state: bool },
    /// The board went down: every relay off, no connection.
    Down,
    /// The board booted again: its clock from zero, its relays as they were (restored at boot).
    Booted,
    /// It sent a message stamped `millis`.
    Sent { millis: u32 },
}

/// The fleet's record of what happened, in order.
#[derive(Debug, Default)]
pub struct Timeline {
    records: std::sync::Mutex<Vec<(Mac, chrono::DateTime<chrono::Utc>, Happened)>>,
}

impl Timeline {
    fn record(&self, mac: Mac, what: Happened) {
        if let Ok(mut r) = self.records.lock() {
            r.push((mac, chrono::Utc::now(), what));
        }
    }

    /// Everything recorded so far.
    pub fn records(&self) -> Vec<(Mac, chrono::DateTime<chrono::Utc>, Happened)> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error(transparent)]
    Broker(#[from] ConnectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no boards to simulate: register devices first or pass --devices N")]
    NoBoards,
}

/// What the fleet sent and did.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub snapshots: AtomicU64,
    pub heartbeats: AtomicU64,
    pub switch_events: AtomicU64,
    pub manual_switches: AtomicU64,
    pub motions: AtomicU64,
    pub commands_applied: AtomicU64,
    pub commands_unchanged: AtomicU64,
    pub reboots: AtomicU64,
    /// Messages the client could not queue (its buffer was full), as a board would lose them.
    pub dropped: AtomicU64,
}

impl Counters {
    /// Every message published.
    pub fn sent(&self) -> u64 {
        [
            &self.snapshots,
            &self.heartbeats,
            &self.switch_events,
            &self.manual_switches,
            &self.motions,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    /// The one-line summary printed on exit.
    pub fn summary(&self, boards: usize) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "simulated {boards} boards: {} messages ({} snapshots, {} heartbeats, {} switch events, {} wall switches, {} motion), {} commands applied ({} already in state), {} reboots, {} connections, {} dropped",
            self.sent(),
            g(&self.snapshots),
            g(&self.heartbeats),
            g(&self.switch_events),
            g(&self.manual_switches),
            g(&self.motions),
            g(&self.commands_applied),
            g(&self.commands_unchanged),
            g(&self.reboots),
            g(&self.connections),
            g(&self.dropped),
        )
    }
}

/// `n` generated boards (locally administered MACs, random secrets, the default relay pins).
pub fn generated(n: usize, seed: u64) -> Vec<BoardSpec> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut bytes: [u8; 6] = rng.random();
            bytes[0] = (bytes[0] & 0xfc) | 0x02;
            BoardSpec {
                mac: Mac::from_bytes(bytes),
                secret: Secret::generate(&mut rng),
                pins: board::DEFAULT_PINS.to_vec(),
            }
        })
        .collect()
}

/// The boards registered in the database (relay pins from their switches).
pub async fn from_store(store: &Store) -> Result<Vec<BoardSpec>, StoreError> {
    Ok(store
        .devices()
        .await?
        .into_iter()
        .map(|d| BoardSpec {
            mac: d.mac_address,
            secret: d.device_secret.clone(),
            pins: d.switches.iter().filter_map(|s| s.relay_pin()).collect(),
        })
        .collect())
}

/// Runs the fleet against the broker at `mqtt_url` until `shutdown`.
pub async fn run(
    mqtt_url: String,
    options: SimulateOptions,
    shutdown: CancellationToken,
) -> Result<Arc<Counters>, SimulateError> {
    if options.boards.is_empty() {
        return Err(SimulateError::NoBoards);
    }
    connection::BrokerAddress::parse(&mqtt_url)?;
    let counters = options.counters.clone();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, spec) in options.boards.iter().enumerate() {
        let o = options.clone();
        let url = mqtt_url.clone();
        let spec = spec.clone();
        let counters = counters.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            if let Err(e) = board_task(
                spec,
                &url,
                &o,
                o.seed.wrapping_add(i as u64),
                &counters,
                shutdown,
            )
            .await
            {
                tracing::warn!("a simulated board stopped: {e}");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(counters)
}

/// Mean seconds between a board's own switching events at rate 1 in working hours.
const MEAN_SWITCH_SECS: f64 = 600.0;

fn next_activity(rng: &mut impl Rng, rate: f64) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let secs = -u.ln() * MEAN_SWITCH_SECS / rate.max(1e-6);
    Duration::from_secs_f64(secs.min(86_400.0))
}

fn random_wait(rng: &mut impl Rng, mean: Duration) -> Duration {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() * mean.as_secs_f64()).min(86_400.0 * 365.0))
}

/// Why a board's connection ended.
enum Ended {
    Shutdown,
    Reboot,
}

async fn board_task(
    spec: BoardSpec,
    url: &str,
    o: &SimulateOptions,
    seed: u64,
    counters: &Counters,
    shutdown: CancellationToken,
) -> Result<(), ConnectionError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut board = Board::new(spec, std::time::Instant::now())
        .up_for(o.uptime_at_start, std::time::Instant::now());
    let mut reboots = o.fleet.reboots.subscribe();
    let mut next_reboot = o
        .reboot_every
        .map(|every| Instant::now() + random_wait(&mut rng, every));
    let heap: u32 = rng.random_range(150_000..200_000);
    let mut activity_at = Instant::now() + next_activity(&mut rng, o.rate);
    loop {
        let ended = connected(
            &mut board,
            url,
            o,
            &mut rng,
            counters,
            &shutdown,
            &mut reboots,
            next_reboot,
            heap,
            &mut activity_at,
        )
        .await?;
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::Reboot => {
                // Power gone: the loads are off until the board is back and restores them.
                counters.reboots.fetch_add(1, Ordering::Relaxed);
                if let Some(t) = &o.timeline {
                    t.record(board.spec.mac, Happened::Down);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(o.reboot_down) => {}
                }
                board.reboot(std::time::Instant::now());
                if let Some(t) = &o.timeline {
                    t.record(board.spec.mac, Happened::Booted);
                }
                next_reboot = o
                    .reboot_every
                    .map(|every| Instant::now() + random_wait(&mut rng, every));
            }
        }
    }
}

/// One boot's connection of a board: until shutdown, or a reboot (at random or on demand), when
/// the connection is dropped without a goodbye (the broker publishes the last will).
#[allow(clippy::too_many_arguments)]
async fn connected(
    board: &mut Board,
    url: &str,
    o: &SimulateOptions,
    rng: &mut rand::rngs::StdRng,
    counters: &Counters,
    shutdown: &CancellationToken,
    reboots: &mut tokio::sync::broadcast::Receiver<Option<Mac>>,
    reboot_at: Option<Instant>,
    heap: u32,
    activity_at: &mut Instant,
) -> Result<Ended, ConnectionError> {
    let mut mqtt = connection::options(url, &board.spec.mac.client_id(), &o.access)?;
    mqtt.set_last_will(LastWill::new(
        topics::STATUS,
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    mqtt.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(mqtt, 64);
    let timeline = o.timeline.clone();
    let mac = board.spec.mac;
    let publish = |topic: &str, payload: Vec<u8>, retain: bool, counter: &AtomicU64| {
        if client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .is_ok()
        {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    };
    let sent = |millis: u32| {
        if let Some(t) = &timeline {
            t.record(mac, Happened::Sent { millis });
        }
    };
    let relay = |gpio: i32, state: bool| {
        if let Some(t) = &timeline {
            t.record(mac, Happened::Relay { gpio, state });
        }
    };
    let snapshot = |b: &Board| message::to_bytes(&b.snapshot());
    let phase = o.report_every.mul_f64(rng.random_range(0.0..1.0));
    let mut report = tokio::time::interval_at(Instant::now() + phase, o.report_every);
    let mut step_at: Option<Instant> = None;
    let reboot_sleep = async {
        match reboot_at {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(reboot_sleep);
    loop {
        let step_sleep = async {
            match step_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = &mut reboot_sleep => return Ok(Ended::Reboot),
            asked = reboots.recv() => match asked {
                Ok(None) => return Ok(Ended::Reboot),
                Ok(Some(m)) if m == mac => return Ok(Ended::Reboot),
                _ => {}
            },
            ev = eventloop.poll() => match ev {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = client.try_subscribe(topics::SWITCHES, QoS::AtLeastOnce);
                    let _ = client.try_publish(topics::STATUS, QoS::AtLeastOnce, true, "online");
                    publish(topics::STATE, snapshot(board), false, &counters.snapshots);
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) if p.topic == topics::SWITCHES => {
                    if let Ok(parsed) = message::parse(&p.topic, &p.payload) {
                        if board.accept(&parsed.event) && step_at.is_none() {
                            step_at = Some(Instant::now());
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            },
            _ = step_sleep => {
                let now = std::time::Instant::now();
                match board.step(now) {
                    Some(Applied::Changed { gpio, state }) => {
                        counters.commands_applied.fetch_add(1, Ordering::Relaxed);
                        relay(gpio, state);
                        let timestamp = board.millis(now);
                        let ev = shape::SwitchEvent { mac: board.mac_text(), secret: board.spec.secret.expose(), kind: "switch_event", gpio, state, source: "backend", timestamp };
                        publish(topics::TELEMETRY, message::to_bytes(&ev), false, &counters.switch_events);
                        sent(timestamp);
                        publish(topics::STATE, snapshot(board), false, &counters.snapshots);
                    }
                    Some(Applied::Unchanged) => {
                        counters.commands_unchanged.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {}
                }
                step_at = (board.queued() > 0).then(|| Instant::now() + Duration::from_millis(50));
            }
            _ = report.tick() => {
                let now = std::time::Instant::now();
                let uptime = board.millis(now);
                let hb = shape::Heartbeat { mac: board.mac_text(), status: "heartbeat", heap, uptime, detection_allowed: true, schedule_enabled: false };
                publish(topics::TELEMETRY, message::to_bytes(&hb), false, &counters.heartbeats);
                sent(uptime);
                publish(topics::STATE, snapshot(board), false, &counters.snapshots);
            }
            _ = tokio::time::sleep_until(*activity_at) => {
                *activity_at = Instant::now() + next_activity(rng, o.rate);
                let now = std::time::Instant::now();
                let hour = chrono::Utc::now().with_timezone(&o.tz).format("%H").to_string().parse::<u32>().unwrap_or(12);
                let daytime = (8..18).contains(&hour);
                if board.relays.is_empty() || (!daytime && rng.random_ratio(9, 10)) {
                    continue;
                }
                let i = rng.random_range(0..board.relays.len());
                // By day loads tend to go on, by night off.
                let want_on = if daytime { rng.random_ratio(3, 5) } else { rng.random_ratio(1, 10) };
                if board.relays[i] == want_on {
                    continue;
                }
                board.set(i, want_on, now);
                let gpio = board.spec.pins[i];
                relay(gpio, want_on);
                let ts = board.millis(now);
                if rng.random_ratio(7, 10) {
                    board.manual_override[i] = want_on;
                    let ev = shape::ManualSwitch { mac: board.mac_text(), secret: board.spec.secret.expose(), kind: "manual_switch", gpio, state: want_on, physical_pin: 25 + i as i32, timestamp: ts };
                    publish(topics::TELEMETRY, message::to_bytes(&ev), false, &counters.manual_switches);
                } else {
                    let motion = shape::Motion { mac: board.mac_text(), secret: board.spec.secret.expose(), kind: "motion", detected: want_on, sensor_type: "hc-sr501", timestamp: ts, detection_allowed: true, schedule_enabled: true };
                    publish(topics::TELEMETRY, message::to_bytes(&motion), false, &counters.motions);
                    let ev = shape::SwitchEvent { mac: board.mac_text(), secret: board.spec.secret.expose(), kind: "switch_event", gpio, state: want_on, source: "motion", timestamp: ts };
                    publish(topics::TELEMETRY, message::to_bytes(&ev), false, &counters.switch_events);
                }
                sent(ts);
                publish(topics::STATE, snapshot(board), false, &counters.snapshots);
            }
        }
    }
    let _ = client.try_disconnect();
    // Let the disconnect go out so that the broker does not publish the last will.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    Ok(Ended::Shutdown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_boards_are_distinct_and_locally_administered() {
        let boards = generated(200, 7);
        let mut macs: Vec<Mac> = boards.iter().map(|b| b.mac).collect();
        macs.sort();
        macs.dedup();
        assert_eq!(macs.len(), 200);
        assert!(boards.iter().all(|b| b.mac.bytes()[0] & 0x02 == 0x02));
        assert_eq!(generated(3, 7), generated(3, 7));
    }

    #[test]
    fn switching_rate_scales_the_mean_interval() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mean = |rate: f64, rng: &mut rand::rngs::StdRng| {
            (0..20_000)
                .map(|_| next_activity(rng, rate).as_secs_f64())
                .sum::<f64>()
                / 20_000.0
        };
        let m1 = mean(1.0, &mut rng);
        let m10 = mean(10.0, &mut rng);
        assert!((m1 / MEAN_SWITCH_SECS - 1.0).abs() < 0.05, "{m1}");
        assert!((m10 * 10.0 / MEAN_SWITCH_SECS - 1.0).abs() < 0.05, "{m10}");
    }
}
