//! Daily and monthly aggregation against a real server.

mod books_common;
mod support;

use autovolt::config::Config;
use autovolt::domain::tariff::{TariffChange, TariffTarget};
use autovolt::domain::{DailyAggregate, MonthlyAggregate, TriggeredBy};
use autovolt::store::aggregation::{
    run_daily_aggregation, AggregationRequest, AggregationSummary, DailyRun, AGGREGATION_RUNS,
};
use autovolt::store::{collections, AggregateQuery, Store, StoreError};
use books_common::{campus, date, ist, IST};
use bson::{doc, Document};
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

fn request(from: chrono::NaiveDate, to: chrono::NaiveDate) -> AggregationRequest {
    AggregationRequest {
        from,
        to,
        tz: IST,
        triggered_by: TriggeredBy::User,
        by: Some(autovolt::domain::Actor::at_database("asha")),
        break_locks: false,
    }
}

async fn run(store: &Store, from: chrono::NaiveDate, to: chrono::NaiveDate) -> AggregationSummary {
    store
        .aggregate(&request(from, to), None, &CancellationToken::new())
        .await
        .unwrap()
}

async fn raw(store: &Store, collection: &str) -> Vec<Document> {
    store
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn daily(store: &Store, day: &str) -> Vec<DailyAggregate> {
    store
        .daily_aggregates(&AggregateQuery {
            from: Some(day.into()),
            to: Some(day.into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn aggregating_twice_gives_identical_documents() {
    let c = campus("agg_idem", 2, 2, 7.5).await;
    for board in 0..4 {
        for sw in 0..6 {
            let start = ist(2026, 11, 24, 8 + sw as u32, 0);
            c.bill(board, sw, start, start + chrono::Duration::minutes(45))
                .await;
        }
    }
    let first = run(&c.store, date(2026, 11, 24), date(2026, 11, 24)).await;
    assert_eq!(first.days, 1);
    assert_eq!(first.ledger_rows, 24);
    assert_eq!(first.daily_written, 4);
    assert_eq!(first.monthly_written, 4);
    let daily_docs = raw(&c.store, collections::DAILY).await;
    let monthly_docs = raw(&c.store, collections::MONTHLY).await;

    let second = run(&c.store, date(2026, 11, 24), date(2026, 11, 24)).await;
    assert_eq!(second.daily_written, 0);
    assert_eq!(second.daily_unchanged, 4);
    assert_eq!(second.monthly_written, 0);
    assert_eq!(raw(&c.store, collections::DAILY).await, daily_docs);
    assert_eq!(raw(&c.store, collections::MONTHLY).await, monthly_docs);

    let d = &daily(&c.store, "2026-11-24").await[0];
    assert_eq!(d.switch_count, 6);
    assert_eq!(d.switch_breakdown.len(), 6);
    // 45 min of 40+40+75+75+200+1500 W.
    let kwh = 0.75 * (40.0 + 40.0 + 75.0 + 75.0 + 200.0 + 1500.0) / 1000.0;
    assert!((d.total_kwh - kwh).abs() < 1e-9, "{}", d.total_kwh);
    assert!((d.cost_at_calc_time - kwh * 7.5).abs() < 1e-9);
    assert!((d.cost_per_kwh_used - 7.5).abs() < 1e-9);
    assert_eq!(d.quality_score, 100.0);
    assert_eq!(d.on_time_sec, 6.0 * 2700.0);

    // One more row changes exactly one document; the rest stay untouched.
    c.bill(0, 0, ist(2026, 11, 24, 20, 0), ist(2026, 11, 24, 21, 0))
        .await;
    let third = run(&c.store, date(2026, 11, 24), date(2026, 11, 24)).await;
    assert_eq!(
        (third.daily_written, third.daily_unchanged),
        (1, 3),
        "{third:?}"
    );
    assert_eq!(third.monthly_written, 1);

    // Rows that disappear take their aggregate with them.
    let gone = c.device_id(3);
    c.store
        .collection::<Document>(collections::LEDGER)
        .delete_many(doc! {"device_id": &gone})
        .await
        .unwrap();
    let fourth = run(&c.store, date(2026, 11, 24), date(2026, 11, 24)).await;
    assert_eq!(fourth.daily_removed, 1);
    assert_eq!(fourth.monthly_removed, 1);
    assert!(daily(&c.store, "2026-11-24")
        .await
        .iter()
        .all(|d| d.device_id != gone));
}

#[tokio::test]
async fn the_early_morning_ist_window_lands_on_the_right_date() {
    let c = campus("agg_window", 1, 1, 8.0).await;
    // 00:30–05:00 IST on the 25th is 19:00–23:30 UTC on the 24th.
    c.bill(0, 2, ist(2026, 11, 25, 0, 30), ist(2026, 11, 25, 5, 0))
        .await;
    // 05:29 IST: still before 00:00 UTC.
    c.bill(0, 3, ist(2026, 11, 25, 5, 29), ist(2026, 11, 25, 5, 31))
        .await;
    // 23:59 IST on the 24th belongs to the 24th.
    c.bill(0, 0, ist(2026, 11, 24, 23, 0), ist(2026, 11, 24, 23, 59))
        .await;

    // The collectors' run at 00:10 IST on the 26th aggregates the 25th.
    let tz = Config::default().tz().unwrap();
    let outcome = run_daily_aggregation(&c.store, tz, ist(2026, 11, 26, 0, 10))
        .await
        .unwrap();
    let DailyRun::Ran(summary) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(summary.ledger_rows, 2);
    let day = daily(&c.store, "2026-11-25").await;
    assert_eq!(day.len(), 1);
    assert!((day[0].on_time_sec - (4.5 * 3600.0 + 120.0)).abs() < 1e-9);
    assert!(daily(&c.store, "2026-11-24").await.is_empty());

    // A run at 00:10 IST on the 25th (18:40 UTC on the 24th) aggregates the 24th, not the 23rd.
    let DailyRun::Ran(s) = run_daily_aggregation(&c.store, tz, ist(2026, 11, 25, 0, 10))
        .await
        .unwrap()
    else {
        panic!("not run")
    };
    assert_eq!(s.ledger_rows, 1);
    assert_eq!(daily(&c.store, "2026-11-24").await.len(), 1);
    assert!(daily(&c.store, "2026-11-23").await.is_empty());
}

#[tokio::test]
async fn an_interval_across_midnight_counts_in_both_days() {
    let c = campus("agg_midnight", 1, 1, 7.5).await;
    let rows = c
        .bill(0, 5, ist(2026, 11, 24, 22, 0), ist(2026, 11, 25, 1, 30))
        .await;
    assert_eq!(rows.len(), 2);
    run(&c.store, date(2026, 11, 24), date(2026, 11, 25)).await;
    let a = &daily(&c.store, "2026-11-24").await[0];
    let b = &daily(&c.store, "2026-11-25").await[0];
    assert_eq!(a.on_time_sec, 7200.0);
    assert_eq!(b.on_time_sec, 5400.0);
    assert!((a.total_kwh - 3.0).abs() < 1e-9);
    assert!((b.total_kwh - 2.25).abs() < 1e-9);
    let month: Vec<MonthlyAggregate> = c
        .store
        .monthly_aggregates(&AggregateQuery::default())
        .await
        .unwrap();
    assert_eq!(month.len(), 1);
    assert!((month[0].total_kwh - 5.25).abs() < 1e-9);
    assert_eq!(month[0].daily_totals.len(), 2);
    assert_eq!(month[0].month_string, "2026-11");
}

#[tokio::test]
async fn a_tariff_change_mid_interval_is_billed_at_both_rates() {
    let c = campus("agg_tariff", 1, 1, 7.5).await;
    let change = |price, from| TariffChange {
        price,
        target: TariffTarget::Global,
        from: Some(from),
        note: None,
        by: autovolt::domain::Actor::at_database("asha"),
    };
    c.store
        .set_tariff(&change(6.0, ist(2026, 11, 1, 0, 0)))
        .await
        .unwrap();
    c.store
        .set_tariff(&change(9.0, ist(2026, 11, 24, 12, 0)))
        .await
        .unwrap();
    // A 1500 W AC from 10:00 to 14:00: 2 h at ₹6 and 2 h at ₹9.
    let rows = c
        .bill(0, 5, ist(2026, 11, 24, 10, 0), ist(2026, 11, 24, 14, 0))
        .await;
    assert_eq!(rows.len(), 2);
    run(&c.store, date(2026, 11, 24), date(2026, 11, 24)).await;
    let d = &daily(&c.store, "2026-11-24").await[0];
    assert!((d.total_kwh - 6.0).abs() < 1e-9);
    assert!((d.cost_at_calc_time - (3.0 * 6.0 + 3.0 * 9.0)).abs() < 1e-9);
    assert!((d.cost_per_kwh_used - 7.5).abs() < 1e-9);

    // A classroom tariff applies to its classroom's rows only from its start.
    c.store
        .set_tariff(&TariffChange {
            target: TariffTarget::Classroom("CS-101".into()),
            ..change(12.0, ist(2026, 11, 25, 0, 0))
        })
        .await
        .unwrap();
    c.bill(0, 5, ist(2026, 11, 25, 10, 0), ist(2026, 11, 25, 11, 0))
        .await;
    run(&c.store, date(2026, 11, 25), date(2026, 11, 25)).await;
    let d = &daily(&c.store, "2026-11-25").await[0];
    assert!((d.cost_at_calc_time - 1.5 * 12.0).abs() < 1e-9);
}

#[tokio::test]
async fn progress_is_reported_and_a_run_can_be_cancelled() {
    let c = campus("agg_progress", 3, 1, 7.5).await;
    for b in 0..3 {
        for day in 20..=22 {
            c.bill(b, 0, ist(2026, 11, day, 9, 0), ist(2026, 11, day, 10, 0))
                .await;
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let summary = c
        .store
        .aggregate(
            &request(date(2026, 11, 20), date(2026, 11, 22)),
            Some(tx),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(summary.days, 3);
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert_eq!(events.len(), 9);
    assert!(events.windows(2).all(|w| w[0].done < w[1].done));
    let last = events.last().unwrap();
    assert_eq!((last.done, last.total), (9, 9));
    assert_eq!(last.date, "2026-11-22");
    assert_eq!(last.classroom, "CS-103");

    // Cancelled before it starts: nothing written, and it says so.
    c.store
        .collection::<Document>(collections::DAILY)
        .delete_many(doc! {})
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let summary = c
        .store
        .aggregate(
            &request(date(2026, 11, 20), date(2026, 11, 22)),
            None,
            &cancel,
        )
        .await
        .unwrap();
    assert!(summary.cancelled);
    assert_eq!(summary.days, 0);
    assert!(raw(&c.store, collections::DAILY).await.is_empty());
    // The run was logged either way.
    let runs = c
        .store
        .collection::<Document>(collections::ACTIVITY)
        .count_documents(doc! {"action": "aggregation_run"})
        .await
        .unwrap();
    assert_eq!(runs, 2);
}

#[tokio::test]
async fn a_held_lock_stops_a_second_run_and_can_be_broken() {
    let c = campus("agg_lock", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    let locks = c.store.collection::<Document>(AGGREGATION_RUNS);
    locks
        .insert_one(doc! {
            "_id": "lock:day:2026-11-24",
            "owner": "ops-1:4242:x",
            "acquired_at": bson::DateTime::from_chrono(chrono::Utc::now() - chrono::Duration::minutes(40)),
            "expires_at": bson::DateTime::from_chrono(chrono::Utc::now() + chrono::Duration::minutes(10)),
        })
        .await
        .unwrap();
    let err = c
        .store
        .aggregate(
            &request(date(2026, 11, 24), date(2026, 11, 24)),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("ops-1:4242:x"), "{text}");
    assert!(text.contains("40 min"), "{text}");
    assert!(text.contains("lease expires in"), "{text}");
    assert!(text.contains("--break-lock"), "{text}");
    assert!(daily(&c.store, "2026-11-24").await.is_empty());
    // A longer run that meets the held day gives back the days it had locked.
    let err = c
        .store
        .aggregate(
            &request(date(2026, 11, 22), date(2026, 11, 24)),
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        locks.count_documents(doc! {}).await.unwrap(),
        1,
        "only the foreign lock remains"
    );

    let mut breaking = request(date(2026, 11, 24), date(2026, 11, 24));
    breaking.break_locks = true;
    c.store
        .aggregate(&breaking, None, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(daily(&c.store, "2026-11-24").await.len(), 1);
    // Locks are released after the run.
    assert_eq!(
        locks
            .count_documents(doc! {"_id": {"$regex": "^lock:"}})
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_daily_run_happens_once_across_collectors() {
    let c = campus("agg_once", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    let tz = Config::default().tz().unwrap();
    let now = ist(2026, 11, 25, 0, 10);
    let (a, b, d) = tokio::join!(
        run_daily_aggregation(&c.store, tz, now),
        run_daily_aggregation(&c.store, tz, now),
        run_daily_aggregation(&c.store, tz, now),
    );
    let outcomes = [a.unwrap(), b.unwrap(), d.unwrap()];
    let ran = outcomes
        .iter()
        .filter(|o| matches!(o, DailyRun::Ran(_)))
        .count();
    assert_eq!(ran, 1, "{outcomes:?}");
    assert_eq!(daily(&c.store, "2026-11-24").await.len(), 1);
    let runs = c
        .store
        .collection::<Document>(collections::ACTIVITY)
        .count_documents(doc! {"action": "aggregation_run"})
        .await
        .unwrap();
    assert_eq!(runs, 1);

    // A claim whose collector died an hour ago without finishing is taken over; a fresh one is not.
    let claims = c.store.collection::<Document>(AGGREGATION_RUNS);
    for (day, minutes_ago) in [("2026-11-25", 60), ("2026-11-26", 1)] {
        claims
            .insert_one(doc! {
                "_id": format!("claim:daily:{day}"),
                "owner": "dead-collector",
                "claimed_at": bson::DateTime::from_chrono(chrono::Utc::now() - chrono::Duration::minutes(minutes_ago)),
            })
            .await
            .unwrap();
    }
    let taken = run_daily_aggregation(&c.store, tz, ist(2026, 11, 26, 0, 10))
        .await
        .unwrap();
    assert!(matches!(taken, DailyRun::Ran(_)), "{taken:?}");
    let left = run_daily_aggregation(&c.store, tz, ist(2026, 11, 27, 0, 10))
        .await
        .unwrap();
    assert_eq!(
        left,
        DailyRun::ClaimedElsewhere {
            owner: "dead-collector".into()
        }
    );
}

#[tokio::test]
async fn the_group_probe_detects_ferretdb_feeding_only_one_accumulator() {
    let uri = support::fresh_database_uri("agg_probe");
    let empty = autovolt::store::Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    // Connecting writes nothing: the database is still empty.
    assert!(empty.collection_names().await.unwrap().is_empty());
    // With a document to try it on, the probe reads the server's answer.
    empty
        .collection::<Document>(autovolt::store::collections::CLASSROOMS)
        .insert_one(doc! {"name": "CS-101"})
        .await
        .unwrap();
    let store = autovolt::store::Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let several = store.capabilities().group_sums;
    if store.server().kind == autovolt::store::ServerKind::FerretDb {
        assert!(
            !several,
            "FerretDB 1.24 was expected to fill only the first accumulator"
        );
    } else {
        assert!(several);
    }
    assert_eq!(
        store.collection_names().await.unwrap(),
        vec![autovolt::store::collections::CLASSROOMS.to_string()]
    );
}

#[tokio::test]
async fn the_scheduler_catches_up_a_missed_day_at_start() {
    let c = campus("agg_sched", 1, 1, 7.5).await;
    c.bill(0, 0, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    // Started at 00:15 IST, after the 00:10 run time: yesterday is aggregated at once.
    let handle = autovolt::store::aggregation::spawn_daily_aggregation(
        c.store.clone(),
        Config::default().tz().unwrap(),
        &Config::default().aggregate_at,
        std::sync::Arc::new(autovolt::clock::ManualClock::new(ist(2026, 11, 25, 0, 15))),
    )
    .unwrap();
    let mut found = Vec::new();
    for _ in 0..100 {
        found = daily(&c.store, "2026-11-24").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    handle.abort();
    assert_eq!(found.len(), 1);
    let claim = c
        .store
        .collection::<Document>(AGGREGATION_RUNS)
        .find_one(doc! {"_id": "claim:daily:2026-11-24"})
        .await
        .unwrap();
    assert!(claim.is_some());
}
