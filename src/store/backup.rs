//! A self-describing dump: one JSONL file per collection in MongoDB Extended JSON v2 (canonical,
//! so every BSON type round-trips), and a manifest with counts, SHA-256 checksums, the schema
//! version and the server. A restore verifies everything before it writes anything.
//! The dump holds device secrets and password hashes: it is written readable by its owner only.

use super::{collections, Store, StoreError};
use crate::domain::dates;
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "autovolt-backup";
const FORMAT_VERSION: u32 = 1;
/// Documents per insert when restoring.
const RESTORE_BATCH: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    pub file: String,
    pub documents: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: String,
    pub database: String,
    pub server: String,
    pub schema_version: i32,
    pub collections: Vec<ManifestEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the backup in {dir} cannot be used: {reason}; nothing was written")]
    Corrupt { dir: PathBuf, reason: String },
    #[error("{0}")]
    Refused(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    pub collections: usize,
    pub documents: u64,
    pub schema_version: i32,
}

/// One document as a line of canonical Extended JSON v2.
pub fn to_line(doc: Document) -> String {
    canonical(Bson::Document(doc)).to_string()
}

/// Canonical Extended JSON, except that subnormal doubles are written as `$numberDouble` text
/// too: the bson crate writes them as plain JSON numbers, which do not read back exactly.
fn canonical(value: Bson) -> serde_json::Value {
    match value {
        Bson::Double(f) if f.is_subnormal() => {
            serde_json::json!({ "$numberDouble": format!("{f:e}") })
        }
        Bson::Array(items) => serde_json::Value::Array(items.into_iter().map(canonical).collect()),
        Bson::Document(d) => {
            serde_json::Value::Object(d.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        other => other.into_canonical_extjson(),
    }
}

/// A line of Extended JSON back to a document.
pub fn from_line(line: &str) -> Result<Document, String> {
    let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    match Bson::try_from(value).map_err(|e| e.to_string())? {
        Bson::Document(d) => Ok(d),
        other => Err(format!(
            "expected a document, found {:?}",
            other.element_type()
        )),
    }
}

#[cfg(unix)]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

impl Store {
    /// Dumps every collection into `dir` (created; it must not hold a backup already).
    pub async fn backup(&self, dir: &Path) -> Result<Manifest, BackupError> {
        if dir.join(MANIFEST).exists() {
            return Err(BackupError::Refused(format!(
                "{} already holds a backup; choose a new directory; nothing was written",
                dir.display()
            )));
        }
        // Refused before the first file, so that a backup is never mixed with other files.
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if let Some(Ok(first)) = entries.next() {
                return Err(BackupError::Refused(format!(
                    "{} is not empty (it holds {:?}, among others); choose a new or empty directory; nothing was written",
                    dir.display(),
                    first.file_name()
                )));
            }
        }
        private_dir(dir).map_err(io(dir))?;
        let schema_version = self.schema_version().await?;
        let mut entries = Vec::new();
        for name in self.collection_names().await? {
            // The change journal is a bounded copy of recent writes, rebuilt as writes go on.
            if name.starts_with("system.") || name == super::journal::JOURNAL {
                continue;
            }
            // The migration lock belongs to a running process, not to the data.
            let filter = if name == collections::MIGRATIONS {
                doc! {"_id": {"$ne": "lock"}}
            } else {
                doc! {}
            };
            let file = format!("{name}.jsonl");
            let path = dir.join(&file);
            let mut out = std::io::BufWriter::new(create_private(&path).map_err(io(&path))?);
            let mut hash = Sha256::new();
            let mut count = 0u64;
            let mut cursor = self
                .collection::<Document>(&name)
                .find(filter)
                .sort(doc! {"_id": 1})
                .await
                .map_err(StoreError::from)?;
            while let Some(d) = cursor.try_next().await.map_err(StoreError::from)? {
                let mut line = to_line(d);
                line.push('\n');
                hash.update(line.as_bytes());
                out.write_all(line.as_bytes()).map_err(io(&path))?;
                count += 1;
            }
            out.flush().map_err(io(&path))?;
            entries.push(ManifestEntry {
                name,
                file,
                documents: count,
                sha256: hex::encode(hash.finalize()),
            });
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            created_at: dates::now_millis().to_rfc3339(),
            database: self.database().name().to_string(),
            server: self.server().to_string(),
            schema_version,
            collections: entries,
        };
        // The manifest comes last: a dump without one is incomplete and is refused on restore.
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| BackupError::Refused(format!("cannot write the manifest: {e}")))?;
        let mut f = create_private(&path).map_err(io(&path))?;
        f.write_all(text.as_bytes()).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))?;
        Ok(manifest)
    }

    /// Restores a dump: checks the manifest, every checksum, count and document first, then
    /// refuses a target that holds any of the dumped collections' data unless `drop` is set (which
    /// drops them first), inserts, and creates the schema's indexes.
    pub async fn restore(&self, dir: &Path, drop: bool) -> Result<RestoreReport, BackupError> {
        let manifest = verify(dir)?;
        let mut occupied = Vec::new();
        for e in &manifest.collections {
            let n = self
                .collection::<Document>(&e.name)
                .estimated_document_count()
                .await
                .map_err(StoreError::from)?;
            if n > 0 {
                occupied.push(format!("{} ({n})", e.name));
            }
        }
        if !occupied.is_empty() && !drop {
            return Err(BackupError::Refused(format!(
                "the target database already holds data in {}; restore into an empty database, or \
                 pass --drop to replace those collections",
                occupied.join(", ")
            )));
        }
        if drop {
            for e in &manifest.collections {
                self.collection::<Document>(&e.name)
                    .drop()
                    .await
                    .map_err(StoreError::from)?;
            }
        }
        let mut documents = 0u64;
        for e in &manifest.collections {
            let path = dir.join(&e.file);
            let file = std::fs::File::open(&path).map_err(io(&path))?;
            let coll = self.collection::<Document>(&e.name);
            let mut batch = Vec::with_capacity(RESTORE_BATCH);
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(io(&path))?;
                batch.push(from_line(&line).map_err(|reason| BackupError::Corrupt {
                    dir: dir.to_path_buf(),
                    reason: format!("{} changed while restoring: {reason}", e.file),
                })?);
                if batch.len() == RESTORE_BATCH {
                    coll.insert_many(std::mem::take(&mut batch))
                        .await
                        .map_err(StoreError::from)?;
                }
            }
            if !batch.is_empty() {
                coll.insert_many(batch).await.map_err(StoreError::from)?;
            }
            if e.documents == 0 {
                self.database()
                    .create_collection(&e.name)
                    .await
                    .or_else(|err| match super::error::error_code(&err) {
                        Some(super::migrations::NAMESPACE_EXISTS) => Ok(()),
                        _ => Err(StoreError::from(err)),
                    })?;
            }
            documents += e.documents;
        }
        self.ensure_indexes().await?;
        self.ensure_journal().await?;
        Ok(RestoreReport {
            collections: manifest.collections.len(),
            documents,
            schema_version: manifest.schema_version,
        })
    }
}

/// Reads the manifest and checks every file against it (checksum, count, each line a document).
pub fn verify(dir: &Path) -> Result<Manifest, BackupError> {
    let corrupt = |reason: String| BackupError::Corrupt {
        dir: dir.to_path_buf(),
        reason,
    };
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        corrupt(format!(
            "no readable {MANIFEST} ({e}); an interrupted backup has none"
        ))
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| corrupt(format!("{MANIFEST}: {e}")))?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "format {:?} version {} is not {FORMAT:?} version {FORMAT_VERSION}",
            manifest.format, manifest.format_version
        )));
    }
    for e in &manifest.collections {
        if e.file.contains('/') || e.file.contains('\\') || e.file.starts_with('.') {
            return Err(corrupt(format!("file name {:?} is not plain", e.file)));
        }
        let path = dir.join(&e.file);
        let bytes = std::fs::read(&path).map_err(|err| corrupt(format!("{}: {err}", e.file)))?;
        let sum = hex::encode(Sha256::digest(&bytes));
        if sum != e.sha256 {
            return Err(corrupt(format!(
                "{} has checksum {sum}, the manifest says {}",
                e.file, e.sha256
            )));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|err| corrupt(format!("{} is not UTF-8: {err}", e.file)))?;
        let mut count = 0u64;
        for (i, line) in text.lines().enumerate() {
            from_line(line).map_err(|err| corrupt(format!("{} line {}: {err}", e.file, i + 1)))?;
            count += 1;
        }
        if count != e.documents {
            return Err(corrupt(format!(
                "{} holds {count} documents, the manifest says {}",
                e.file, e.documents
            )));
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_every_type_and_the_field_order() {
        let d = doc! {
            "z": 1i32, "a": 2i64, "m": 0.1f64, "t": bson::DateTime::from_millis(1_764_000_000_123),
            "o": bson::oid::ObjectId::new(), "n": null, "arr": [1i32, "x", {"k": true}],
            "bin": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: vec![0, 255] },
        };
        let line = to_line(d.clone());
        assert!(line.contains("\"$numberLong\":\"2\""), "{line}");
        let back = from_line(&line).unwrap();
        assert_eq!(bson::to_vec(&back).unwrap(), bson::to_vec(&d).unwrap());
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Bson> {
        use proptest::collection::vec;
        use proptest::prelude::*;
        let leaf = prop_oneof![
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            any::<f64>()
                .prop_filter("NaN payloads are not kept", |f| !f.is_nan())
                .prop_map(Bson::Double),
            ".{0,12}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            any::<i64>().prop_map(|ms| Bson::DateTime(bson::DateTime::from_millis(ms))),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(bson::oid::ObjectId::from_bytes(b))),
            vec(any::<u8>(), 0..16).prop_map(|bytes| Bson::Binary(bson::Binary {
                subtype: bson::spec::BinarySubtype::Generic,
                bytes
            })),
        ];
        leaf.prop_recursive(3, 48, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Bson::Array),
                vec(("[a-z_][a-z0-9_]{0,7}", inner), 0..5)
                    .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_document_survives_a_line_byte_for_byte(
            fields in proptest::collection::vec(("[a-z_][a-z0-9_]{0,7}", value()), 0..8)
        ) {
            let d: Document = fields.into_iter().collect();
            let back = from_line(&to_line(d.clone())).unwrap();
            proptest::prop_assert_eq!(bson::to_vec(&back).unwrap(), bson::to_vec(&d).unwrap());
        }
    }

    #[test]
    fn a_line_that_is_not_a_document_is_refused() {
        assert!(from_line("[1,2]").is_err());
        assert!(from_line("{\"a\":").is_err());
    }
}
