//! The collector (`autovolt collect`): device messages from the broker → the books in the database.
//!
//! Nothing is lost: messages arrive at QoS 1 in a persistent session under a stable client id, and
//! each is acknowledged only after its batch's effects are committed, so a crash, a restart or a
//! database outage leaves it with the broker, which delivers it again. In-flight work is bounded by
//! the broker's in-flight window and the batch size. Broker loss → reconnect with backoff (the
//! subscriptions are renewed on every connection); database loss → the batch is retried, nothing is
//! acknowledged, and the outage is logged and kept in the `collectorstatus` record.
//!
//! Shared subscriptions (`--group`) use the `$share/GROUP/…` topic filters over MQTT 3.1.1, the
//! protocol the boards themselves speak: Mosquitto (≥ 1.6), EMQX and HiveMQ honour `$share` for
//! 3.1.1 clients too, so one client (rumqttc's 3.1.1 one, with manual acknowledgements) serves
//! every case.

pub mod metrics;
mod presence;
mod process;
mod replay;
mod schedules;
mod stats;
mod sweep;

pub use metrics::CollectorMetrics;
pub use presence::{OnlineMarks, PresenceWrites};
pub use process::{Cause, Faults, Incoming, Processor, Refusal, Step, Transition};
pub use replay::{replay, Replayed};
pub use schedules::SchedulerOptions;
pub use stats::Stats;

use crate::clock::Clock;
use crate::domain::interval::local_date;
use crate::mqtt::connection::{self, BrokerAccess, ConnectionError};
use crate::mqtt::topics;
use crate::retry::Backoff;
use crate::store::telemetry::CollectorStatus;
use crate::store::{Store, StoreError};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest the collector waits at exit for its last presence and status writes.
const EXIT_WRITES: Duration = Duration::from_secs(10);

/// How a collector runs.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// The MQTT client id: stable, so the broker keeps the session (and what it queued) across restarts.
    pub client_id: String,
    /// Shared-subscription group: collectors in one group split the messages.
    pub group: Option<String>,
    pub access: BrokerAccess,
    pub tz: chrono_tz::Tz,
    /// Silence after which a board goes offline.
    pub offline_after: Duration,
    /// The most messages processed (and acknowledged) together.
    pub batch_max: usize,
    /// How long a batch waits for more messages after its first.
    pub batch_linger: Duration,
    /// How often silent boards and midnight are checked.
    pub sweep_every: Duration,
    /// How often coalesced presence is written.
    pub presence_every: Duration,
    /// How often a talking board's `lastSeen` is written (at most a quarter of `offline_after`).
    pub last_seen_every: Duration,
    /// How often the status record is written.
    pub status_every: Duration,
    /// Set once the collector is subscribed (and cleared while the broker is lost).
    pub subscribed: Arc<AtomicBool>,
    /// Failures to inject into its batches (tests); `None` in service.
    pub faults: Option<Arc<dyn Faults>>,
    /// Where it records what `--metrics` shows.
    pub metrics: Arc<CollectorMetrics>,
    /// How it runs the schedules.
    pub schedules: SchedulerOptions,
}

impl CollectorOptions {
    pub fn new(client_id: impl Into<String>, tz: chrono_tz::Tz) -> Self {
        CollectorOptions {
            client_id: client_id.into(),
            group: None,
            access: BrokerAccess::default(),
            tz,
            offline_after: Duration::from_secs(120),
            batch_max: 100,
            batch_linger: Duration::from_millis(10),
            sweep_every: Duration::from_secs(5),
            presence_every: Duration::from_secs(5),
            last_seen_every: Duration::from_secs(presence::LAST_SEEN_EVERY.num_seconds() as u64),
            status_every: Duration::from_secs(5),
            subscribed: Arc::new(AtomicBool::new(false)),
            faults: None,
            metrics: Arc::default(),
            schedules: SchedulerOptions::default(),
        }
    }
}

/// A committed batch, for observers (benchmarks, the demo).
#[derive(Debug, Clone)]
pub struct Committed {
    pub payloads: Vec<Vec<u8>>,
    pub at: std::time::Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Broker(#[from] ConnectionError),
    #[error("the shared-subscription group {0:?} is not valid: use one topic level without '/', '+' or '#'")]
    BadGroup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Aborts a task of the collector when the collector stops, even when it is cancelled by being
/// dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a collector until `shutdown`; returns what it did.
pub async fn run(
    store: Store,
    mqtt_url: String,
    options: CollectorOptions,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    on_commit: Option<mpsc::UnboundedSender<Committed>>,
) -> Result<Stats, CollectError> {
    if let Some(g) = &options.group {
        if !topics::valid_group(g) {
            return Err(CollectError::BadGroup(g.clone()));
        }
    }
    let mut mqtt = connection::options(&mqtt_url, &options.client_id, &options.access)?;
    mqtt.set_clean_session(false);
    mqtt.set_manual_acks(true);
    // Acknowledgements go through the client's request queue, which the broker task drains; were
    // the queue bounded below what can be pending, acknowledging could wait for the broker task
    // while it waits for room in the received queue, which waits for the batcher, which waits to
    // acknowledge. Every pending acknowledgement holds one of the session's 65,535 packet
    // identifiers, so a queue of that size never makes acknowledging wait (it grows only as far as
    // it is used).
    let (client, mut eventloop) = AsyncClient::new(mqtt, usize::from(u16::MAX) + 1024);
    // Each message with its wall time (for the books) and its monotonic arrival (for the lag).
    let (tx, mut rx) =
        mpsc::channel::<(Publish, crate::domain::Instant, std::time::Instant)>(2_000);
    let metrics = options.metrics.clone();
    let connected = options.subscribed.clone();
    let filters: Vec<String> = topics::COLLECTED
        .iter()
        .map(|t| topics::subscription(t, options.group.as_deref()))
        .collect();
    let broker_task = {
        let client = client.clone();
        let connected = connected.clone();
        let clock = clock.clone();
        let metrics = metrics.clone();
        let url = crate::domain::uri::redacted_uri(&mqtt_url);
        let (broker, access) = (mqtt_url.clone(), options.access.clone());
        let wake = format!(
            "autovolt/collectors/{}/wake",
            options.client_id.replace(['/', '+', '#'], "_")
        );
        AbortOnDrop(tokio::spawn(async move {
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
            let mut connections = 0u64;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        connected.store(true, Ordering::SeqCst);
                        metrics.broker_connected(true);
                    }
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        backoff.reset();
                        connections += 1;
                        if connections > 1 {
                            metrics.reconnected();
                        }
                        tracing::info!(broker = %url, session_present = ack.session_present, "connected to the broker");
                        let subs = filters
                            .iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                        if let Err(e) = client.try_subscribe_many(subs) {
                            tracing::warn!("cannot subscribe: {e}");
                        }
                        // Mosquitto 2.0.11 resends a resumed session's unacknowledged messages
                        // only when a new message for the client arrives: send ourselves one.
                        if ack.session_present {
                            let _ = client.try_subscribe(wake.clone(), QoS::AtLeastOnce);
                            let _ = client.try_publish(
                                wake.clone(),
                                QoS::AtLeastOnce,
                                false,
                                Vec::new(),
                            );
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) if p.topic == wake => {
                        let _ = client.try_ack(&p);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx
                            .send((p, clock.now(), std::time::Instant::now()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                    Ok(_) => {}
                    Err(e) => {
                        metrics.broker_connected(false);
                        let why = connection::explain(&e, &broker, &access);
                        if connected.swap(false, Ordering::SeqCst) {
                            tracing::warn!(broker = %url, "lost the broker: {why}; reconnecting");
                        } else {
                            tracing::debug!(broker = %url, "cannot reach the broker: {why}");
                        }
                        tokio::time::sleep(backoff.next_wait()).await;
                    }
                }
            }
        }))
    };

    // The schedules run beside the messages, on their own connection, so that a run waiting for
    // its boards' acknowledgements holds no batch.
    let stop_scheduler = shutdown.child_token();
    let scheduler = options.schedules.enabled.then(|| {
        let s = schedules::Scheduler {
            store: store.clone(),
            mqtt_url: mqtt_url.clone(),
            access: options.access.clone(),
            owner: options.client_id.clone(),
            tz: options.tz,
            options: options.schedules.clone(),
            clock: clock.clone(),
            metrics: metrics.clone(),
        };
        AbortOnDrop(tokio::spawn(s.run(stop_scheduler.clone())))
    });

    let started = clock.now();
    let offline_after = chrono::Duration::from_std(options.offline_after)
        .unwrap_or_else(|_| chrono::Duration::seconds(120));
    // Other collectors of a group judge silence by the written `lastSeen`: it must never lag by
    // anything near the offline threshold.
    let last_seen_every = chrono::Duration::from_std(options.last_seen_every)
        .unwrap_or(presence::LAST_SEEN_EVERY)
        .min(offline_after / 4);
    let mut processor =
        Processor::new(store.clone(), options.tz).with_last_seen_every(last_seen_every);
    if let Some(faults) = options.faults.clone() {
        processor = processor.with_faults(faults);
    }
    let mut status = CollectorStatus {
        client_id: options.client_id.clone(),
        group: options.group.clone(),
        started_at: started,
        updated_at: started,
        renew_every_ms: i64::try_from(options.status_every.as_millis()).unwrap_or(i64::MAX),
        stopped_at: None,
        broker_connected: false,
        broker_lost_at: None,
        database_down_since: None,
        last_database_error: None,
        database_outages: 0,
        received: 0,
        committed: 0,
        transitions: 0,
        ledger_rows: 0,
        rejected: Default::default(),
        dead_letters: 0,
    };
    let mut sweep = tokio::time::interval(options.sweep_every);
    // The silent boards are a read of the online devices: paced by what it costs.
    let mut silent_read = process::Paced::default();
    let mut presence = tokio::time::interval(options.presence_every);
    let mut status_tick = tokio::time::interval(options.status_every);
    let mut rolled_over_on = None;
    // The last permanent error of the sweep, said once rather than every round.
    let mut sweep_refusal: Option<String> = None;
    // Presence is written by a task of its own, one round at a time, so that batches go on.
    let mut presence_job: Option<AbortOnDrop<(PresenceWrites, Result<(), StoreError>)>> = None;
    // So are the online marks, a bounded number at a time, one after another while any wait.
    let mut marks_job: Option<AbortOnDrop<(OnlineMarks, Result<(), StoreError>)>> = None;
    let mut batch: Vec<Incoming> = Vec::with_capacity(options.batch_max);
    let mut publishes: Vec<Publish> = Vec::with_capacity(options.batch_max);
    let mut arrivals: Vec<std::time::Instant> = Vec::with_capacity(options.batch_max);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            // Before the messages: the status record is the collector's lease (`autovolt health`
            // takes a collector that misses a few renewals for dead), and a backlog must not
            // starve it.
            _ = status_tick.tick() => {
                let now_connected = connected.load(Ordering::SeqCst);
                if status.broker_connected && !now_connected {
                    status.broker_lost_at = Some(clock.now());
                } else if now_connected {
                    status.broker_lost_at = None;
                }
                status.broker_connected = now_connected;
                write_status(&processor, &mut status, &clock).await;
                metrics.counted(processor.stats());
                metrics.upkeep();
            }
            // Presence before the batches: while the collector is behind (a campus powering up
            // at once) the batches would take every turn, and no board would be known as heard.
            done = async { (&mut marks_job.as_mut().expect("guarded").0).await }, if marks_job.is_some() => {
                marks_job = None;
                if settle_marks(&mut processor, done) {
                    start_marks(&mut marks_job, &mut processor, &store);
                }
            }
            _ = presence.tick(), if presence_job.is_none() => {
                start_marks(&mut marks_job, &mut processor, &store);
                let writes = processor.take_presence(Some(clock.now()));
                if !writes.is_empty() {
                    let store = store.clone();
                    presence_job = Some(AbortOnDrop(tokio::spawn(async move {
                        let result = writes.write(&store).await;
                        (writes, result)
                    })));
                }
            }
            done = async { (&mut presence_job.as_mut().expect("guarded").0).await }, if presence_job.is_some() => {
                presence_job = None;
                settle_presence(&mut processor, done);
            }
            first = rx.recv() => {
                let Some(first) = first else { break };
                batch.clear();
                publishes.clear();
                arrivals.clear();
                // Linger a moment for more: bigger batches, and a burst's messages of one board
                // timed together.
                let linger_until = tokio::time::Instant::now() + options.batch_linger;
                let mut next = Some(first);
                while let Some((p, received, arrived)) = next.take() {
                    batch.push(Incoming { topic: p.topic.clone(), payload: p.payload.to_vec(), received, redelivered: p.dup });
                    publishes.push(p);
                    arrivals.push(arrived);
                    if batch.len() < options.batch_max {
                        next = match rx.try_recv() {
                            Ok(m) => Some(m),
                            Err(_) => tokio::time::timeout_at(linger_until, rx.recv()).await.ok().flatten(),
                        };
                    }
                }
                if !commit(&mut processor, &batch, &mut status, &metrics, &clock, &shutdown).await {
                    break;
                }
                for p in &publishes {
                    if let Err(e) = client.ack(p).await {
                        tracing::warn!("cannot acknowledge a message (the broker will deliver it again): {e}");
                    }
                }
                metrics.acknowledged(&arrivals);
                metrics.counted(processor.stats());
                start_marks(&mut marks_job, &mut processor, &store);
                if let Some(tx) = &on_commit {
                    let _ = tx.send(Committed { payloads: batch.iter().map(|m| m.payload.clone()).collect(), at: std::time::Instant::now() });
                }
            }
            _ = sweep.tick() => {
                let now = clock.now();
                let today = local_date(now, options.tz);
                if rolled_over_on != Some(today) {
                    match processor.midnight_rollover(now).await {
                        Ok(()) => rolled_over_on = Some(today),
                        Err(e) => note_sweep_error(&mut status, &metrics, &clock, &mut sweep_refusal, &e),
                    }
                }
                // Grace period: after a (re)start the broker first hands over what it queued.
                let wall = std::time::Instant::now();
                if now - started >= offline_after && silent_read.due(wall, Duration::ZERO) {
                    if let Err(e) = processor.close_silent(now, offline_after).await {
                        note_sweep_error(&mut status, &metrics, &clock, &mut sweep_refusal, &e);
                    }
                    silent_read.done(wall);
                }
            }
        }
    }
    // Presence and status are soft state: a database too slow to take them must not keep the
    // collector from stopping.
    if let Some(mut job) = presence_job.take() {
        if let Ok(done) = tokio::time::timeout(EXIT_WRITES, &mut job.0).await {
            settle_presence(&mut processor, done);
        }
    }
    if let Some(mut job) = marks_job.take() {
        if let Ok(done) = tokio::time::timeout(EXIT_WRITES, &mut job.0).await {
            settle_marks(&mut processor, done);
        }
    }
    match tokio::time::timeout(EXIT_WRITES, processor.flush_presence(None)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("presence not written at exit: {e}"),
        Err(_) => tracing::warn!(
            "presence not written at exit: the database took longer than {} s",
            EXIT_WRITES.as_secs()
        ),
    }
    // Stopped, said at once: `autovolt health` must not wait for the lease to run out, nor take the
    // disconnection that follows for a broker problem.
    status.stopped_at = Some(clock.now());
    status.broker_connected = false;
    let _ = tokio::time::timeout(EXIT_WRITES, write_status(&processor, &mut status, &clock)).await;
    stop_scheduler.cancel();
    if let Some(mut s) = scheduler {
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut s.0).await;
    }
    let _ = client.disconnect().await;
    let mut task = broker_task;
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut task.0).await;
    tracing::info!("collector stopped: {}", processor.stats().summary());
    Ok(processor.stats().clone())
}

/// Waits between attempts after a transient database error: exponential from 200 ms to 5 s, with
/// jitter so that collectors of a group do not retry in step.
fn retry_delays() -> Backoff {
    Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).with_jitter()
}

/// Processes a batch until it is committed; false if shutdown came first (nothing acknowledged).
///
/// A transient error holds the batch (unacknowledged, at the broker) and retries it. A permanent
/// one is narrowed down: the batch's messages are processed one by one, and a message that fails
/// for good alone is kept as a dead letter and acknowledged with the rest; nothing waits on it.
async fn commit(
    processor: &mut Processor,
    batch: &[Incoming],
    status: &mut CollectorStatus,
    metrics: &CollectorMetrics,
    clock: &Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> bool {
    let mut delays = retry_delays();
    loop {
        match timed(metrics, processor.process(batch)).await {
            Ok(_) => {
                database_back(processor, status, metrics, clock).await;
                return true;
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(
                    "a batch of {} messages was refused ({e}); processing them one by one",
                    batch.len()
                );
                for msg in batch {
                    if !commit_one(processor, msg, status, metrics, clock, shutdown).await {
                        return false;
                    }
                }
                database_back(processor, status, metrics, clock).await;
                return true;
            }
            Err(e) => {
                note_db_error(status, metrics, clock, &e);
                if !pause(&mut delays, shutdown).await {
                    return false;
                }
            }
        }
    }
}

/// How many times a message is refused alone before it is kept as a dead letter: a server that
/// reports a passing condition as a refusal gets a second chance.
const REFUSALS_ALONE: usize = 2;

/// Processes one message of a refused batch until it is committed or kept as a dead letter.
async fn commit_one(
    processor: &mut Processor,
    msg: &Incoming,
    status: &mut CollectorStatus,
    metrics: &CollectorMetrics,
    clock: &Arc<dyn Clock>,
    shutdown: &CancellationToken,
) -> bool {
    let mut delays = retry_delays();
    let mut refused: Option<StoreError> = None;
    let mut refusals = 0;
    loop {
        let result = match &refused {
            None => timed(metrics, processor.process(std::slice::from_ref(msg)))
                .await
                .map(|_| ()),
            Some(e) => processor.dead_letter(msg, e, clock.now()).await,
        };
        match result {
            Ok(()) => return true,
            Err(e) if e.is_permanent() => {
                if refused.is_some() {
                    // Not even its dead letter can be stored: nothing else can be done for it.
                    tracing::error!(topic = %msg.topic, "a refused message cannot be kept as a dead letter either ({e}); dropped");
                    return true;
                }
                refusals += 1;
                if refusals < REFUSALS_ALONE {
                    if !pause(&mut delays, shutdown).await {
                        return false;
                    }
                    continue;
                }
                tracing::warn!(topic = %msg.topic, reason = e.reason_code(), "a message was refused for good ({e}); kept as a dead letter: see `autovolt rejected list`");
                refused = Some(e);
            }
            Err(e) => {
                note_db_error(status, metrics, clock, &e);
                if !pause(&mut delays, shutdown).await {
                    return false;
                }
            }
        }
    }
}

/// Runs one attempt at a batch's writes, timing it for the metrics.
async fn timed<T>(metrics: &CollectorMetrics, attempt: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let result = attempt.await;
    metrics.batch_written(start.elapsed());
    result
}

/// Sleeps the next retry delay; false if shutdown came first.
async fn pause(delays: &mut Backoff, shutdown: &CancellationToken) -> bool {
    let delay = delays.next_wait();
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// Ends an outage, if one was open: the database takes writes again.
async fn database_back(
    processor: &Processor,
    status: &mut CollectorStatus,
    metrics: &CollectorMetrics,
    clock: &Arc<dyn Clock>,
) {
    if let Some(since) = status.database_down_since.take() {
        tracing::info!(
            "the database is back after {} s; acknowledging again",
            (clock.now() - since).num_seconds()
        );
        metrics.database(status);
        write_status(processor, status, clock).await;
    }
}

/// Records how a round of presence writes ended. A failed round is kept for the next one; it does
/// not open a database outage, which is about messages held at the broker (a round still running
/// when the database came back would otherwise report it down again).
fn settle_presence(
    processor: &mut Processor,
    done: Result<(PresenceWrites, Result<(), StoreError>), tokio::task::JoinError>,
) {
    match done {
        Ok((writes, result)) => {
            processor.settle_presence(writes, result.is_ok());
            if let Err(e) = result {
                tracing::debug!("presence not written, kept for the next round: {e}");
            }
        }
        Err(e) => tracing::warn!("presence writes did not finish: {e}"),
    }
}

/// Starts writing the next online marks, unless some are being written or none wait.
fn start_marks(
    job: &mut Option<AbortOnDrop<(OnlineMarks, Result<(), StoreError>)>>,
    processor: &mut Processor,
    store: &Store,
) {
    if job.is_some() {
        return;
    }
    let marks = processor.take_online_marks(false);
    if marks.is_empty() {
        return;
    }
    let store = store.clone();
    *job = Some(AbortOnDrop(tokio::spawn(async move {
        let result = marks.write(&store).await;
        (marks, result)
    })));
}

/// Records how online marks ended; whether they were written (failed ones wait for the next
/// presence round).
fn settle_marks(
    processor: &mut Processor,
    done: Result<(OnlineMarks, Result<(), StoreError>), tokio::task::JoinError>,
) -> bool {
    match done {
        Ok((marks, result)) => {
            let ok = result.is_ok();
            processor.settle_online_marks(marks, ok);
            if let Err(e) = result {
                tracing::debug!("boards not marked online, kept for the next round: {e}");
            }
            ok
        }
        Err(e) => {
            tracing::warn!("online marks did not finish: {e}");
            false
        }
    }
}

/// A failed sweep: a transient error is a database outage like a batch's; a permanent one (a stored
/// document that breaks a rule) is not, and is logged when it first appears.
fn note_sweep_error(
    status: &mut CollectorStatus,
    metrics: &CollectorMetrics,
    clock: &Arc<dyn Clock>,
    last: &mut Option<String>,
    e: &StoreError,
) {
    if !e.is_permanent() {
        note_db_error(status, metrics, clock, e);
        return;
    }
    let text = e.to_string();
    if last.as_deref() != Some(text.as_str()) {
        tracing::warn!(
            "the sweep (midnight, silent boards) was refused: {text}; retrying it every round"
        );
        *last = Some(text);
    }
}

fn note_db_error(
    status: &mut CollectorStatus,
    metrics: &CollectorMetrics,
    clock: &Arc<dyn Clock>,
    e: &StoreError,
) {
    let text = e.to_string();
    if status.database_down_since.is_none() {
        status.database_down_since = Some(clock.now());
        status.database_outages += 1;
        tracing::error!("{text}; holding messages at the broker (unacknowledged) and retrying");
        metrics.database(status);
    } else {
        tracing::debug!("the database still fails: {text}");
    }
    status.last_database_error = Some(text.chars().take(300).collect());
}

async fn write_status(processor: &Processor, status: &mut CollectorStatus, clock: &Arc<dyn Clock>) {
    let s = processor.stats();
    status.updated_at = clock.now();
    status.received = s.received;
    status.committed = s.committed;
    status.transitions = s.transitions;
    status.ledger_rows = s.ledger_rows;
    status.rejected = s.rejected.clone();
    status.dead_letters = s.dead_letters;
    if let Err(e) = processor.store().write_collector_status(status).await {
        tracing::debug!("collector status not written: {e}");
    }
}
