//! What a collector shows Prometheus (`autovolt collect --metrics ADDR`): its own counts (the same
//! [`Stats`] its status record and exit summary give), how long acknowledging and the database
//! take, the broker connection, and the intervals open on the campus. Nothing here names a board,
//! a secret or a server address: counts, reason codes and durations only.

use super::stats::Stats;
use crate::prometheus::{Exposition, Histogram, LATENCY_BUCKETS};
use crate::store::telemetry::CollectorStatus;
use crate::store::Store;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The shortest time between two reads of the campus gauges, however often they are scraped.
pub const CAMPUS_GAUGES_EVERY: Duration = Duration::from_secs(5);

/// A collector's metrics, shared between the collector, which records, and the endpoint, which
/// renders.
#[derive(Debug)]
pub struct CollectorMetrics {
    state: Mutex<State>,
    broker_connected: AtomicBool,
    reconnects: AtomicU64,
    /// A scrape asks for fresh campus gauges.
    scraped: Notify,
}

#[derive(Debug)]
struct State {
    stats: Stats,
    ack_lag: Histogram,
    batch_writes: Histogram,
    database_down: bool,
    database_outages: i64,
    campus: Option<CampusGauges>,
}

/// What is read from the database rather than counted.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CampusGauges {
    open_intervals: usize,
    open_power_w: f64,
    ping: Duration,
    read_at: SystemTime,
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        CollectorMetrics {
            state: Mutex::new(State {
                stats: Stats::default(),
                ack_lag: Histogram::new(LATENCY_BUCKETS),
                batch_writes: Histogram::new(LATENCY_BUCKETS),
                database_down: false,
                database_outages: 0,
                campus: None,
            }),
            broker_connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            scraped: Notify::new(),
        }
    }
}

impl CollectorMetrics {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding it leaves plain numbers behind, still worth showing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The collector's counts as they are now.
    pub fn counted(&self, stats: &Stats) {
        self.state().stats.clone_from(stats);
    }

    /// Whether the database is down, and how many outages there were, as the status record says.
    pub fn database(&self, status: &CollectorStatus) {
        let mut s = self.state();
        s.database_down = status.database_down_since.is_some();
        s.database_outages = status.database_outages;
    }

    /// Messages acknowledged now, each with the moment it arrived.
    pub fn acknowledged(&self, arrived: &[std::time::Instant]) {
        let now = std::time::Instant::now();
        let mut s = self.state();
        for a in arrived {
            s.ack_lag.observe(now.duration_since(*a).as_secs_f64());
        }
    }

    /// One attempt at a batch's writes took `took` (failed attempts too: a slow failure is latency).
    pub fn batch_written(&self, took: Duration) {
        self.state().batch_writes.observe(took.as_secs_f64());
    }

    pub fn broker_connected(&self, connected: bool) {
        self.broker_connected.store(connected, Ordering::Relaxed);
    }

    /// A connection to the broker after the first.
    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// The text a scrape gets; asks for fresh campus gauges for the next one.
    pub fn render(&self) -> String {
        self.scraped.notify_one();
        let mut e = Exposition::default();
        e.info(
            "autovolt_build_info",
            "The autovolt build that serves these metrics.",
            &[("version", env!("AUTOVOLT_VERSION"))],
        );
        {
            let s = self.state();
            let n = &s.stats;
            e.counter(
                "autovolt_collector_messages_received_total",
                "Device messages taken from the broker.",
                n.received as f64,
            );
            e.counter(
                "autovolt_collector_messages_applied_total",
                "Device messages whose effects are committed to the database.",
                n.committed as f64,
            );
            e.counters(
                "autovolt_collector_messages_rejected_total",
                "Device messages refused, by reason (wrong_secret, unregistered, not_json, ...).",
                "reason",
                n.rejected.iter().map(|(k, v)| (k.as_str(), *v as f64)),
            );
            e.counter(
                "autovolt_collector_dead_letters_total",
                "Refused messages kept as dead letters (autovolt rejected list).",
                n.dead_letters as f64,
            );
            e.counters(
                "autovolt_collector_relay_transitions_total",
                "Relay changes: applied, stale (older than the switch's last change) or contended (left to the next snapshot).",
                "outcome",
                [
                    ("applied", n.transitions as f64),
                    ("stale", n.stale as f64),
                    ("contended", n.contended as f64),
                ],
            );
            e.counter(
                "autovolt_collector_ledger_rows_total",
                "Energy ledger rows written.",
                n.ledger_rows as f64,
            );
            e.counter(
                "autovolt_collector_telemetry_inserted_total",
                "Raw telemetry documents inserted.",
                n.telemetry_inserted as f64,
            );
            e.counter(
                "autovolt_collector_devices_offline_total",
                "Boards this collector took offline after silence.",
                n.went_offline as f64,
            );
            e.histogram(
                "autovolt_collector_ack_lag_seconds",
                "From a message's arrival to its acknowledgement, after its batch is committed.",
                &s.ack_lag,
            );
            e.histogram(
                "autovolt_collector_batch_write_seconds",
                "Database time of one attempt at a batch's writes.",
                &s.batch_writes,
            );
            e.gauge(
                "autovolt_collector_database_down",
                "1 while the database fails and messages wait at the broker.",
                f64::from(u8::from(s.database_down)),
            );
            e.counter(
                "autovolt_collector_database_outages_total",
                "Database outages since the collector started.",
                s.database_outages as f64,
            );
            if let Some(c) = s.campus {
                e.gauge(
                    "autovolt_open_intervals",
                    "Relays the devices record as on: energy intervals not yet closed.",
                    c.open_intervals as f64,
                );
                e.gauge(
                    "autovolt_open_power_watts",
                    "The power of the open intervals, by the ledger's ratings.",
                    c.open_power_w,
                );
                e.gauge(
                    "autovolt_database_ping_seconds",
                    "Round trip of a ping to the database.",
                    c.ping.as_secs_f64(),
                );
                e.gauge(
                    "autovolt_campus_gauges_read_timestamp_seconds",
                    "When the open intervals and the ping were last read.",
                    c.read_at
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                );
            }
        }
        e.gauge(
            "autovolt_collector_broker_connected",
            "1 while the collector is connected and subscribed.",
            f64::from(u8::from(self.broker_connected.load(Ordering::Relaxed))),
        );
        e.counter(
            "autovolt_collector_broker_reconnects_total",
            "Connections to the broker after the first.",
            self.reconnects.load(Ordering::Relaxed) as f64,
        );
        e.finish()
    }

    /// Reads the campus gauges (open intervals, their power, the database's ping) at start and
    /// then when scraped, at most every `min_gap`: nobody scraping costs the database nothing.
    /// A failed read keeps the last values, whose timestamp then ages.
    pub async fn keep_campus_gauges(
        &self,
        store: Store,
        min_gap: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            match read_campus(&store).await {
                Ok(c) => self.state().campus = Some(c),
                Err(e) => tracing::debug!("metrics: cannot read the open intervals: {e}"),
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

async fn read_campus(store: &Store) -> Result<CampusGauges, crate::store::StoreError> {
    let ping = store.ping().await?;
    let open = store.open_switches().await?;
    Ok(CampusGauges {
        open_intervals: open.len(),
        open_power_w: open.iter().map(|o| o.power_w).sum(),
        ping,
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
        // Not read yet: absent rather than a made-up zero.
        assert_eq!(at("autovolt_open_intervals"), None);
        // Every sample line belongs to a family that says what it is.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
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
