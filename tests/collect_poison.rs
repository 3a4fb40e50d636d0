//! Nothing stops the books: messages and documents that fail for good are kept as dead letters while
//! every good message around them is billed; oversized and oddly keyed payloads pass by; only what
//! carries a board's secret is recorded as the board's.

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::collect::{self, Faults, Replayed, Step};
use autovolt::domain::{Instant, Mac};
use autovolt::store::deadletters::{DeadKind, DEAD_LETTERS};
use autovolt::store::{Store, StoreError};
use bson::doc;
use chrono::{Duration, TimeZone};
use live::*;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::Arc;

const MAC_C: &str = "24:6F:28:AA:10:0C";
const SECRET_C: &str = "0123456789abcdef0123456789abcdef01234567";
const MAC_D: &str = "24:6F:28:AA:10:0D";
const SECRET_D: &str = "fedcba9876543210fedcba9876543210fedcba98";

fn boot() -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The database refuses every ledger row of one board.
#[derive(Debug)]
struct RefuseLedgerOf(Mac);

impl Faults for RefuseLedgerOf {
    fn before(&self, step: Step, board: Option<Mac>) -> Result<(), StoreError> {
        if step == Step::Ledger && board == Some(self.0) {
            return Err(StoreError::Refused(
                "document failed validation (injected)".into(),
            ));
        }
        Ok(())
    }
}

async fn dead_letters(store: &Store) -> Vec<autovolt::store::deadletters::DeadLetter> {
    store.dead_letters(1000).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_permanent_error_leaves_the_good_messages_billed_and_the_bad_one_dead_lettered(
) {
    let store = support::store("poison").await;
    let (_, b) = campus(&store).await;
    let room = b.classroom.unwrap();
    let mut c = device("CS-101-C", MAC_C, SECRET_C, room);
    c.id = Some(store.insert_device(&c).await.unwrap());
    let mut d = device("CS-101-D", MAC_D, SECRET_D, room);
    d.id = Some(store.insert_device(&d).await.unwrap());
    // Board B: a tariff another writer left negative, so its rows break the cost rule.
    store
        .collection::<bson::Document>("costversions")
        .insert_one(doc! {
            "cost_per_kwh": -1.0, "effective_from": bson::DateTime::from_chrono(boot() - Duration::days(1)),
            "effective_until": null, "scope": "device", "device_id": b.ledger_id().unwrap(),
            "is_active": true,
        })
        .await
        .unwrap();
    // Board C: a device document that does not decode.
    store
        .collection::<bson::Document>("devices")
        .update_one(
            doc! {"_id": c.id.unwrap()},
            doc! {"$set": {"switches.0.state": "on"}},
        )
        .await
        .unwrap();
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut o = options("poison");
    // Board D: the database refuses its rows.
    o.faults = Some(Arc::new(RefuseLedgerOf(Mac::parse(MAC_D).unwrap())));
    let mut collector = start(&store, &url, o, Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "poison-pub").await;
    let boards = [
        (MAC_A, SECRET_A),
        (MAC_B, SECRET_B),
        (MAC_C, SECRET_C),
        (MAC_D, SECRET_D),
    ];
    for (mac, _) in boards {
        p.publish("esp32/telemetry", &heartbeat(mac, UP)).await;
    }
    collector.wait_committed(4).await;
    clock.set(boot() + Duration::minutes(10));
    for (mac, secret) in boards {
        p.publish(
            "esp32/telemetry",
            &switch_event(mac, secret, 16, true, "manual", up(60_000)),
        )
        .await;
        p.publish(
            "esp32/telemetry",
            &switch_event(mac, secret, 16, false, "manual", up(120_000)),
        )
        .await;
    }
    // Everything is acknowledged: nothing waits on the bad ones.
    collector.wait_committed(12).await;
    let stats = collector.stop().await;

    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].esp32_name, "CS-101-A");
    assert!((rows[0].switch_on_duration_seconds - 60.0).abs() < 0.1);

    let dead = dead_letters(&store).await;
    let reasons: Vec<(&str, Option<&str>)> = dead
        .iter()
        .map(|d| (d.reason.as_str(), d.mac.as_deref()))
        .collect();
    assert!(
        dead.iter().all(|d| d.kind == DeadKind::Failed),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("invalid_document", Some(MAC_B))),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("undecodable_document", Some(MAC_C))),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("refused_by_database", Some(MAC_D))),
        "{reasons:?}"
    );
    // B and D fail only where a row is written (the switch-off); C fails on every message.
    assert_eq!(
        dead.iter()
            .filter(|d| d.mac.as_deref() == Some(MAC_B))
            .count(),
        1
    );
    assert_eq!(
        dead.iter()
            .filter(|d| d.mac.as_deref() == Some(MAC_D))
            .count(),
        1
    );
    assert_eq!(stats.dead_letters, dead.len() as i64);
    // A failed message's payload is kept byte for byte (its secret too, which a replay needs) and
    // never shown.
    let b_letter = dead
        .iter()
        .find(|d| d.mac.as_deref() == Some(MAC_B))
        .unwrap();
    assert_eq!(
        b_letter.payload.bytes,
        switch_event(MAC_B, SECRET_B, 16, false, "manual", up(120_000))
    );
    assert!(!b_letter.payload_preview(10_000).contains(SECRET_B));

    // Not an outage: the collector never held a batch, health says where to look.
    let statuses = store.collector_statuses().await.unwrap();
    assert_eq!(statuses[0].database_outages, 0);
    assert!(statuses[0].database_down_since.is_none());
    let tz = chrono_tz::Asia::Kolkata;
    // C's document is still broken: its replay is refused again, and the letter stays.
    let c_letter = dead
        .iter()
        .find(|d| d.mac.as_deref() == Some(MAC_C))
        .unwrap();
    assert_eq!(
        collect::replay(&store, tz, c_letter.id).await.unwrap(),
        Replayed::RefusedAgain("undecodable_document".into())
    );
    assert_eq!(
        store
            .dead_letter(c_letter.id)
            .await
            .unwrap()
            .unwrap()
            .replays,
        1
    );
    // Health reads every device (this branch does not yet skip one that does not decode).
    store
        .collection::<bson::Document>("devices")
        .update_one(
            doc! {"_id": c.id.unwrap()},
            doc! {"$set": {"switches.0.state": false}},
        )
        .await
        .unwrap();
    let now = autovolt::domain::dates::now_millis();
    let report = store
        .health(now, std::time::Duration::from_secs(3 * 3600))
        .await
        .unwrap();
    assert!(
        !report.warnings.iter().any(|w| w.contains("cannot write")),
        "{:?}",
        report.warnings
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("dead letters")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.dead_letters.get("failed/invalid_document"), Some(&1));
    assert!(report.render().contains("Rejected"));

    // The operator fixes the tariff and replays B's message: billed, and the dead letter is gone.
    store
        .collection::<bson::Document>("costversions")
        .update_one(
            doc! {"cost_per_kwh": -1.0},
            doc! {"$set": {"cost_per_kwh": 9.0}},
        )
        .await
        .unwrap();
    assert_eq!(
        collect::replay(&store, tz, b_letter.id).await.unwrap(),
        Replayed::Done
    );
    assert!(store.dead_letter(b_letter.id).await.unwrap().is_none());
    let rows = ledger(&store).await;
    let b_row = rows.iter().find(|r| r.esp32_name == "CS-101-B").unwrap();
    assert!((b_row.switch_on_duration_seconds - 60.0).abs() < 0.1);
    assert!((b_row.cost() - b_row.kwh() * 9.0).abs() < 1e-9);
}

/// A publisher that may send packets of any size (the fixture one stops at 1 MiB).
async fn big_publisher(url: &str, id: &str) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let addr = autovolt::mqtt::connection::BrokerAddress::parse(url).unwrap();
    let mut o = MqttOptions::new(id, addr.host, addr.port);
    o.set_max_packet_size(8 << 20, 8 << 20);
    let (client, mut eventloop) = AsyncClient::new(o, 100);
    let task = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    (client, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_stops_the_collector() {
    let store = support::store("oversize").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let (big, big_task) = big_publisher(&url, "oversize-big").await;
    let huge = vec![b'x'; 2 * 1024 * 1024];
    // Retained before the collector subscribes: the broker hands it over on every subscription.
    big.publish("esp32/status", QoS::AtLeastOnce, true, huge.clone())
        .await
        .unwrap();
    let clock = ManualClock::new(boot());
    let mut collector = start(&store, &url, options("oversize"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "oversize-pub").await;
    anchor_boards(&p).await;
    collector.wait_committed(3).await;
    clock.set(boot() + Duration::minutes(10));
    let odd_keys = |key: &str| {
        serde_json::to_vec(&serde_json::json!({
            "mac": MAC_A, "status": "heartbeat", "heap": 1, "uptime": up(590_000), key: {"x": 1},
        }))
        .unwrap()
    };
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, true, "manual", up(540_000)),
    )
    .await;
    big.publish("esp32/telemetry", QoS::AtLeastOnce, false, huge.clone())
        .await
        .unwrap();
    p.publish("esp32/telemetry", &odd_keys("$where")).await;
    p.publish("esp32/telemetry", &odd_keys("a.b")).await;
    p.publish("esp32/telemetry", &odd_keys("nul\u{0}key")).await;
    big.publish("esp32/state", QoS::AtLeastOnce, false, huge.clone())
        .await
        .unwrap();
    p.publish(
        "esp32/telemetry",
        &switch_event(MAC_A, SECRET_A, 16, false, "manual", up(600_000)),
    )
    .await;
    collector.wait_committed(3 + 7).await;
    let stats = collector.stop().await;
    big_task.abort();

    let rows = ledger(&store).await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert!(
        (rows[0].switch_on_duration_seconds - 60.0).abs() < 0.1,
        "{rows:#?}"
    );
    assert_eq!(stats.rejected.get("too_large"), Some(&3));
    // The odd keys are kept, as text, key for key.
    for key in ["$where", "a.b", "nul\u{0}key"] {
        let found = store
            .collection::<bson::Document>("telemetryevents")
            .find(doc! {"type": "heartbeat"})
            .await
            .unwrap();
        use futures::TryStreamExt;
        let docs: Vec<bson::Document> = found.try_collect().await.unwrap();
        assert!(
            docs.iter().any(|d| {
                let text = d.get_str("payload").unwrap_or_default();
                serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get(key).cloned())
                    .is_some()
            }),
            "no heartbeat kept with the key {key:?}"
        );
    }
    // The oversized ones are dead letters, cut to what a payload may be, with their size.
    let dead = store.dead_letters(100).await.unwrap();
    assert_eq!(
        dead.len(),
        3,
        "{:?}",
        dead.iter().map(|d| &d.reason).collect::<Vec<_>>()
    );
    for d in &dead {
        assert_eq!(d.reason, "too_large");
        assert_eq!(d.kind, DeadKind::Malformed);
        assert_eq!(d.size, huge.len() as i64);
        assert!(d.truncated);
    }
    let count = store
        .collection::<bson::Document>(DEAD_LETTERS)
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(count, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_commands_with_the_boards_secret_are_recorded() {
    let store = support::store("commands").await;
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let clock = ManualClock::new(boot());
    let mut collector = start(&store, &url, options("commands"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "commands-pub").await;
    let command = |mac: &str, secret: Option<&str>, user: &str| {
        let mut v = serde_json::json!({
            "mac": mac, "gpio": 16, "relayGpio": 16, "state": true, "source": "backend",
            "userName": user,
        });
        if let Some(s) = secret {
            v["secret"] = serde_json::Value::from(s);
        }
        serde_json::to_vec(&v).unwrap()
    };
    p.publish("esp32/switches", &command(MAC_A, Some(SECRET_A), "ops"))
        .await;
    p.publish("esp32/switches", &command(MAC_A, Some("guess"), "mallory"))
        .await;
    p.publish("esp32/switches", &command(MAC_A, None, "mallory"))
        .await;
    p.publish(
        "esp32/switches",
        &command("DE:AD:BE:EF:00:09", Some("x"), "mallory"),
    )
    .await;
    collector.wait_committed(4).await;
    let stats = collector.stop().await;
    assert_eq!(stats.rejected.get("wrong_secret"), Some(&1));
    assert_eq!(stats.rejected.get("missing_secret"), Some(&1));
    assert_eq!(stats.rejected.get("unregistered"), Some(&1));
    use futures::TryStreamExt;
    let kept: Vec<bson::Document> = store
        .collection::<bson::Document>("telemetryevents")
        .find(doc! {"type": "command"})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].get_str("payload").unwrap().contains("ops"));
    assert!(!kept[0].get_str("payload").unwrap().contains(SECRET_A));
    // Refused for their secret: counted, never kept (a near miss of a secret is not stored).
    assert!(store.dead_letters(10).await.unwrap().is_empty());
    assert!(actions(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_list_shows_dead_letters_without_secrets_and_replay_says_how_it_ended() {
    let uri = support::fresh_database_uri("rejected_cli");
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate_up(None, false).await.unwrap();
    let now = autovolt::domain::dates::now_millis();
    // Cut short after the secret had begun: malformed, and it still holds most of the secret.
    let cut = format!(r#"{{"mac":"{MAC_A}","secret":"{SECRET_A}"#);
    let letter = autovolt::store::deadletters::DeadLetter::new(
        "esp32/state",
        cut.as_bytes(),
        now,
        DeadKind::Malformed,
        "not_json",
        "EOF while parsing a string at line 1 column 70",
        None,
        now,
    );
    store
        .insert_dead_letters(std::slice::from_ref(&letter))
        .await
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_autovolt"))
            .args(args)
            .env("AUTOVOLT_MONGODB_URI", &uri)
            .output()
            .unwrap()
    };
    let out = run(&["rejected", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&letter.id.to_hex()), "{text}");
    assert!(text.contains("not_json"), "{text}");
    assert!(!text.contains(SECRET_A), "{text}");
    let out = run(&["rejected", "list", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(SECRET_A), "{text}");
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let line = &list[0];
    assert_eq!(line["reason"], "not_json");
    assert_eq!(line["topic"], "esp32/state");
    // Still not JSON: refused again, kept.
    let out = run(&["rejected", "replay", &letter.id.to_hex()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(store.dead_letter(letter.id).await.unwrap().is_some());
    let out = run(&["rejected", "replay", "000000000000000000000000"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["rejected", "replay", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_past_their_retention_are_pruned() {
    let store = support::store("dead_prune").await;
    let now = autovolt::domain::dates::now_millis();
    let old = now - Duration::days(31);
    let letter = |at: Instant, body: &[u8]| {
        autovolt::store::deadletters::DeadLetter::new(
            "esp32/state",
            body,
            at,
            DeadKind::Malformed,
            "not_json",
            "x",
            None,
            at,
        )
    };
    // Any bytes round-trip: not UTF-8, NUL, a dollar, a dot.
    let raw = [0xffu8, 0xfe, 0, b'$', b'.', b'{'];
    let (gone, kept) = (letter(old, b"old"), letter(now, &raw));
    store
        .collection::<autovolt::store::deadletters::DeadLetter>(DEAD_LETTERS)
        .insert_many([&gone, &kept])
        .await
        .unwrap();
    store.prune_dead_letters(now).await.unwrap();
    assert!(store.dead_letter(gone.id).await.unwrap().is_none());
    let back = store.dead_letter(kept.id).await.unwrap().unwrap();
    assert_eq!(back.payload.bytes, raw);
}
