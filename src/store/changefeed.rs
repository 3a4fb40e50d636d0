//! The change feed the live view follows: what changed, in which collection, when. From a MongoDB
//! change stream where the server has them, else by polling each collection on `updatedAt`; the
//! same events either way. It outlives server outages: it reports an error event and retries
//! with backoff, then reports that it recovered.

use super::{Store, StoreError};
use crate::domain::{dates, Instant};
use bson::{doc, Bson, Document};
use futures::{StreamExt, TryStreamExt};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
    Unknown,
}

/// One change of one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub collection: String,
    pub kind: ChangeKind,
    /// The document's `_id`: hex for an ObjectId, else its text.
    pub id: String,
    /// When it changed (the server's time on a stream, the document's `updatedAt` when polling).
    pub at: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Change(Change),
    /// The server failed; the feed keeps retrying (the message says when).
    Error(String),
    /// The server answers again after an error.
    Recovered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMode {
    Stream,
    Polling,
}

#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// How often polling reads each collection.
    pub period: Duration,
    /// The longest wait between retries after errors (they start at `period` and double).
    pub max_backoff: Duration,
    /// Poll even where change streams exist.
    pub force_polling: bool,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            period: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            force_polling: false,
        }
    }
}

/// How far back each poll looks again, so that a write whose `updatedAt` is slightly older than
/// one already seen (clocks of different writers, same millisecond) is not missed. Events
/// already sent are recognised by `(_id, updatedAt)` and not repeated.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(2);
/// Documents read per collection per poll.
const POLL_BATCH: i64 = 1000;

/// A running feed; dropping it stops it.
pub struct ChangeFeed {
    rx: mpsc::Receiver<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
    mode: FeedMode,
}

impl ChangeFeed {
    /// The next event; `None` only if the feed stopped.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        self.rx.recv().await
    }

    pub fn mode(&self) -> FeedMode {
        self.mode
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Store {
    /// Follows `collections` from now on (a change in the very millisecond the feed starts may be
    /// reported too: at least once rather than missed).
    pub fn follow(&self, collections: &[&str], options: FeedOptions) -> ChangeFeed {
        let (tx, rx) = mpsc::channel(1024);
        let names: Vec<String> = collections.iter().map(|c| c.to_string()).collect();
        let store = self.clone();
        let mode = if self.capabilities().change_streams && !options.force_polling {
            FeedMode::Stream
        } else {
            FeedMode::Polling
        };
        let task = match mode {
            FeedMode::Stream => tokio::spawn(stream_loop(store, names, options, tx)),
            FeedMode::Polling => tokio::spawn(poll_loop(store, names, options, tx)),
        };
        ChangeFeed { rx, task, mode }
    }
}

/// Text of a document id for the UI.
fn id_text(id: &Bson) -> String {
    match id {
        Bson::ObjectId(o) => o.to_hex(),
        Bson::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Tracks failures: the first error of a run is reported, and so is the recovery.
struct Backoff {
    failing: bool,
    wait: Duration,
    period: Duration,
    max: Duration,
}

impl Backoff {
    fn new(o: &FeedOptions) -> Self {
        Backoff {
            failing: false,
            wait: o.period,
            period: o.period,
            max: o.max_backoff,
        }
    }

    /// Reports the error and waits; false when the receiver is gone.
    async fn failed(&mut self, tx: &mpsc::Sender<FeedEvent>, e: &StoreError) -> bool {
        self.failing = true;
        let msg = format!("{e}; retrying in {} s", self.wait.as_secs_f64());
        if tx.send(FeedEvent::Error(msg)).await.is_err() {
            return false;
        }
        tokio::time::sleep(self.wait).await;
        self.wait = (self.wait * 2).min(self.max);
        true
    }

    /// Reports a recovery after errors; false when the receiver is gone.
    async fn succeeded(&mut self, tx: &mpsc::Sender<FeedEvent>) -> bool {
        self.wait = self.period;
        if std::mem::take(&mut self.failing) {
            return tx.send(FeedEvent::Recovered).await.is_ok();
        }
        true
    }
}

/// What one collection's poller has seen.
struct Follower {
    name: String,
    /// The newest `updatedAt` seen.
    high: Instant,
    /// Changes before this instant happened before the feed started: not reported.
    start: Instant,
    /// `(_id, updatedAt ms)` of changes already reported within the overlap window.
    seen: HashSet<(String, i64)>,
}

impl Follower {
    /// Reads the window from `high − OVERLAP` on, in `(updatedAt, _id)` keyset pages so that a
    /// burst larger than one page is read to its end, and returns what was not reported yet.
    async fn poll(&mut self, store: &Store) -> Result<Vec<Change>, StoreError> {
        let since = bson::DateTime::from_chrono(self.high - OVERLAP);
        let mut after: Option<(bson::DateTime, Bson)> = None;
        let mut changes = Vec::new();
        loop {
            let filter = match &after {
                None => doc! {"updatedAt": {"$gte": since}},
                Some((t, id)) => doc! {"$or": [
                    {"updatedAt": {"$gt": *t}},
                    {"updatedAt": *t, "_id": {"$gt": id.clone()}},
                ]},
            };
            let docs: Vec<Document> = store
                .collection::<Document>(&self.name)
                .find(filter)
                .sort(doc! {"updatedAt": 1, "_id": 1})
                .limit(POLL_BATCH)
                .await?
                .try_collect()
                .await?;
            let full = docs.len() as i64 == POLL_BATCH;
            for d in docs {
                let (Some(id), Ok(updated)) = (d.get("_id"), d.get_datetime("updatedAt")) else {
                    continue;
                };
                after = Some((*updated, id.clone()));
                if let Some(c) = self.note(&d, id, *updated) {
                    changes.push(c);
                }
            }
            if !full {
                break;
            }
        }
        let floor = (self.high - OVERLAP).timestamp_millis();
        self.seen.retain(|k| k.1 >= floor);
        Ok(changes)
    }

    /// Records a document version; the change to report if it is new and after the start.
    fn note(&mut self, d: &Document, id: &Bson, updated: bson::DateTime) -> Option<Change> {
        let key = (id_text(id), updated.timestamp_millis());
        if !self.seen.insert(key.clone()) {
            return None;
        }
        let at = updated.to_chrono();
        self.high = self.high.max(at);
        if at < self.start {
            return None;
        }
        let kind = match d.get_datetime("createdAt") {
            Ok(c) if *c == updated => ChangeKind::Insert,
            Ok(_) => ChangeKind::Update,
            Err(_) => ChangeKind::Unknown,
        };
        Some(Change {
            collection: self.name.clone(),
            kind,
            id: key.0,
            at,
        })
    }
}

async fn poll_loop(
    store: Store,
    names: Vec<String>,
    options: FeedOptions,
    tx: mpsc::Sender<FeedEvent>,
) {
    let start = dates::now_millis();
    let mut followers: Vec<Follower> = names
        .into_iter()
        .map(|name| Follower {
            name,
            high: start,
            start,
            seen: HashSet::new(),
        })
        .collect();
    let mut backoff = Backoff::new(&options);
    loop {
        let mut result = Ok(());
        for f in &mut followers {
            match f.poll(&store).await {
                Ok(changes) => {
                    for c in changes {
                        if tx.send(FeedEvent::Change(c)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        match result {
            Ok(()) => {
                if !backoff.succeeded(&tx).await {
                    return;
                }
                tokio::time::sleep(options.period).await;
            }
            Err(e) => {
                if !backoff.failed(&tx, &e).await {
                    return;
                }
            }
        }
    }
}

fn stream_change(e: &ChangeStreamEvent<Document>) -> Option<Change> {
    let collection = e.ns.as_ref()?.coll.clone()?;
    let kind = match e.operation_type {
        OperationType::Insert => ChangeKind::Insert,
        OperationType::Update | OperationType::Replace => ChangeKind::Update,
        OperationType::Delete => ChangeKind::Delete,
        _ => ChangeKind::Unknown,
    };
    let id = e
        .document_key
        .as_ref()
        .and_then(|k| k.get("_id"))
        .map(id_text)
        .unwrap_or_default();
    let at = e
        .wall_time
        .map(|t| t.to_chrono())
        .unwrap_or_else(dates::now_millis);
    Some(Change {
        collection,
        kind,
        id,
        at,
    })
}

async fn stream_loop(
    store: Store,
    names: Vec<String>,
    options: FeedOptions,
    tx: mpsc::Sender<FeedEvent>,
) {
    let mut backoff = Backoff::new(&options);
    let mut resume: Option<ResumeToken> = None;
    let pipeline = [doc! {"$match": {"ns.coll": {"$in": names.clone()}}}];
    loop {
        let mut watch = store.database().watch().pipeline(pipeline.clone());
        if let Some(token) = resume.clone() {
            watch = watch.start_after(token);
        }
        let mut stream = match watch.await {
            Ok(s) => s,
            Err(e) => {
                if !backoff.failed(&tx, &e.into()).await {
                    return;
                }
                continue;
            }
        };
        if !backoff.succeeded(&tx).await {
            return;
        }
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    resume = stream.resume_token().or(resume);
                    if let Some(c) = stream_change(&event) {
                        if tx.send(FeedEvent::Change(c)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    resume = stream.resume_token().or(resume);
                    if !backoff.failed(&tx, &e.into()).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}
