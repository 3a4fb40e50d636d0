//! Aggregation and migration locks are leases: renewed while their run works, taken over once a
//! dead run's lease has expired, and a day whose run died is completed by the next run.

mod books_common;
mod support;

use autovolt::config::Config;
use autovolt::domain::TriggeredBy;
use autovolt::store::aggregation::{
    run_daily_aggregation, AggregationRequest, DailyRun, AGGREGATION_RUNS,
};
use autovolt::store::{collections, AggregateQuery, Store, StoreError};
use books_common::{campus, date, ist, IST};
use bson::{doc, Document};
use chrono::{Duration, Utc};
use std::process::{Command, Stdio};
use tokio_util::sync::CancellationToken;

/// How long anything a test waits for may take before the test fails: a bound, not a measurement.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(90);

fn request(day: chrono::NaiveDate) -> AggregationRequest {
    AggregationRequest {
        from: day,
        to: day,
        tz: IST,
        triggered_by: TriggeredBy::User,
        by: None,
        break_locks: false,
    }
}

async fn lock(store: &Store, id: &str) -> Option<Document> {
    store
        .collection::<Document>(AGGREGATION_RUNS)
        .find_one(doc! {"_id": id})
        .await
        .unwrap()
}

async fn dailies(store: &Store, day: &str) -> u64 {
    store
        .collection::<Document>(collections::DAILY)
        .count_documents(doc! {"date_string": day})
        .await
        .unwrap()
}

/// Waits until `at` has passed on this machine's clock (the lease's expiry as stored).
async fn wait_until(at: chrono::DateTime<Utc>) {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(50)).await;
}

fn expires_at(d: &Document) -> chrono::DateTime<Utc> {
    d.get_datetime("expires_at").unwrap().to_chrono()
}

/// Polls `check` every 20 ms until it returns `Some`, failing after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `autovolt aggregate --date DAY` against `uri`, with locks leased for `lease_secs`.
fn aggregate_command(uri: &str, day: &str, lease_secs: u64, dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autovolt"));
    cmd.args(["aggregate", "--date", day])
        .env_clear()
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env("AUTOVOLT_LOCK_LEASE_SECS", lease_secs.to_string())
        .stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// So many classrooms that writing one day's aggregates (one write per classroom) takes a while.
const CLASSROOMS: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_day_is_completed_by_the_next_run() {
    let c = campus("lease_kill", 0, 0, 8.0).await;
    let start = ist(2026, 11, 24, 9, 0);
    let rooms: Vec<Document> = (0..CLASSROOMS)
        .map(|i| doc! {"name": format!("Room-{i:04}")})
        .collect();
    let rows: Vec<Document> = (0..CLASSROOMS)
        .map(|i| {
            doc! {
                "device_id": format!("{i:024x}"), "esp32_name": format!("Board {i}"),
                "classroom": format!("Room-{i:04}"), "switch_id": "sw1", "switch_name": "Lights",
                "switch_type": "light", "start_ts": bson::DateTime::from_chrono(start),
                "end_ts": bson::DateTime::from_chrono(start + Duration::hours(1)),
                "switch_on_duration_seconds": 3600.0, "delta_wh": 40.0, "power_w": 40.0,
                "cost_calculation": {"cost_per_kwh": 8.0, "cost_inr": 0.32},
                "quality": {"confidence": "high", "data_source": "power_tracker"},
            }
        })
        .collect();
    c.store
        .collection::<Document>(collections::CLASSROOMS)
        .insert_many(rooms)
        .await
        .unwrap();
    c.store
        .collection::<Document>(collections::LEDGER)
        .insert_many(rows)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut child = aggregate_command(&c.uri, "2026-11-24", 3, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Mid-run: the day's lock is held, some classrooms are written, and the lease was renewed.
    let first = eventually(
        "the run holds its lock and has written a classroom",
        || async {
            let held = lock(&c.store, "lock:day:2026-11-24").await?;
            (dailies(&c.store, "2026-11-24").await > 0).then(|| expires_at(&held))
        },
    )
    .await;
    eventually("the run renews its lease while it works", || async {
        let held = lock(&c.store, "lock:day:2026-11-24").await;
        assert!(
            held.is_some(),
            "the run finished before it could be killed: raise CLASSROOMS"
        );
        held.filter(|h| expires_at(h) > first).map(|_| ())
    })
    .await;
    child.kill().unwrap(); // SIGKILL: nothing is released, nothing is logged.
    child.wait().unwrap();

    let dead = lock(&c.store, "lock:day:2026-11-24")
        .await
        .expect("the killed run's lock is left behind");
    let written = dailies(&c.store, "2026-11-24").await;
    assert!(
        written < CLASSROOMS as u64,
        "killed in the middle of the day ({written} of {CLASSROOMS} written)"
    );

    // No one removes the lock: once its lease has run out, the next run takes it over.
    wait_until(expires_at(&dead)).await;
    let out = aggregate_command(&c.uri, "2026-11-24", 3, dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dailies(&c.store, "2026-11-24").await, CLASSROOMS as u64);
    assert!(lock(&c.store, "lock:day:2026-11-24").await.is_none());
    let total: f64 = c
        .store
        .daily_aggregates(&AggregateQuery {
            from: Some("2026-11-24".into()),
            to: Some("2026-11-24".into()),
            ..AggregateQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|d| d.total_kwh)
        .sum();
    assert!((total - 0.04 * CLASSROOMS as f64).abs() < 1e-6, "{total}");
}

#[tokio::test]
async fn a_live_lock_refuses_with_its_holder_and_an_expired_one_is_taken_over() {
    let c = campus("lease_takeover", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    let locks = c.store.collection::<Document>(AGGREGATION_RUNS);
    let now = Utc::now();
    locks
        .insert_one(doc! {
            "_id": "lock:day:2026-11-24", "owner": "ops-1:4242:x",
            "acquired_at": bson::DateTime::from_chrono(now - Duration::minutes(40)),
            "expires_at": bson::DateTime::from_chrono(now + Duration::minutes(10)),
        })
        .await
        .unwrap();
    let err = c
        .store
        .aggregate(
            &request(date(2026, 11, 24)),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("ops-1:4242:x") && text.contains("40 min"),
        "{text}"
    );
    assert!(text.contains("lease expires in"), "{text}");

    // Its holder stopped renewing it: the lease runs out and the next run takes the lock over.
    locks
        .update_one(
            doc! {"_id": "lock:day:2026-11-24"},
            doc! {"$set": {"expires_at": bson::DateTime::from_chrono(now - Duration::seconds(1))}},
        )
        .await
        .unwrap();
    c.store
        .aggregate(
            &request(date(2026, 11, 24)),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(dailies(&c.store, "2026-11-24").await, 1);
    assert!(lock(&c.store, "lock:day:2026-11-24").await.is_none());
}

#[tokio::test]
async fn two_takers_of_an_expired_lock_cannot_both_win() {
    let c = campus("lease_race", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    let s = c
        .store
        .clone()
        .with_lock_lease(std::time::Duration::from_secs(600));
    s.collection::<Document>(AGGREGATION_RUNS)
        .insert_one(doc! {
            "_id": "lock:day:2026-11-24", "owner": "dead",
            "acquired_at": bson::DateTime::from_chrono(Utc::now() - Duration::minutes(5)),
            "expires_at": bson::DateTime::from_chrono(Utc::now() - Duration::minutes(1)),
        })
        .await
        .unwrap();
    // Each taker that wins holds the lock for its whole run; the others see it live.
    let runs = (0..4).map(|_| {
        let s = s.clone();
        tokio::spawn(async move {
            s.aggregate(
                &request(date(2026, 11, 24)),
                None,
                &CancellationToken::new(),
            )
            .await
        })
    });
    let results: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(results.iter().any(|r| r.is_ok()), "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
        }
    }
    let runs = s
        .collection::<Document>(collections::ACTIVITY)
        .count_documents(doc! {"action": "aggregation_run"})
        .await
        .unwrap();
    assert_eq!(runs as usize, results.iter().filter(|r| r.is_ok()).count());
    assert_eq!(dailies(&s, "2026-11-24").await, 1);
}

#[tokio::test]
async fn the_nightly_run_completes_days_whose_runs_died() {
    let c = campus("lease_nightly", 1, 1, 7.5).await;
    for d in [22, 23, 24] {
        c.bill(0, 0, ist(2026, 11, d, 9, 0), ist(2026, 11, d, 10, 0))
            .await;
    }
    let runs = c.store.collection::<Document>(AGGREGATION_RUNS);
    let ago = |m: i64| bson::DateTime::from_chrono(Utc::now() - Duration::minutes(m));
    runs.insert_many([
        // The 22nd: its collector was killed mid-run (its claim and day lock left, leases run out).
        doc! {"_id": "claim:daily:2026-11-22", "owner": "dead-collector", "claimed_at": ago(3000),
        "acquired_at": ago(3000), "expires_at": ago(2999)},
        doc! {"_id": "lock:day:2026-11-22", "owner": "dead-collector", "acquired_at": ago(3000),
        "expires_at": ago(2999)},
        // The 23rd: aggregated long ago.
        doc! {"_id": "claim:daily:2026-11-23", "owner": "other", "claimed_at": ago(1500),
        "finished_at": ago(1499)},
    ])
    .await
    .unwrap();
    // The run at 00:10 on the 25th: yesterday, and the 22nd that never finished.
    let outcome = run_daily_aggregation(
        &c.store,
        Config::default().tz().unwrap(),
        ist(2026, 11, 25, 0, 10),
    )
    .await
    .unwrap();
    let DailyRun::Ran(summary) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(summary.days, 2);
    assert_eq!(dailies(&c.store, "2026-11-22").await, 1);
    assert_eq!(
        dailies(&c.store, "2026-11-23").await,
        0,
        "a finished day is left alone"
    );
    assert_eq!(dailies(&c.store, "2026-11-24").await, 1);
    for day in ["2026-11-22", "2026-11-24"] {
        let claim = lock(&c.store, &format!("claim:daily:{day}")).await.unwrap();
        assert!(claim.contains_key("finished_at"), "{claim:?}");
    }
    assert!(lock(&c.store, "lock:day:2026-11-22").await.is_none());
}

#[tokio::test]
async fn a_failed_nightly_run_leaves_its_day_for_the_next_run() {
    let c = campus("lease_failed", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    let runs = c.store.collection::<Document>(AGGREGATION_RUNS);
    // A manual run holds the day, alive.
    let now = bson::DateTime::from_chrono(Utc::now());
    let later = bson::DateTime::from_chrono(Utc::now() + Duration::minutes(10));
    runs.insert_one(
        doc! {"_id": "lock:day:2026-11-24", "owner": "manual", "acquired_at": now,
        "expires_at": later},
    )
    .await
    .unwrap();
    let tz = Config::default().tz().unwrap();
    let err = run_daily_aggregation(&c.store, tz, ist(2026, 11, 25, 0, 10))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let claim = lock(&c.store, "claim:daily:2026-11-24").await.unwrap();
    assert!(!claim.contains_key("finished_at"));
    assert!(claim.contains_key("failed_at"));

    // The manual run ends; the next night's run completes the 24th as well as the 25th.
    runs.delete_one(doc! {"_id": "lock:day:2026-11-24"})
        .await
        .unwrap();
    let DailyRun::Ran(s) = run_daily_aggregation(&c.store, tz, ist(2026, 11, 26, 0, 10))
        .await
        .unwrap()
    else {
        panic!("not run")
    };
    assert_eq!(s.days, 2);
    assert_eq!(dailies(&c.store, "2026-11-24").await, 1);
}

#[tokio::test]
async fn an_expired_migration_lock_is_taken_over_and_a_live_one_is_not() {
    let s = support::store("lease_migrations").await;
    let locks = s.collection::<Document>(collections::MIGRATIONS);
    let now = Utc::now();
    locks
        .insert_one(doc! {"_id": "lock", "owner": "ops-box:4242",
        "acquired_at": bson::DateTime::from_chrono(now - Duration::minutes(42)),
        "expires_at": bson::DateTime::from_chrono(now + Duration::minutes(5))})
        .await
        .unwrap();
    let err = s.migrate_up(None, false).await.unwrap_err().to_string();
    assert!(
        err.contains("ops-box:4242") && err.contains("42 min"),
        "{err}"
    );
    assert!(err.contains("lease expires in"), "{err}");
    assert!(err.contains("autovolt migrate unlock"), "{err}");
    let status = s.migration_status().await.unwrap();
    assert!(!status.lock.unwrap().is_stale(Utc::now()));

    locks
        .update_one(
            doc! {"_id": "lock"},
            doc! {"$set": {"expires_at": bson::DateTime::from_chrono(now - Duration::seconds(1))}},
        )
        .await
        .unwrap();
    assert!(s
        .migration_status()
        .await
        .unwrap()
        .lock
        .unwrap()
        .describe(Utc::now())
        .contains("stale"));
    let latest = autovolt::store::migrations::latest_version();
    assert_eq!(
        s.migrate_up(None, false).await.unwrap().len(),
        latest as usize
    );
    let status = s.migration_status().await.unwrap();
    assert_eq!(status.version(), latest);
    assert!(status.lock.is_none());
}
