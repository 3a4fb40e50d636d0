//! What a collector shows Prometheus (`autovolt collect --metrics ADDR`): its own counts (the same
//! [`Stats`] its status record and exit summary give), how long acknowledging and the database
//! take, the broker connection, and the intervals open on the campus. Nothing here names a board,
//! a secret or a server address: counts, reason codes and durations only.

use super::stats::Stats;
use crate::domain::waste::{campus_waste, WasteRule};
use crate::store::telemetry::CollectorStatus;
use crate::store::Store;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The shortest time between two reads of the campus gauges, however often they are scraped.
pub const CAMPUS_GAUGES_EVERY: Duration = Duration::from_secs(5);

/// The content type of what [`CollectorMetrics::render`] gives (Prometheus' text format).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds, in seconds, for latencies from a millisecond to a minute.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

const ACK_LAG: &str = "autovolt_collector_ack_lag_seconds";
const BATCH_WRITE: &str = "autovolt_collector_batch_write_seconds";
const REJECTED: &str = "autovolt_collector_messages_rejected_total";
const TRANSITIONS: &str = "autovolt_collector_relay_transitions_total";
const SCHEDULE_RUNS: &str = "autovolt_collector_schedule_runs_total";

/// Every family the collector may show, with its help text; a family appears once it has a value.
const FAMILIES: &[(&str, &str)] = &[
    ("autovolt_build_info", "The autovolt build that serves these metrics."),
    ("autovolt_collector_messages_received_total", "Device messages taken from the broker."),
    ("autovolt_collector_messages_applied_total", "Device messages whose effects are committed to the database."),
    (REJECTED, "Device messages refused, by reason (wrong_secret, unregistered, not_json, ...)."),
    ("autovolt_collector_dead_letters_total", "Refused messages kept as dead letters (autovolt rejected list)."),
    (TRANSITIONS, "Relay changes: applied, stale (older than the switch's last change) or contended (left to the next snapshot)."),
    ("autovolt_collector_ledger_rows_total", "Energy ledger rows written."),
    ("autovolt_collector_telemetry_inserted_total", "Raw telemetry documents inserted."),
    ("autovolt_collector_devices_offline_total", "Boards this collector took offline after silence."),
    ("autovolt_collector_board_reboots_total", "New boots the boards' clocks showed (open intervals closed at the last certain time)."),
    ("autovolt_collector_board_reboots_unsure_total", "Of those, clock jumps that a reboot or a delivery held back could explain (rows marked)."),
    (ACK_LAG, "From a message's arrival to its acknowledgement, after its batch is committed."),
    (BATCH_WRITE, "Database time of one attempt at a batch's writes."),
    ("autovolt_collector_database_down", "1 while the database fails and messages wait at the broker."),
    ("autovolt_collector_database_outages_total", "Database outages since the collector started."),
    ("autovolt_collector_broker_connected", "1 while the collector is connected and subscribed."),
    ("autovolt_collector_broker_reconnects_total", "Connections to the broker after the first."),
    (SCHEDULE_RUNS, "Scheduled runs this collector claimed, by outcome: ran, or missed (due while no collector was running; not replayed)."),
    ("autovolt_open_intervals", "Relays the devices record as on: energy intervals not yet closed."),
    ("autovolt_open_power_watts", "The power of the open intervals, by the ledger's ratings."),
    ("autovolt_waste_inr_per_hour", "Rupees an hour of the loads on in classrooms where nobody has moved for waste_no_motion_minutes, or outside campus_hours (the dashboard's waste rule)."),
    ("autovolt_waste_classrooms", "Classrooms wasting now, by the same rule."),
    ("autovolt_database_ping_seconds", "Round trip of a ping to the database."),
    ("autovolt_devices", "Boards registered."),
    ("autovolt_devices_offline", "Boards the database records as offline (silent longer than offline_after_secs)."),
    ("autovolt_last_aggregation_timestamp_seconds", "When the daily aggregation last finished, by its record (absent before the first)."),
    ("autovolt_campus_gauges_read_timestamp_seconds", "When the open intervals, the devices, the last aggregation and the ping were last read."),
];

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// What turns a recorder's values into the text a scrape gets.
pub trait Exposition: Send + Sync {
    /// The text a scrape gets.
    fn render(&self) -> String;
    /// Work between scrapes (folding waiting observations), if the recorder needs any.
    fn upkeep(&self) {}
}

impl Exposition for PrometheusHandle {
    fn render(&self) -> String {
        PrometheusHandle::render(self)
    }

    fn upkeep(&self) {
        self.run_upkeep();
    }
}

/// A collector's metrics, shared between the collector, which records, and the endpoint, which
/// renders. Kept in a recorder of its own (not the process-wide one), so that two collectors in
/// one process, as in tests, count apart.
pub struct CollectorMetrics {
    recorder: Box<dyn Recorder + Send + Sync>,
    exposition: Box<dyn Exposition>,
    counts: StatsCounters,
    ack_lag: Histogram,
    batch_writes: Histogram,
    database_down: Gauge,
    database_outages: Counter,
    broker_connected: Gauge,
    reconnects: Counter,
    schedule_ran: Counter,
    schedule_missed: Counter,
    /// Registered at the first read: until then absent rather than a made-up zero.
    campus: OnceLock<CampusGauges>,
    /// The last aggregation's timestamp, registered once there is one.
    last_aggregation: OnceLock<Gauge>,
    /// Rejection reasons seen so far (a handful of codes).
    rejected: Mutex<BTreeMap<String, Counter>>,
    /// A scrape asks for fresh campus gauges.
    scraped: Notify,
}

impl std::fmt::Debug for CollectorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CollectorMetrics").finish_non_exhaustive()
    }
}

/// The counters that mirror [`Stats`].
struct StatsCounters {
    received: Counter,
    committed: Counter,
    dead_letters: Counter,
    applied: Counter,
    stale: Counter,
    contended: Counter,
    ledger_rows: Counter,
    telemetry_inserted: Counter,
    went_offline: Counter,
    reboots: Counter,
    unsure_boots: Counter,
}

/// What is read from the database rather than counted.
struct CampusGauges {
    open_intervals: Gauge,
    open_power_w: Gauge,
    waste_inr_per_hour: Gauge,
    waste_classrooms: Gauge,
    ping: Gauge,
    devices: Gauge,
    devices_offline: Gauge,
    read_at: Gauge,
}

/// What one read of the campus gave.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CampusRead {
    open_intervals: usize,
    open_power_w: f64,
    waste_inr_per_hour: f64,
    waste_classrooms: usize,
    ping: Duration,
    devices: u64,
    devices_offline: u64,
    last_aggregation: Option<SystemTime>,
    read_at: SystemTime,
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Default for CollectorMetrics {
    /// Recorded by `metrics-exporter-prometheus`, in Prometheus' text format.
    fn default() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                LATENCY_BUCKETS,
            )
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        CollectorMetrics::with_recorder(recorder, handle)
    }
}

impl CollectorMetrics {
    /// Records into any recorder of the `metrics` facade (the collector bench compares another
    /// crate's this way), rendered by `exposition`. Histograms take [`LATENCY_BUCKETS`].
    pub fn with_recorder(
        recorder: impl Recorder + Send + Sync + 'static,
        exposition: impl Exposition + 'static,
    ) -> Self {
        for (name, help) in FAMILIES {
            let (name, help) = (KeyName::from_const_str(name), SharedString::const_str(help));
            // One description serves every kind; the kind comes from how a family is registered.
            recorder.describe_counter(name, None, help);
        }
        let counter =
            |name: &'static str| recorder.register_counter(&Key::from_static_name(name), &METADATA);
        let gauge =
            |name: &'static str| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        let labelled = |name: &'static str, label: &'static str, value: &'static str| {
            recorder.register_counter(
                &Key::from_parts(name, vec![Label::from_static_parts(label, value)]),
                &METADATA,
            )
        };
        recorder
            .register_gauge(
                &Key::from_parts(
                    "autovolt_build_info",
                    vec![Label::from_static_parts(
                        "version",
                        env!("AUTOVOLT_VERSION"),
                    )],
                ),
                &METADATA,
            )
            .set(1.0);
        let counts = StatsCounters {
            received: counter("autovolt_collector_messages_received_total"),
            committed: counter("autovolt_collector_messages_applied_total"),
            dead_letters: counter("autovolt_collector_dead_letters_total"),
            applied: labelled(TRANSITIONS, "outcome", "applied"),
            stale: labelled(TRANSITIONS, "outcome", "stale"),
            contended: labelled(TRANSITIONS, "outcome", "contended"),
            ledger_rows: counter("autovolt_collector_ledger_rows_total"),
            telemetry_inserted: counter("autovolt_collector_telemetry_inserted_total"),
            went_offline: counter("autovolt_collector_devices_offline_total"),
            reboots: counter("autovolt_collector_board_reboots_total"),
            unsure_boots: counter("autovolt_collector_board_reboots_unsure_total"),
        };
        let histogram = |name: &'static str| {
            recorder.register_histogram(&Key::from_static_name(name), &METADATA)
        };
        let database_down = gauge("autovolt_collector_database_down");
        database_down.set(0.0);
        let broker_connected = gauge("autovolt_collector_broker_connected");
        broker_connected.set(0.0);
        CollectorMetrics {
            counts,
            ack_lag: histogram(ACK_LAG),
            batch_writes: histogram(BATCH_WRITE),
            database_down,
            database_outages: counter("autovolt_collector_database_outages_total"),
            broker_connected,
            reconnects: counter("autovolt_collector_broker_reconnects_total"),
            schedule_ran: labelled(SCHEDULE_RUNS, "outcome", "ran"),
            schedule_missed: labelled(SCHEDULE_RUNS, "outcome", "missed"),
            campus: OnceLock::new(),
            last_aggregation: OnceLock::new(),
            rejected: Mutex::new(BTreeMap::new()),
            scraped: Notify::new(),
            recorder: Box::new(recorder),
            exposition: Box::new(exposition),
        }
    }

    fn gauge(&self, name: &'static str) -> Gauge {
        self.recorder
            .register_gauge(&Key::from_static_name(name), &METADATA)
    }

    /// The collector's counts as they are now.
    pub fn counted(&self, stats: &Stats) {
        let c = &self.counts;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        c.received.absolute(n(stats.received));
        c.committed.absolute(n(stats.committed));
        c.dead_letters.absolute(n(stats.dead_letters));
        c.applied.absolute(n(stats.transitions));
        c.stale.absolute(n(stats.stale));
        c.contended.absolute(n(stats.contended));
        c.ledger_rows.absolute(n(stats.ledger_rows));
        c.telemetry_inserted.absolute(stats.telemetry_inserted);
        c.went_offline.absolute(n(stats.went_offline));
        c.reboots.absolute(n(stats.reboots));
        c.unsure_boots.absolute(n(stats.unsure_boots));
        if stats.rejected.is_empty() {
            return;
        }
        // A panic elsewhere while holding it leaves plain handles behind, still worth using.
        let mut rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
        for (reason, count) in &stats.rejected {
            let counter = match rejected.get(reason) {
                Some(c) => c,
                None => rejected.entry(reason.clone()).or_insert_with(|| {
                    self.recorder.register_counter(
                        &Key::from_parts(REJECTED, vec![Label::new("reason", reason.clone())]),
                        &METADATA,
                    )
                }),
            };
            counter.absolute(n(*count));
        }
    }

    /// Whether the database is down, and how many outages there were, as the status record says.
    pub fn database(&self, status: &CollectorStatus) {
        self.database_down
            .set(f64::from(u8::from(status.database_down_since.is_some())));
        self.database_outages
            .absolute(u64::try_from(status.database_outages).unwrap_or(0));
    }

    /// Messages acknowledged now, each with the moment it arrived.
    pub fn acknowledged(&self, arrived: &[std::time::Instant]) {
        let now = std::time::Instant::now();
        for a in arrived {
            self.ack_lag.record(now.duration_since(*a).as_secs_f64());
        }
    }

    /// One attempt at a batch's writes took `took` (failed attempts too: a slow failure is latency).
    pub fn batch_written(&self, took: Duration) {
        self.batch_writes.record(took.as_secs_f64());
    }

    pub fn broker_connected(&self, connected: bool) {
        self.broker_connected.set(f64::from(u8::from(connected)));
    }

    /// A connection to the broker after the first.
    pub fn reconnected(&self) {
        self.reconnects.increment(1);
    }

    /// A scheduled run this collector claimed: made, or recorded as missed.
    pub fn schedule_run(&self, missed: bool) {
        if missed {
            self.schedule_missed.increment(1);
        } else {
            self.schedule_ran.increment(1);
        }
    }

    /// The text a scrape gets (Prometheus' text format); asks for fresh campus gauges for the
    /// next one.
    pub fn render(&self) -> String {
        self.scraped.notify_one();
        self.exposition.render()
    }

    /// Folds the histograms' waiting observations into their buckets (a scrape does too): called
    /// by the collector every few seconds, so that one nobody scrapes keeps no observations.
    pub fn upkeep(&self) {
        self.exposition.upkeep();
    }

    fn show_campus(&self, read: &CampusRead) {
        let g = self.campus.get_or_init(|| CampusGauges {
            open_intervals: self.gauge("autovolt_open_intervals"),
            open_power_w: self.gauge("autovolt_open_power_watts"),
            waste_inr_per_hour: self.gauge("autovolt_waste_inr_per_hour"),
            waste_classrooms: self.gauge("autovolt_waste_classrooms"),
            ping: self.gauge("autovolt_database_ping_seconds"),
            devices: self.gauge("autovolt_devices"),
            devices_offline: self.gauge("autovolt_devices_offline"),
            read_at: self.gauge("autovolt_campus_gauges_read_timestamp_seconds"),
        });
        g.open_intervals.set(read.open_intervals as f64);
        g.open_power_w.set(read.open_power_w);
        g.waste_inr_per_hour.set(read.waste_inr_per_hour);
        g.waste_classrooms.set(read.waste_classrooms as f64);
        g.ping.set(read.ping.as_secs_f64());
        g.devices.set(read.devices as f64);
        g.devices_offline.set(read.devices_offline as f64);
        g.read_at.set(unix_seconds(read.read_at));
        if let Some(t) = read.last_aggregation {
            self.last_aggregation
                .get_or_init(|| self.gauge("autovolt_last_aggregation_timestamp_seconds"))
                .set(unix_seconds(t));
        }
    }

    /// Reads the campus gauges (open intervals, their power, the waste by `waste`, the devices
    /// offline, the last aggregation, the database's ping) at start and then when scraped, at
    /// most every `min_gap`: nobody scraping costs the database nothing. Each read is the small
    /// collections (devices, classrooms, tariffs), counts and lookups: O(fleet), none of it
    /// grows with history. A failed read keeps the last values, whose timestamp then ages.
    pub async fn keep_campus_gauges(
        &self,
        store: Store,
        waste: WasteRule,
        min_gap: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            match read_campus(&store, &waste).await {
                Ok(c) => self.show_campus(&c),
                Err(e) => tracing::debug!("metrics: cannot read the campus gauges: {e}"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(min_gap) => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.scraped.notified() => {}
            }
        }
    }
}

async fn read_campus(
    store: &Store,
    waste: &WasteRule,
) -> Result<CampusRead, crate::store::StoreError> {
    let ping = store.ping().await?;
    let (open, devices) = store.open_switches_and_devices().await?;
    let now = chrono::Utc::now();
    let tariff = store.tariff_book(now, now).await?;
    let (waste_inr_per_hour, waste_classrooms) = campus_waste(waste, now, &open, &devices, &tariff);
    let (devices, devices_offline) = store.device_counts().await?;
    let last_aggregation = store.last_aggregation().await?.map(SystemTime::from);
    Ok(CampusRead {
        open_intervals: open.len(),
        open_power_w: open.iter().map(|o| o.power_w).sum(),
        waste_inr_per_hour,
        waste_classrooms,
        ping,
        devices,
        devices_offline,
        last_aggregation,
        read_at: SystemTime::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `line` starts with (name and labels), if there is one.
    fn sample(text: &str, line: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn the_collectors_counts_are_shown_as_counted() {
        let m = CollectorMetrics::default();
        let mut stats = Stats {
            received: 7,
            committed: 5,
            transitions: 3,
            stale: 1,
            dead_letters: 1,
            ..Stats::default()
        };
        stats.reject("not_json");
        stats.reject("wrong_secret");
        stats.reject("wrong_secret");
        m.counted(&stats);
        let t0 = std::time::Instant::now();
        m.acknowledged(&[t0, t0]);
        m.batch_written(Duration::from_millis(3));
        m.broker_connected(true);
        m.reconnected();
        let text = m.render();
        let at = |l| sample(&text, l);
        assert_eq!(at("autovolt_collector_messages_received_total"), Some(7.0));
        assert_eq!(at("autovolt_collector_messages_applied_total"), Some(5.0));
        assert_eq!(
            at("autovolt_collector_messages_rejected_total{reason=\"wrong_secret\"}"),
            Some(2.0)
        );
        assert_eq!(
            at("autovolt_collector_messages_rejected_total{reason=\"not_json\"}"),
            Some(1.0)
        );
        assert_eq!(
            at("autovolt_collector_relay_transitions_total{outcome=\"stale\"}"),
            Some(1.0)
        );
        assert_eq!(at("autovolt_collector_ack_lag_seconds_count"), Some(2.0));
        assert_eq!(
            at("autovolt_collector_batch_write_seconds_bucket{le=\"0.005\"}"),
            Some(1.0)
        );
        assert_eq!(
            at("autovolt_collector_batch_write_seconds_bucket{le=\"0.001\"}"),
            Some(0.0)
        );
        assert_eq!(at("autovolt_collector_broker_connected"), Some(1.0));
        assert_eq!(at("autovolt_collector_broker_reconnects_total"), Some(1.0));
        assert_eq!(at("autovolt_collector_database_down"), Some(0.0));
        assert!(text.contains("autovolt_build_info{version=\""), "{text}");
        assert_eq!(
            at("autovolt_collector_schedule_runs_total{outcome=\"missed\"}"),
            Some(0.0)
        );
        // Not read yet: absent rather than a made-up zero.
        assert_eq!(at("autovolt_open_intervals"), None);
        assert_eq!(at("autovolt_last_aggregation_timestamp_seconds"), None);
        // Later counts replace the earlier ones; a reason seen once stays.
        stats.received = 9;
        stats.reject("not_json");
        m.counted(&stats);
        m.schedule_run(true);
        let t0 = std::time::SystemTime::now();
        m.show_campus(&CampusRead {
            open_intervals: 2,
            open_power_w: 1500.0,
            waste_inr_per_hour: 12.0,
            waste_classrooms: 1,
            ping: Duration::from_millis(2),
            devices: 3,
            devices_offline: 1,
            last_aggregation: Some(t0),
            read_at: t0,
        });
        let text = m.render();
        let at = |l| sample(&text, l);
        assert_eq!(at("autovolt_collector_messages_received_total"), Some(9.0));
        assert_eq!(
            at("autovolt_collector_messages_rejected_total{reason=\"not_json\"}"),
            Some(2.0)
        );
        assert_eq!(
            at("autovolt_collector_schedule_runs_total{outcome=\"missed\"}"),
            Some(1.0)
        );
        assert_eq!(at("autovolt_open_intervals"), Some(2.0));
        assert_eq!(at("autovolt_waste_inr_per_hour"), Some(12.0));
        assert_eq!(at("autovolt_waste_classrooms"), Some(1.0));
        assert_eq!(at("autovolt_devices_offline"), Some(1.0));
        assert_eq!(at("autovolt_devices"), Some(3.0));
        assert!(at("autovolt_last_aggregation_timestamp_seconds").is_some_and(|t| t > 0.0));
        // Every family the code names has help text.
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let family = l.split(' ').nth(2).unwrap_or_default();
            assert!(FAMILIES.iter().any(|(n, _)| *n == family), "{l}");
            assert!(text.contains(&format!("# HELP {family} ")), "{l}");
        }
        // Every sample line belongs to a family that says what it is.
        for l in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
                .unwrap_or(name);
            assert!(text.contains(&format!("# TYPE {family} ")), "{l}");
        }
    }
}
