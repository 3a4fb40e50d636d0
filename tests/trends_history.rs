//! The trends' history against a real server: each classroom's day as the view reads it (the
//! campus summaries the aggregation writes, and the rollups of days without one) equals the daily
//! rollups summed, whoever wrote them; a summary that cannot be read, a day aggregated again and
//! migration 4 over rollups already there all keep it so.

mod books_common;
mod support;

use autovolt::domain::audit::Finding;
use autovolt::domain::trends::DailyBook;
use autovolt::store::campus_days::{CAMPUS_DAYS, CLASSROOM_DAYS};
use autovolt::store::{collections, AggregateQuery, Store};
use books_common::{campus, date, ist, Campus, IST};
use bson::doc;
use chrono::{Days, NaiveDate};
use std::collections::BTreeMap;

/// Two classrooms of two boards billed on 19–21 November and aggregated.
async fn books(label: &str) -> Campus {
    let c = campus(label, 2, 2, 7.5).await;
    for board in 0..4 {
        for day in 19..=21 {
            c.bill(
                board,
                1 + board % 3,
                ist(2026, 11, day, 9, 0),
                ist(2026, 11, day, 10, 30 + board as u32),
            )
            .await;
        }
    }
    c.aggregate(date(2026, 11, 19), date(2026, 11, 21)).await;
    c
}

/// The stored rollups of `from..=to` summed per day and classroom (the classroom as stored).
async fn rollups_summed(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> BTreeMap<(NaiveDate, String), (f64, f64)> {
    let mut out = BTreeMap::new();
    for a in store
        .daily_aggregates(&AggregateQuery {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            ..AggregateQuery::default()
        })
        .await
        .unwrap()
    {
        let d = NaiveDate::parse_from_str(&a.date_string, "%Y-%m-%d").unwrap();
        let e: &mut (f64, f64) = out.entry((d, a.classroom)).or_default();
        e.0 += a.total_kwh;
        e.1 += a.cost_at_calc_time;
    }
    out
}

fn assert_same(book: &DailyBook, want: &BTreeMap<(NaiveDate, String), (f64, f64)>) {
    let got: Vec<_> = book.rows().collect();
    assert_eq!(
        got.len(),
        want.len(),
        "days and classrooms: {got:?} against {want:?}"
    );
    for row in got {
        let Some((kwh, cost)) = want.get(&(row.date, row.classroom.clone())) else {
            panic!("{} {} is not in the rollups", row.date, row.classroom);
        };
        assert!(
            (row.amount.kwh - kwh).abs() < 1e-9 && (row.amount.cost - cost).abs() < 1e-9,
            "{} {}: {:?} against {kwh} kWh, ₹{cost}",
            row.date,
            row.classroom,
            row.amount
        );
        assert!(*kwh > 0.0);
    }
}

#[tokio::test]
async fn the_history_is_the_rollups_summed_from_summaries_or_from_rollups() {
    let c = books("trends_history").await;
    let (from, to) = (date(2026, 11, 18), date(2026, 11, 21));
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();

    // The aggregation wrote a summary for each day it aggregated.
    let found = c.store.campus_days(from, to).await.unwrap();
    assert_eq!(
        found.days.keys().copied().collect::<Vec<_>>(),
        days[1..].to_vec()
    );
    assert!(found.unsummarized(&days[1..]).is_empty());
    let want = rollups_summed(&c.store, from, to).await;
    assert_eq!(want.len(), 6, "2 classrooms × 3 days");
    assert_same(&c.store.daily_book(from, to).await.unwrap(), &want);

    // A day billed again and aggregated again: its summary follows its rollups.
    c.bill(3, 4, ist(2026, 11, 20, 14, 0), ist(2026, 11, 20, 17, 0))
        .await;
    c.aggregate(date(2026, 11, 20), date(2026, 11, 20)).await;
    let want = rollups_summed(&c.store, from, to).await;
    assert_same(&c.store.daily_book(from, to).await.unwrap(), &want);

    // Another program aggregates a summarized day again: the summary it did not rewrite is what
    // the view shows, and the audit finds it; aggregating the day again settles it.
    let rollup = c
        .store
        .collection::<bson::Document>(collections::DAILY)
        .find_one(doc! {"date_string": "2026-11-20"})
        .await
        .unwrap()
        .unwrap();
    c.store
        .collection::<bson::Document>(collections::DAILY)
        .update_one(
            doc! {"_id": rollup.get_object_id("_id").unwrap()},
            doc! {"$inc": {"total_kwh": 5.0, "cost_at_calc_time": 37.5}},
        )
        .await
        .unwrap();
    let audit = c
        .store
        .audit(date(2026, 11, 20), date(2026, 11, 20), IST)
        .await
        .unwrap();
    let stale: Vec<String> = audit
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::StaleCampusDay { .. }))
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        stale.len(),
        2,
        "the campus total and one classroom: {stale:?}"
    );
    assert!(stale[0].contains("campus total") && stale[0].contains("aggregate --date 2026-11-20"));
    c.aggregate(date(2026, 11, 20), date(2026, 11, 20)).await;
    let audit = c
        .store
        .audit(date(2026, 11, 19), date(2026, 11, 21), IST)
        .await
        .unwrap();
    assert!(audit.is_clean(), "{:?}", audit.findings);
    assert_same(&c.store.daily_book(from, to).await.unwrap(), &want);

    // Summaries another program broke are recorded as unreadable; their days (a campus total
    // before the summaries became complete, a day's classrooms) are read from the rollups.
    let broken = [
        (CAMPUS_DAYS, "2026-11-19", "total_kwh"),
        (CLASSROOM_DAYS, "2026-11-21", "classrooms"),
    ];
    for (collection, day, field) in broken {
        c.store
            .collection::<bson::Document>(collection)
            .update_one(doc! {"_id": day}, doc! {"$set": {field: "not a number"}})
            .await
            .unwrap();
    }
    let book = c.store.daily_book(from, to).await.unwrap();
    assert_same(&book, &want);
    let unreadable = c.store.unreadable_documents();
    for (collection, _, field) in broken {
        assert!(
            unreadable
                .iter()
                .any(|u| u.collection == collection && u.field == field),
            "{collection}.{field}: {unreadable:?}"
        );
    }
    // The campus's days alone (the first look) are right too.
    let campus = c.store.campus_book(from, to).await.unwrap();
    for d in &days {
        let (a, b) = (campus.total(*d, *d, None), book.total(*d, *d, None));
        assert!((a.kwh - b.kwh).abs() < 1e-9 && (a.cost - b.cost).abs() < 1e-9);
    }
    assert!(
        !campus.has_rooms(from, to),
        "classrooms of summarized days follow"
    );
}

#[tokio::test]
async fn a_day_aggregated_by_another_program_is_read_from_its_rollups() {
    let c = books("trends_other_writer").await;
    // A day after the summaries became complete (the campus was migrated today), written the way
    // the Node back end writes it: the classroom as its id in hex, numbers as int32, `__v`.
    let day = chrono::Utc::now().date_naive();
    let room = c
        .store
        .classrooms()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.name == "CS-102")
        .unwrap();
    c.store
        .collection::<bson::Document>(collections::DAILY)
        .insert_one(doc! {
            "date_string": day.to_string(),
            "classroom": room.id.unwrap().to_hex(),
            "device_id": "other-writer-board",
            "esp32_name": "CS-102-x",
            "total_kwh": 12_i32,
            "on_time_sec": 3600_i32,
            "cost_at_calc_time": 90_i32,
            "cost_per_kwh_used": 7.5,
            "switch_count": 1_i32,
            "switch_breakdown": [],
            "quality_score": 100_i32,
            "__v": 0_i32,
        })
        .await
        .unwrap();
    let from = date(2026, 11, 19);
    let book = c.store.daily_book(from, day).await.unwrap();
    let other = book.total(day, day, Some("CS-102"));
    assert_eq!((other.kwh, other.cost), (12.0, 90.0), "{:?}", book);
    assert!(book.is_covered(day));
    let want = rollups_summed(&c.store, from, date(2026, 11, 21)).await;
    let before: f64 = want.values().map(|v| v.1).sum();
    let total = book.total(from, day, None).cost;
    assert!(
        (total - before - 90.0).abs() < 1e-9,
        "{total} against {before} + 90"
    );
}

#[tokio::test]
async fn migration_4_sums_the_rollups_already_there() {
    let c = books("trends_migration").await;
    let (from, to) = (date(2026, 11, 17), date(2026, 11, 21));
    let days: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
    let want = rollups_summed(&c.store, from, to).await;

    c.store.migrate_down(3, false).await.unwrap();
    let none = c.store.campus_days(from, to).await.unwrap();
    assert!(none.days.is_empty() && none.complete_from.is_none());
    // Without summaries every day is read from the rollups, with the same result.
    assert_eq!(none.unsummarized(&days), days);
    assert_same(&c.store.daily_book(from, to).await.unwrap(), &want);

    let steps = c.store.migrate_up(Some(4), false).await.unwrap();
    assert_eq!(steps.len(), 1);
    assert!(
        steps[0]
            .detail
            .contains("12 daily rollups into 3 campus days"),
        "{}",
        steps[0].detail
    );
    let found = c.store.campus_days(from, to).await.unwrap();
    assert_eq!(found.complete_from, Some(date(2026, 11, 19)));
    assert_eq!(found.days.len(), 3);
    // Days before the first rollup are known to be empty: nothing is read for them.
    assert!(found.unsummarized(&days).is_empty());
    assert_same(&c.store.daily_book(from, to).await.unwrap(), &want);
    let yesterday = date(2026, 11, 21).checked_sub_days(Days::new(1)).unwrap();
    assert_eq!(found.days[&yesterday].rollups, 4);
}

#[tokio::test]
async fn a_day_noted_late_is_aggregated_again_with_its_summary() {
    let c = books("trends_late_day").await;
    let day = date(2026, 11, 20);
    // A row of the 20th written after the day was aggregated (a board's buffered events).
    c.bill(0, 5, ist(2026, 11, 20, 19, 0), ist(2026, 11, 20, 20, 0))
        .await;
    let audit = c.store.audit(day, day, IST).await.unwrap();
    assert!(!audit.is_clean(), "the rollup misses the late row");
    c.store
        .note_late_days(&[day].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(c.store.aggregate_late_days(IST).await.unwrap(), [day]);
    let audit = c.store.audit(day, day, IST).await.unwrap();
    assert!(audit.is_clean(), "{:?}", audit.findings);
    let want = rollups_summed(&c.store, day, day).await;
    assert_same(&c.store.daily_book(day, day).await.unwrap(), &want);
    // Forgotten once done.
    assert!(c.store.aggregate_late_days(IST).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_seeded_month_of_history_passes_the_audit_and_reads_back() {
    use autovolt::seed::{history, seed, SeedOptions};
    let uri = support::fresh_database_uri("trends_seeded_history");
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate_up(None, false).await.unwrap();
    let options = SeedOptions {
        classrooms: 3,
        devices_per_classroom: 2,
        seed: Some(5),
    };
    seed(&store, &options).await.unwrap();
    let rows = history(&store, IST, 10, ist(2026, 11, 24, 14, 0), 5)
        .await
        .unwrap();
    assert!(rows > 100, "{rows} rows");
    let (from, to) = (date(2026, 11, 14), date(2026, 11, 23));
    let audit = store.audit(from, to, IST).await.unwrap();
    assert!(audit.is_clean(), "{:?}", audit.findings);
    assert!(audit.days_not_aggregated.is_empty());
    assert_eq!(audit.rows_checked, rows as u64);
    let want = rollups_summed(&store, from, to).await;
    let book = store.daily_book(from, to).await.unwrap();
    assert_same(&book, &want);
    // A Sunday is quiet next to a Monday.
    let sunday = book.total(date(2026, 11, 22), date(2026, 11, 22), None);
    let monday = book.total(date(2026, 11, 23), date(2026, 11, 23), None);
    assert!(sunday.cost * 3.0 < monday.cost, "{sunday:?} {monday:?}");
}
