//! Backup → restore round trip (byte-equal documents), verification before any write, and the
//! refusal of a non-empty target.

mod support;

use autovolt::seed::{seed, SeedOptions};
use autovolt::store::backup::{BackupError, MANIFEST};
use autovolt::store::Store;
use bson::{doc, Document};
use futures::TryStreamExt;
use std::collections::BTreeMap;

async fn prepared(label: &str) -> Store {
    let s = support::store(label).await;
    s.migrate_up(None, false).await.unwrap();
    seed(
        &s,
        &SeedOptions {
            classrooms: 3,
            devices_per_classroom: 2,
            seed: Some(5),
        },
    )
    .await
    .unwrap();
    s.collection::<Document>("telemetryevents")
        .insert_one(doc! {
            "mac": "A4:CF:12:00:00:01", "topic": "esp32/telemetry", "type": "heartbeat",
            "received_at": bson::DateTime::from_millis(1_764_000_000_123),
            "payload": {"uptime": 12i64, "rssi": -61i32, "temp": 41.5, "tags": ["a", null]},
            "event_hash": "h1", "raw": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![1, 2, 3] },
        })
        .await
        .unwrap();
    s
}

/// Every document of every collection, as raw BSON bytes, by collection.
async fn contents(s: &Store) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for name in s.collection_names().await.unwrap() {
        // A bounded copy of recent writes, not data: neither dumped nor restored.
        if name == autovolt::store::journal::JOURNAL {
            continue;
        }
        let docs: Vec<Document> = s
            .collection::<Document>(&name)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        out.insert(
            name,
            docs.iter().map(|d| bson::to_vec(d).unwrap()).collect(),
        );
    }
    out
}

#[tokio::test]
async fn a_restored_database_holds_byte_equal_documents() {
    let src = prepared("backup_src").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    let manifest = src.backup(&out).await.unwrap();
    assert_eq!(manifest.schema_version, 3);
    let devices = manifest
        .collections
        .iter()
        .find(|c| c.name == "devices")
        .unwrap();
    assert_eq!(devices.documents, 6);
    assert_eq!(devices.sha256.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("devices.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only the owner may read a dump with secrets"
        );
    }

    let dst = support::store("backup_dst").await;
    let report = dst.restore(&out, false).await.unwrap();
    assert_eq!(report.schema_version, 3);
    assert_eq!(contents(&src).await, contents(&dst).await);
    assert_eq!(dst.schema_version().await.unwrap(), 3);
    assert!(dst
        .index_names("devices")
        .await
        .unwrap()
        .contains(&"macAddress_1".to_string()));

    // A second dump of the restored database is byte-identical, file by file.
    let again = dir.path().join("again");
    dst.backup(&again).await.unwrap();
    for c in &manifest.collections {
        assert_eq!(
            std::fs::read(out.join(&c.file)).unwrap(),
            std::fs::read(again.join(&c.file)).unwrap(),
            "{}",
            c.file
        );
    }
    let refused = src.backup(&out).await.unwrap_err();
    assert!(matches!(refused, BackupError::Refused(_)), "{refused:?}");
}

#[tokio::test]
async fn a_damaged_dump_or_an_occupied_target_writes_nothing() {
    let src = prepared("backup_damaged").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dump");
    src.backup(&out).await.unwrap();

    let target = support::store("backup_target").await;
    let path = out.join("devices.jsonl");
    let original = std::fs::read(&path).unwrap();
    let mut tampered = original.clone();
    let at = tampered.iter().position(|&b| b == b'E').unwrap();
    tampered[at] = b'F';
    std::fs::write(&path, &tampered).unwrap();
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(matches!(err, BackupError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert!(target.collection_names().await.unwrap().is_empty());
    std::fs::write(&path, &original).unwrap();

    std::fs::rename(out.join(MANIFEST), dir.path().join("m")).unwrap();
    let err = target.restore(&out, false).await.unwrap_err();
    assert!(err.to_string().contains("manifest.json"), "{err}");
    std::fs::rename(dir.path().join("m"), out.join(MANIFEST)).unwrap();

    // The source itself is not empty: refused without --drop, replaced with it.
    let err = src.restore(&out, false).await.unwrap_err();
    assert!(matches!(err, BackupError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("--drop"), "{err}");
    src.collection::<Document>("classrooms")
        .insert_one(doc! {"name": "Added-After"})
        .await
        .unwrap();
    src.restore(&out, true).await.unwrap();
    assert!(src
        .classroom_by_name("Added-After")
        .await
        .unwrap()
        .is_none());
    assert_eq!(src.classrooms().await.unwrap().len(), 3);
}
