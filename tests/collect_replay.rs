//! The firmware fixtures through Mosquitto and the collector into the database.

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::domain::{DeviceStatus, LedgerRow};
use autovolt::store::{ActivityFilter, LedgerQuery, Store};
use chrono::{Duration, TimeZone, Utc};
use live::*;
use std::sync::Arc;

fn t0() -> autovolt::domain::Instant {
    // 09:00 IST on a weekday.
    Utc.with_ymd_and_hms(2026, 11, 24, 3, 30, 0).unwrap()
}

async fn ledger(store: &Store) -> Vec<LedgerRow> {
    store
        .ledger_page(&LedgerQuery::default(), None, 1000)
        .await
        .unwrap()
        .rows
}

async fn activity(store: &Store) -> Vec<(String, String, Option<String>)> {
    let mut rows: Vec<_> = store
        .recent_activity(1000, None, &ActivityFilter::default())
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|a| (a.action, a.triggered_by.to_string(), a.switch_id))
        .collect();
    rows.sort();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_replay_into_states_ledger_and_activity() {
    let store = support::store("replay").await;
    let (a, b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(t0());
    let mut collector = start(
        &store,
        &url,
        options("replay-collector"),
        Arc::new(clock.clone()),
    )
    .await;
    let publisher = Publisher::connect(&url, "replay-publisher").await;
    // Receive times paced as the board sent them: board time + 50 ms of delivery.
    let at_ms: [i64; 12] = [
        0, 29_000, 30_062, 41_000, 41_927, 42_000, 58_170, 58_300, 60_261, 95_052, 96_000, 96_500,
    ];
    for (i, (topic, payload, _)) in fixture("messages.jsonl").iter().enumerate() {
        clock.set(t0() + Duration::milliseconds(at_ms[i]));
        publisher.publish(topic, payload).await;
        collector.wait_committed(i + 1).await;
    }
    let stats = collector.stop().await;
    assert_eq!(stats.received, 12);
    assert_eq!(stats.rejected_total(), 0, "{:?}", stats.rejected);

    let a = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
    let b = store.device_by_id(b.id.unwrap()).await.unwrap().unwrap();
    let on: Vec<bool> = a.switches.iter().map(|s| s.state).collect();
    assert_eq!(on, [false, true, false, false, false, false]);
    assert!(b.switches[4].state);
    assert_eq!(a.status, DeviceStatus::Online);
    // Presence is written coalesced, to the whole second unless the board's clock moved.
    let seen = a.last_seen.unwrap();
    assert!(seen >= t0() + Duration::seconds(95) && seen <= t0() + Duration::milliseconds(95_052));
    // Motion at board time 60 211 ms, anchored by the heartbeat (30 012 ms received at 30.062 s).
    let motion = a.last_motion_at.expect("lastMotionAt");
    assert!(
        (motion - (t0() + Duration::milliseconds(60_261)))
            .num_milliseconds()
            .abs()
            <= 5
    );
    assert!(a.boot_clock.is_some());

    // One closed interval: the light on relay 16, on at 41.927 s and off at 95.052 s of wall time.
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r.switch_id, "sw1");
    assert_eq!(r.classroom, "CS-101");
    assert!(
        (r.switch_on_duration_seconds - 53.125).abs() < 0.01,
        "{}",
        r.switch_on_duration_seconds
    );
    assert_eq!(r.power_w, 40.0);
    assert!((r.delta_wh - 40.0 * r.switch_on_duration_seconds / 3600.0).abs() < 1e-9);
    let cost = r.cost_calculation.as_ref().unwrap();
    assert_eq!(cost.cost_per_kwh, PRICE);
    assert!((cost.cost_inr - r.delta_wh / 1000.0 * PRICE).abs() < 1e-9);
    r.validate().unwrap();

    assert_eq!(
        activity(&store).await,
        [
            ("device_online".into(), "monitoring".into(), None),
            ("device_online".into(), "monitoring".into(), None),
            (
                "manual_on".into(),
                "manual_switch".into(),
                Some("sw2".into())
            ),
            (
                "manual_on".into(),
                "manual_switch".into(),
                Some("sw5".into())
            ),
            ("off".into(), "pir".into(), Some("sw1".into())),
        ]
    );
    // The board's acknowledgement of our command is the sender's to record (`mqtt::relay`, with who
    // asked and what confirmed it): the collector adds no second entry for it.
    // Everything but the retained status is kept as telemetry, without secrets; the redelivered
    // switch_event arrived within the same second, so its `event_hash` drops it.
    let telemetry = store
        .collection::<bson::Document>("telemetryevents")
        .count_documents(bson::doc! {})
        .await
        .unwrap();
    assert_eq!(telemetry, 10);
    let with_secret = store
        .collection::<bson::Document>("telemetryevents")
        .count_documents(bson::doc! {"payload.secret": {"$exists": true}})
        .await
        .unwrap();
    assert_eq!(with_secret, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_rejected_counted_and_change_nothing() {
    let store = support::store("bad").await;
    let (a, _) = campus(&store).await;
    // The board is online already, so that no presence transition muddles "nothing changed".
    store.mark_online(a.id.unwrap(), t0()).await.unwrap();
    let before = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(t0());
    let mut collector = start(
        &store,
        &url,
        options("bad-collector"),
        Arc::new(clock.clone()),
    )
    .await;
    let publisher = Publisher::connect(&url, "bad-publisher").await;
    let bad = fixture("bad.jsonl");
    for (topic, payload, _) in &bad {
        publisher.publish(topic, payload).await;
    }
    // An oversized payload too: refused before it is read.
    publisher
        .publish("esp32/state", &vec![b' '; 70 * 1024])
        .await;
    collector.wait_committed(bad.len() + 1).await;
    let stats = collector.stop().await;
    let count = |k: &str| stats.rejected.get(k).copied().unwrap_or(0);
    assert_eq!(count("not_json"), 2);
    assert_eq!(count("missing_mac"), 1);
    assert_eq!(count("wrong_type"), 1);
    assert_eq!(count("wrong_secret"), 1);
    assert_eq!(count("bad_mac"), 1);
    assert_eq!(count("unregistered"), 1);
    assert_eq!(count("unknown_relay_pin"), 1);
    assert_eq!(count("too_large"), 1);

    let after = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
    assert_eq!(after.switches, before.switches);
    assert_eq!(after.status, DeviceStatus::Online);
    assert!(ledger(&store).await.is_empty());
    assert!(activity(&store).await.is_empty());
    // Kept as telemetry: the unknown type (the unregistered board is only counted and listed).
    let kinds: Vec<String> = store
        .collection::<bson::Document>("telemetryevents")
        .distinct("type", bson::doc! {})
        .await
        .unwrap()
        .into_iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    assert!(kinds.contains(&"firmware_party".to_string()), "{kinds:?}");
    let stored_unregistered = store
        .collection::<bson::Document>("telemetryevents")
        .count_documents(bson::doc! {"mac": "DE:AD:BE:EF:00:01"})
        .await
        .unwrap();
    assert_eq!(stored_unregistered, 0);
    let unregistered = store.unregistered_devices().await.unwrap();
    assert_eq!(unregistered.len(), 1);
    assert_eq!(unregistered[0].mac, "DE:AD:BE:EF:00:01");
    assert_eq!(unregistered[0].count, 1);
}
