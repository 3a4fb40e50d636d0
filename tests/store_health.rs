//! Seeding a campus and the health report on it; the CLI's exit codes.

mod support;

use autovolt::domain::DeviceStatus;
use autovolt::seed::{seed, SeedOptions};
use autovolt::store::health::HealthLevel;
use autovolt::store::migrations::latest_version;
use autovolt::store::StoreError;
use bson::doc;
use chrono::{Duration, Utc};
use std::process::Command;

#[tokio::test]
async fn seeding_fills_an_empty_campus_once() {
    let s = support::store("seed").await;
    s.migrate_up(None, false).await.unwrap();
    let options = SeedOptions {
        classrooms: 3,
        devices_per_classroom: 2,
        seed: Some(9),
    };
    let report = seed(&s, &options).await.unwrap();
    assert_eq!((report.classrooms, report.devices), (3, 6));
    let rooms = s.classrooms().await.unwrap();
    assert_eq!(rooms.len(), 3);
    let devices = s.devices().await.unwrap();
    assert_eq!(devices.len(), 6);
    for d in &devices {
        assert_eq!(d.switches.len(), 6);
        assert!(rooms.iter().any(|r| r.id == d.classroom));
    }
    let settings = s.collection::<bson::Document>("powersettings");
    assert_eq!(
        settings
            .count_documents(doc! {"isActive": true})
            .await
            .unwrap(),
        1
    );
    let versions = s.collection::<bson::Document>("costversions");
    let v = versions.find_one(doc! {}).await.unwrap().unwrap();
    assert_eq!(v.get_f64("cost_per_kwh").unwrap(), 7.5);
    assert_eq!(v.get_str("scope").unwrap(), "global");

    let again = seed(&s, &options).await.unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert!(
        again.to_string().contains("already holds 3 classrooms"),
        "{again}"
    );
    assert_eq!(s.devices().await.unwrap().len(), 6);
    assert_eq!(versions.count_documents(doc! {}).await.unwrap(), 1);
}

#[tokio::test]
async fn health_reports_schema_boards_unregistered_macs_and_lag() {
    let s = support::store("health").await;
    let now = Utc::now();
    let fresh = s
        .health(now, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(fresh.schema_version, 0);
    assert_eq!(
        fresh.pending_migrations,
        (1..=latest_version()).collect::<Vec<_>>()
    );
    assert_eq!(fresh.status, HealthLevel::Warning);

    s.migrate_up(None, false).await.unwrap();
    seed(
        &s,
        &SeedOptions {
            classrooms: 2,
            devices_per_classroom: 2,
            seed: Some(1),
        },
    )
    .await
    .unwrap();
    let devices = s.devices().await.unwrap();
    let coll = s.collection::<bson::Document>("devices");
    // Every board heard, the last one 2 s ago: the collector's lag.
    for d in &devices {
        coll.update_one(
            doc! {"_id": d.id},
            doc! {"$set": {"status": DeviceStatus::Online.as_str(), "lastSeen": bson::DateTime::from_chrono(now - Duration::seconds(2))}},
        )
        .await
        .unwrap();
    }
    // Two MACs the collector could not place, one heard twice.
    for (mac, at) in [
        ("DE:AD:BE:EF:00:01", now - Duration::seconds(30)),
        ("DE:AD:BE:EF:00:01", now - Duration::seconds(20)),
        ("DE:AD:BE:EF:00:02", now - Duration::seconds(10)),
    ] {
        s.record_unregistered(autovolt::domain::Mac::parse(mac).unwrap(), at, at, 1)
            .await
            .unwrap();
    }
    // Without a collector the boards' recorded state is only what was last heard.
    let unheard = s
        .health(now, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(unheard.status, HealthLevel::Warning);
    assert_eq!(unheard.boards.online, None);
    assert_eq!(
        unheard.warnings,
        ["no collector running: none has run on this database; start `autovolt collect`"]
    );
    assert!(unheard
        .render()
        .contains("unknown (no collector has heard them)"));

    support::collector_heard_at(&s, "c1", now).await;
    let ok = s
        .health(now, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(ok.status, HealthLevel::Ok, "{:?}", ok.warnings);
    assert_eq!(ok.schema_version, latest_version());
    assert_eq!(ok.boards.total, 4);
    assert_eq!(ok.boards.online, Some(4));
    assert_eq!(ok.boards.unknown_since, None);
    assert_eq!(
        ok.unregistered_macs,
        ["DE:AD:BE:EF:00:01", "DE:AD:BE:EF:00:02"]
    );
    assert!((ok.collector_lag_secs.unwrap() - 2.0).abs() < 0.01);
    let devices_row = ok.collections.iter().find(|c| c.name == "devices").unwrap();
    assert_eq!(devices_row.documents, 4);
    assert!(devices_row.indexes >= 7);
    let text = ok.render();
    assert!(text.contains("4/4 online"), "{text}");
    assert!(text.contains("2 unregistered MACs seen"), "{text}");
    assert!(
        text.contains(&format!("schema v{}", latest_version())),
        "{text}"
    );

    coll.update_one(
        doc! {"_id": devices[1].id},
        doc! {"$set": {"status": "offline"}},
    )
    .await
    .unwrap();
    let later = now + Duration::minutes(10);
    // The collector still runs, but no board has reported for ten minutes.
    support::collector_heard_at(&s, "c1", later).await;
    let warn = s
        .health(later, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(warn.status, HealthLevel::Warning);
    assert!(warn
        .warnings
        .iter()
        .any(|w| w.contains("1 of 4 boards offline")));
    assert!(warn.warnings.iter().any(|w| w.starts_with("collector lag")));
    assert!(warn.render().contains(&devices[1].name));
    let json = serde_json::to_value(&warn).unwrap();
    assert_eq!(json["status"], "warning");
    assert!(!json.to_string().contains(devices[0].device_secret.expose()));
}

#[test]
fn health_answers_a_refused_database_at_once_with_exit_2() {
    // A port nothing listens on: the connection is refused, which is an answer in itself.
    let port = autovolt::servers::free_port().unwrap();
    let run = |json: bool| {
        let started = std::time::Instant::now();
        let mut args = vec!["health"];
        if json {
            args.push("--json");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_autovolt"))
            .args(&args)
            .env(
                "AUTOVOLT_MONGODB_URI",
                format!("mongodb://op:hunter2secret@127.0.0.1:{port}/x"),
            )
            .env("AUTOVOLT_MQTT_URL", support::mqtt_url())
            .output()
            .unwrap();
        (out, started.elapsed())
    };
    let (out, took) = run(true);
    assert_eq!(out.status.code(), Some(2));
    // Not the 5 s server selection timeout: well under it (a behaviour, not a benchmark).
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(report["status"], "critical", "{report}");
    let critical = report["criticals"][0].as_str().unwrap_or_default();
    assert!(critical.starts_with("nothing listens at "), "{critical}");
    assert!(
        critical.contains(&format!("127.0.0.1:{port}")),
        "{critical}"
    );
    assert!(!critical.contains('\n'), "one sentence: {critical}");
    assert_eq!(report["warnings"].as_array().map(Vec::len), Some(0));
    assert_eq!(report["broker"]["reachable"], true, "{report}");

    let (out, _) = run(false);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2secret"), "{text}");
    assert_eq!(
        text.trim_end().lines().last(),
        Some(" ✕ CRITICAL (1 critical)"),
        "{text}"
    );
}

#[tokio::test]
async fn health_exits_1_on_a_database_with_pending_migrations_then_0() {
    let uri = support::fresh_database_uri("health_cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_autovolt"))
            .args(args)
            .env("AUTOVOLT_MONGODB_URI", &uri)
            .env("AUTOVOLT_MQTT_URL", support::mqtt_url())
            .output()
            .unwrap()
    };
    let out = run(&["health"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pending migration"));
    assert_eq!(run(&["migrate", "up"]).status.code(), Some(0));
    let store = autovolt::store::Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    support::collector_heard_at(&store, "c1", autovolt::domain::dates::now_millis()).await;
    let out = run(&["health"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(run(&["migrate", "status"]).status.code(), Some(0));
}

#[test]
fn seed_then_list_devices_from_the_command_line_without_secrets() {
    let uri = support::fresh_database_uri("seed_cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_autovolt"))
            .args(args)
            .env("AUTOVOLT_MONGODB_URI", &uri)
            .env("AUTOVOLT_MQTT_URL", support::mqtt_url())
            .output()
            .unwrap()
    };
    assert_eq!(run(&["migrate", "up"]).status.code(), Some(0));
    let out = run(&[
        "seed",
        "--classrooms",
        "2",
        "--devices-per-classroom",
        "3",
        "--seed",
        "4",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run(&["seed", "--classrooms", "2", "--devices-per-classroom", "3"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));

    let out = run(&["devices", "list", "--classroom", "CS-101"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("CS-101-A") && text.contains("CS-101-C"),
        "{text}"
    );
    assert!(text.contains("16:light"), "{text}");
    assert!(text.contains("3 devices"), "{text}");
    let campus = autovolt::seed::generate(
        &SeedOptions {
            classrooms: 2,
            devices_per_classroom: 3,
            seed: Some(4),
        },
        Utc::now(),
    );
    for d in &campus.devices {
        assert!(!text.contains(d.device_secret.expose()));
    }
    // A name that matches nothing: the input cannot be used.
    let missing = run(&["devices", "list", "--classroom", "Nowhere"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[tokio::test]
async fn health_reports_each_collectors_broker_and_database_state() {
    use autovolt::store::telemetry::CollectorStatus;
    let s = support::store("health_collectors").await;
    s.migrate_up(None, false).await.unwrap();
    let now = autovolt::domain::dates::now_millis();
    let status =
        |id: &str, updated: chrono::DateTime<Utc>, broker: bool, db_down: bool| CollectorStatus {
            client_id: id.into(),
            group: None,
            started_at: now - Duration::hours(1),
            updated_at: updated,
            renew_every_ms: 5_000,
            stopped_at: None,
            broker_connected: broker,
            broker_lost_at: None,
            database_down_since: db_down.then(|| now - Duration::seconds(30)),
            last_database_error: None,
            database_outages: 0,
            received: 1200,
            committed: 1200,
            transitions: 3,
            ledger_rows: 1,
            rejected: [("wrong_secret".to_string(), 2)].into_iter().collect(),
            dead_letters: 0,
        };
    s.write_collector_status(&status("healthy", now, true, false))
        .await
        .unwrap();
    let ok = s
        .health(now, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
    let text = ok.render();
    assert!(
        text.contains("1/1 collector(s) connected · 1200 received · 2 rejected"),
        "{text}"
    );

    s.write_collector_status(&status("stuck", now, false, true))
        .await
        .unwrap();
    // A record a day old is a collector that died: it raises nothing of its own, and drops out
    // of the count.
    s.write_collector_status(&status("gone", now - Duration::days(1), false, true))
        .await
        .unwrap();
    let bad = s
        .health(now, std::time::Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(bad.status, HealthLevel::Warning);
    assert_eq!(bad.warnings.len(), 2, "{:?}", bad.warnings);
    assert!(bad
        .warnings
        .iter()
        .any(|w| w.contains("stuck cannot write to the database")));
    assert!(bad
        .warnings
        .iter()
        .any(|w| w.contains("stuck is not connected to the broker")));
    assert!(!bad.warnings.iter().any(|w| w.contains("gone")));
    assert!(
        bad.render().contains("1/2 collector(s) connected"),
        "{}",
        bad.render()
    );
}

#[tokio::test]
async fn health_gives_each_indexs_size_where_the_server_reports_it() {
    let uri = support::fresh_database_uri("health_index_sizes");
    let s = autovolt::store::Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let c = s.collection::<bson::Document>("sized");
    c.insert_many((0..200).map(|i| doc! {"n": i, "label": format!("row {i}")}))
        .await
        .unwrap();
    c.create_index(
        mongodb::IndexModel::builder()
            .keys(doc! {"n": 1})
            .options(
                mongodb::options::IndexOptions::builder()
                    .name("n_1".to_string())
                    .build(),
            )
            .build(),
    )
    .await
    .unwrap();
    let h = s.collection_health("sized").await.unwrap();
    let about = format!("{h:?} on {}", s.server());
    assert_eq!(h.documents, 200, "{about}");
    assert_eq!(h.indexes, 2, "{about}");
    // FerretDB (as MongoDB) reports each index's size; the total is their sum.
    let sizes = h.index_sizes.clone().expect(&about);
    assert_eq!(
        sizes.keys().map(String::as_str).collect::<Vec<_>>(),
        ["_id_", "n_1"],
        "{about}"
    );
    assert!(sizes.values().all(|b| *b > 0), "{about}");
    assert_eq!(h.index_bytes, Some(sizes.values().sum()), "{about}");
    assert!(h.storage_bytes.is_some_and(|b| b > 0), "{about}");
    // The data size is the documents' alone, not with their indexes.
    assert!(h.size_bytes.is_some_and(|b| b > 0), "{about}");
    assert!(
        h.size_bytes < Some(h.storage_bytes.unwrap() + h.index_bytes.unwrap()),
        "{about}"
    );
    assert_eq!(h.sizes_unknown_because, None, "{about}");

    // health --json says the same, with a null reason when nothing is unknown.
    let out = Command::new(env!("CARGO_BIN_EXE_autovolt"))
        .args(["health", "--json"])
        .env("AUTOVOLT_MONGODB_URI", &uri)
        .env("AUTOVOLT_MQTT_URL", "mqtt://127.0.0.1:9")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    let sized = report["collections"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "sized"))
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(sized["index_sizes"]["n_1"], sizes["n_1"], "{sized}");
    assert!(sized["sizes_unknown_because"].is_null(), "{sized}");
}

#[tokio::test]
async fn a_running_collector_cut_off_from_the_broker_leaves_the_boards_unknown_then_critical() {
    let s = support::store("health_cut_off").await;
    s.migrate_up(None, false).await.unwrap();
    let now = autovolt::domain::dates::now_millis();
    let lost = now - Duration::seconds(30);
    let mut status = s.collector_statuses().await.unwrap();
    assert!(status.is_empty());
    support::collector_heard_at(&s, "cut", now).await;
    status = s.collector_statuses().await.unwrap();
    let mut record = status.remove(0);
    record.broker_connected = false;
    record.broker_lost_at = Some(lost);
    s.write_collector_status(&record).await.unwrap();
    let limit = std::time::Duration::from_secs(120);

    let soon = s.health(now, limit).await.unwrap();
    assert_eq!(soon.status, HealthLevel::Warning);
    let since = autovolt::store::health::since_text(lost, now, s.timezone());
    assert_eq!(
        soon.warnings,
        [format!(
            "collector cut is not connected to the broker since {since}"
        )]
    );
    assert_eq!(soon.boards.online, None);
    assert_eq!(soon.boards.unknown_since, Some(lost));

    // Still renewing its record, still cut off, past the offline threshold.
    record.updated_at = lost + Duration::seconds(125);
    s.write_collector_status(&record).await.unwrap();
    let later = s
        .health(lost + Duration::seconds(125), limit)
        .await
        .unwrap();
    assert_eq!(later.status, HealthLevel::Critical);
    assert_eq!(
        later.criticals,
        [format!(
            "no collector has heard the boards since {}: longer than the offline threshold 120 s",
            autovolt::store::health::since_text(lost, lost + Duration::seconds(125), s.timezone())
        )]
    );
    assert_eq!(later.warnings.len(), 1, "{:?}", later.warnings);
    assert!(later
        .render()
        .trim_end()
        .ends_with("✕ CRITICAL (1 critical, 1 warning)"));
}
