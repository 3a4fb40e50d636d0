//! The collector's metrics on its hot path, with the two well-kept Prometheus crates side by side
//! in one run: what recording a batch costs (one acknowledgement-lag observation per message, the
//! batch's write time, the counts set from the collector's [`Stats`]) and what a scrape's render
//! costs. `metrics-exporter-prometheus` is the one the collector uses ([`CollectorMetrics`]);
//! `prometheus-client` records the same figures the way its API allows (counters only go up, so
//! the counts are added as differences).
//!
//! Sizes (environment): BENCH_BATCHES (20000) batches of BENCH_BATCH (100) messages; BENCH_RENDERS
//! (2000) renders.

use autovolt::collect::metrics::LATENCY_BUCKETS;
use autovolt::collect::{CollectorMetrics, Stats};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::{Duration, Instant};

mod common;
use common::{env_num, percentile};

/// The same figures as the collector's, in prometheus-client's types.
struct ClientMetrics {
    registry: Registry,
    received: Counter,
    committed: Counter,
    ledger_rows: Counter,
    transitions: Family<Vec<(String, String)>, Counter>,
    rejected: Family<Vec<(String, String)>, Counter>,
    ack_lag: Histogram,
    batch_writes: Histogram,
}

impl ClientMetrics {
    fn new() -> ClientMetrics {
        let mut registry = Registry::default();
        let (received, committed, ledger_rows) =
            (Counter::default(), Counter::default(), Counter::default());
        let transitions = Family::<Vec<(String, String)>, Counter>::default();
        let rejected = Family::<Vec<(String, String)>, Counter>::default();
        let ack_lag = Histogram::new(LATENCY_BUCKETS.iter().copied());
        let batch_writes = Histogram::new(LATENCY_BUCKETS.iter().copied());
        registry.register(
            "autovolt_collector_messages_received",
            "Received.",
            received.clone(),
        );
        registry.register(
            "autovolt_collector_messages_applied",
            "Applied.",
            committed.clone(),
        );
        registry.register(
            "autovolt_collector_ledger_rows",
            "Rows.",
            ledger_rows.clone(),
        );
        registry.register(
            "autovolt_collector_relay_transitions",
            "Transitions.",
            transitions.clone(),
        );
        registry.register(
            "autovolt_collector_messages_rejected",
            "Rejected.",
            rejected.clone(),
        );
        registry.register(
            "autovolt_collector_ack_lag_seconds",
            "Lag.",
            ack_lag.clone(),
        );
        registry.register(
            "autovolt_collector_batch_write_seconds",
            "Writes.",
            batch_writes.clone(),
        );
        ClientMetrics {
            registry,
            received,
            committed,
            ledger_rows,
            transitions,
            rejected,
            ack_lag,
            batch_writes,
        }
    }

    fn counted(&self, now: &Stats, before: &Stats) {
        let d = |a: i64, b: i64| u64::try_from(a - b).unwrap_or(0);
        self.received.inc_by(d(now.received, before.received));
        self.committed.inc_by(d(now.committed, before.committed));
        self.ledger_rows
            .inc_by(d(now.ledger_rows, before.ledger_rows));
        self.transitions
            .get_or_create(&vec![("outcome".into(), "applied".into())])
            .inc_by(d(now.transitions, before.transitions));
        for (reason, n) in &now.rejected {
            let was = before.rejected.get(reason).copied().unwrap_or(0);
            self.rejected
                .get_or_create(&vec![("reason".into(), reason.clone())])
                .inc_by(d(*n, was));
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("a String takes any text");
        out
    }
}

/// Ns per message of recording `batches` batches of `batch` with `record`, and the p99 of a batch.
fn record_cost(
    batches: u64,
    batch: usize,
    mut record: impl FnMut(&Stats, &[Instant]),
) -> (f64, f64) {
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
        record(&stats, &arrived);
        per_batch.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = start.elapsed();
    per_batch.sort_by(f64::total_cmp);
    (
        total.as_secs_f64() * 1e9 / (batches as f64 * batch as f64),
        percentile(&per_batch, 0.99),
    )
}

/// Mean µs of a render, and the text's size.
fn render_cost(renders: u64, render: impl Fn() -> String) -> (f64, usize) {
    let size = render().len();
    let start = Instant::now();
    for _ in 0..renders {
        std::hint::black_box(render());
    }
    (start.elapsed().as_secs_f64() * 1e6 / renders as f64, size)
}

fn main() {
    let batches = env_num("BENCH_BATCHES", 20_000);
    let batch = env_num("BENCH_BATCH", 100) as usize;
    let renders = env_num("BENCH_RENDERS", 2_000);

    let exporter = CollectorMetrics::default();
    let (exporter_ns, exporter_p99) = record_cost(batches, batch, |stats, arrived| {
        exporter.acknowledged(arrived);
        exporter.batch_written(Duration::from_millis(3));
        exporter.counted(stats);
    });
    // What a collector does every few seconds, and a scrape does too.
    exporter.upkeep();
    let (exporter_render, exporter_size) = render_cost(renders, || exporter.render());

    let client = ClientMetrics::new();
    let mut before = Stats::default();
    let (client_ns, client_p99) = record_cost(batches, batch, |stats, arrived| {
        let now = Instant::now();
        for a in arrived {
            client.ack_lag.observe(now.duration_since(*a).as_secs_f64());
        }
        client.batch_writes.observe(0.003);
        client.counted(stats, &before);
        before.clone_from(stats);
    });
    let (client_render, client_size) = render_cost(renders, || client.render());

    println!("metrics on the collector's hot path: {batches} batches of {batch} messages, {renders} renders");
    println!(
        "{:<34} {:>12} {:>16} {:>14} {:>12} {:>10}",
        "crate", "ns/message", "messages/s", "batch p99 µs", "render µs", "bytes"
    );
    for (name, ns, p99, render, size) in [
        (
            "metrics-exporter-prometheus 0.17",
            exporter_ns,
            exporter_p99,
            exporter_render,
            exporter_size,
        ),
        (
            "prometheus-client 0.24",
            client_ns,
            client_p99,
            client_render,
            client_size,
        ),
    ] {
        println!(
            "{name:<34} {ns:>12.1} {:>16.0} {p99:>14.1} {render:>12.1} {size:>10}",
            1e9 / ns
        );
    }
}
