//! The change journal (`changejournal`, **Ours**): a capped collection that every writer of this
//! project appends its ledger rows and activity entries to, where the server has no change
//! streams. A dashboard follows the ledger and the activity log through it: a read costs what the
//! cap holds (a few thousand small documents), never what the history holds, which on a server
//! that scans whole collections for every range (FerretDB) is the difference between milliseconds
//! and minutes.
//!
//! Each entry's `_id` is derived from the document's own key (a ledger row's unique key, an
//! activity entry's `_id`), so a retried batch appends nothing twice; readers recognise entries
//! they have seen by that `_id`. Where the server has change streams the journal is not written:
//! the stream carries the documents themselves.

use super::{collections, Store, StoreError};
use crate::domain::{dates, ActivityLog, Instant, LedgerRow};
use bson::{doc, Document};
use futures::TryStreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The journal's collection.
pub const JOURNAL: &str = "changejournal";
/// At most this many entries are kept (the oldest go first).
pub const JOURNAL_MAX_ENTRIES: i64 = 2_000;
/// At most this many bytes are kept.
pub const JOURNAL_MAX_BYTES: i64 = 4 * 1024 * 1024;
/// How long a writer trusts "the journal does not exist" before looking again.
const ABSENT_RECHECK: Duration = Duration::from_secs(60);

/// One entry as read back: which collection, the document, when it was appended.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub id: String,
    pub collection: String,
    pub at: Instant,
    pub document: Document,
}

/// Whether this connection's writers append to the journal, as last found out.
#[derive(Debug, Default)]
pub(crate) struct JournalState {
    present: Option<(bool, std::time::Instant)>,
}

pub(crate) type SharedJournalState = Arc<Mutex<JournalState>>;

/// The journal key of a ledger row: its unique key.
fn ledger_key(row: &LedgerRow) -> String {
    format!(
        "ledger:{}:{}:{}",
        row.device_id,
        row.switch_id,
        row.start_ts.timestamp_millis()
    )
}

fn activity_key(entry: &ActivityLog) -> Option<String> {
    entry.id.map(|id| format!("activity:{}", id.to_hex()))
}

impl Store {
    /// Creates the capped journal if it is missing (migration 3). Returns whether it was created.
    pub async fn ensure_journal(&self) -> Result<bool, StoreError> {
        if self.journal_exists().await? {
            return Ok(false);
        }
        let created = self
            .database()
            .create_collection(JOURNAL)
            .capped(true)
            .size(JOURNAL_MAX_BYTES as u64)
            .max(JOURNAL_MAX_ENTRIES as u64)
            .await;
        match created {
            Ok(()) => {}
            // Created meanwhile by another writer: that is what we wanted.
            Err(e) if super::error::error_code(&e) == Some(super::migrations::NAMESPACE_EXISTS) => {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        }
        self.journal_state()
            .lock()
            .map(|mut s| s.present = Some((true, std::time::Instant::now())))
            .ok();
        Ok(true)
    }

    /// Drops the journal (migration 3 down).
    pub async fn drop_journal(&self) -> Result<(), StoreError> {
        self.collection::<Document>(JOURNAL).drop().await?;
        self.journal_state()
            .lock()
            .map(|mut s| s.present = None)
            .ok();
        Ok(())
    }

    async fn journal_exists(&self) -> Result<bool, StoreError> {
        let names = self
            .database()
            .list_collection_names()
            .filter(doc! {"name": JOURNAL})
            .await?;
        Ok(!names.is_empty())
    }

    /// Whether writers append to the journal: only where there are no change streams, and only once
    /// it exists (an insert would otherwise create an ordinary, unbounded collection).
    pub async fn journal_in_use(&self) -> Result<bool, StoreError> {
        if self.capabilities().change_streams {
            return Ok(false);
        }
        let known = self.journal_state().lock().ok().and_then(|s| s.present);
        if let Some((present, at)) = known {
            if present || at.elapsed() < ABSENT_RECHECK {
                return Ok(present);
            }
        }
        let present = self.journal_exists().await?;
        if let Ok(mut s) = self.journal_state().lock() {
            s.present = Some((present, std::time::Instant::now()));
        }
        Ok(present)
    }

    /// Appends ledger rows (each once: an entry already there is not repeated).
    pub(crate) async fn journal_ledger_rows(&self, rows: &[LedgerRow]) -> Result<(), StoreError> {
        let entries = rows
            .iter()
            .map(|r| Ok((ledger_key(r), bson::to_document(r)?)))
            .collect::<Result<Vec<_>, bson::ser::Error>>()
            .map_err(|e| StoreError::Decode(e.to_string()))?;
        self.journal(collections::LEDGER, entries).await
    }

    /// Appends activity entries (with their `_id`s; each once).
    pub(crate) async fn journal_activity(&self, entries: &[ActivityLog]) -> Result<(), StoreError> {
        let mut docs = Vec::with_capacity(entries.len());
        for e in entries {
            let Some(key) = activity_key(e) else { continue };
            docs.push((
                key,
                bson::to_document(e).map_err(|e| StoreError::Decode(e.to_string()))?,
            ));
        }
        self.journal(collections::ACTIVITY, docs).await
    }

    async fn journal(
        &self,
        collection: &str,
        docs: Vec<(String, Document)>,
    ) -> Result<(), StoreError> {
        if docs.is_empty() || !self.journal_in_use().await? {
            return Ok(());
        }
        let at = bson::DateTime::from_chrono(dates::now_millis());
        let entries: Vec<Document> = docs
            .into_iter()
            .map(|(id, d)| doc! {"_id": id, "at": at, "coll": collection, "doc": d})
            .collect();
        super::error::only_duplicates(
            self.collection::<Document>(JOURNAL)
                .insert_many(entries)
                .ordered(false)
                .await,
        )
    }

    /// The entries appended at or after `since` (oldest first). What it costs is bounded by the cap.
    pub async fn journal_since(&self, since: Instant) -> Result<Vec<JournalEntry>, StoreError> {
        let docs: Vec<Document> = self
            .collection::<Document>(JOURNAL)
            .find(doc! {"at": {"$gte": bson::DateTime::from_chrono(since)}})
            .await?
            .try_collect()
            .await?;
        let mut out: Vec<JournalEntry> = docs
            .into_iter()
            .filter_map(|mut d| {
                let id = d.get_str("_id").ok()?.to_string();
                let at = d.get_datetime("at").ok()?.to_chrono();
                let collection = d.get_str("coll").ok()?.to_string();
                let document = match d.remove("doc") {
                    Some(bson::Bson::Document(doc)) => doc,
                    _ => return None,
                };
                Some(JournalEntry {
                    id,
                    collection,
                    at,
                    document,
                })
            })
            .collect();
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The newest activity entries (newest first, at most `limit`) at a cost that does not grow
    /// with the log: from the journal where it is in use, else by the `(timestamp, _id)` index.
    pub async fn latest_activity(&self, limit: usize) -> Result<Vec<ActivityLog>, StoreError> {
        if !self.journal_in_use().await? {
            return Ok(self
                .recent_activity(limit, None, &super::ActivityFilter::default())
                .await?
                .rows);
        }
        let mut entries: Vec<ActivityLog> = self
            .journal_since(chrono::DateTime::<chrono::Utc>::MIN_UTC)
            .await?
            .into_iter()
            .filter(|e| e.collection == collections::ACTIVITY)
            .filter_map(|e| self.decode(collections::ACTIVITY, e.document))
            .collect();
        entries.sort_by(|a: &ActivityLog, b| b.timestamp.cmp(&a.timestamp).then(b.id.cmp(&a.id)));
        entries.truncate(limit);
        Ok(entries)
    }
}
