//! Exactly once in the books: redelivery, the manual_switch + snapshot pair, two collectors in one
//! shared subscription, a collector killed mid-stream, and the broker restarted mid-stream.

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::domain::{Instant, Mac};
use chrono::{Duration, TimeZone};
use live::*;
use std::sync::Arc;

const N: usize = 12;

fn boot() -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Both boards' steps interleaved.
fn script() -> Vec<Vec<(&'static str, Vec<u8>)>> {
    cycles(MAC_A, SECRET_A, N)
        .into_iter()
        .zip(cycles(MAC_B, SECRET_B, N))
        .flat_map(|(a, b)| [a, b])
        .collect()
}

fn script_len() -> usize {
    script().iter().map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_and_their_snapshots_count_once() {
    let store = support::store("dups").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut c = start(&store, &url, options("dups"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "dups-pub").await;
    anchor_boards(&p).await;
    c.wait_committed(2).await;
    clock.set(boot() + Duration::hours(1));
    let mut sent = 2;
    for step in script() {
        for (topic, payload) in &step {
            p.publish(topic, payload).await;
        }
        sent += step.len();
    }
    c.wait_committed(sent).await;
    let stats = c.stop().await;
    assert_eq!(stats.transitions, 4 * N as i64);
    assert_cycles_counted_once(&store, N, 0.01).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_switch_and_its_snapshot_count_once() {
    let store = support::store("manual").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut c = start(&store, &url, options("manual"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "manual-pub").await;
    anchor_boards(&p).await;
    c.wait_committed(2).await;
    clock.set(boot() + Duration::hours(1));
    let manual = |state: bool, ts: u32| {
        serde_json::to_vec(&serde_json::json!({"mac": MAC_A, "secret": SECRET_A, "type": "manual_switch", "gpio": 17, "state": state, "physicalPin": 26, "timestamp": ts})).unwrap()
    };
    p.publish("esp32/telemetry", &manual(true, up(10_000)))
        .await;
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[17]))
        .await;
    p.publish("esp32/telemetry", &manual(false, up(70_000)))
        .await;
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[]))
        .await;
    c.wait_committed(6).await;
    c.stop().await;
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1);
    assert!((rows[0].switch_on_duration_seconds - 60.0).abs() < 0.01);
    let acts = actions(&store).await;
    assert_eq!(
        acts.iter()
            .filter(|(a, _)| a.starts_with("manual_"))
            .count(),
        2,
        "{acts:?}"
    );
    assert!(
        !acts.iter().any(|(a, _)| a == "on" || a == "off"),
        "{acts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_in_one_shared_subscription_count_each_transition_once() {
    let store = support::store("shared").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut o1 = options("shared-1");
    o1.group = Some("autovolt".into());
    let mut o2 = options("shared-2");
    o2.group = Some("autovolt".into());
    let mut c1 = start(&store, &url, o1, Arc::new(clock.clone())).await;
    let mut c2 = start(&store, &url, o2, Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "shared-pub").await;
    anchor_boards(&p).await;
    let mut sent = 2;
    let wait_all = |c1: &mut Running, c2: &mut Running, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            c1.drain();
            c2.drain();
            if c1.committed + c2.committed >= n {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} committed",
                c1.committed + c2.committed
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    wait_all(&mut c1, &mut c2, sent);
    // A board's clock anchor goes to the database with the coalesced presence of the collector
    // that heard it; the other collector times the board by it from then on (in the field a
    // board's next change comes seconds later, not milliseconds).
    eventually(10, "both anchors stored", || async {
        let mut stored = 0;
        for mac in [MAC_A, MAC_B] {
            let d = store.device_by_mac(Mac::parse(mac).unwrap()).await.unwrap();
            stored += d.and_then(|d| d.boot_clock).is_some() as usize;
        }
        stored == 2
    })
    .await;
    // Each step's related messages (the event, its redelivery, the snapshot) race between the two
    // collectors, delivered 50 ms after the board sent them; a board's next step waits until its
    // previous one is committed, as Mosquitto's round-robin keeps no per-board order across
    // collectors.
    for (i, step) in script().into_iter().enumerate() {
        // Steps alternate between the boards; each board's k-th change is at 1 s + 5 s·k.
        let k = (i / 2) as i64;
        clock.set(boot() + Duration::milliseconds(1_000 + 5_000 * k + 50));
        for (topic, payload) in &step {
            p.publish(topic, payload).await;
        }
        sent += step.len();
        wait_all(&mut c1, &mut c2, sent);
    }
    let (s1, s2) = (c1.stop().await, c2.stop().await);
    assert!(
        s1.received > 0 && s2.received > 0,
        "the load was not shared: {} / {}",
        s1.received,
        s2.received
    );
    assert_cycles_counted_once(&store, N, 0.01).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_killed_mid_stream_loses_nothing_after_restart() {
    let store = support::store("killed").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut c = start(&store, &url, options("killed"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "killed-pub").await;
    anchor_boards(&p).await;
    c.wait_committed(2).await;
    clock.set(boot() + Duration::hours(1));
    for step in script() {
        for (topic, payload) in &step {
            p.publish(topic, payload).await;
        }
    }
    c.wait_committed(20).await;
    c.kill().await;
    let c = start(&store, &url, options("killed"), Arc::new(clock.clone())).await;
    eventually(30, "all rows written", || async {
        ledger(&store).await.len() >= 2 * N
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    c.stop().await;
    assert_cycles_counted_once(&store, N, 0.01).await;
    assert!(script_len() > 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_restarted_mid_stream_loses_nothing() {
    let store = support::store("brokerrestart").await;
    campus(&store).await;
    let (mut broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let o = options("brokerrestart");
    let subscribed = o.subscribed.clone();
    let mut c = start(&store, &url, o, Arc::new(clock.clone())).await;
    let steps = script();
    let half = steps.len() / 2;
    {
        let p = Publisher::connect(&url, "restart-pub-1").await;
        anchor_boards(&p).await;
        c.wait_committed(2).await;
        clock.set(boot() + Duration::hours(1));
        let mut sent = 2;
        for step in &steps[..half] {
            for (topic, payload) in step {
                p.publish(topic, payload).await;
            }
            sent += step.len();
        }
        c.wait_committed(sent).await;
    }
    broker.restart().expect("broker restart");
    eventually(30, "the collector noticing the broker loss", || {
        let s = subscribed.clone();
        async move { !s.load(std::sync::atomic::Ordering::SeqCst) }
    })
    .await;
    eventually(30, "the collector resubscribing", || {
        let s = subscribed.clone();
        async move { s.load(std::sync::atomic::Ordering::SeqCst) }
    })
    .await;
    let p = Publisher::connect(&url, "restart-pub-2").await;
    for step in &steps[half..] {
        for (topic, payload) in step {
            p.publish(topic, payload).await;
        }
    }
    eventually(30, "all rows written", || async {
        ledger(&store).await.len() >= 2 * N
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    c.stop().await;
    assert_cycles_counted_once(&store, N, 0.01).await;
}
