//! Schedules run by the collectors, against simulated boards and an injected clock: a daily run
//! switches the loads once, two collectors run it once, a weekly schedule keeps to its days, a
//! `once` schedule disables itself, and runs due while no collector was up are logged as missed.

mod live;
mod support;

use autovolt::clock::{Clock, ManualClock};
use autovolt::collect::CollectorOptions;
use autovolt::domain::schedule::floor_minute;
use autovolt::domain::Actor;
use autovolt::domain::{
    ActivityLog, Device, DeviceStatus, Instant, Schedule, ScheduleType, ScheduledSwitch,
    TriggeredBy,
};
use autovolt::mqtt::connection::BrokerAccess;
use autovolt::mqtt::relay::Relay;
use autovolt::simulate::{self, Counters, SimulateOptions};
use autovolt::store::Store;
use chrono::TimeZone;
use live::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ist(d: u32, h: u32, m: u32, s: u32) -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, d, h, m, s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A collector whose scheduler looks at the clock every 100 ms; boards never go silent for it.
fn scheduling(client_id: &str) -> CollectorOptions {
    let mut o = options(client_id);
    o.offline_after = Duration::from_secs(60 * 24 * 3600);
    o.schedules.every = Duration::from_millis(100);
    o
}

/// Waits until the collector whose options these were has looked for runs through `minute`.
async fn looked_through(o: &CollectorOptions, minute: Instant) {
    let through = o.schedules.checked_through.clone();
    eventually(
        20,
        &format!("the scheduler looking through {minute}"),
        || {
            let through = through.clone();
            async move { through.load(Ordering::SeqCst) >= minute.timestamp() }
        },
    )
    .await;
}

fn schedule(
    name: &str,
    kind: ScheduleType,
    time: &str,
    action: &str,
    switches: &[(&Device, &str)],
) -> Schedule {
    Schedule {
        id: None,
        name: name.into(),
        schedule_type: kind,
        time: time.into(),
        days: Vec::new(),
        date: None,
        action: action.into(),
        switches: switches
            .iter()
            .map(|(d, s)| ScheduledSwitch {
                device_id: d.id.unwrap(),
                switch_id: s.to_string(),
            })
            .collect(),
        enabled: true,
        created_by: None,
        // Before the injected clock's times (the store stamps the real time otherwise).
        created_at: Some(ist(1, 0, 0, 0)),
        updated_at: None,
    }
}

/// Board A simulated (it acknowledges commands); waits until it is online.
async fn simulate_a(
    store: &Store,
    url: &str,
    a: &Device,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<Arc<Counters>, simulate::SimulateError>>,
    Arc<Counters>,
) {
    let boards: Vec<_> = simulate::from_store(store)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.mac == a.mac_address)
        .collect();
    let mut o = SimulateOptions::new(boards, chrono_tz::Asia::Kolkata);
    o.rate = 1e-9;
    let counters = o.counters.clone();
    let stop = CancellationToken::new();
    let fleet = tokio::spawn(simulate::run(url.to_string(), o, stop.clone()));
    let id = a.id.unwrap();
    eventually(20, "board A online", || async {
        store.device_by_id(id).await.unwrap().unwrap().status == DeviceStatus::Online
    })
    .await;
    (stop, fleet, counters)
}

async fn activity(store: &Store) -> Vec<ActivityLog> {
    store
        .recent_activity(10_000, None, &Default::default())
        .await
        .unwrap()
        .rows
}

/// The `on`/`off` entries a schedule's run wrote, as (action, switch id).
async fn scheduled_switching(store: &Store) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = activity(store)
        .await
        .into_iter()
        .filter(|a| {
            a.triggered_by == TriggeredBy::Schedule && (a.action == "on" || a.action == "off")
        })
        .map(|a| (a.action, a.switch_id.unwrap_or_default()))
        .collect();
    v.sort();
    v
}

async fn run_entries(store: &Store) -> Vec<serde_json::Value> {
    activity(store)
        .await
        .into_iter()
        .filter(|a| a.action == "schedule_run")
        .map(|a| a.context.unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_off_at_six_turns_the_loads_off_once_and_skips_an_offline_board() {
    let store = support::store("sched-daily").await;
    let (a, b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(ist(24, 17, 58, 0));
    let o = scheduling("sched-daily");
    let collector = start(&store, &url, o.clone(), Arc::new(clock.clone())).await;
    let (stop_fleet, fleet, counters) = simulate_a(&store, &url, &a).await;

    // A technician switches two loads on.
    let relay = Relay::connect(&url, "sched-daily-person", &BrokerAccess::default())
        .await
        .unwrap();
    let person = Actor::at_database("Technician");
    for sw in ["sw1", "sw3"] {
        let device = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
        relay
            .toggle(
                &store,
                &device,
                sw,
                true,
                &person,
                Duration::from_secs(5),
                clock.now(),
            )
            .await
            .unwrap();
    }
    eventually(10, "the loads recorded on", || async {
        let d = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
        d.switches[0].state && d.switches[2].state
    })
    .await;

    let all: Vec<(&Device, &str)> = ["sw1", "sw2", "sw3", "sw4", "sw5", "sw6"]
        .iter()
        .flat_map(|s| [(&a, *s), (&b, *s)])
        .collect();
    let sid = store
        .insert_schedule(&schedule(
            "CS-101 off 18:00",
            ScheduleType::Daily,
            "18:00",
            "off",
            &all,
        ))
        .await
        .unwrap();
    looked_through(&o, ist(24, 17, 58, 0)).await;
    assert!(store.schedule_runs(sid).await.unwrap().is_empty());

    clock.set(ist(24, 18, 0, 5));
    eventually(20, "the 18:00 run recorded", || async {
        store
            .schedule_runs(sid)
            .await
            .unwrap()
            .iter()
            .any(|r| r.finished_at.is_some())
    })
    .await;
    let runs = store.schedule_runs(sid).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].due_at, ist(24, 18, 0, 0));
    assert_eq!(runs[0].fate, "run");
    assert_eq!(runs[0].switched, 6, "{runs:?}");
    assert_eq!(runs[0].offline.len(), 6, "board B is offline: {runs:?}");
    assert!(runs[0].offline.iter().all(|o| o.starts_with("CS-101-B")));
    assert!(runs[0].failed.is_empty(), "{runs:?}");
    eventually(10, "every load of A recorded off", || async {
        let d = store.device_by_id(a.id.unwrap()).await.unwrap().unwrap();
        d.switches.iter().all(|s| !s.state)
    })
    .await;

    // A minute later, and the next minutes: nothing runs again.
    clock.set(ist(24, 18, 1, 5));
    looked_through(&o, ist(24, 18, 1, 0)).await;
    clock.set(ist(24, 18, 2, 30));
    looked_through(&o, ist(24, 18, 2, 0)).await;
    assert_eq!(store.schedule_runs(sid).await.unwrap().len(), 1);
    let switched = scheduled_switching(&store).await;
    assert_eq!(
        switched,
        ["sw1", "sw2", "sw3", "sw4", "sw5", "sw6"]
            .map(|s| ("off".to_string(), s.to_string()))
            .to_vec(),
        "one acknowledged off per switch of the online board"
    );
    // Two loads were on: two commands changed a relay; the other four found it off already.
    assert_eq!(counters.commands_applied.load(Ordering::Relaxed), 2 + 2);
    eventually(
        5,
        "the board ignoring the four commands for loads already off",
        || async { counters.commands_unchanged.load(Ordering::Relaxed) == 4 },
    )
    .await;
    let entries = run_entries(&store).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["outcome"], "ran");
    assert_eq!(entries[0]["offline"].as_array().unwrap().len(), 6);
    assert!(store.schedule_named(&sid.to_hex()).await.unwrap().enabled);

    stop_fleet.cancel();
    fleet.await.unwrap().unwrap();
    relay.disconnect().await;
    let stats = collector.stop().await;
    assert_eq!(stats.rejected_total(), 0, "{:?}", stats.rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_collectors_run_a_schedule_once() {
    let store = support::store("sched-two").await;
    let (a, _b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(ist(24, 17, 59, 0));
    let mut o1 = scheduling("sched-two-1");
    o1.group = Some("autovolt".into());
    let mut o2 = scheduling("sched-two-2");
    o2.group = Some("autovolt".into());
    let c1 = start(&store, &url, o1.clone(), Arc::new(clock.clone())).await;
    let c2 = start(&store, &url, o2.clone(), Arc::new(clock.clone())).await;
    let (stop_fleet, fleet, counters) = simulate_a(&store, &url, &a).await;
    let sid = store
        .insert_schedule(&schedule(
            "lights on",
            ScheduleType::Daily,
            "18:00",
            "on",
            &[(&a, "sw1"), (&a, "sw3")],
        ))
        .await
        .unwrap();
    looked_through(&o1, ist(24, 17, 59, 0)).await;
    looked_through(&o2, ist(24, 17, 59, 0)).await;

    clock.set(ist(24, 18, 0, 1));
    looked_through(&o1, ist(24, 18, 0, 0)).await;
    looked_through(&o2, ist(24, 18, 0, 0)).await;
    let runs = store.schedule_runs(sid).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        ["sched-two-1", "sched-two-2"].contains(&runs[0].owner.as_str()),
        "{runs:?}"
    );
    assert_eq!(runs[0].switched, 2, "{runs:?}");
    assert_eq!(
        scheduled_switching(&store).await,
        [
            ("on".to_string(), "sw1".to_string()),
            ("on".into(), "sw3".into())
        ]
    );
    assert_eq!(counters.commands_applied.load(Ordering::Relaxed), 2);
    assert_eq!(run_entries(&store).await.len(), 1);

    stop_fleet.cancel();
    fleet.await.unwrap().unwrap();
    c1.stop().await;
    c2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_schedule_keeps_to_its_days_and_a_once_schedule_disables_itself() {
    let store = support::store("sched-weekly").await;
    let (a, _b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    // 2026-11-24 is a Tuesday.
    let clock = ManualClock::new(ist(24, 7, 59, 0));
    let o = scheduling("sched-weekly");
    let collector = start(&store, &url, o.clone(), Arc::new(clock.clone())).await;
    let (stop_fleet, fleet, counters) = simulate_a(&store, &url, &a).await;
    let mut weekly = schedule(
        "fans mon wed",
        ScheduleType::Weekly,
        "08:00",
        "on",
        &[(&a, "sw2")],
    );
    weekly.days = vec![1, 3];
    let weekly = store.insert_schedule(&weekly).await.unwrap();
    let mut once = schedule(
        "projector once",
        ScheduleType::Once,
        "09:00",
        "on",
        &[(&a, "sw5")],
    );
    once.date = Some("2026-11-24".into());
    let once = store.insert_schedule(&once).await.unwrap();
    looked_through(&o, ist(24, 7, 59, 0)).await;

    // Tuesday 08:00: not a day of the weekly schedule.
    clock.set(ist(24, 8, 0, 2));
    looked_through(&o, ist(24, 8, 0, 0)).await;
    assert!(store.schedule_runs(weekly).await.unwrap().is_empty());

    // Tuesday 09:00: the once schedule runs, then is disabled.
    clock.set(ist(24, 9, 0, 2));
    looked_through(&o, ist(24, 9, 0, 0)).await;
    let runs = store.schedule_runs(once).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].switched, 1, "{runs:?}");
    assert!(
        !store
            .schedule_named("projector once")
            .await
            .unwrap()
            .enabled
    );
    assert_eq!(counters.commands_applied.load(Ordering::Relaxed), 1);

    // Wednesday 08:00: the weekly schedule runs; the once schedule does not run again.
    clock.set(ist(25, 7, 59, 30));
    looked_through(&o, ist(25, 7, 59, 0)).await;
    clock.set(ist(25, 8, 0, 2));
    looked_through(&o, ist(25, 8, 0, 0)).await;
    let runs = store.schedule_runs(weekly).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].due_at, ist(25, 8, 0, 0));
    assert_eq!(store.schedule_runs(once).await.unwrap().len(), 1);
    assert_eq!(
        scheduled_switching(&store).await,
        [
            ("on".to_string(), "sw2".to_string()),
            ("on".into(), "sw5".into())
        ]
    );
    assert_eq!(counters.commands_applied.load(Ordering::Relaxed), 2);
    let entries = run_entries(&store).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries
        .iter()
        .any(|e| e["scheduleName"] == "projector once" && e["disabled"] == true));

    stop_fleet.cancel();
    fleet.await.unwrap().unwrap();
    collector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_due_while_no_collector_was_up_are_logged_missed_not_replayed() {
    let store = support::store("sched-missed").await;
    let (a, _b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let sid = store
        .insert_schedule(&schedule(
            "lights off",
            ScheduleType::Daily,
            "18:00",
            "off",
            &[(&a, "sw1")],
        ))
        .await
        .unwrap();
    let clock = ManualClock::new(ist(24, 17, 50, 0));
    let o = scheduling("sched-missed-1");
    let first = start(&store, &url, o.clone(), Arc::new(clock.clone())).await;
    looked_through(&o, ist(24, 17, 50, 0)).await;
    first.stop().await;
    assert_eq!(
        store.schedule_checkpoint().await.unwrap(),
        Some(ist(24, 17, 50, 0))
    );

    // Nobody is up at 18:00; a collector starts at 18:10.
    clock.set(ist(24, 18, 10, 0));
    let o = scheduling("sched-missed-2");
    let second = start(&store, &url, o.clone(), Arc::new(clock.clone())).await;
    looked_through(&o, ist(24, 18, 10, 0)).await;
    let runs = store.schedule_runs(sid).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(
        (runs[0].due_at, runs[0].fate.as_str()),
        (ist(24, 18, 0, 0), "missed")
    );
    assert!(scheduled_switching(&store).await.is_empty(), "not replayed");
    let entries = run_entries(&store).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["outcome"], "missed");
    second.stop().await;
    assert_eq!(
        floor_minute(store.schedule_checkpoint().await.unwrap().unwrap()),
        ist(24, 18, 10, 0)
    );
}
