//! Backups in mongodump's layout: a campus with a day of ledger backed up, its database dropped
//! and restored holds every document byte for byte and every index and collection option; a
//! damaged file is refused by name before anything is written; `--keep` keeps the newest; a
//! plain mongodump directory (no manifest) is restored too.

mod books_common;
mod support;

use autovolt::store::migrations::latest_version;

use autovolt::store::backup::{dump, BackupError, BackupOptions};
use autovolt::store::Store;
use books_common::{campus, ist};
use bson::{doc, Document, RawDocumentBuf};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A campus of 2 classrooms × 2 boards with a day of ledger (every switch of every board on for
/// most of each hour from 08:00 to 18:00 on 2026-11-23, campus time: 240 rows), a telemetry
/// event with awkward types, and, where the server has validators, a collection with one.
async fn campus_with_a_day(label: &str) -> books_common::Campus {
    let c = campus(label, 2, 2, 8.0).await;
    for board in 0..4 {
        for switch in 0..6 {
            for hour in 8..18 {
                let from = ((board * 6 + switch) % 15) as u32;
                c.bill(
                    board,
                    switch,
                    ist(2026, 11, 23, hour, from),
                    ist(2026, 11, 23, hour, 45),
                )
                .await;
            }
        }
    }
    c.store
        .collection::<Document>("telemetryevents")
        .insert_one(doc! {
            "mac": "A4:CF:12:00:00:01", "topic": "esp32/telemetry", "type": "heartbeat",
            "received_at": bson::DateTime::from_millis(1_764_000_000_123),
            "payload": {"uptime": 12i64, "rssi": -61i32, "temp": 41.5, "tags": ["a", null], "neg0": -0.0},
            "event_hash": "h1", "raw": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        })
        .await
        .unwrap();
    let validated = c
        .store
        .database()
        .run_command(doc! {"create": "notes", "validator": {"text": {"$type": "string"}}})
        .await;
    if let Err(e) = validated {
        eprintln!("this server has no collection validators ({e}); the validator part is skipped");
    }
    c
}

/// Every collection's documents as raw BSON, in the server's natural order.
async fn contents(s: &Store) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in s.collection_names().await.unwrap() {
        let docs: Vec<RawDocumentBuf> = s
            .collection::<RawDocumentBuf>(&name)
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.insert(name, docs.into_iter().map(|d| d.into_bytes()).collect());
    }
    out
}

/// Every collection's options and indexes (name, key, unique, TTL), as the server reports them.
async fn shape(s: &Store) -> BTreeMap<String, (Document, Vec<Document>)> {
    let mut out = BTreeMap::new();
    let specs: Vec<Document> = s
        .database()
        .run_cursor_command(doc! {"listCollections": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    for spec in specs {
        let name = spec.get_str("name").unwrap().to_string();
        let mut indexes: Vec<Document> = s
            .database()
            .run_cursor_command(doc! {"listIndexes": &name})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        for i in &mut indexes {
            i.remove("v");
            i.remove("ns");
        }
        indexes.sort_by(|a, b| a.get_str("name").unwrap().cmp(b.get_str("name").unwrap()));
        let options = spec.get_document("options").cloned().unwrap_or_default();
        out.insert(name, (options, indexes));
    }
    out
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_campus_day_survives_backup_drop_and_restore_byte_for_byte() {
    let c = campus_with_a_day("backup_day").await;
    let s = &c.store;
    let db = s.database().name().to_string();
    let before = contents(s).await;
    let shape_before = shape(s).await;
    let ledger = &before["deviceconsumptionledgers"];
    assert_eq!(ledger.len(), 4 * 6 * 10, "a day of ledger");
    assert!(
        shape_before["changejournal"]
            .0
            .get_bool("capped")
            .unwrap_or(false),
        "the journal is capped: {:?}",
        shape_before["changejournal"]
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plain");
    let report = s.backup(&out, &BackupOptions::default()).await.unwrap();
    assert_eq!(report.dir, out);
    let m = &report.manifest;
    assert_eq!(
        (m.schema_version, m.gzip, m.database.as_str()),
        (latest_version(), false, db.as_str())
    );
    let entry = m
        .collections
        .iter()
        .find(|e| e.name == "deviceconsumptionledgers")
        .unwrap();
    assert_eq!(entry.documents, ledger.len() as u64);
    // mongodump's layout: DB/COLL.bson is the documents one after another, byte for byte.
    let bson_file = out.join(&db).join("deviceconsumptionledgers.bson");
    assert_eq!(
        entry.data.as_ref().unwrap().path,
        format!("{db}/deviceconsumptionledgers.bson")
    );
    assert_eq!(std::fs::read(&bson_file).unwrap(), ledger.concat());
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(&db).join("changejournal.metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["collectionName"], "changejournal");
    assert_eq!(meta["type"], "collection");
    assert_eq!(meta["options"]["capped"], true, "{meta}");
    assert!(
        meta["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "_id_"),
        "{meta}"
    );
    assert_eq!(
        mode(&bson_file),
        0o600,
        "only the owner may read a backup with secrets"
    );
    assert_eq!(mode(&out), 0o700);
    assert!(!out.join(dump::INCOMPLETE).exists());

    let gz = dir.path().join("gz");
    let gz_report = s
        .backup(
            &gz,
            &BackupOptions {
                gzip: true,
                keep: None,
            },
        )
        .await
        .unwrap();
    assert!(gz
        .join(&db)
        .join("deviceconsumptionledgers.bson.gz")
        .is_file());
    assert!(gz
        .join(&db)
        .join("deviceconsumptionledgers.metadata.json.gz")
        .is_file());
    assert!(!gz.join(&db).join("deviceconsumptionledgers.bson").exists());
    assert_eq!(gz_report.documents(), report.documents());

    s.database().drop().await.unwrap();
    assert!(s.collection_names().await.unwrap().is_empty());
    let restored = s.restore(&out, false).await.unwrap();
    assert!(restored.checksums);
    assert_eq!(restored.schema_version, latest_version());
    assert_eq!(restored.documents, report.documents());
    assert!(
        restored.not_applied.is_empty(),
        "{:?}",
        restored.not_applied
    );
    assert_eq!(contents(s).await, before, "every document, byte for byte");
    assert_eq!(
        shape(s).await,
        shape_before,
        "every index and collection option"
    );

    // The compressed backup restores the same into another database.
    let other = support::store("backup_day_gz").await;
    other.restore(&gz, false).await.unwrap();
    assert_eq!(contents(&other).await, before);
    assert_eq!(shape(&other).await, shape_before);

    // A backup of the restored database is the same, file for file.
    let again = dir.path().join("again");
    s.backup(&again, &BackupOptions::default()).await.unwrap();
    for e in &m.collections {
        for f in e.data.iter().chain([&e.metadata]) {
            let (a, b) = (
                std::fs::read(out.join(&f.path)),
                std::fs::read(again.join(&f.path)),
            );
            if f.path.ends_with(".metadata.json") {
                // A collection's UUID is new on restore (mongorestore's default too).
                continue;
            }
            assert_eq!(a.unwrap(), b.unwrap(), "{}", f.path);
        }
    }

    // Today's safety: a directory that holds something is refused, nothing added to it.
    let refused = s.backup(&out, &BackupOptions::default()).await.unwrap_err();
    assert!(matches!(refused, BackupError::Refused(_)), "{refused:?}");
    let refused = s.restore(&out, false).await.unwrap_err();
    assert!(matches!(refused, BackupError::Refused(_)), "{refused:?}");
    assert!(refused.to_string().contains("--drop"), "{refused}");
    s.restore(&out, true).await.unwrap();
    assert_eq!(contents(s).await, before);
}

/// Flips one byte inside a ledger row's `classroom` string: the file stays well-formed BSON, so
/// only the checksum can tell.
fn tamper(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let needle = b"CS-10";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("a classroom name in the ledger");
    bytes[at + needle.len()] ^= 0x01;
    std::fs::write(path, &bytes).unwrap();
}

fn cli(uri: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_autovolt"))
        .args(args)
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("autovolt-backup-no-config"),
        )
        .env_remove("AUTOVOLT_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("the autovolt binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn a_tampered_file_is_refused_by_name_and_nothing_is_written() {
    let c = campus_with_a_day("backup_tampered").await;
    let db = c.store.database().name().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    c.store
        .backup(&out, &BackupOptions::default())
        .await
        .unwrap();
    let target_uri = support::fresh_database_uri("backup_tampered_target");
    let target = Store::connect(&target_uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();

    let ledger = out.join(&db).join("deviceconsumptionledgers.bson");
    let original = std::fs::read(&ledger).unwrap();
    tamper(&ledger);
    assert!(
        dump::DataReader::read_through(&out, &format!("{db}/deviceconsumptionledgers.bson"))
            .is_ok(),
        "the tampered file is still well-formed BSON"
    );
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{db}/deviceconsumptionledgers.bson has SHA-256")),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
    assert!(target.collection_names().await.unwrap().is_empty());

    // From the command line: the file named, exit 2 (a damaged backup), nothing written.
    let (code, stderr) = cli(&target_uri, &["restore", "--from", out.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("deviceconsumptionledgers.bson"), "{stderr}");
    assert!(target.collection_names().await.unwrap().is_empty());
    std::fs::write(&ledger, &original).unwrap();

    // A metadata file (an index renamed), an unlisted file, an interrupted backup.
    let meta = out.join(&db).join("devices.metadata.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("macAddress_1", "macAddress_2")).unwrap();
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{db}/devices.metadata.json has SHA-256")),
        "{err}"
    );
    std::fs::write(&meta, text).unwrap();

    let extra = out.join(&db).join("smuggled.bson");
    std::fs::write(&extra, b"").unwrap();
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("smuggled.bson is not in manifest.json"),
        "{err}"
    );
    std::fs::remove_file(&extra).unwrap();

    std::fs::write(out.join(dump::INCOMPLETE), b"").unwrap();
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(err.to_string().contains("interrupted"), "{err}");
    std::fs::remove_file(out.join(dump::INCOMPLETE)).unwrap();
    assert!(target.collection_names().await.unwrap().is_empty());

    // Sound again: it restores.
    target.restore(&out, false).await.unwrap();
    assert_eq!(contents(&target).await, contents(&c.store).await);
}

#[tokio::test]
async fn keep_two_after_three_backups_leaves_the_newest_two() {
    let c = campus("backup_keep", 1, 1, 8.0).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("backups");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("README.txt"), "not a backup").unwrap();
    std::fs::create_dir(root.join("2020-01-01")).unwrap();
    let keep = BackupOptions {
        gzip: false,
        keep: Some(2),
    };
    let mut made = Vec::new();
    for _ in 0..3 {
        let r = c.store.backup(&root, &keep).await.unwrap();
        assert_eq!(r.dir.parent(), Some(root.as_path()));
        made.push((r.dir, r.pruned));
    }
    assert!(made[0].1.is_empty() && made[1].1.is_empty());
    assert_eq!(
        made[2].1,
        vec![made[0].0.clone()],
        "the oldest went, after the third was made"
    );
    let mut left: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    let name = |p: &std::path::PathBuf| p.file_name().unwrap().to_string_lossy().to_string();
    assert_eq!(
        left,
        vec![
            "2020-01-01".to_string(),
            name(&made[1].0),
            name(&made[2].0),
            "README.txt".to_string()
        ],
        "two backups, and what is not ours untouched"
    );
    // The directory of several backups is not restored as one: the newest is named.
    let target = support::store("backup_keep_target").await;
    let err = target.restore(&root, false).await.unwrap_err();
    assert!(err.to_string().contains(&name(&made[2].0)), "{err}");
    target.restore(&made[2].0, false).await.unwrap();
}

#[tokio::test]
async fn a_plain_mongodump_directory_is_restored_and_said_to_be_one() {
    let c = campus_with_a_day("backup_plain").await;
    let db = c.store.database().name().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours");
    c.store
        .backup(
            &ours,
            &BackupOptions {
                gzip: true,
                keep: None,
            },
        )
        .await
        .unwrap();
    // What mongodump --gzip writes: no manifest, the server's own databases, its prelude and
    // the oplog of --oplog, and an older tool's relaxed metadata for one collection.
    let dump_dir = dir.path().join("dump");
    std::fs::create_dir(&dump_dir).unwrap();
    std::fs::rename(ours.join(&db), dump_dir.join(&db)).unwrap();
    std::fs::create_dir(dump_dir.join("admin")).unwrap();
    std::fs::write(dump_dir.join("admin").join("system.version.bson"), b"").unwrap();
    std::fs::write(
        dump_dir.join("prelude.json"),
        br#"{"ServerVersion":"7.0.0"}"#,
    )
    .unwrap();
    std::fs::write(dump_dir.join("oplog.bson"), b"").unwrap();
    std::fs::write(dump_dir.join(&db).join("system.profile.bson"), b"").unwrap();
    let classrooms_meta = dump_dir.join(&db).join("classrooms.metadata.json.gz");
    std::fs::remove_file(&classrooms_meta).unwrap();
    std::fs::write(
        dump_dir.join(&db).join("classrooms.metadata.json"),
        format!(
            r#"{{"options":{{}},"indexes":[{{"v":2,"key":{{"_id":1}},"name":"_id_","ns":"{db}.classrooms"}},{{"v":2,"unique":true,"key":{{"name":1}},"name":"name_1","ns":"{db}.classrooms"}}]}}"#
        ),
    )
    .unwrap();

    let target = support::store("backup_plain_target").await;
    let r = target.restore(&dump_dir, false).await.unwrap();
    assert!(!r.checksums);
    assert_eq!(r.source_database, db);
    let notes = r.notes.join("\n");
    for said in [
        "no manifest",
        "oplog.bson not applied",
        "admin/ skipped",
        "system.profile.bson skipped",
    ] {
        assert!(notes.contains(said), "{said:?} in {notes}");
    }
    assert_eq!(contents(&target).await, contents(&c.store).await);
    assert_eq!(shape(&target).await, shape(&c.store).await);

    // Damage in a plain dump is found too, by name, before anything is written.
    let again = support::store("backup_plain_again").await;
    let ledger = dump_dir.join(&db).join("deviceconsumptionledgers.bson.gz");
    let bytes = std::fs::read(&ledger).unwrap();
    std::fs::write(&ledger, &bytes[..bytes.len() / 2]).unwrap();
    let err = again.restore(&dump_dir, false).await.unwrap_err();
    assert!(
        err.to_string().contains("deviceconsumptionledgers.bson.gz"),
        "{err}"
    );
    assert!(again.collection_names().await.unwrap().is_empty());
}
