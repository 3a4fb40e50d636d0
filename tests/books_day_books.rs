//! The day books against a real server: every ledger row counted exactly once however it is
//! written again, split at midnight, checked by the audit and set right by the aggregation.

mod books_common;
mod support;

use autovolt::domain::audit::Finding;
use autovolt::domain::LedgerRow;
use autovolt::store::collections;
use autovolt::store::day_books::books_of;
use books_common::{campus, date, ist, Campus};
use bson::doc;

/// The total kWh and ₹ of `rows`.
fn sum(rows: &[LedgerRow]) -> (f64, f64) {
    rows.iter()
        .fold((0.0, 0.0), |(k, c), r| (k + r.kwh(), c + r.cost()))
}

/// The day's closed kWh and ₹ as the dashboard reads them (from the books).
async fn closed(c: &Campus, day: chrono::NaiveDate) -> (f64, f64) {
    c.store
        .closed_totals(day, None)
        .await
        .unwrap()
        .iter()
        .fold((0.0, 0.0), |(k, m), s| {
            (k + s.amount.kwh, m + s.amount.cost)
        })
}

fn assert_close(got: (f64, f64), want: (f64, f64)) {
    assert!(
        (got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-6,
        "{got:?} against {want:?}"
    );
}

async fn book_findings(c: &Campus, day: chrono::NaiveDate) -> Vec<Finding> {
    let report = c.store.audit(day, day, books_common::IST).await.unwrap();
    assert!(report.books_checked > 0, "the audit read the books");
    report
        .findings
        .into_iter()
        .filter(|f| matches!(f, Finding::StaleDayBook { .. }))
        .collect()
}

#[tokio::test]
async fn a_replayed_batch_and_two_writers_count_each_row_once() {
    let c = campus("books_replay", 1, 2, 7.5).await;
    let day = date(2026, 11, 24);
    let mut rows = c
        .bill(0, 2, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 11, 0))
        .await;
    rows.extend(
        c.bill(1, 5, ist(2026, 11, 24, 12, 0), ist(2026, 11, 24, 12, 45))
            .await,
    );
    // The same batch again, and twice at once from two connections (two collectors).
    c.store.insert_ledger_rows(&rows).await.unwrap();
    let other = autovolt::store::Store::connect(&c.uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        c.store.insert_ledger_rows(&rows),
        other.insert_ledger_rows(&rows)
    );
    assert_eq!(a.unwrap().inserted + b.unwrap().inserted, 0);
    assert_close(closed(&c, day).await, sum(&rows));
    assert!(book_findings(&c, day).await.is_empty());
}

#[tokio::test]
async fn rows_written_before_a_collector_died_are_counted_by_its_retry() {
    let c = campus("books_killed", 1, 1, 7.5).await;
    let day = date(2026, 11, 24);
    let rows = c
        .bill(0, 1, ist(2026, 11, 24, 8, 0), ist(2026, 11, 24, 9, 30))
        .await;
    // A collector that wrote the ledger rows and died before their books: the rows are in the
    // ledger, not in the books.
    let late = c
        .bill(0, 3, ist(2026, 11, 24, 10, 0), ist(2026, 11, 24, 10, 20))
        .await;
    let key = |r: &LedgerRow| autovolt::domain::day_books::entry_key(&r.switch_id, r.start_ts);
    c.store
        .collection::<bson::Document>(&books_of(day))
        .update_one(
            doc! {"_id": c.device_id(0)},
            doc! {"$unset": {format!("rows.{}", key(&late[0])): ""}},
        )
        .await
        .unwrap();
    assert_close(closed(&c, day).await, sum(&rows));
    // Its retry finds the rows there (duplicates) and counts them, once.
    let again = c.store.insert_ledger_rows(&late).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, late.len() as u64));
    c.store.insert_ledger_rows(&late).await.unwrap();
    let all: Vec<LedgerRow> = rows.iter().chain(&late).cloned().collect();
    assert_close(closed(&c, day).await, sum(&all));
}

#[tokio::test]
async fn an_interval_across_midnight_is_counted_in_each_day() {
    let c = campus("books_midnight", 1, 1, 7.5).await;
    let rows = c
        .bill(0, 5, ist(2026, 11, 24, 23, 0), ist(2026, 11, 25, 1, 30))
        .await;
    assert_eq!(rows.len(), 2, "split at midnight");
    assert_close(closed(&c, date(2026, 11, 24)).await, sum(&rows[..1]));
    assert_close(closed(&c, date(2026, 11, 25)).await, sum(&rows[1..]));
}

#[tokio::test]
async fn the_audit_finds_a_tampered_book_and_the_aggregation_sets_it_right() {
    let c = campus("books_tampered", 1, 2, 7.5).await;
    let day = date(2026, 11, 24);
    let rows = c
        .bill(1, 2, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 11, 0))
        .await;
    let id = c.device_id(1);
    let entry = autovolt::domain::day_books::entry_key(&rows[0].switch_id, rows[0].start_ts);
    c.store
        .collection::<bson::Document>(&books_of(day))
        .update_one(
            doc! {"_id": &id},
            doc! {"$set": {format!("rows.{entry}.wh"): 99_999.0, "rows.1~sw9": {"s": "sw9", "c": "CS-101", "wh": 5.0, "cost": 1.0}}},
        )
        .await
        .unwrap();
    let found = book_findings(&c, day).await;
    match found.as_slice() {
        [Finding::StaleDayBook {
            device_id,
            different: 1,
            extra: 1,
            missing: 0,
            ..
        }] => assert_eq!(device_id, &c.device_id(1)),
        other => panic!("{other:?}"),
    }
    c.aggregate(day, day).await;
    assert!(book_findings(&c, day).await.is_empty());
    assert_close(closed(&c, day).await, sum(&rows));
}

#[tokio::test]
async fn a_row_another_program_wrote_is_counted_once_its_day_is_aggregated() {
    let c = campus("books_node_row", 1, 1, 7.5).await;
    let day = date(2026, 11, 24);
    let ours = c
        .bill(0, 0, ist(2026, 11, 24, 7, 0), ist(2026, 11, 24, 8, 0))
        .await;
    // The Node back end's shape: classroom as the classroom's ObjectId, no createdAt, costs as
    // it writes them.
    let room = c.boards[0].1.classroom.unwrap();
    let start = ist(2026, 11, 24, 14, 0);
    c.store
        .collection::<bson::Document>(collections::LEDGER)
        .insert_one(doc! {
            "device_id": c.device_id(0),
            "esp32_name": "CS-101-0",
            "classroom": room,
            "switch_id": "sw4",
            "switch_name": "Fan 4",
            "switch_type": "fan",
            "start_ts": bson::DateTime::from_chrono(start),
            "end_ts": bson::DateTime::from_chrono(start + chrono::Duration::hours(1)),
            "switch_on_duration_seconds": 3600.0,
            "delta_wh": 75.0,
            "power_w": 75.0,
            "cost_calculation": {"cost_per_kwh": 7.5, "cost_inr": 0.5625},
            "quality": {"confidence": "medium", "data_source": "power_tracker"},
        })
        .await
        .unwrap();
    assert_close(closed(&c, day).await, sum(&ours));
    assert_eq!(
        book_findings(&c, day).await.len(),
        1,
        "the audit sees it missing"
    );
    c.aggregate(day, day).await;
    let (kwh, cost) = sum(&ours);
    assert_close(closed(&c, day).await, (kwh + 0.075, cost + 0.5625));
    assert!(book_findings(&c, day).await.is_empty());
    let by_switch = c.store.closed_totals(day, None).await.unwrap();
    let node = by_switch.iter().find(|s| s.switch_id == "sw4").unwrap();
    assert_eq!(
        node.classroom, "CS-101",
        "its classroom reference is resolved"
    );
}

#[tokio::test]
async fn the_books_move_into_their_partitions_and_back_and_read_the_same() {
    use autovolt::store::day_books::{device_days_of, DAY_BOOKS, DEVICE_DAYS};
    let c = campus("books_partitions", 1, 2, 7.5).await;
    let (day, next) = (date(2026, 11, 24), date(2026, 11, 25));
    let mut rows = c
        .bill(0, 1, ist(2026, 11, 24, 9, 0), ist(2026, 11, 24, 10, 0))
        .await;
    rows.extend(
        c.bill(1, 2, ist(2026, 11, 24, 23, 30), ist(2026, 11, 25, 0, 30))
            .await,
    );
    c.aggregate(day, day).await;
    let read = || async {
        (
            closed(&c, day).await,
            closed(&c, next).await,
            c.store
                .totals_history(next, books_common::IST)
                .await
                .unwrap(),
        )
    };
    let before = read().await;
    assert!(
        !before.2.is_empty(),
        "the aggregated day's device totals are read"
    );
    let names = || async {
        let mut n = c.store.database().list_collection_names().await.unwrap();
        n.sort();
        n
    };
    assert!(names().await.contains(&books_of(next)));
    assert!(names().await.contains(&device_days_of(day)));

    // Down to 5: one collection each, as migration 5 first wrote them.
    c.store.migrate_down(5, false).await.unwrap();
    assert!(c.store.partitions().await.unwrap().is_empty());
    let old = c.store.collection::<bson::Document>(DAY_BOOKS);
    let book = old
        .find_one(doc! {"_id": format!("2026-11-24/{}", c.device_id(0))})
        .await
        .unwrap()
        .expect("the book in migration 5's shape");
    assert_eq!(book.get_str("device_id").unwrap(), c.device_id(0));
    assert!(old
        .find_one(doc! {"_id": "history"})
        .await
        .unwrap()
        .is_some());
    let totals = c.store.collection::<bson::Document>(DEVICE_DAYS);
    assert!(totals
        .find_one(doc! {"_id": "2026-11-24"})
        .await
        .unwrap()
        .is_some());

    // Up again: the same figures from the partitions, nothing left behind.
    c.store.migrate_up(None, false).await.unwrap();
    assert_eq!(
        old.count_documents(doc! {}).await.unwrap(),
        1,
        "only the history mark stays"
    );
    assert!(!names().await.contains(&DEVICE_DAYS.to_string()));
    let after = read().await;
    assert_close(after.0, before.0);
    assert_close(after.1, before.1);
    assert_close(after.0, sum(&rows[..2]));
    let total =
        |h: &[autovolt::domain::totals::DayTotal]| h.iter().map(|d| d.amount.cost).sum::<f64>();
    assert!((total(&after.2) - total(&before.2)).abs() < 1e-9);
}
