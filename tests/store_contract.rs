//! What we write loads in the Node back end that shares the database: no empty `classroom`, no
//! enum value its schemas do not know, and a board in maintenance stays in maintenance while its
//! data is still recorded (and `health` counts it apart from offline).

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::domain::activity::action;
use autovolt::domain::interval::{ledger_rows, BillingContext};
use autovolt::domain::{ActivityLog, DataSource, DeviceStatus, Mac, Role, SwitchType, TriggeredBy};
use autovolt::store::aggregation::AggregationRequest;
use autovolt::store::{collections, NewUser, Store, StoreError};
use bson::{doc, Document};
use chrono::{Duration, TimeZone};
use futures::TryStreamExt;
use live::*;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn boot() -> autovolt::domain::Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

async fn raw(store: &Store, collection: &str) -> Vec<Document> {
    store
        .collection::<Document>(collection)
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn no_empty_classroom_and_no_unknown_enum_value_is_written() {
    let store = support::store("contract_writes").await;
    let (mut a, _) = campus(&store).await;
    let room = a.classroom.unwrap();
    // A board whose classroom is unknown, with a relay another writer typed `heater`.
    a.classroom = None;
    a.switches[0].switch_type = SwitchType::Other("heater".into());
    let book = store.tariff_book(boot(), boot()).await.unwrap();
    let ctx = BillingContext {
        device: &a,
        switch: &a.switches[0],
        classroom: "",
        settings: None,
        tariffs: &book,
        tz: chrono_tz::Asia::Kolkata,
    };
    let rows = ledger_rows(
        &ctx,
        boot(),
        boot() + Duration::hours(1),
        DataSource::Telemetry,
    );
    store.insert_ledger_rows(&rows).await.unwrap();
    let stored = raw(&store, collections::LEDGER).await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains_key("classroom"), "{:?}", stored[0]);
    assert_eq!(stored[0].get_str("switch_type").unwrap(), "outlet");
    assert!(stored[0]
        .get_document("quality")
        .unwrap()
        .get_str("notes")
        .unwrap()
        .contains("heater"));

    // The day's aggregate of that row has no classroom either.
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    store
        .aggregate(
            &AggregationRequest {
                from: day,
                to: day,
                tz: chrono_tz::Asia::Kolkata,
                triggered_by: TriggeredBy::User,
                by: None,
                break_locks: false,
            },
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    for c in [collections::DAILY, collections::MONTHLY] {
        let docs = raw(&store, c).await;
        assert_eq!(docs.len(), 1, "{c}");
        assert!(!docs[0].contains_key("classroom"), "{c}: {:?}", docs[0]);
    }

    let mut entry = ActivityLog::new(action::ON, TriggeredBy::User, boot());
    entry.classroom = Some(String::new());
    store.log_activity(&entry).await.unwrap();
    let logged = raw(&store, collections::ACTIVITY).await;
    assert!(
        logged.iter().all(|d| d.get_str("classroom") != Ok("")),
        "{logged:?}"
    );

    let refused = [
        ActivityLog::new("toggle", TriggeredBy::User, boot()),
        ActivityLog::new(action::ON, TriggeredBy::Other("master".into()), boot()),
    ];
    for e in refused {
        let err = store.log_activity(&e).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }

    let mut computer = device("CS-101-C", "A4:CF:12:00:00:0C", "00", room);
    computer.switches[0].switch_type = SwitchType::Computer;
    let err = store.insert_device(&computer).await.unwrap_err();
    assert!(err.to_string().contains("switches.type"), "{err}");

    let err = store
        .insert_user(&NewUser {
            name: "Asha".into(),
            email: "asha@campus.edu".into(),
            password: "correct horse".into(),
            role: Role::Other("faculty".into()),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_board_in_maintenance_is_not_marked_online_and_health_counts_it_apart() {
    let store = support::store("contract_maint").await;
    let (a, b) = campus(&store).await;
    let (a_id, b_id) = (a.id.unwrap(), b.id.unwrap());
    store
        .collection::<Document>(collections::DEVICES)
        .update_one(doc! {"_id": a_id}, doc! {"$set": {"status": "maintenance"}})
        .await
        .unwrap();
    assert_eq!(store.mark_online_many(&[a_id], boot()).await.unwrap(), 0);
    assert!(!store.mark_online(a_id, boot()).await.unwrap());
    assert!(store.mark_online(b_id, boot()).await.unwrap());
    let a_now = store.device_by_id(a_id).await.unwrap().unwrap();
    assert_eq!(a_now.status, DeviceStatus::Maintenance);

    support::collector_heard_at(&store, "c1", boot()).await;
    let report = store
        .health(boot(), std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(report.boards.total, 2);
    assert_eq!(report.boards.online, Some(1));
    assert!(report.boards.offline.is_empty());
    assert_eq!(report.boards.maintenance.len(), 1);
    assert_eq!(report.boards.maintenance[0].name, a.name);
    assert!(!report.warnings.iter().any(|w| w.contains("offline")));
    assert!(report.render().contains("1 in maintenance"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_in_maintenance_that_reports_stays_in_maintenance_and_is_billed() {
    let store = support::store("contract_maint_live").await;
    let (a, _) = campus(&store).await;
    let a_id = a.id.unwrap();
    store
        .collection::<Document>(collections::DEVICES)
        .update_one(doc! {"_id": a_id}, doc! {"$set": {"status": "maintenance"}})
        .await
        .unwrap();
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut c = start(&store, &url, options("maint"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "maint-pub").await;
    p.publish("esp32/telemetry", &heartbeat(MAC_A, UP)).await;
    c.wait_committed(1).await;
    clock.set(boot() + Duration::hours(1));
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, true, "manual", up(10_000)),
    )
    .await;
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, false, "manual", up(70_000)),
    )
    .await;
    c.wait_committed(3).await;
    c.stop().await;

    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1, "its data is recorded: {rows:?}");
    assert!((rows[0].switch_on_duration_seconds - 60.0).abs() < 0.01);
    let acts = actions(&store).await;
    assert!(!acts.iter().any(|(a, _)| a == "device_online"), "{acts:?}");
    let d = store
        .device_by_mac(Mac::parse(MAC_A).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeviceStatus::Maintenance);
    assert!(d.last_seen.is_some(), "its presence is still recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_board_in_maintenance_has_its_intervals_closed_and_keeps_its_status() {
    let store = support::store("contract_maint_silent").await;
    let (a, _) = campus(&store).await;
    let a_id = a.id.unwrap();
    store
        .collection::<Document>(collections::DEVICES)
        .update_one(doc! {"_id": a_id}, doc! {"$set": {"status": "maintenance"}})
        .await
        .unwrap();
    let (_broker, url) = support::own_mosquitto();
    let t = boot() + Duration::minutes(5);
    let clock = ManualClock::new(t);
    let mut o = options("maint-silent");
    o.offline_after = std::time::Duration::from_secs(120);
    let mut c = start(&store, &url, o, Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "maint-silent-pub").await;
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 17, true, "manual", millis_since(boot(), t)),
    )
    .await;
    c.wait_committed(1).await;
    let last = t + Duration::seconds(20);
    clock.set(last);
    p.publish(
        "esp32/telemetry",
        &heartbeat(MAC_A, millis_since(boot(), last)),
    )
    .await;
    c.wait_committed(2).await;
    // Silent past the offline threshold: the relay's interval closes at the last message.
    clock.set(last + Duration::seconds(121));
    eventually(10, "the silent board's interval closed", || async {
        let d = store.device_by_id(a_id).await.unwrap().unwrap();
        !d.switches[1].state
    })
    .await;
    c.stop().await;
    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].start_ts, rows[0].end_ts), (t, last));
    let d = store.device_by_id(a_id).await.unwrap().unwrap();
    assert_eq!(d.status, DeviceStatus::Maintenance);
    let acts = actions(&store).await;
    assert!(
        !acts
            .iter()
            .any(|(a, _)| a == "device_offline" || a == "device_online"),
        "{acts:?}"
    );
}
