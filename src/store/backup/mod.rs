//! Backups that standard tools read: `mongodump`'s layout (see [`dump`]), plus a manifest with
//! counts and SHA-256 checksums. A restore reads the whole backup through and checks it before it
//! writes anything; it also takes a plain `mongodump` directory, checking what can be checked.
//! `--keep N` keeps the newest N backups in time-named subdirectories ([`rotation`]).
//! A backup holds device secrets and password hashes: it is written readable by its owner only.

pub mod dump;
pub mod rotation;

use super::{collections, Store, StoreError};
use crate::domain::dates;
use bson::{doc, Bson, Document, RawDocumentBuf};
use dump::{FileSink, Manifest, ManifestEntry, Metadata, Plan};
use futures::TryStreamExt;
use std::path::{Path, PathBuf};

pub use dump::{verify, MANIFEST};

/// Documents per insert when restoring, and the bytes a batch may reach before it is sent.
const RESTORE_BATCH: usize = 1000;
const RESTORE_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// MongoDB's "not implemented" and "invalid options": what a server answers for an option it
/// does not have (FerretDB for validators, TTL and partial indexes).
const NOT_IMPLEMENTED: i32 = 238;
const INVALID_OPTIONS: i32 = 72;
/// Collection options every server with capped collections takes.
const PORTABLE_OPTIONS: &[&str] = &["capped", "size", "max"];

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
    /// Refused to go on (a directory that is not empty, a target that holds data).
    #[error("{0}")]
    Refused(String),
    /// What was named cannot be used as it is (several backups or databases in one directory, a
    /// kind of collection that is not handled).
    #[error("{0}")]
    Unusable(String),
    #[error(
        "the backup in {dir} changed while it was being restored: {reason}; the database now \
         holds part of it: restore again with --drop from a sound backup"
    )]
    ChangedDuringRestore { dir: PathBuf, reason: String },
    #[error("the backup {kept} is complete and verified, but the older {path} could not be deleted: {source}")]
    PruneFailed {
        kept: PathBuf,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to back up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupOptions {
    /// Compress each file as `mongodump --gzip` does.
    pub gzip: bool,
    /// Write into a new time-named subdirectory of the directory and keep the newest this many.
    pub keep: Option<usize>,
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupReport {
    /// The backup's own directory.
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// Older backups deleted by `--keep`.
    pub pruned: Vec<PathBuf>,
}

impl BackupReport {
    pub fn documents(&self) -> u64 {
        self.manifest.collections.iter().map(|c| c.documents).sum()
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreReport {
    /// The directory the files were read from.
    pub dir: PathBuf,
    /// The database the backup was made of.
    pub source_database: String,
    /// Whether a manifest's checksums and counts were checked (a plain `mongodump` has none).
    pub checksums: bool,
    pub collections: usize,
    pub documents: u64,
    pub indexes: usize,
    /// The restored database's schema version.
    pub schema_version: i32,
    /// What was skipped or could not be checked.
    pub notes: Vec<String>,
    /// Options and indexes of the backup that this server cannot have.
    pub not_applied: Vec<String>,
}

impl Store {
    /// Backs up every collection. Without `keep`, into `out`, which must be new or empty; with
    /// it, into a new time-named subdirectory of `out`, renamed into place only once complete
    /// and verified, after which the oldest backups beyond `keep` are deleted.
    pub async fn backup(
        &self,
        out: &Path,
        options: &BackupOptions,
    ) -> Result<BackupReport, BackupError> {
        match options.keep {
            None => self.backup_into_empty(out, options.gzip).await,
            Some(keep) => self.backup_rotating(out, keep, options.gzip).await,
        }
    }

    async fn backup_into_empty(&self, out: &Path, gzip: bool) -> Result<BackupReport, BackupError> {
        if out.join(MANIFEST).exists() {
            return Err(BackupError::Refused(format!(
                "{} already holds a backup; choose a new directory (or use --keep N to keep \
                 several in it); nothing was written",
                out.display()
            )));
        }
        // Refused before the first file, so that a backup is never mixed with other files.
        if let Ok(mut entries) = std::fs::read_dir(out) {
            if let Some(Ok(first)) = entries.next() {
                return Err(BackupError::Refused(format!(
                    "{} is not empty (it holds {:?}, among others); choose a new or empty \
                     directory, or use --keep N to keep time-named backups in it; nothing was written",
                    out.display(),
                    first.file_name()
                )));
            }
        }
        dump::private_dir(out).map_err(io(out))?;
        let manifest = match self.write_dump(out, gzip).await {
            Ok(m) => m,
            Err(e) => {
                discard_contents(out);
                return Err(e);
            }
        };
        Ok(BackupReport {
            dir: out.to_path_buf(),
            manifest,
            pruned: Vec::new(),
        })
    }

    async fn backup_rotating(
        &self,
        dir: &Path,
        keep: usize,
        gzip: bool,
    ) -> Result<BackupReport, BackupError> {
        // An existing directory keeps its permissions; each backup in it is private.
        if !dir.is_dir() {
            dump::private_dir(dir).map_err(io(dir))?;
        }
        let name = rotation::name_for(dates::now_millis());
        let done = dir.join(&name);
        let partial = dir.join(rotation::partial_name(&name));
        if done.exists() {
            return Err(BackupError::Refused(format!(
                "{} already exists; nothing was written",
                done.display()
            )));
        }
        std::fs::create_dir(&partial).map_err(io(&partial))?;
        dump::private_dir(&partial).map_err(io(&partial))?;
        let manifest = match self.write_dump(&partial, gzip).await {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, &done).map_err(io(&done))?;
        let mut pruned = Vec::new();
        for old in rotation::beyond(&backups_in(dir), keep) {
            let path = dir.join(&old);
            std::fs::remove_dir_all(&path).map_err(|source| BackupError::PruneFailed {
                kept: done.clone(),
                path: path.clone(),
                source,
            })?;
            pruned.push(path);
        }
        Ok(BackupReport {
            dir: done,
            manifest,
            pruned,
        })
    }

    /// Writes every collection's files into `dir` (existing, empty), the manifest last, reads
    /// the whole backup back against it, and only then removes the "incomplete" mark.
    async fn write_dump(&self, dir: &Path, gzip: bool) -> Result<Manifest, BackupError> {
        let mark = dir.join(dump::INCOMPLETE);
        dump::create_private(&mark).map_err(io(&mark))?;
        let database = self.database().name().to_string();
        let db_dir = dir.join(&database);
        dump::private_dir(&db_dir).map_err(io(&db_dir))?;
        let schema_version = self.schema_version().await?;
        let mut entries = Vec::new();
        for spec in self.collection_specs().await? {
            let name = spec.get_str("name").unwrap_or_default().to_string();
            let kind = spec.get_str("type").unwrap_or(dump::COLLECTION).to_string();
            if name.is_empty() || name.starts_with("system.") {
                continue;
            }
            if kind == dump::TIMESERIES {
                return Err(BackupError::Unusable(format!(
                    "{name} is a time-series collection, which autovolt backup does not handle; \
                     use mongodump"
                )));
            }
            let metadata = Metadata {
                collection_name: name.clone(),
                options: spec.get_document("options").cloned().unwrap_or_default(),
                indexes: if kind == dump::VIEW {
                    Vec::new()
                } else {
                    self.index_specs_of(&name).await?
                },
                uuid: spec
                    .get_document("info")
                    .ok()
                    .and_then(|i| i.get("uuid"))
                    .and_then(|u| match u {
                        Bson::Binary(b) => Some(hex::encode(&b.bytes)),
                        _ => None,
                    }),
                kind: kind.clone(),
            };
            let (documents, data) = if kind == dump::VIEW {
                (0, None)
            } else {
                let (n, sum) = self.dump_documents(dir, &database, &name, gzip).await?;
                (n, Some(sum))
            };
            let relative = format!("{database}/{}", dump::metadata_file(&name, gzip));
            let mut sink = FileSink::create(dir, relative, gzip)?;
            sink.write(metadata.to_json().as_bytes())?;
            entries.push(ManifestEntry {
                name,
                kind,
                documents,
                data,
                metadata: sink.finish()?,
            });
        }
        let manifest = Manifest {
            format: dump::FORMAT.into(),
            format_version: dump::FORMAT_VERSION,
            layout: dump::LAYOUT.into(),
            created_at: dates::now_millis().to_rfc3339(),
            database,
            server: self.server().to_string(),
            schema_version,
            gzip,
            collections: entries,
        };
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| BackupError::Unusable(format!("cannot write the manifest: {e}")))?;
        let mut sink = FileSink::create(dir, MANIFEST.into(), false)?;
        sink.write(text.as_bytes())?;
        sink.finish()?;
        // Read back from the disk, not trusted from memory.
        let plan = dump::verify_written(dir)?;
        if plan.manifest.as_ref() != Some(&manifest) {
            return Err(BackupError::Corrupt {
                dir: dir.to_path_buf(),
                reason: format!("{} does not read back as written", path.display()),
            });
        }
        std::fs::remove_file(&mark).map_err(io(&mark))?;
        Ok(manifest)
    }

    /// Every collection's `listCollections` entry, as the server gives it (options included,
    /// whatever they are), by name.
    async fn collection_specs(&self) -> Result<Vec<Document>, StoreError> {
        let mut specs: Vec<Document> = self
            .database()
            .run_cursor_command(doc! {"listCollections": 1})
            .await?
            .try_collect()
            .await?;
        specs.sort_by(|a, b| a.get_str("name").ok().cmp(&b.get_str("name").ok()));
        Ok(specs)
    }

    async fn index_specs_of(&self, name: &str) -> Result<Vec<Document>, StoreError> {
        Ok(self
            .database()
            .run_cursor_command(doc! {"listIndexes": name})
            .await?
            .try_collect()
            .await?)
    }

    /// Streams a collection's documents, as the server's bytes, into its data file.
    async fn dump_documents(
        &self,
        dir: &Path,
        database: &str,
        name: &str,
        gzip: bool,
    ) -> Result<(u64, dump::FileSum), BackupError> {
        // The migration lock belongs to a running process, not to the data.
        let filter = if name == collections::MIGRATIONS {
            doc! {"_id": {"$ne": super::migrations::LOCK_ID}}
        } else {
            doc! {}
        };
        let relative = format!("{database}/{}", dump::data_file(name, gzip));
        let mut sink = FileSink::create(dir, relative, gzip)?;
        let mut count = 0u64;
        // Natural order, as mongodump reads: a capped collection keeps its order on restore.
        let mut cursor = self
            .collection::<RawDocumentBuf>(name)
            .find(filter)
            .await
            .map_err(StoreError::from)?;
        while let Some(d) = cursor.try_next().await.map_err(StoreError::from)? {
            sink.write(d.as_bytes())?;
            count += 1;
        }
        Ok((count, sink.finish()?))
    }

    /// Restores a backup: reads it all through and checks it first (see [`verify`]); refuses a
    /// target that holds data in any of its collections unless `drop` is set (which drops them
    /// first); then creates each collection with its options, inserts its documents, creates
    /// its indexes, and finally its views.
    pub async fn restore(&self, from: &Path, drop: bool) -> Result<RestoreReport, BackupError> {
        let plan = verify(from)?;
        let existing = self.collection_specs().await?;
        let mut occupied = Vec::new();
        let mut present = std::collections::HashSet::new();
        for c in &plan.collections {
            let Some(spec) = existing
                .iter()
                .find(|s| s.get_str("name") == Ok(c.name.as_str()))
            else {
                continue;
            };
            present.insert(c.name.clone());
            if spec.get_str("type") == Ok(dump::VIEW) {
                continue;
            }
            let n = self
                .collection::<Document>(&c.name)
                .estimated_document_count()
                .await
                .map_err(StoreError::from)?;
            if n > 0 {
                occupied.push(format!("{} ({n})", c.name));
            }
        }
        if !occupied.is_empty() && !drop {
            return Err(BackupError::Refused(format!(
                "the target database already holds data in {}; restore into an empty database, or \
                 pass --drop to replace those collections; nothing was written",
                occupied.join(", ")
            )));
        }
        let mut report = RestoreReport {
            dir: plan.root.clone(),
            source_database: plan.source_database.clone(),
            checksums: plan.manifest.is_some(),
            collections: plan.collections.len(),
            documents: 0,
            indexes: 0,
            schema_version: 0,
            notes: plan.notes.clone(),
            not_applied: Vec::new(),
        };
        // Empty ones too: they are recreated with the backup's options.
        for name in &present {
            self.collection::<Document>(name)
                .drop()
                .await
                .map_err(StoreError::from)?;
        }
        for c in plan.collections.iter().filter(|c| !c.is_view()) {
            self.create_with_options(c, &mut report).await?;
            report.documents += self.insert_documents(&plan, c).await?;
            for index in &c.metadata.indexes {
                self.create_index(&c.name, index, &mut report).await?;
            }
        }
        // Last: a view reads collections that must exist.
        for c in plan.collections.iter().filter(|c| c.is_view()) {
            self.create_with_options(c, &mut report).await?;
        }
        report.schema_version = self.schema_version().await?;
        if report.schema_version > 0 {
            // A dump of an autovolt database made without some collection or index (mongodump
            // --excludeCollection, say) still gets what the schema needs.
            self.ensure_indexes().await?;
            self.ensure_journal().await?;
        }
        Ok(report)
    }

    /// `create` with the backup's options; where the server refuses an option it does not
    /// have, once more with only the options every server has, and the rest reported.
    async fn create_with_options(
        &self,
        c: &dump::Planned,
        report: &mut RestoreReport,
    ) -> Result<(), BackupError> {
        let mut command = doc! {"create": &c.name};
        command.extend(c.metadata.options.clone());
        let Err(e) = self.database().run_command(command).await else {
            return Ok(());
        };
        let portable: Document = c
            .metadata
            .options
            .iter()
            .filter(|(k, _)| PORTABLE_OPTIONS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if cannot_do(&e) && c.is_view() {
            report
                .not_applied
                .push(format!("view {} not created ({})", c.name, reason(&e)));
            return Ok(());
        }
        if !cannot_do(&e) || portable.len() == c.metadata.options.len() {
            return Err(StoreError::Refused(format!(
                "cannot create {} with the backup's options {}: {e}",
                c.name, c.metadata.options
            ))
            .into());
        }
        let mut command = doc! {"create": &c.name};
        command.extend(portable);
        self.database()
            .run_command(command)
            .await
            .map_err(StoreError::from)?;
        let left_out: Vec<&str> = c
            .metadata
            .options
            .keys()
            .map(String::as_str)
            .filter(|k| !PORTABLE_OPTIONS.contains(k))
            .collect();
        report.not_applied.push(format!(
            "{}: options {} not applied ({})",
            c.name,
            left_out.join(", "),
            reason(&e)
        ));
        Ok(())
    }

    /// Inserts a collection's documents as the backup's bytes, in batches, checking the file
    /// against what was verified.
    async fn insert_documents(&self, plan: &Plan, c: &dump::Planned) -> Result<u64, BackupError> {
        let Some(data) = &c.data else {
            return Ok(0);
        };
        let changed = |reason: String| BackupError::ChangedDuringRestore {
            dir: plan.root.clone(),
            reason,
        };
        let coll = self.collection::<RawDocumentBuf>(&c.name);
        let mut reader = dump::DataReader::open(&plan.root, &data.path).map_err(changed)?;
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        let mut bytes = 0;
        while let Some(d) = reader.next_document().map_err(changed)? {
            bytes += d.as_bytes().len();
            batch.push(d);
            if batch.len() == RESTORE_BATCH || bytes >= RESTORE_BATCH_BYTES {
                coll.insert_many(std::mem::take(&mut batch))
                    .await
                    .map_err(StoreError::from)?;
                bytes = 0;
            }
        }
        if !batch.is_empty() {
            coll.insert_many(batch).await.map_err(StoreError::from)?;
        }
        let (documents, sum) = reader.finish().map_err(changed)?;
        if sum != *data {
            return Err(changed(format!(
                "{} now has SHA-256 {}, it had {} when checked",
                data.path, sum.sha256, data.sha256
            )));
        }
        Ok(documents)
    }

    /// Creates one index as the backup describes it (the `_id` index comes with the collection).
    async fn create_index(
        &self,
        collection: &str,
        index: &Document,
        report: &mut RestoreReport,
    ) -> Result<(), BackupError> {
        let name = index.get_str("name").unwrap_or_default();
        if name == "_id_" {
            return Ok(());
        }
        let mut spec = index.clone();
        // Written by older servers; the server fills in its own.
        spec.remove("ns");
        spec.remove("v");
        let command = doc! {"createIndexes": collection, "indexes": [spec]};
        match self.database().run_command(command).await {
            Ok(_) => {
                report.indexes += 1;
                Ok(())
            }
            Err(e) if cannot_do(&e) => {
                report.not_applied.push(format!(
                    "{collection}: index {name} not created ({})",
                    reason(&e)
                ));
                Ok(())
            }
            Err(e) => Err(StoreError::Conflict(format!(
                "cannot create index {name} on {collection}: {e}"
            ))
            .into()),
        }
    }
}

/// The server does not have what was asked (as opposed to: what was asked is wrong).
fn cannot_do(e: &mongodb::error::Error) -> bool {
    matches!(
        super::error::error_code(e),
        Some(NOT_IMPLEMENTED | INVALID_OPTIONS)
    )
}

fn reason(e: &mongodb::error::Error) -> String {
    match &*e.kind {
        mongodb::error::ErrorKind::Command(c) => {
            format!("the server cannot: {} (code {})", c.message, c.code)
        }
        _ => format!("the server cannot: {e}"),
    }
}

/// The backups `--keep` made in `dir`: named for their time and holding a manifest.
fn backups_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir() && e.path().join(MANIFEST).is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| rotation::parse_name(n).is_some())
        .collect()
}

/// Removes what a failed backup wrote into a directory that was new or empty before it.
fn discard_contents(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}
