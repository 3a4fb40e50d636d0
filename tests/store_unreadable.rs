//! Documents in other writers' shapes (the Node back end: ObjectId references, `__v`, extra and
//! missing optional fields, numbers as doubles, dates as ISO texts) are read by every reader; one
//! document that cannot be read is skipped and counted, and everything else is shown and processed.

mod support;

use autovolt::domain::{DeviceStatus, SwitchType};
use autovolt::store::aggregation::AggregationRequest;
use autovolt::store::{
    collections, ActivityFilter, AggregateQuery, LedgerQuery, Store, UnreadableDocuments,
};
use bson::oid::ObjectId;
use bson::{doc, Document};
use chrono::{Duration, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

async fn store(label: &str) -> Store {
    let s = support::store(label).await;
    s.migrate_up(None, false).await.unwrap();
    s
}

async fn insert(s: &Store, collection: &str, docs: Vec<Document>) {
    s.collection::<Document>(collection)
        .insert_many(docs)
        .await
        .unwrap();
}

/// 10:00 IST on 2026-11-24.
fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 4, 30, 0).unwrap()
}

fn date(t: chrono::DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

fn problems(s: &Store, collection: &str) -> Vec<UnreadableDocuments> {
    s.unreadable_documents()
        .into_iter()
        .filter(|u| u.collection == collection)
        .collect()
}

/// A classroom as the Node back end saves it; its id.
async fn node_classroom(s: &Store, name: &str) -> ObjectId {
    let id = ObjectId::new();
    insert(
        s,
        collections::CLASSROOMS,
        vec![doc! {"_id": id, "name": name, "building": "Main", "floor": 2.0, "__v": 0}],
    )
    .await;
    id
}

fn ledger_row(device: &str, classroom: bson::Bson, switch: &str, minute: i64) -> Document {
    let start = t0() + Duration::minutes(minute);
    doc! {
        "device_id": device, "esp32_name": "Lab board", "classroom": classroom,
        "switch_id": switch, "switch_name": "Lights", "switch_type": "light",
        "start_ts": date(start), "end_ts": date(start + Duration::minutes(30)),
        "switch_on_duration_seconds": 1800, "delta_wh": 20, "power_w": 40,
        "cost_calculation": {"cost_per_kwh": 8, "cost_inr": 0.16},
        "quality": {"confidence": "high", "data_source": "power_tracker"},
        "__v": 0,
    }
}

#[tokio::test]
async fn activity_in_node_shapes_is_shown_and_one_unreadable_entry_is_counted() {
    let s = store("unread_activity").await;
    let room = node_classroom(&s, "CS-101").await;
    let device = ObjectId::new();
    let t = |m: i64| date(t0() + Duration::minutes(m));
    insert(
        &s,
        collections::ACTIVITY,
        vec![
            // Ours.
            doc! {"action": "on", "triggeredBy": "user", "timestamp": t(0), "classroom": "CS-101",
                  "deviceId": device, "switchId": "sw1"},
            // The Node back end's: classroom as a reference, deviceId as hex, extra fields, `__v`.
            doc! {"action": "off", "triggeredBy": "schedule", "timestamp": t(1), "classroom": room,
                  "deviceId": device.to_hex(), "userId": ObjectId::new(), "ip": "10.0.0.4", "__v": 0},
            // An action and trigger this version does not know, and no classroom.
            doc! {"action": "toggle", "triggeredBy": "master", "timestamp": t(2)},
            // Unreadable: its timestamp is an ObjectId.
            doc! {"action": "on", "triggeredBy": "user", "timestamp": ObjectId::new(), "classroom": "CS-101"},
        ],
    )
    .await;

    let page = s
        .recent_activity(10, None, &ActivityFilter::default())
        .await
        .unwrap();
    let actions: Vec<&str> = page.rows.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["toggle", "off", "on"]);
    let node = &page.rows[1];
    assert_eq!(
        node.classroom.as_deref(),
        Some("CS-101"),
        "the reference is resolved"
    );
    assert_eq!(node.device_id, Some(device));
    assert_eq!(page.rows[0].classroom, None);

    let found = problems(&s, collections::ACTIVITY);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "timestamp");
    assert_eq!(
        found[0].describe(),
        "1 activity entry unreadable: timestamp is an ObjectId (expected a date)"
    );

    // Paging past the unreadable entry loses nothing and does not stop early.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let p = s
            .recent_activity(1, before, &ActivityFilter::default())
            .await
            .unwrap();
        seen.extend(p.rows.into_iter().map(|a| a.action));
        match p.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["toggle", "off", "on"]);
}

#[tokio::test]
async fn the_ledger_in_node_shapes_is_paged_aggregated_and_audited_around_an_unreadable_row() {
    let s = store("unread_ledger").await;
    let room = node_classroom(&s, "CS-101").await;
    let device = ObjectId::new();
    let mut rows = vec![
        ledger_row(&device.to_hex(), "CS-101".into(), "sw1", 0),
        ledger_row(&device.to_hex(), room.into(), "sw2", 0),
        ledger_row(&device.to_hex(), room.into(), "sw3", 60),
    ];
    // The device as an ObjectId, no quality and no cost: all optional or plausibly typed.
    let mut other = ledger_row("", "CS-101".into(), "sw4", 90);
    other.insert("device_id", device);
    other.remove("quality");
    rows.push(other);
    // Unreadable: delta_wh is text.
    let mut bad = ledger_row(&device.to_hex(), "CS-101".into(), "sw5", 120);
    bad.insert("delta_wh", "twenty");
    let bad_id = ObjectId::new();
    bad.insert("_id", bad_id);
    rows.push(bad);
    insert(&s, collections::LEDGER, rows).await;

    let page = s
        .ledger_page(&LedgerQuery::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 4);
    assert!(page.rows.iter().all(|r| r.classroom == "CS-101"));
    assert!(page.rows.iter().all(|r| r.device_id == device.to_hex()));

    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let summary = s
        .aggregate(
            &AggregationRequest {
                from: day,
                to: day,
                tz: chrono_tz::Asia::Kolkata,
                triggered_by: autovolt::domain::TriggeredBy::User,
                by: None,
                break_locks: false,
            },
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(summary.ledger_rows, 4, "every readable row is rolled up");
    let daily = s
        .daily_aggregates(&AggregateQuery::default())
        .await
        .unwrap();
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0].classroom, "CS-101");
    assert!((daily[0].total_kwh - 0.08).abs() < 1e-9);

    let report = s.audit(day, day, chrono_tz::Asia::Kolkata).await.unwrap();
    let unreadable: Vec<String> = report
        .findings
        .iter()
        .map(|f| f.to_string())
        .filter(|f| f.contains("cannot be read"))
        .collect();
    assert_eq!(unreadable.len(), 1, "{:?}", report.findings);
    assert!(unreadable[0].contains(&bad_id.to_hex()), "{unreadable:?}");
    assert!(
        unreadable[0].contains("delta_wh is a string"),
        "{unreadable:?}"
    );

    let found = problems(&s, collections::LEDGER);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].documents, 1,
        "the same row read thrice counts once"
    );
    assert_eq!(found[0].examples, [bad_id.to_hex()]);
}

#[tokio::test]
async fn devices_classrooms_tariffs_users_and_aggregates_skip_only_what_cannot_be_read() {
    let s = store("unread_all").await;
    let room = node_classroom(&s, "CS-101").await;
    insert(
        &s,
        collections::CLASSROOMS,
        vec![doc! {"name": ["not", "a", "name"]}],
    )
    .await;
    insert(
        &s,
        collections::DEVICES,
        vec![
            // The Node back end's board: classroom by name, pins as doubles, no secret, `__v`.
            doc! {"name": "Lab board", "macAddress": "A4:CF:12:00:00:01", "type": "esp32",
                  "classroom": "CS-101", "status": "maintenance", "__v": 3,
                  "lastSeen": "2026-11-24T10:00:00.000+05:30",
                  "switches": [{"switchId": "1", "name": "Lights", "type": "light", "gpio": 16.0,
                                "relayGpio": 16.0, "state": false, "_id": ObjectId::new()}]},
            // A reference by id, in hex.
            doc! {"name": "Hex board", "macAddress": "A4:CF:12:00:00:02", "classroom": room.to_hex(),
                  "deviceSecret": "ab"},
            // Unreadable: the MAC is a number.
            doc! {"name": "Broken board", "macAddress": 42, "classroom": room},
        ],
    )
    .await;
    insert(
        &s,
        collections::COST_VERSIONS,
        vec![
            doc! {"cost_per_kwh": 7, "effective_from": date(t0() - Duration::days(30)),
            "effective_until": null, "scope": "classroom", "classroom": room,
            "is_active": true, "__v": 0},
            doc! {"cost_per_kwh": "seven", "effective_from": date(t0()), "scope": "global"},
        ],
    )
    .await;
    insert(
        &s,
        collections::POWER_SETTINGS,
        vec![
            // The newest active one cannot be read: the next readable active one is in force.
            doc! {"electricityPrice": 9.0, "isActive": true, "version": 5, "deviceTypes": "all"},
            doc! {"electricityPrice": 8.0, "isActive": true, "version": 4.0, "__v": 0,
                  "deviceTypes": [{"type": "light", "name": "Light", "powerConsumption": 40, "unit": "W"}]},
        ],
    )
    .await;
    insert(
        &s,
        collections::DAILY,
        vec![
            doc! {"date_string": "2026-11-24", "classroom": room, "device_id": ObjectId::new(),
            "esp32_name": "Lab board", "total_kwh": 1, "on_time_sec": 3600, "cost_at_calc_time": 8,
            "cost_per_kwh_used": 8, "switch_count": 1.0, "__v": 0},
            doc! {"date_string": "2026-11-24", "device_id": "x", "total_kwh": "lots"},
        ],
    )
    .await;
    insert(
        &s,
        collections::MONTHLY,
        vec![
            doc! {"month_string": "2026-11", "year": 2026.0, "month": 11, "classroom": "CS-101",
            "device_id": "d", "total_kwh": 1, "on_time_sec": 3600, "cost_at_calc_time": 8},
            doc! {"month_string": "2026-11", "year": "2026", "month": 11, "device_id": "e",
            "total_kwh": 1, "on_time_sec": 1, "cost_at_calc_time": 1},
        ],
    )
    .await;
    insert(
        &s,
        collections::USERS,
        vec![
            doc! {"name": "Asha", "email": "asha@campus.edu", "password": "$2b$10$abcdefghijklmnopqrstuv",
                  "role": "faculty", "isActive": true, "loginAttempts": 0.0, "department": "EE", "__v": 0},
            doc! {"name": "Ravi", "email": "ravi@campus.edu", "password": 12345678},
        ],
    )
    .await;

    let rooms = s.classrooms().await.unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].floor, Some(2));

    let devices = s.devices().await.unwrap();
    let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Hex board", "Lab board"]);
    assert!(devices.iter().all(|d| d.classroom == Some(room)));
    let lab = &devices[1];
    assert_eq!(lab.status, DeviceStatus::Maintenance);
    assert_eq!(lab.last_seen, Some(t0()));
    assert_eq!(lab.switches[0].relay_gpio, Some(16));
    assert_eq!(lab.switches[0].switch_type, SwitchType::Light);
    assert_eq!(s.devices_in_classroom(room).await.unwrap().len(), 2);
    // The collector's lookup of a batch's boards.
    let macs = [
        autovolt::domain::Mac::parse("A4:CF:12:00:00:01").unwrap(),
        autovolt::domain::Mac::parse("A4:CF:12:00:00:02").unwrap(),
    ];
    assert_eq!(s.devices_by_macs(&macs).await.unwrap().len(), 2);

    let versions = s.cost_versions(None).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].classroom.as_deref(), Some("CS-101"));

    let settings = s.active_power_settings().await.unwrap().unwrap();
    assert_eq!((settings.version, settings.electricity_price), (4, 8.0));

    let daily = s
        .daily_aggregates(&AggregateQuery::default())
        .await
        .unwrap();
    assert_eq!(daily.len(), 1);
    assert_eq!(daily[0].classroom, "CS-101");
    assert_eq!(daily[0].switch_count, 1);
    let monthly = s
        .monthly_aggregates(&AggregateQuery::default())
        .await
        .unwrap();
    assert_eq!(monthly.len(), 1);
    assert_eq!(monthly[0].year, 2026);

    let asha = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert!(
        !asha.role.may_administer(),
        "an unknown role is the least privileged"
    );
    assert!(s.user_by_email("ravi@campus.edu").await.unwrap().is_none());

    let all = s.unreadable_documents();
    let count = |c: &str| problems(&s, c).iter().map(|u| u.documents).sum::<usize>();
    for c in [
        collections::CLASSROOMS,
        collections::DEVICES,
        collections::COST_VERSIONS,
        collections::POWER_SETTINGS,
        collections::DAILY,
        collections::MONTHLY,
        collections::USERS,
    ] {
        assert_eq!(count(c), 1, "{c}: {all:?}");
    }
    let text: Vec<String> = all.iter().map(|u| u.describe()).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("1 device unreadable: macAddress is an int32")),
        "{text:?}"
    );
    assert!(
        !text.iter().any(|t| t.contains("12345678")),
        "values are never shown: {text:?}"
    );
}

#[tokio::test]
async fn health_counts_unreadable_documents_and_says_which() {
    let uri = support::fresh_database_uri("unread_health");
    let s = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    s.migrate_up(None, false).await.unwrap();
    let t = |m: i64| date(t0() + Duration::minutes(m));
    insert(
        &s,
        collections::ACTIVITY,
        vec![
            doc! {"action": "on", "triggeredBy": "user", "timestamp": t(0)},
            doc! {"action": "on", "triggeredBy": "user", "timestamp": t(1), "switchId": ["a"]},
            doc! {"action": "off", "triggeredBy": "user", "timestamp": t(2), "switchId": ["b"]},
        ],
    )
    .await;
    // A fresh process, as `autovolt health` is: it finds them by itself.
    let fresh = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let report = fresh
        .health(Utc::now(), std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(report.unreadable.len(), 1, "{:?}", report.unreadable);
    assert_eq!(report.unreadable[0].documents, 2);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("2 activity entries unreadable: switchId is an array")),
        "{:?}",
        report.warnings
    );
    assert!(report.render().contains("2 activity entries unreadable"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["unreadable"][0]["collection"], "activitylogs");
    assert_eq!(json["unreadable"][0]["field"], "switchId");
    assert_eq!(json["unreadable"][0]["documents"], 2);
}

#[tokio::test]
async fn the_health_command_reports_them_in_text_and_json() {
    let uri = support::fresh_database_uri("unread_health_cli");
    let s = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    s.migrate_up(None, false).await.unwrap();
    let room = node_classroom(&s, "CS-101").await;
    insert(
        &s,
        collections::LEDGER,
        vec![
            ledger_row("d1", room.into(), "sw1", 0),
            ledger_row("d1", "CS-101".into(), "sw2", 0),
        ],
    )
    .await;
    let mut bad = ledger_row("d1", "CS-101".into(), "sw3", 0);
    bad.insert("start_ts", true);
    insert(&s, collections::LEDGER, vec![bad]).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_autovolt"))
            .args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("AUTOVOLT_MONGODB_URI", &uri)
            .output()
            .unwrap()
    };
    let out = run(&["health", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a warning");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let unreadable = json["unreadable"].as_array().unwrap();
    assert_eq!(unreadable.len(), 1, "{json}");
    assert_eq!(unreadable[0]["collection"], "deviceconsumptionledgers");
    assert_eq!(unreadable[0]["field"], "start_ts");
    assert_eq!(unreadable[0]["documents"], 1);
    let text = String::from_utf8_lossy(&run(&["health"]).stdout).to_string();
    assert!(
        text.contains("1 ledger row unreadable: start_ts is a boolean (expected a date)"),
        "{text}"
    );
}
