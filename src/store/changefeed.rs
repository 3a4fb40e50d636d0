//! The change feed the live view follows: what changed, in which collection, when, and the document
//! as it is now. From a MongoDB change stream where the server has them (the document comes with
//! the event), else by polling: the small collections on `updatedAt`, and the ledger and the
//! activity log through the change journal (`journal.rs`), whose reads cost what its cap holds. A
//! growing collection is never range-read on this path. The same events either way. It outlives
//! server outages: it reports an error event and retries with backoff, then reports that it
//! recovered.
//!
//! Polling paces itself: a round waits at least `cost_factor` times as long as a round costs (the
//! fastest of the last few: what the server spends on one when nothing else competes, so that
//! rounds slowed by a passing load do not stall the feed, while a server that is slow throughout
//! stretches the period), so that following costs the server a bounded share of its time however
//! slow its reads are.

use super::{collections, Store, StoreError};
use crate::domain::PowerSettings;
use crate::domain::{dates, ActivityLog, Classroom, CostVersion, Device, Instant, LedgerRow};
use crate::retry::Backoff;
use bson::{doc, Bson, Document};
use futures::{StreamExt, TryStreamExt};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType, ResumeToken};
use mongodb::options::FullDocumentType;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// When it changed (the server's time on a stream, the document's `updatedAt` when polling,
    /// the append time for what comes through the journal).
    pub at: Instant,
    /// The document as it is after the change (`None` for a delete).
    pub document: Option<Document>,
}

/// A change in the domain's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Device(Box<Device>),
    Classroom(Classroom),
    CostVersion(CostVersion),
    PowerSettings(PowerSettings),
    LedgerRow(Box<LedgerRow>),
    Activity(Box<ActivityLog>),
    /// The document is gone.
    Deleted,
    /// A collection this feed does not type.
    Other,
    /// The document does not read as its collection's type (another writer's shape): why.
    Unreadable(String),
}

impl Change {
    /// What the changed document is, read as its collection's type by `store`'s readers (one that
    /// does not read is counted there, as every reader's are).
    pub fn record(&self, store: &Store) -> Record {
        let Some(d) = &self.document else {
            return if self.kind == ChangeKind::Delete {
                Record::Deleted
            } else {
                Record::Other
            };
        };
        fn read<T: serde::de::DeserializeOwned>(
            store: &Store,
            collection: &str,
            d: &Document,
        ) -> Result<T, String> {
            store
                .decode_reporting(collection, d.clone())
                .map_err(|u| u.reason())
        }
        let c = self.collection.as_str();
        let record = match self.collection.as_str() {
            collections::DEVICES => read(store, c, d).map(|v| Record::Device(Box::new(v))),
            collections::CLASSROOMS => read(store, c, d).map(Record::Classroom),
            collections::COST_VERSIONS => read(store, c, d).map(Record::CostVersion),
            collections::POWER_SETTINGS => read(store, c, d).map(Record::PowerSettings),
            collections::LEDGER => read(store, c, d).map(|v| Record::LedgerRow(Box::new(v))),
            collections::ACTIVITY => read(store, c, d).map(|v| Record::Activity(Box::new(v))),
            _ => Ok(Record::Other),
        };
        record.unwrap_or_else(Record::Unreadable)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    Change(Change),
    /// The server failed; the feed keeps retrying (the message says when).
    Error(String),
    /// The server answers again after an error.
    Recovered,
    /// Changes may have been missed (more were journaled between two reads than the journal
    /// keeps): what depends on them should be read again.
    Gap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMode {
    Stream,
    Polling,
}

#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// The shortest time between two polling rounds.
    pub period: Duration,
    /// A polling round waits at least this many times as long as it took.
    pub cost_factor: u32,
    /// The longest wait between retries after errors (they start at `period` and double).
    pub max_backoff: Duration,
    /// Poll even where change streams exist.
    pub force_polling: bool,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            period: Duration::from_secs(1),
            // Five dashboards polling one server then cost it at most 5 % of its time.
            cost_factor: 100,
            max_backoff: Duration::from_secs(30),
            force_polling: false,
        }
    }
}

/// How far back each poll looks again, so that a write whose `updatedAt` is slightly older than
/// one already seen (clocks of different writers, same millisecond) is not missed. Events
/// already sent are recognised and not repeated.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(2);
/// A collection (or the journal's head) in which nothing changed for this many rounds in a row is
/// read again only every this many rounds, so that an idle dashboard's round is a lookup or two
/// (a change is then seen within this many rounds; the collection is read every round again after
/// it changed). A feed in which everything is that quiet waits twice its period between rounds,
/// until something changes.
const QUIET_ROUNDS: u32 = 4;
/// Documents read per collection per poll.
const POLL_BATCH: i64 = 1000;
/// Collections that reach a polling feed through the journal, never by reading them.
const JOURNALED: &[&str] = &[collections::LEDGER, collections::ACTIVITY];

/// A running feed; dropping it stops it.
pub struct ChangeFeed {
    rx: mpsc::Receiver<FeedEvent>,
    task: tokio::task::JoinHandle<()>,
    mode: FeedMode,
    period_ms: Arc<AtomicU64>,
}

impl ChangeFeed {
    /// The next event; `None` only if the feed stopped.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        self.rx.recv().await
    }

    pub fn mode(&self) -> FeedMode {
        self.mode
    }

    /// The time between polling rounds now (it stretches with what a round costs); `None` on a
    /// stream or before the first round.
    pub fn poll_period(&self) -> Option<Duration> {
        match self.period_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Store {
    /// Follows `collections` from now on (a change in the very millisecond the feed starts may be
    /// reported too: at least once rather than missed). When polling, the ledger and the activity
    /// log are followed through the change journal, and only while it exists.
    pub fn follow(&self, collections: &[&str], options: FeedOptions) -> ChangeFeed {
        let (tx, rx) = mpsc::channel(1024);
        let names: Vec<String> = collections.iter().map(|c| c.to_string()).collect();
        let store = self.clone();
        let period_ms = Arc::new(AtomicU64::new(0));
        let mode = if self.capabilities().change_streams && !options.force_polling {
            FeedMode::Stream
        } else {
            FeedMode::Polling
        };
        let task = match mode {
            FeedMode::Stream => tokio::spawn(stream_loop(store, names, options, tx)),
            FeedMode::Polling => {
                tokio::spawn(poll_loop(store, names, options, tx, period_ms.clone()))
            }
        };
        ChangeFeed {
            rx,
            task,
            mode,
            period_ms,
        }
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

/// Tracks failures: each error is reported with the wait before the next attempt (from the
/// feed's period, doubling to its `max_backoff`), and so is the recovery.
struct Failures {
    failing: bool,
    waits: Backoff,
}

impl Failures {
    fn new(o: &FeedOptions) -> Self {
        Failures {
            failing: false,
            waits: Backoff::new(o.period, o.max_backoff.max(o.period)),
        }
    }

    /// Reports the error and waits; false when the receiver is gone.
    async fn failed(&mut self, tx: &mpsc::Sender<FeedEvent>, e: &StoreError) -> bool {
        self.failing = true;
        let wait = self.waits.next_wait();
        let msg = format!("{e}; retrying in {} s", wait.as_secs_f64());
        if tx.send(FeedEvent::Error(msg)).await.is_err() {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }

    /// Reports a recovery after errors; false when the receiver is gone.
    async fn succeeded(&mut self, tx: &mpsc::Sender<FeedEvent>) -> bool {
        if std::mem::take(&mut self.failing) {
            // Waits lengthen only while failing: nothing to start over on an ordinary round.
            self.waits.reset();
            return tx.send(FeedEvent::Recovered).await.is_ok();
        }
        true
    }
}

/// What one small collection's poller has seen.
struct Follower {
    name: String,
    /// The newest `updatedAt` seen.
    high: Instant,
    /// Changes before this instant happened before the feed started: not reported.
    start: Instant,
    /// `(_id, updatedAt ms)` of changes already reported within the overlap window.
    seen: HashSet<(String, i64)>,
    /// Rounds in a row that found nothing (read or passed over).
    quiet: u32,
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
                let (Some(id), Ok(updated)) = (d.get("_id").cloned(), d.get_datetime("updatedAt"))
                else {
                    continue;
                };
                let updated = *updated;
                after = Some((updated, id.clone()));
                if let Some(c) = self.note(d, &id, updated) {
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
    fn note(&mut self, d: Document, id: &Bson, updated: bson::DateTime) -> Option<Change> {
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
            document: Some(d),
        })
    }
}

/// Entry keys a reader remembers, to recognise an entry appended again by a retried batch.
const REMEMBERED_KEYS: usize = 8_192;
/// Chunks looked up at once.
const CHUNKS_AT_ONCE: i64 = 16;

/// What the journal's reader has read.
struct JournalFollower {
    /// The journaled collections followed.
    names: HashSet<String>,
    /// The next chunk number to read; `None` before the first round.
    next: Option<i64>,
    /// Rounds in a row that found nothing new.
    quiet: u32,
    /// The latest entry keys reported, oldest first.
    seen: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

impl JournalFollower {
    fn new(names: Vec<String>) -> Self {
        JournalFollower {
            names: names.into_iter().collect(),
            next: None,
            quiet: 0,
            seen: HashSet::new(),
            order: std::collections::VecDeque::new(),
        }
    }

    /// The entries appended since the last read; and whether some may have been missed. While
    /// nothing is new: a lookup of the next chunk, and every few rounds one of the head.
    async fn poll(&mut self, store: &Store) -> Result<(Vec<Change>, bool), StoreError> {
        let Some(mut next) = self.next else {
            // What is appended from now on: past the head, and past any chunk the head lags.
            let mut next = store.journal_head().await? + 1;
            while store.journal_chunk(next).await?.is_some() {
                next += 1;
            }
            self.next = Some(next);
            return Ok((Vec::new(), false));
        };
        let mut changes = Vec::new();
        let mut read_any = false;
        // The next chunk alone first (while nothing is new, that one lookup is the round), then
        // the following ones a few at once.
        let mut at_once = 1;
        loop {
            let chunks = futures::future::try_join_all(
                (next..next + at_once).map(|seq| store.journal_chunk(seq)),
            )
            .await?;
            let present = chunks.iter().take_while(|c| c.is_some()).count() as i64;
            for entries in chunks.into_iter().map_while(|c| c) {
                read_any = true;
                for e in entries {
                    if !self.remember(&e.id) || !self.names.contains(&e.collection) {
                        continue;
                    }
                    let id = e.document.get("_id").map(id_text).unwrap_or(e.id);
                    changes.push(Change {
                        collection: e.collection,
                        kind: ChangeKind::Insert,
                        id,
                        at: e.at,
                        document: Some(e.document),
                    });
                }
            }
            next += present;
            if present < at_once {
                break;
            }
            at_once = CHUNKS_AT_ONCE;
        }
        self.next = Some(next);
        if read_any {
            self.quiet = 0;
            return Ok((changes, false));
        }
        self.quiet += 1;
        if self.quiet % QUIET_ROUNDS != 1 {
            return Ok((changes, false));
        }
        // Nothing new at `next` (on the first quiet round and every few after): is the journal
        // still the one read so far?
        let head = store.journal_head().await?;
        if head >= next && store.journal_chunk(next).await?.is_none() {
            // Written (the head says so, and it does not lead), and gone before it was read:
            // the cap dropped it. (Looked up again: it may have been written since.)
            self.next = Some(head + 1);
            return Ok((changes, true));
        }
        if head + 1 < next && next > 1 && store.journal_chunk(next - 1).await?.is_none() {
            // The last chunk read is gone and the head is behind it: the journal was made again
            // (a restore, a migration down and up). From its start.
            self.next = Some(1);
            return Ok((changes, true));
        }
        Ok((changes, false))
    }

    /// Notes an entry's key; false when it was reported already.
    fn remember(&mut self, key: &str) -> bool {
        if !self.seen.insert(key.to_string()) {
            return false;
        }
        self.order.push_back(key.to_string());
        if self.order.len() > REMEMBERED_KEYS {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

async fn poll_loop(
    store: Store,
    names: Vec<String>,
    options: FeedOptions,
    tx: mpsc::Sender<FeedEvent>,
    period_ms: Arc<AtomicU64>,
) {
    let start = dates::now_millis();
    let (journaled, polled): (Vec<String>, Vec<String>) = names
        .into_iter()
        .partition(|n| JOURNALED.contains(&n.as_str()));
    let mut followers: Vec<Follower> = polled
        .into_iter()
        .map(|name| Follower {
            name,
            high: start,
            start,
            seen: HashSet::new(),
            quiet: 0,
        })
        .collect();
    let mut journal = (!journaled.is_empty()).then(|| JournalFollower::new(journaled));
    let mut failures = Failures::new(&options);
    let mut pace = Pace::default();
    loop {
        let began = std::time::Instant::now();
        let result = poll_round(&store, &mut followers, journal.as_mut(), &tx).await;
        match result {
            Ok(true) => {
                if !failures.succeeded(&tx).await {
                    return;
                }
                pace.took(began.elapsed());
                let idle = followers.iter().all(|f| f.quiet >= QUIET_ROUNDS)
                    && journal.as_ref().is_none_or(|j| j.quiet >= QUIET_ROUNDS);
                let period = if idle {
                    options.period * 2
                } else {
                    options.period
                };
                let wait = pace.next_wait(period, options.cost_factor);
                period_ms.store(wait.as_millis().max(1) as u64, Ordering::Relaxed);
                tokio::time::sleep(wait).await;
            }
            Ok(false) => return,
            Err(e) => {
                if !failures.failed(&tx, &e).await {
                    return;
                }
            }
        }
    }
}

/// What polling rounds have taken lately, and the wait before the next.
#[derive(Default)]
struct Pace {
    recent: std::collections::VecDeque<Duration>,
    last_wait: Duration,
}

impl Pace {
    /// Rounds the cost is the fastest of.
    const WINDOW: usize = 9;

    fn took(&mut self, d: Duration) {
        if self.recent.len() == Self::WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(d);
    }

    /// The fastest of the recent rounds (zero before the first).
    fn typical(&self) -> Duration {
        self.recent.iter().copied().min().unwrap_or_default()
    }

    /// `cost_factor` times what a round costs, at least `period`; and at most twice the previous
    /// wait, so that the first rounds (slowed by the dashboard's own start, or by others starting
    /// with it) do not leave the feed asleep for minutes: the wait reaches its due in a few rounds.
    fn next_wait(&mut self, period: Duration, cost_factor: u32) -> Duration {
        let due = self.typical() * cost_factor.max(1);
        let ceiling = period.max(self.last_wait * 2);
        self.last_wait = period.max(due.min(ceiling));
        self.last_wait
    }
}

/// One round over every follower; false when the receiver is gone.
async fn poll_round(
    store: &Store,
    followers: &mut [Follower],
    journal: Option<&mut JournalFollower>,
    tx: &mpsc::Sender<FeedEvent>,
) -> Result<bool, StoreError> {
    for f in followers.iter_mut() {
        if f.quiet >= QUIET_ROUNDS && f.quiet % QUIET_ROUNDS != 0 {
            f.quiet += 1;
            continue;
        }
        let changes = f.poll(store).await?;
        f.quiet = if changes.is_empty() { f.quiet + 1 } else { 0 };
        for c in changes {
            if tx.send(FeedEvent::Change(c)).await.is_err() {
                return Ok(false);
            }
        }
    }
    if let Some(j) = journal {
        if store.journal_in_use().await? {
            let (changes, gap) = j.poll(store).await?;
            if gap && tx.send(FeedEvent::Gap).await.is_err() {
                return Ok(false);
            }
            for c in changes {
                if tx.send(FeedEvent::Change(c)).await.is_err() {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

fn stream_change(e: ChangeStreamEvent<Document>) -> Option<Change> {
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
        document: e.full_document,
    })
}

async fn stream_loop(
    store: Store,
    names: Vec<String>,
    options: FeedOptions,
    tx: mpsc::Sender<FeedEvent>,
) {
    let mut failures = Failures::new(&options);
    let mut resume: Option<ResumeToken> = None;
    let pipeline = [doc! {"$match": {"ns.coll": {"$in": names.clone()}}}];
    loop {
        let mut watch = store
            .database()
            .watch()
            .pipeline(pipeline.clone())
            .full_document(FullDocumentType::UpdateLookup);
        if let Some(token) = resume.clone() {
            watch = watch.start_after(token);
        }
        let mut stream = match watch.await {
            Ok(s) => s,
            Err(e) => {
                if !failures.failed(&tx, &e.into()).await {
                    return;
                }
                continue;
            }
        };
        if !failures.succeeded(&tx).await {
            return;
        }
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    resume = stream.resume_token().or(resume);
                    if let Some(c) = stream_change(event) {
                        if tx.send(FeedEvent::Change(c)).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    resume = stream.resume_token().or(resume);
                    if !failures.failed(&tx, &e.into()).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_slow_round_does_not_stretch_the_pace_but_a_slow_server_does() {
        let ms = Duration::from_millis;
        let mut pace = Pace::default();
        assert_eq!(pace.typical(), Duration::ZERO);
        pace.took(ms(100));
        assert_eq!(pace.typical(), ms(100));
        for _ in 0..4 {
            pace.took(ms(800));
        }
        assert_eq!(pace.typical(), ms(100));
        for _ in 0..Pace::WINDOW {
            pace.took(ms(500));
        }
        assert_eq!(pace.typical(), ms(500));
    }

    #[test]
    fn the_wait_grows_to_its_due_by_at_most_doubling() {
        let ms = Duration::from_millis;
        let mut pace = Pace::default();
        // A slow first round (everything starting at once) does not put the feed to sleep.
        pace.took(ms(2000));
        assert_eq!(pace.next_wait(ms(1000), 100), ms(1000));
        // Rounds that stay slow are paced at 100× what they cost, after a few rounds.
        let waits: Vec<Duration> = (0..10)
            .map(|_| {
                pace.took(ms(200));
                pace.next_wait(ms(1000), 100)
            })
            .collect();
        assert_eq!(waits[0], ms(2000));
        assert_eq!(waits[1], ms(4000));
        assert_eq!(*waits.last().unwrap(), ms(20_000));
        // Fast rounds: the floor.
        let mut fast = Pace::default();
        fast.took(ms(1));
        assert_eq!(fast.next_wait(ms(1000), 100), ms(1000));
    }
}
