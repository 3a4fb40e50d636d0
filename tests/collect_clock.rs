//! Time in the collector: midnight and tariff splits and offline closing with an injected clock,
//! and intervals timed by the boards' own clocks across collector outages, reboots and bursts.

mod live;
mod support;

use autovolt::clock::{Clock, ManualClock};
use autovolt::domain::tariff::TariffScope;
use autovolt::domain::{CostVersion, DeviceStatus, Instant};
use chrono::{Duration, TimeZone};
use live::*;
use std::sync::Arc;

fn ist(d: u32, h: u32, m: u32, s: u32) -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, d, h, m, s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn secs(r: &autovolt::domain::LedgerRow) -> f64 {
    r.switch_on_duration_seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_open_at_midnight_is_closed_and_reopened_there() {
    let store = support::store("midnight").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let boot = ist(24, 23, 0, 0);
    let clock = ManualClock::new(ist(24, 23, 59, 0));
    let mut c = start(&store, &url, options("midnight"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "midnight-pub").await;
    let on = ist(24, 23, 59, 30);
    p.publish(
        "esp32/telemetry",
        &heartbeat(MAC_A, millis_since(boot, clock.now())),
    )
    .await;
    c.wait_committed(1).await;
    clock.set(on);
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, true, "manual", millis_since(boot, on)),
    )
    .await;
    c.wait_committed(2).await;
    // Past midnight the sweep closes the open interval at 00:00 and reopens it there.
    clock.set(ist(25, 0, 1, 0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ledger(&store).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no row after midnight"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let at = ist(25, 0, 2, 0);
    clock.set(at);
    let ts = millis_since(boot, at);
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, false, "manual", ts),
    )
    .await;
    c.wait_committed(3).await;
    c.stop().await;
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].start_ts, rows[0].end_ts),
        (ist(24, 23, 59, 30), ist(25, 0, 0, 0))
    );
    assert_eq!(
        (rows[1].start_ts, rows[1].end_ts),
        (ist(25, 0, 0, 0), ist(25, 0, 2, 0))
    );
    assert!((secs(&rows[0]) - 30.0).abs() < 0.01 && (secs(&rows[1]) - 120.0).abs() < 0.01);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tariff_change_splits_the_interval_and_each_piece_keeps_its_rate() {
    let store = support::store("tariff").await;
    campus(&store).await;
    store
        .collection::<CostVersion>("costversions")
        .insert_one(CostVersion {
            id: None,
            cost_per_kwh: 12.5,
            effective_from: ist(24, 10, 0, 0),
            effective_until: None,
            scope: TariffScope::Global,
            classroom: None,
            device_id: None,
            created_by: None,
            notes: None,
            is_active: true,
            created_at: None,
            updated_at: None,
        })
        .await
        .unwrap();
    let (_broker, url) = support::own_mosquitto();
    let boot = ist(24, 9, 0, 0);
    let clock = ManualClock::new(ist(24, 9, 30, 0));
    let mut c = start(&store, &url, options("tariff"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "tariff-pub").await;
    for (n, (at, state)) in [(ist(24, 9, 30, 0), true), (ist(24, 10, 30, 0), false)]
        .into_iter()
        .enumerate()
    {
        clock.set(at);
        p.publish(
            "esp32/telemetry",
            &switch_event(
                MAC_A,
                SECRET_A,
                21,
                state,
                "backend",
                millis_since(boot, at),
            ),
        )
        .await;
        c.wait_committed(n + 1).await;
    }
    c.stop().await;
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The projector (200 W) for 30 min at the fallback ₹8, then 30 min at ₹12.5.
    assert_eq!(rows[0].end_ts, ist(24, 10, 0, 0));
    assert_eq!(
        rows[0].cost_calculation.as_ref().unwrap().cost_per_kwh,
        PRICE
    );
    assert_eq!(
        rows[1].cost_calculation.as_ref().unwrap().cost_per_kwh,
        12.5
    );
    for r in &rows {
        assert!((secs(r) - 1800.0).abs() < 0.01);
        assert!((r.delta_wh - 100.0).abs() < 1e-6);
    }
    assert!((rows[1].cost_calculation.as_ref().unwrap().cost_inr - 1.25).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_board_goes_offline_closing_its_intervals_and_comes_back_from_the_snapshot() {
    let store = support::store("offline").await;
    let (a, _) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(24, 11, 0, 0);
    let boot = t - Duration::minutes(5);
    let clock = ManualClock::new(t);
    let mut o = options("offline");
    o.offline_after = std::time::Duration::from_secs(120);
    let mut c = start(&store, &url, o, Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "offline-pub").await;
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 17, true, "manual", millis_since(boot, t)),
    )
    .await;
    c.wait_committed(1).await;
    let last = t + Duration::seconds(20);
    clock.set(last);
    p.publish(
        "esp32/telemetry",
        &heartbeat(MAC_A, millis_since(boot, last)),
    )
    .await;
    c.wait_committed(2).await;
    // 119 s of silence: still online. 121 s: offline, the fan's interval closed at the last message.
    clock.set(last + Duration::seconds(119));
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        store
            .device_by_id(a.id.unwrap())
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Online
    );
    clock.set(last + Duration::seconds(121));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let d = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
        if d.status == DeviceStatus::Offline {
            assert!(!d.switches[1].state);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not offline");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].start_ts, rows[0].end_ts), (t, last));
    // It speaks again: online, and the snapshot reopens the fan.
    let back = last + Duration::seconds(300);
    clock.set(back);
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[17]))
        .await;
    c.wait_committed(3).await;
    c.stop().await;
    let d = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Online);
    assert!(d.switches[1].state);
    assert_eq!(d.switches[1].last_state_change, Some(back));
    assert_eq!(
        actions(&store).await,
        [
            ("device_offline".to_string(), None),
            ("device_online".to_string(), None),
            ("device_online".to_string(), None),
            ("manual_on".to_string(), Some("sw2".to_string())),
            ("on".to_string(), Some("sw2".to_string())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn board_time_bills_the_real_duration_across_a_collector_outage() {
    let store = support::store("boardtime").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(24, 12, 0, 0);
    // Up three hours: an hour's outage is within its uptime, so nothing it sends later in this
    // boot can pass for a new boot's.
    let boot = t - Duration::hours(3);
    let clock = ManualClock::new(t);
    let mut c = start(&store, &url, options("boardtime"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "boardtime-pub").await;
    p.publish("esp32/telemetry", &heartbeat(MAC_A, millis_since(boot, t)))
        .await;
    let on = t + Duration::seconds(10);
    clock.set(on);
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, true, "manual", millis_since(boot, on)),
    )
    .await;
    c.wait_committed(2).await;
    c.stop().await;
    // While the collector is down the board switches off 600.4 s later, then reboots and switches
    // relay 18 on and off; the broker holds everything.
    let off = on + Duration::milliseconds(600_400);
    p.publish(
        "esp32/telemetry",
        &switch_event(
            MAC_A,
            SECRET_A,
            16,
            false,
            "manual",
            millis_since(boot, off),
        ),
    )
    .await;
    let boot2 = off + Duration::seconds(5);
    let mut burst = vec![];
    for k in 0..5i64 {
        let a = boot2 + Duration::seconds(2 + 20 * k);
        burst.push(switch_event(
            MAC_A,
            SECRET_A,
            18,
            true,
            "motion",
            millis_since(boot2, a),
        ));
        burst.push(switch_event(
            MAC_A,
            SECRET_A,
            18,
            false,
            "motion",
            millis_since(boot2, a + Duration::seconds(7)),
        ));
    }
    for m in &burst {
        p.publish("esp32/telemetry", m).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The collector comes back an hour later and receives it all at once. A new boot is anchored
    // by the tightest of its messages within one batch, so the burst must come in one batch.
    clock.set(t + Duration::hours(1));
    let mut o = options("boardtime");
    o.batch_linger = std::time::Duration::from_millis(500);
    let mut c = start(&store, &url, o, Arc::new(clock.clone())).await;
    c.wait_committed(11).await;
    c.stop().await;
    let rows = ledger(&store).await;
    let sw1: Vec<_> = rows.iter().filter(|r| r.switch_id == "sw1").collect();
    assert_eq!(sw1.len(), 1, "{rows:?}");
    assert!((secs(sw1[0]) - 600.4).abs() <= 0.5, "{}", secs(sw1[0]));
    // After the reboot the first message anchors the new boot at its arrival; the following ones
    // keep the board's spacing: five intervals of 7 s each.
    let sw3: Vec<f64> = rows
        .iter()
        .filter(|r| r.switch_id == "sw3")
        .map(secs)
        .collect();
    assert_eq!(sw3.len(), 5, "{rows:?}");
    for s in sw3 {
        assert!((s - 7.0).abs() <= 0.5, "{s}");
    }
}
