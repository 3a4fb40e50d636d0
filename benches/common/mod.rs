//! What the benchmarks share: sizes from the environment, percentiles, and the broker's own round
//! trip (the baseline of every publish → screen figure).
#![allow(dead_code)]

use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A number from the environment, else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0–1) of sorted figures; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// p50 and p99 (ms) of publish → receive by a plain subscriber on the broker at `port`, at `rate`
/// messages/s for `secs`, with payloads of `size` bytes.
pub async fn broker_round_trip(port: u16, rate: u64, secs: u64, size: usize) -> (f64, f64) {
    let (sub, mut sub_el) = AsyncClient::new(
        MqttOptions::new("bench-base-sub", "127.0.0.1", port),
        10_000,
    );
    sub.subscribe("bench/rt", QoS::AtLeastOnce).await.unwrap();
    let received: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let r2 = received.clone();
    let (ready_tx, mut ready_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Ok(ev) = sub_el.poll().await {
            match ev {
                rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) => {
                    let _ = ready_tx.send(()).await;
                }
                rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)) => {
                    r2.lock().unwrap().push(Instant::now())
                }
                _ => {}
            }
        }
    });
    ready_rx.recv().await;
    let (client, mut el) = AsyncClient::new(
        MqttOptions::new("bench-base-pub", "127.0.0.1", port),
        10_000,
    );
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let mut sent = Vec::new();
    let start = tokio::time::Instant::now();
    for i in 0..rate * secs {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        sent.push(Instant::now());
        client
            .publish("bench/rt", QoS::AtLeastOnce, false, vec![b'x'; size])
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = received.lock().unwrap();
    let mut l: Vec<f64> = sent
        .iter()
        .zip(r.iter())
        .map(|(s, r)| (*r - *s).as_secs_f64() * 1000.0)
        .collect();
    l.sort_by(f64::total_cmp);
    (percentile(&l, 0.5), percentile(&l, 0.99))
}
