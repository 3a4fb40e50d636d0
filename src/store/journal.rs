//! The change journal (`changejournal`, **Ours**): a capped collection that every writer of this
//! project appends its ledger rows and activity entries to, where the server has no change
//! streams. A dashboard follows the ledger and the activity log through it at a cost that grows
//! only with what is new: a server that answers every query but an `_id` lookup by reading the
//! whole collection (FerretDB) would otherwise read the history, or the whole journal, each round.
//!
//! Writers append in numbered chunks, `_id` the number as text: inserting the chunk claims its
//! number (a writer that finds it taken tries the next), and the head (`changejournalhead`, one
//! document `_id: "head"`) tells where the numbers are, a hint that may lag a little. A reader
//! looks up the chunks after the last it read by `_id`: while nothing is new, that lookup and one
//! of the head. A chunk written and gone before it was read (the cap dropped it) is reported as
//! a gap.
//!
//! A retried batch is appended again; readers recognise an entry they have seen by its key (a
//! ledger row's unique key, an activity entry's `_id`). Where the server has change streams the
//! journal is not written: the stream carries the documents themselves.

use super::{collections, Store, StoreError};
use crate::domain::{dates, ActivityLog, Instant, LedgerRow};
use bson::{doc, Document};
use futures::TryStreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The journal's collection.
pub const JOURNAL: &str = "changejournal";
/// The collection of the journal's head: the last chunk number given out.
pub const JOURNAL_HEAD: &str = "changejournalhead";
/// At most this many chunks are kept (the oldest go first).
pub const JOURNAL_MAX_ENTRIES: i64 = 2_000;
/// At most this many entries go in one chunk.
const CHUNK_ENTRIES: usize = 100;
/// At most this many bytes are kept.
pub const JOURNAL_MAX_BYTES: i64 = 4 * 1024 * 1024;
/// How long a writer trusts "the journal does not exist" before looking again.
const ABSENT_RECHECK: Duration = Duration::from_secs(60);

/// One entry as read back: its key, which collection, the document, when it was appended.
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

    /// Drops the journal and its head (migration 3 down).
    pub async fn drop_journal(&self) -> Result<(), StoreError> {
        self.collection::<Document>(JOURNAL).drop().await?;
        self.collection::<Document>(JOURNAL_HEAD).drop().await?;
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
        let journal = self.collection::<Document>(JOURNAL);
        let mut last = self.head_or_restore().await?;
        for chunk in docs.chunks(CHUNK_ENTRIES) {
            let entries: Vec<Document> = chunk
                .iter()
                .map(|(key, d)| doc! {"k": key, "coll": collection, "doc": d})
                .collect();
            // The insert claims the number: `_id` is unique, where a counter's read and write
            // need not be one step (FerretDB). A number taken meanwhile by another writer is
            // passed to the next; the numbers stay without holes.
            let mut tries = 0;
            loop {
                let seq = last + 1;
                let chunk =
                    doc! {"_id": seq.to_string(), "seq": seq, "at": at, "entries": &entries};
                match journal.insert_one(chunk).await {
                    Ok(_) => {
                        last = seq;
                        break;
                    }
                    Err(e) if super::error::is_duplicate_key(&e) && tries < 1_000 => {
                        tries += 1;
                        last = seq;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        // A hint for readers and writers: the head may lag (two writers' `$max` crossing), never
        // lead.
        self.collection::<Document>(JOURNAL_HEAD)
            .update_one(doc! {"_id": "head"}, doc! {"$max": {"seq": last}})
            .upsert(true)
            .await
            .map(|_| ())
            .or_else(|e| {
                if super::error::is_duplicate_key(&e) {
                    Ok(())
                } else {
                    Err(e.into())
                }
            })
    }

    /// The head, made again first where it is missing.
    async fn head_or_restore(&self) -> Result<i64, StoreError> {
        match self
            .collection::<Document>(JOURNAL_HEAD)
            .find_one(doc! {"_id": "head"})
            .await?
            .as_ref()
            .and_then(head_number)
        {
            Some(n) => Ok(n),
            None => self.restore_head().await,
        }
    }

    /// Makes the head again where it is missing (a new journal, or one restored without it): at
    /// the highest chunk number the journal holds, so that numbers go on from there. Reads the
    /// journal whole, which only a missing head makes anyone do.
    async fn restore_head(&self) -> Result<i64, StoreError> {
        let chunks: Vec<Document> = self
            .collection::<Document>(JOURNAL)
            .find(doc! {})
            .projection(doc! {"seq": 1})
            .await?
            .try_collect()
            .await?;
        let highest = chunks.iter().filter_map(head_number).max().unwrap_or(0);
        let made = self
            .collection::<Document>(JOURNAL_HEAD)
            .update_one(doc! {"_id": "head"}, doc! {"$max": {"seq": highest}})
            .upsert(true)
            .await;
        match made {
            Ok(_) => Ok(highest),
            // Another writer made it meanwhile.
            Err(e) if super::error::is_duplicate_key(&e) => Ok(highest),
            Err(e) => Err(e.into()),
        }
    }

    /// The head: the last chunk number written, or a little less (0 before the first).
    pub async fn journal_head(&self) -> Result<i64, StoreError> {
        Ok(self
            .collection::<Document>(JOURNAL_HEAD)
            .find_one(doc! {"_id": "head"})
            .await?
            .as_ref()
            .and_then(head_number)
            .unwrap_or(0))
    }

    /// The entries of chunk `seq`, or `None` where there is no such chunk (not written yet, or
    /// dropped by the cap).
    pub async fn journal_chunk(&self, seq: i64) -> Result<Option<Vec<JournalEntry>>, StoreError> {
        Ok(self
            .collection::<Document>(JOURNAL)
            .find_one(doc! {"_id": seq.to_string()})
            .await?
            .map(chunk_entries))
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
        // Read whole: what the cap holds, only when a dashboard starts or after a gap.
        let chunks: Vec<Document> = self
            .collection::<Document>(JOURNAL)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        let mut entries: Vec<ActivityLog> = chunks
            .into_iter()
            .flat_map(chunk_entries)
            .filter(|e| e.collection == collections::ACTIVITY)
            .filter_map(|e| self.decode(collections::ACTIVITY, e.document))
            .collect();
        entries.sort_by(|a: &ActivityLog, b| b.timestamp.cmp(&a.timestamp).then(b.id.cmp(&a.id)));
        entries.truncate(limit);
        Ok(entries)
    }
}

fn head_number(d: &Document) -> Option<i64> {
    match d.get("seq")? {
        bson::Bson::Int64(n) => Some(*n),
        bson::Bson::Int32(n) => Some(i64::from(*n)),
        _ => None,
    }
}

/// A chunk's entries; what cannot be read is left out (an entry an older writer shaped
/// differently has nothing a reader could show).
fn chunk_entries(mut chunk: Document) -> Vec<JournalEntry> {
    let Ok(at) = chunk.get_datetime("at").map(|a| a.to_chrono()) else {
        return Vec::new();
    };
    let Some(bson::Bson::Array(entries)) = chunk.remove("entries") else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|e| {
            let bson::Bson::Document(mut e) = e else {
                return None;
            };
            let id = e.get_str("k").ok()?.to_string();
            let collection = e.get_str("coll").ok()?.to_string();
            let document = match e.remove("doc") {
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
        .collect()
}
