//! The change feed: insert and update events, and surviving a server outage. On FerretDB this is
//! the polling path; with AUTOVOLT_TEST_MONGODB_URI on a replica set the same test covers the
//! change-stream path.

mod support;

use autovolt::domain::{Classroom, Id};
use autovolt::store::changefeed::{
    ChangeFeed, ChangeKind, FeedEvent, FeedMode, FeedOptions, Record,
};
use autovolt::store::Store;
use bson::doc;
use std::time::Duration;

fn options() -> FeedOptions {
    FeedOptions {
        period: Duration::from_millis(100),
        cost_factor: 20,
        max_backoff: Duration::from_millis(400),
        force_polling: false,
    }
}

async fn next(feed: &mut ChangeFeed) -> FeedEvent {
    tokio::time::timeout(Duration::from_secs(20), feed.next())
        .await
        .expect("no feed event within 20 s")
        .expect("the feed stopped")
}

fn room(name: &str) -> Classroom {
    Classroom {
        id: None,
        name: name.into(),
        building: None,
        floor: None,
        created_at: None,
        updated_at: None,
    }
}

#[tokio::test]
async fn an_insert_and_an_update_arrive_once_each() {
    let s = support::store("feed").await;
    s.ensure_indexes().await.unwrap();
    let old = s.insert_classroom(&room("Before-1")).await.unwrap();
    // A change in the very millisecond the feed starts may be reported (at least once beats
    // missing it); one clearly before is not.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut feed = s.follow(&["classrooms", "devices"], options());
    if !s.capabilities().change_streams {
        assert_eq!(feed.mode(), FeedMode::Polling);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let id = s.insert_classroom(&room("CS-101")).await.unwrap();
    let FeedEvent::Change(c) = next(&mut feed).await else {
        panic!("expected a change");
    };
    assert_eq!(
        (c.collection.as_str(), c.kind, c.id.clone()),
        ("classrooms", ChangeKind::Insert, id.to_hex())
    );

    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = bson::DateTime::from_chrono(autovolt::domain::dates::now_millis());
    s.collection::<bson::Document>("classrooms")
        .update_one(
            doc! {"_id": id},
            doc! {"$set": {"floor": 2, "updatedAt": now}},
        )
        .await
        .unwrap();
    let FeedEvent::Change(c) = next(&mut feed).await else {
        panic!("expected a change");
    };
    assert_eq!((c.kind, c.id.clone()), (ChangeKind::Update, id.to_hex()));
    if feed.mode() == FeedMode::Polling {
        assert_eq!(
            c.at,
            now.to_chrono(),
            "polling reports the document's updatedAt"
        );
    }

    // Nothing more: no repeats across polls, and the document from before the feed is not news.
    let quiet = tokio::time::timeout(Duration::from_millis(800), feed.next()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
    assert_ne!(old, id);
}

#[test]
fn the_feed_reports_an_outage_and_recovers() {
    let (mut server, uri) = support::own_ferretdb();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let uri = support::with_database(&uri, "feed_outage");
        let s = Store::connect(&uri, Duration::from_secs(1)).await.unwrap();
        let mut feed = s.follow(&["classrooms"], options());
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.stop();
        match next(&mut feed).await {
            FeedEvent::Error(msg) => assert!(msg.contains("retrying"), "{msg}"),
            other => panic!("expected an error event, got {other:?}"),
        }
        server.restart().unwrap();
        loop {
            match next(&mut feed).await {
                FeedEvent::Recovered => break,
                FeedEvent::Error(_) => continue,
                other => panic!("expected recovery, got {other:?}"),
            }
        }
        let id: Id = s.insert_classroom(&room("After-1")).await.unwrap();
        match next(&mut feed).await {
            FeedEvent::Change(c) => assert_eq!(c.id, id.to_hex()),
            other => panic!("expected the insert, got {other:?}"),
        }
    });
}

#[tokio::test]
async fn a_burst_larger_than_one_read_arrives_whole() {
    let s = support::store("feed_burst").await;
    s.ensure_indexes().await.unwrap();
    let mut feed = s.follow(&["classrooms"], options());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = bson::DateTime::from_chrono(autovolt::domain::dates::now_millis());
    let docs: Vec<bson::Document> = (0..2500)
        .map(|i| doc! {"name": format!("R-{i}"), "createdAt": at, "updatedAt": at})
        .collect();
    s.collection::<bson::Document>("classrooms")
        .insert_many(docs)
        .await
        .unwrap();
    let mut ids = std::collections::HashSet::new();
    while ids.len() < 2500 {
        match next(&mut feed).await {
            FeedEvent::Change(c) => {
                assert_eq!(c.kind, ChangeKind::Insert);
                assert!(c.document.is_some(), "the document comes with the change");
                assert!(ids.insert(c.id), "repeated");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let quiet = tokio::time::timeout(Duration::from_millis(800), feed.next()).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
}

/// The ledger and the activity log grow without end: a polling feed never reads them, it reads
/// the bounded journal their writers append to, and each change brings its document.
#[tokio::test]
async fn ledger_rows_and_activity_arrive_with_their_documents() {
    let s = support::store("feed_books").await;
    s.migrate_up(None, false).await.unwrap();
    let mut feed = s.follow(&["deviceconsumptionledgers", "activitylogs"], options());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = autovolt::domain::dates::now_millis();
    // A row another program wrote straight into the ledger: not in the journal.
    s.collection::<bson::Document>("deviceconsumptionledgers")
        .insert_one(doc! {"device_id": "elsewhere", "switch_id": "sw1",
        "start_ts": bson::DateTime::from_chrono(now), "createdAt": bson::DateTime::from_chrono(now),
        "updatedAt": bson::DateTime::from_chrono(now)})
        .await
        .unwrap();
    let row = autovolt::domain::LedgerRow {
        id: None,
        device_id: "d1".into(),
        esp32_name: "CS-101-A".into(),
        classroom: "CS-101".into(),
        switch_id: "sw1".into(),
        switch_name: "Fan".into(),
        switch_type: autovolt::domain::SwitchType::Fan,
        start_ts: now - chrono::Duration::hours(1),
        end_ts: now,
        switch_on_duration_seconds: 3600.0,
        delta_wh: 75.0,
        power_w: 75.0,
        cost_calculation: Some(autovolt::domain::CostCalculation {
            cost_per_kwh: 8.0,
            cost_inr: 0.6,
        }),
        quality: Default::default(),
        created_at: None,
        updated_at: None,
    };
    s.insert_ledger_rows(std::slice::from_ref(&row))
        .await
        .unwrap();
    // Written again (a retried batch): journaled once.
    s.insert_ledger_rows(std::slice::from_ref(&row))
        .await
        .unwrap();
    let entry = autovolt::domain::ActivityLog::new(
        "aggregation_run",
        autovolt::domain::TriggeredBy::System,
        now,
    );
    s.log_activity(&entry).await.unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        match next(&mut feed).await {
            FeedEvent::Change(c) => seen.push(c),
            other => panic!("unexpected {other:?}"),
        }
    }
    if feed.mode() == FeedMode::Polling {
        assert!(feed.poll_period().is_some());
    }
    let mut kinds = Vec::new();
    for c in &seen {
        match c.record(&s) {
            Record::LedgerRow(r) => {
                assert_eq!((r.device_id.as_str(), r.delta_wh), ("d1", 75.0));
                kinds.push("ledger");
            }
            Record::Activity(a) => {
                assert_eq!(a.action, "aggregation_run");
                kinds.push("activity");
            }
            other => panic!("unexpected record {other:?} of {}", c.collection),
        }
    }
    kinds.sort();
    assert_eq!(kinds, ["activity", "ledger"]);
    if feed.mode() == FeedMode::Polling {
        // Nothing more: the raw row was not read by range, the repeated row not reported twice.
        let quiet = tokio::time::timeout(Duration::from_millis(800), feed.next()).await;
        assert!(quiet.is_err(), "unexpected event {quiet:?}");
    }
}

/// An activity entry named by its classroom, logged through the store (and so journaled where
/// there are no streams).
async fn log(s: &Store, name: &str) {
    let mut entry = autovolt::domain::ActivityLog::new(
        "aggregation_run",
        autovolt::domain::TriggeredBy::System,
        autovolt::domain::dates::now_millis(),
    );
    entry.classroom = Some(name.into());
    s.log_activity(&entry).await.unwrap();
}

/// The next change, the name of its activity entry; a gap is returned as "gap".
async fn next_action(s: &Store, feed: &mut ChangeFeed) -> String {
    match next(feed).await {
        FeedEvent::Change(c) => match c.record(s) {
            Record::Activity(a) => a.classroom.unwrap_or_default(),
            other => panic!("unexpected record {other:?}"),
        },
        FeedEvent::Gap => "gap".into(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Returns once the feed reports entries logged from now on (it may have started after some),
/// with nothing left queued.
async fn following(s: &Store, feed: &mut ChangeFeed) {
    let mut tries = 0;
    loop {
        log(s, "ready").await;
        if let Ok(Some(FeedEvent::Change(_))) =
            tokio::time::timeout(Duration::from_secs(2), feed.next()).await
        {
            break;
        }
        tries += 1;
        assert!(tries < 10, "the feed never reported an entry");
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(500), feed.next()).await {}
}

/// Two writers appending at once (two collectors, each its own connection) never take the same
/// chunk number: a reader gets every entry of both, once, and no gap.
#[tokio::test]
async fn two_writers_appending_at_once_lose_nothing() {
    let uri = support::fresh_database_uri("feed_two_writers");
    let s = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    s.migrate_up(None, false).await.unwrap();
    if !s.journal_in_use().await.unwrap() {
        return; // change streams: no journal
    }
    let mut feed = s.follow(&["activitylogs"], options());
    following(&s, &mut feed).await;
    let other = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    let (a, b) = (s.clone(), other.clone());
    let one = tokio::spawn(async move {
        for i in 0..40 {
            log(&a, &format!("a-{i}")).await;
        }
    });
    let two = tokio::spawn(async move {
        for i in 0..40 {
            log(&b, &format!("b-{i}")).await;
        }
    });
    one.await.unwrap();
    two.await.unwrap();
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 80 {
        let name = next_action(&s, &mut feed).await;
        assert_ne!(name, "gap", "nothing was dropped");
        assert!(names.insert(name.clone()), "{name} reported twice");
    }
}

/// A journal made again (dropped with its head, as a restore or a migration down and up does):
/// the reader says so and reads the new journal from its start.
#[tokio::test]
async fn a_journal_made_again_is_read_from_its_start() {
    let s = support::store("feed_new_journal").await;
    s.migrate_up(None, false).await.unwrap();
    if !s.journal_in_use().await.unwrap() {
        return;
    }
    for i in 0..5 {
        log(&s, &format!("old-{i}")).await;
    }
    let mut feed = s.follow(&["activitylogs"], options());
    following(&s, &mut feed).await;
    s.drop_journal().await.unwrap();
    s.ensure_journal().await.unwrap();
    log(&s, "new").await;
    assert_eq!(next_action(&s, &mut feed).await, "gap");
    assert_eq!(next_action(&s, &mut feed).await, "new");
}
