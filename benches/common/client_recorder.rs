//! `prometheus-client` (the Prometheus project's Rust client) behind the `metrics` facade, so that
//! the collector records into it through the same [`CollectorMetrics`] calls as into the exporter
//! it ships with: the two crates compared on the same hot path, the facade's dynamic call paid by
//! both.
//!
//! Each family is a `prometheus_client` `Family` keyed by its labels, registered on first use
//! (counters without their `_total`, which the crate adds); a handle holds the crate's own metric,
//! which shares its value with the registry.
//!
//! [`CollectorMetrics`]: autovolt::collect::CollectorMetrics

use autovolt::collect::metrics::{Exposition, LATENCY_BUCKETS};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter as ClientCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as ClientGauge;
use prometheus_client::metrics::histogram::Histogram as ClientHistogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Labels = Vec<(String, String)>;
type FloatGauge = ClientGauge<f64, AtomicU64>;

fn latency_histogram() -> ClientHistogram {
    ClientHistogram::new(LATENCY_BUCKETS.iter().copied())
}

#[derive(Clone)]
enum Kind {
    Counter(Family<Labels, ClientCounter>),
    Gauge(Family<Labels, FloatGauge>),
    Histogram(Family<Labels, ClientHistogram, fn() -> ClientHistogram>),
}

#[derive(Default)]
struct Families {
    registry: Registry,
    help: HashMap<String, String>,
    kinds: HashMap<String, Kind>,
}

/// A `metrics` recorder whose values live in a `prometheus_client` registry.
#[derive(Clone, Default)]
pub struct ClientRecorder {
    families: Arc<Mutex<Families>>,
}

impl ClientRecorder {
    /// The family named by `key`, registered with `make` the first time.
    fn family(&self, key: &Key, make: impl FnOnce() -> Kind) -> (Kind, Labels) {
        let labels = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let mut f = self.families.lock().expect("not poisoned");
        if let Some(k) = f.kinds.get(key.name()) {
            return (k.clone(), labels);
        }
        let kind = make();
        let help = f.help.get(key.name()).cloned().unwrap_or_default();
        let name = key.name().strip_suffix("_total").unwrap_or(key.name());
        match &kind {
            Kind::Counter(c) => f.registry.register(name, help, c.clone()),
            Kind::Gauge(g) => f.registry.register(name, help, g.clone()),
            Kind::Histogram(h) => f.registry.register(name, help, h.clone()),
        }
        f.kinds.insert(key.name().to_string(), kind.clone());
        (kind, labels)
    }

    fn describe(&self, key: KeyName, description: SharedString) {
        let mut f = self.families.lock().expect("not poisoned");
        f.help
            .insert(key.as_str().to_string(), description.to_string());
    }
}

struct CounterHandle(ClientCounter);

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.0.inc_by(value);
    }

    fn absolute(&self, value: u64) {
        self.0.inner().fetch_max(value, Ordering::Relaxed);
    }
}

struct GaugeHandle(FloatGauge);

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.0.inc_by(value);
    }

    fn decrement(&self, value: f64) {
        self.0.dec_by(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

struct HistogramHandle(ClientHistogram);

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

impl Recorder for ClientRecorder {
    fn describe_counter(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn describe_histogram(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        self.describe(key, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match self.family(key, || Kind::Counter(Family::default())) {
            (Kind::Counter(f), labels) => {
                Counter::from_arc(Arc::new(CounterHandle(f.get_or_create_owned(&labels))))
            }
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match self.family(key, || Kind::Gauge(Family::default())) {
            (Kind::Gauge(f), labels) => {
                Gauge::from_arc(Arc::new(GaugeHandle(f.get_or_create_owned(&labels))))
            }
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let make = || {
            Kind::Histogram(Family::new_with_constructor(
                latency_histogram as fn() -> ClientHistogram,
            ))
        };
        match self.family(key, make) {
            (Kind::Histogram(f), labels) => {
                Histogram::from_arc(Arc::new(HistogramHandle(f.get_or_create_owned(&labels))))
            }
            _ => Histogram::noop(),
        }
    }
}

impl Exposition for ClientRecorder {
    /// OpenMetrics text, the only format the crate writes.
    fn render(&self) -> String {
        let f = self.families.lock().expect("not poisoned");
        let mut out = String::new();
        encode(&mut out, &f.registry).expect("a String takes any text");
        out
    }
}
