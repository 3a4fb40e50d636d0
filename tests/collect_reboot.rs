//! Boards that reboot, against FerretDB and Mosquitto: with the collector running and while it is
//! down (for less and for longer than the board had been up), the 49.7-day wrap of the board's
//! clock, a whole campus rebooting at once, and a late burst of the old boot arriving after the new
//! boot's messages. Every row is held against what the board did, to the board clock: a clock
//! anchor never carries over from one boot to another, an interval open at a reboot is closed at
//! the last certain time with a note saying so, and nothing is billed earlier or longer than it
//! ran.

mod live;
mod support;

use autovolt::clock::{Clock, ManualClock, SystemClock};
use autovolt::domain::{Instant, LedgerRow, Mac};
use autovolt::simulate::{self, Happened, SimulateOptions, Timeline};
use chrono::{Duration, TimeZone};
use live::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn ist(h: u32, m: u32, s: u32) -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, h, m, s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn secs(n: i64) -> Duration {
    Duration::seconds(n)
}

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

/// The board's `millis()` at `at`: its 32-bit counter since `boot`.
fn millis(boot: Instant, at: Instant) -> u32 {
    ((at - boot).num_milliseconds() as u64 % (1u64 << 32)) as u32
}

fn rows_of<'a>(rows: &'a [LedgerRow], switch: &str) -> Vec<&'a LedgerRow> {
    rows.iter().filter(|r| r.switch_id == switch).collect()
}

fn note(r: &LedgerRow) -> &str {
    r.quality.notes.as_deref().unwrap_or("")
}

async fn board_clock(store: &autovolt::store::Store) -> autovolt::domain::BootClock {
    store
        .device_by_mac(Mac::parse(MAC_A).unwrap())
        .await
        .unwrap()
        .unwrap()
        .boot_clock
        .expect("an anchor")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_while_the_collector_runs_closes_at_the_last_certain_time_and_the_new_boot_keeps_its_own_clock(
) {
    let store = support::store("reboot-live").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(14, 0, 0);
    let boot1 = t - Duration::hours(1);
    let clock = ManualClock::new(t);
    let mut c = start(
        &store,
        &url,
        options("reboot-live"),
        Arc::new(clock.clone()),
    )
    .await;
    let p = Publisher::connect(&url, "reboot-live-pub").await;
    let at = |d: Duration| {
        clock.set(t + d);
        t + d
    };
    p.publish("esp32/telemetry", &heartbeat(MAC_A, millis(boot1, t)))
        .await;
    let on = at(secs(10));
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 19, true, "manual", millis(boot1, on)),
    )
    .await;
    let hb = at(secs(30));
    p.publish("esp32/telemetry", &heartbeat(MAC_A, millis(boot1, hb)))
        .await;
    c.wait_committed(3).await;
    // Down at +40 s (the load with it), back at +45 s with the relay restored: the snapshot on
    // connect says nothing of the reboot, the heartbeat 30 s into the new boot does.
    let boot2 = t + secs(45);
    at(secs(47));
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[19]))
        .await;
    c.wait_committed(4).await;
    let hb2 = at(secs(75));
    p.publish("esp32/telemetry", &heartbeat(MAC_A, millis(boot2, hb2)))
        .await;
    let reopened = at(secs(75) + ms(10));
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[19]))
        .await;
    c.wait_committed(6).await;
    let off = at(secs(105));
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 19, false, "manual", millis(boot2, off)),
    )
    .await;
    c.wait_committed(7).await;
    let stats = c.stop().await;
    assert_eq!(stats.reboots, 1);
    let rows = ledger(&store).await;
    let fan = rows_of(&rows, "sw4");
    assert_eq!(fan.len(), 2, "{rows:?}");
    assert_eq!((fan[0].start_ts, fan[0].end_ts), (on, hb));
    assert!(note(fan[0]).contains("rebooted"), "{:?}", fan[0].quality);
    assert_eq!((fan[1].start_ts, fan[1].end_ts), (reopened, off));
    assert_eq!(note(fan[1]), "");
    let anchor = board_clock(&store).await;
    assert_eq!(anchor.boot_at, boot2);
    assert_eq!(anchor.previous.map(|p| p.boot_at), Some(boot1));
}

/// The old boot of a collector-down script: heard at `t` (up since `boot1`), relay 16 on at
/// `t + on`, a last heartbeat at `t + last`; then the collector stops. Returns the publisher.
async fn old_boot_then_collector_stops(
    store: &autovolt::store::Store,
    url: &str,
    label: &str,
    clock: &ManualClock,
    boot1: Instant,
    on: i64,
    last: i64,
) -> Publisher {
    let t = clock.now();
    let mut c = start(store, url, options(label), Arc::new(clock.clone())).await;
    let p = Publisher::connect(url, &format!("{label}-pub")).await;
    for (k, (after, msg)) in [
        (0, heartbeat(MAC_A, millis(boot1, t))),
        (
            on,
            switch_event(
                MAC_A,
                SECRET_A,
                16,
                true,
                "manual",
                millis(boot1, t + secs(on)),
            ),
        ),
        (last, heartbeat(MAC_A, millis(boot1, t + secs(last)))),
    ]
    .into_iter()
    .enumerate()
    {
        clock.set(t + secs(after));
        p.publish("esp32/telemetry", &msg).await;
        c.wait_committed(k + 1).await;
    }
    c.stop().await;
    p
}

/// The collector back at `at`, taking what waited at the broker in one burst.
async fn collector_back(
    store: &autovolt::store::Store,
    url: &str,
    label: &str,
    clock: &ManualClock,
    at: Instant,
) -> Running {
    // Let the broker queue the last messages before the collector returns.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    clock.set(at);
    let mut o = options(label);
    o.batch_linger = std::time::Duration::from_millis(500);
    start(store, url, o, Arc::new(clock.clone())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_while_the_collector_is_down_for_less_than_the_uptime_before_is_certain() {
    let store = support::store("reboot-down").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(15, 0, 0);
    let clock = ManualClock::new(t);
    let p = old_boot_then_collector_stops(
        &store,
        &url,
        "reboot-down",
        &clock,
        t - Duration::hours(1),
        10,
        20,
    )
    .await;
    // Down at +25 s, booted at +30 s; its messages wait in the broker for the collector.
    let boot2 = t + secs(30);
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[16]))
        .await;
    for (state, at) in [(true, 10), (false, 20)] {
        p.publish(
            "esp32/telemetry",
            &switch_event(MAC_A, SECRET_A, 18, state, "manual", at * 1_000),
        )
        .await;
    }
    p.publish("esp32/telemetry", &heartbeat(MAC_A, 30_000))
        .await;
    let mut c = collector_back(&store, &url, "reboot-down", &clock, boot2 + secs(40)).await;
    c.wait_committed(4).await;
    // Live again: a prompt heartbeat pins the new boot exactly.
    clock.set(boot2 + secs(60));
    p.publish("esp32/telemetry", &heartbeat(MAC_A, 60_000))
        .await;
    c.wait_committed(5).await;
    c.stop().await;
    let rows = ledger(&store).await;
    let light = rows_of(&rows, "sw1");
    assert_eq!(light.len(), 1, "{rows:?}");
    assert_eq!(
        (light[0].start_ts, light[0].end_ts),
        (t + secs(10), t + secs(20))
    );
    assert!(note(light[0]).contains("rebooted"));
    // The burst anchors the new boot by its least-delayed message (10 s late): the interval keeps
    // the board's length, and is never timed before it happened.
    let other = rows_of(&rows, "sw3");
    assert_eq!(other.len(), 1, "{rows:?}");
    assert_eq!(other[0].end_ts - other[0].start_ts, secs(10));
    assert!(other[0].start_ts >= boot2 + secs(10) && other[0].start_ts <= boot2 + secs(20));
    assert_eq!(board_clock(&store).await.boot_at, boot2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_while_the_collector_is_down_for_longer_than_the_uptime_before_is_unsure_and_says_so(
) {
    let store = support::store("reboot-long").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(16, 0, 0);
    let clock = ManualClock::new(t);
    let p = old_boot_then_collector_stops(&store, &url, "reboot-long", &clock, t - secs(20), 2, 4)
        .await;
    // Up 24 s when last heard; rebooted at +5 s, back at +8 s; the collector returns a minute
    // later. Its first timed message (30 s into the new boot) could as well be the old boot's,
    // held back 58 s: nothing tells them apart.
    let boot2 = t + secs(8);
    p.publish("esp32/state", &snapshot(MAC_A, SECRET_A, &[16]))
        .await;
    for (state, at) in [(true, 30), (false, 40)] {
        p.publish(
            "esp32/telemetry",
            &switch_event(MAC_A, SECRET_A, 18, state, "manual", at * 1_000),
        )
        .await;
    }
    let mut c = collector_back(&store, &url, "reboot-long", &clock, boot2 + secs(60)).await;
    c.wait_committed(3).await;
    let stats = c.stop().await;
    assert_eq!((stats.reboots, stats.unsure_boots), (1, 1));
    let rows = ledger(&store).await;
    let light = rows_of(&rows, "sw1");
    assert_eq!(light.len(), 1, "{rows:?}");
    assert_eq!(
        (light[0].start_ts, light[0].end_ts),
        (t + secs(2), t + secs(4))
    );
    assert!(
        note(light[0]).contains("cannot tell"),
        "{:?}",
        light[0].quality
    );
    let other = rows_of(&rows, "sw3");
    assert_eq!(other.len(), 1, "{rows:?}");
    assert_eq!(other[0].end_ts - other[0].start_ts, secs(10));
    assert!(other[0].start_ts >= boot2 + secs(30), "{:?}", other[0]);
    assert!(note(other[0]).contains("jump"), "{:?}", other[0].quality);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_49_7_day_wrap_of_the_board_clock_is_the_same_boot() {
    let store = support::store("reboot-wrap").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(17, 0, 0);
    // Its counter reaches 2^32 − 1 at t + 20 s.
    let boot = t - Duration::milliseconds(u32::MAX as i64 - 20_000);
    let clock = ManualClock::new(t);
    let mut c = start(
        &store,
        &url,
        options("reboot-wrap"),
        Arc::new(clock.clone()),
    )
    .await;
    let p = Publisher::connect(&url, "reboot-wrap-pub").await;
    let mut n = 0;
    for (k, msg) in [
        (0, heartbeat(MAC_A, millis(boot, t))),
        (
            10,
            switch_event(
                MAC_A,
                SECRET_A,
                17,
                true,
                "manual",
                millis(boot, t + secs(10)),
            ),
        ),
        (30, heartbeat(MAC_A, millis(boot, t + secs(30)))),
        (
            40,
            switch_event(
                MAC_A,
                SECRET_A,
                17,
                false,
                "manual",
                millis(boot, t + secs(40)),
            ),
        ),
    ] {
        clock.set(t + secs(k));
        let topic = "esp32/telemetry";
        p.publish(topic, &msg).await;
        n += 1;
        c.wait_committed(n).await;
    }
    assert!(millis(boot, t + secs(30)) < millis(boot, t + secs(10)));
    let stats = c.stop().await;
    assert_eq!(stats.reboots, 0);
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].start_ts, rows[0].end_ts),
        (t + secs(10), t + secs(40))
    );
    assert_eq!(note(&rows[0]), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_burst_of_the_old_boot_after_the_new_boots_messages_is_timed_by_the_old_boot() {
    let store = support::store("reboot-late").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let t = ist(18, 0, 0);
    let boot1 = t - Duration::hours(1);
    let clock = ManualClock::new(t);
    let mut c = start(
        &store,
        &url,
        options("reboot-late"),
        Arc::new(clock.clone()),
    )
    .await;
    let p = Publisher::connect(&url, "reboot-late-pub").await;
    let boot2 = t + secs(55);
    let script = [
        (t, heartbeat(MAC_A, millis(boot1, t))),
        (
            t + secs(10),
            switch_event(
                MAC_A,
                SECRET_A,
                16,
                true,
                "manual",
                millis(boot1, t + secs(10)),
            ),
        ),
        (t + secs(20), heartbeat(MAC_A, millis(boot1, t + secs(20)))),
    ];
    for (k, (at, msg)) in script.into_iter().enumerate() {
        clock.set(at);
        p.publish("esp32/telemetry", &msg).await;
        c.wait_committed(k + 1).await;
    }
    // The old boot's off at +40 s and heartbeat at +45 s are held back; the board reboots at
    // +50 s and its new boot is heard first.
    let held = [
        switch_event(
            MAC_A,
            SECRET_A,
            16,
            false,
            "manual",
            millis(boot1, t + secs(40)),
        ),
        heartbeat(MAC_A, millis(boot1, t + secs(45))),
    ];
    clock.set(boot2 + secs(2));
    p.publish("esp32/telemetry", &heartbeat(MAC_A, 2_000)).await;
    c.wait_committed(4).await;
    clock.set(boot2 + secs(5));
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 18, true, "manual", 5_000),
    )
    .await;
    c.wait_committed(5).await;
    clock.set(boot2 + secs(10));
    for msg in &held {
        p.publish("esp32/telemetry", msg).await;
    }
    c.wait_committed(7).await;
    clock.set(boot2 + secs(15));
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 18, false, "manual", 15_000),
    )
    .await;
    c.wait_committed(8).await;
    let stats = c.stop().await;
    assert_eq!(stats.reboots, 1);
    let rows = ledger(&store).await;
    // Closed at the last certain time before the reboot; the late off changes nothing after it.
    let light = rows_of(&rows, "sw1");
    assert_eq!(light.len(), 1, "{rows:?}");
    assert_eq!(
        (light[0].start_ts, light[0].end_ts),
        (t + secs(10), t + secs(20))
    );
    // The new boot's anchor was not moved by the old boot's burst.
    let other = rows_of(&rows, "sw3");
    assert_eq!(other.len(), 1, "{rows:?}");
    assert_eq!(
        (other[0].start_ts, other[0].end_ts),
        (boot2 + secs(5), boot2 + secs(15))
    );
    assert_eq!(board_clock(&store).await.boot_at, boot2);
}

/// The true on-intervals of every relay from the simulator's timeline: a relay is on from its
/// change to on until its change to off or the board going down; a board that boots again has its
/// relays as they were.
fn true_intervals(
    timeline: &Timeline,
    end: Instant,
) -> HashMap<(Mac, i32), Vec<(Instant, Instant)>> {
    let mut on: HashMap<(Mac, i32), Instant> = HashMap::new();
    let mut restored: HashMap<Mac, Vec<i32>> = HashMap::new();
    let mut out: HashMap<(Mac, i32), Vec<(Instant, Instant)>> = HashMap::new();
    for (mac, at, what) in timeline.records() {
        match what {
            Happened::Relay { gpio, state: true } => {
                on.entry((mac, gpio)).or_insert(at);
            }
            Happened::Relay { gpio, state: false } => {
                if let Some(from) = on.remove(&(mac, gpio)) {
                    out.entry((mac, gpio)).or_default().push((from, at));
                }
            }
            Happened::Down => {
                let keys: Vec<_> = on.keys().filter(|k| k.0 == mac).copied().collect();
                let pins = restored.entry(mac).or_default();
                pins.clear();
                for k in keys {
                    let from = on.remove(&k).unwrap();
                    out.entry(k).or_default().push((from, at));
                    pins.push(k.1);
                }
            }
            Happened::Booted => {
                for pin in restored.remove(&mac).unwrap_or_default() {
                    on.insert((mac, pin), at);
                }
            }
            Happened::Sent { .. } => {}
        }
    }
    for (k, from) in on {
        out.entry(k).or_default().push((from, end));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campus_rebooting_at_once_is_billed_within_what_its_relays_really_did() {
    let store = support::store("reboot-campus").await;
    let room = classroom(&store, "CS-201").await;
    let mut boards = vec![];
    for (i, spec) in simulate::generated(8, 11).into_iter().enumerate() {
        let mut d = device(
            &format!("CS-201-{i}"),
            &spec.mac.to_string(),
            spec.secret.expose(),
            room,
        );
        d.id = Some(store.insert_device(&d).await.unwrap());
        boards.push(spec);
    }
    let (_broker, url) = support::own_mosquitto();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut o = options("reboot-campus");
    o.offline_after = std::time::Duration::from_secs(60);
    let c = start(&store, &url, o, clock).await;
    let timeline = Arc::new(Timeline::default());
    let mut sim = SimulateOptions::new(boards.clone(), chrono_tz::Asia::Kolkata);
    sim.rate = 1e-6;
    sim.report_every = std::time::Duration::from_millis(700);
    sim.reboot_down = std::time::Duration::from_millis(1_500);
    sim.timeline = Some(timeline.clone());
    sim.seed = 3;
    let fleet = sim.fleet.clone();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(simulate::run(url.clone(), sim, shutdown.clone()));
    let p = Publisher::connect(&url, "reboot-campus-ops").await;
    let command = |b: &simulate::BoardSpec, gpio: i32, state: bool| {
        serde_json::to_vec(&serde_json::json!({
            "mac": b.mac.to_string(), "secret": b.secret.expose(), "gpio": gpio,
            "relayGpio": gpio, "state": state, "source": "backend",
        }))
        .unwrap()
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for b in &boards {
        for gpio in [16, 18] {
            p.publish("esp32/switches", &command(b, gpio, true)).await;
        }
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    // Every board at once, then one of them again, then loads off.
    fleet.reboot(None);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    fleet.reboot(Some(boards[0].mac));
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    for b in &boards {
        p.publish("esp32/switches", &command(b, 16, false)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    shutdown.cancel();
    running.await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let end = chrono::Utc::now();
    let stats = c.stop().await;
    assert!(stats.reboots >= 9, "{}", stats.summary());
    let truth = true_intervals(&timeline, end);
    let rows = ledger(&store).await;
    let devices = store.devices().await.unwrap();
    let by_id: HashMap<String, Mac> = devices
        .iter()
        .map(|d| (d.id.unwrap().to_hex(), d.mac_address))
        .collect();
    // Each row lies within one true on-interval of its relay (a few ms for the board clock's
    // resolution and the time between the simulator's record and its send).
    let slack = ms(50);
    let mut closed_at_reboot = 0;
    for r in &rows {
        let mac = by_id[&r.device_id];
        let pin = devices
            .iter()
            .find(|d| d.mac_address == mac)
            .and_then(|d| d.switches.iter().find(|s| s.switch_id == r.switch_id))
            .and_then(|s| s.relay_pin())
            .unwrap();
        let within = truth.get(&(mac, pin)).is_some_and(|ivs| {
            ivs.iter()
                .any(|(from, to)| r.start_ts >= *from - slack && r.end_ts <= *to + slack)
        });
        assert!(within, "{r:?} is not within {:?}", truth.get(&(mac, pin)));
        if note(r).contains("rebooted") {
            closed_at_reboot += 1;
        }
    }
    // 8 boards × 2 loads cut by the campus reboot, 2 more by the second reboot of one board.
    assert!(closed_at_reboot >= 16, "{closed_at_reboot} of {rows:?}");
    // Nothing is left open across a reboot: each reboot closed what was on.
    assert!(stats.ledger_rows >= 18, "{}", stats.summary());
}
