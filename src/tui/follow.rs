//! The dashboard's database side: the first screen, then the change feed, then the books.
//!
//! What a dashboard costs the database grows with the fleet and the events, never with history:
//! - the first screen reads only the small collections (classrooms, boards, tariffs), so it shows
//!   within a moment however long the ledger is;
//! - the change feed (a change stream, else polling the small collections and the change journal)
//!   brings every later change with its document, and never re-reads per event;
//! - today's totals are kept by the books' own engine (`RunningTotals`) from switch events and the
//!   ledger rows the feed brings, and reconciled with the ledger on a slow schedule that stretches
//!   so that reconciling takes at most 1/`RECONCILE_DUTY` of the time; the month's history is read
//!   once, and again after midnight or an aggregation;
//! - the activity log starts from its newest entries, read where that is cheap (the journal, or the
//!   `(timestamp, _id)` index), then follows the feed.
//!
//! Nothing here writes: a read-only dashboard sends only reads.

use super::event::{CollectionSize, DbChange, DbHealth, Event, Link, LinkState, Snapshot};
use crate::domain::activity::action;
use crate::domain::interval::{local_date, local_midnight};
use crate::domain::totals::RowNotice;
use crate::domain::Instant;
use crate::store::changefeed::{ChangeFeed, FeedEvent, FeedMode, FeedOptions, Record};
use crate::store::{collections, CommandObserver, Store, StoreError, DEFAULT_SELECTION_TIMEOUT};
use chrono::Days;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

/// Activity entries loaded after the first screen.
const ACTIVITY_LOADED: usize = 200;
/// Reconciling takes at most one part in this many of a dashboard's time.
pub const RECONCILE_DUTY: u32 = 20;
/// Rows written this long before a reconciliation starts are counted by it; later ones come from
/// the feed (the margin covers writers whose clocks run a little behind, and slow commits).
const CUTOFF_MARGIN: chrono::Duration = chrono::Duration::seconds(30);
/// How often the health figures (latency, schema version) are read again.
const HEALTH_EVERY: Duration = Duration::from_secs(30);

/// How the dashboard follows the database.
#[derive(Clone)]
pub struct FollowOptions {
    /// The shortest time between two reconciliations of today's totals.
    pub reconcile_every: Duration,
    pub feed: FeedOptions,
    /// Sees every command the dashboard's connection sends.
    pub observer: Option<CommandObserver>,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            reconcile_every: Duration::from_secs(900),
            feed: FeedOptions::default(),
            observer: None,
        }
    }
}

/// Collections whose changes the dashboard follows (the ledger and the activity log through the
/// journal where polling).
pub const FOLLOWED: &[&str] = &[
    collections::DEVICES,
    collections::CLASSROOMS,
    collections::COST_VERSIONS,
    collections::POWER_SETTINGS,
    collections::ACTIVITY,
    collections::LEDGER,
];

/// What the books task is asked to read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reread {
    /// Today's closed rows (changes may have been missed).
    Today,
    /// The earlier days (an aggregation rewrote them).
    History,
    /// The newest activity entries.
    Activity,
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects, shows the first screen, then follows the change feed and keeps the books, loading a
/// fresh first screen after an outage.
pub async fn follow_database(
    uri: String,
    tz: chrono_tz::Tz,
    slot: Arc<RwLock<Option<Store>>>,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
    options: FollowOptions,
) {
    let _ = tx.send(Event::Link(Link::Db, LinkState::Connecting)).await;
    let mut backoff = crate::retry::Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
    let store = loop {
        match Store::connect_observed(&uri, DEFAULT_SELECTION_TIMEOUT, options.observer.clone())
            .await
        {
            Ok(s) => break s.with_timezone(tz),
            Err(e) => {
                down(&tx, e.to_string(), "no database").await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
        }
    };
    *slot.write().await = Some(store.clone());
    loop {
        // Follow from before the first screen, so that nothing written while it loads is missed.
        let mut feed = store.follow(FOLLOWED, options.feed);
        match first_screen(&store).await {
            Ok(snap) => {
                let users = has_users(&store).await.unwrap_or(false);
                let schedules = store.schedules().await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "schedules not read");
                    Vec::new()
                });
                let firmware = firmware(&store).await;
                for e in [
                    Event::Db(DbChange::Snapshot(Box::new(snap))),
                    Event::Db(DbChange::Schedules(schedules)),
                    Event::Db(DbChange::Firmware(firmware)),
                    Event::Db(DbChange::UsersExist(users)),
                    Event::Link(Link::Db, LinkState::Up(store.server().to_string())),
                    Event::Link(Link::Feed, LinkState::Up(mode_text(&feed))),
                ] {
                    let _ = tx.send(e).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "database snapshot");
                // A database nothing was migrated into (a typo in its name, often) is named as
                // such, not shown as an empty campus.
                let state = match e.downcast_ref::<StoreError>() {
                    Some(no @ StoreError::NoSchema { .. }) => LinkState::Unusable(no.to_string()),
                    _ => LinkState::Down(e.to_string()),
                };
                let _ = tx.send(Event::Link(Link::Db, state)).await;
                let _ = tx
                    .send(Event::Link(
                        Link::Feed,
                        LinkState::Down("waiting for the database".into()),
                    ))
                    .await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        }
        let (reread_tx, reread_rx) = mpsc::unbounded_channel();
        let books = Books::new(store.clone(), tz, tx.clone(), options.reconcile_every);
        let _books = AbortOnDrop(tokio::spawn(books.run(reread_rx)));
        if !follow_feed(&store, &mut feed, &tx, &reread_tx, &cancel).await {
            return;
        }
    }
}

/// Says that the database is down (and why) and the feed with it; false when the dashboard is gone.
async fn down(tx: &mpsc::Sender<Event>, why: String, feed: &str) -> bool {
    tx.send(Event::Link(Link::Db, LinkState::Down(why)))
        .await
        .is_ok()
        && tx
            .send(Event::Link(Link::Feed, LinkState::Down(feed.into())))
            .await
            .is_ok()
}

fn mode_text(feed: &ChangeFeed) -> String {
    match feed.mode() {
        FeedMode::Stream => "stream".into(),
        FeedMode::Polling => "polling".into(),
    }
}

/// The campus as it is now, from the small collections only, once the database has a schema.
async fn first_screen(store: &Store) -> anyhow::Result<Snapshot> {
    store.require_schema().await?;
    let classrooms = store.classrooms().await?;
    let devices = store.devices().await?;
    let settings = store.active_power_settings().await?;
    let cost_versions = store.cost_versions(None).await?;
    let health = health(store, None, false).await;
    Ok(Snapshot {
        classrooms,
        devices,
        settings,
        cost_versions,
        health: Some(health),
    })
}

/// Firmware records read for the board view (the newest of every board).
const FIRMWARE_LOADED: i64 = 500;

/// The newest firmware records (a small collection: people record field updates by hand).
async fn firmware(store: &Store) -> Vec<crate::domain::FirmwareUpdate> {
    store
        .recent_firmware_updates(FIRMWARE_LOADED)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "firmware records not loaded");
            Vec::new()
        })
}

/// Whether any operator account exists (then acting needs a sign-in).
async fn has_users(store: &Store) -> anyhow::Result<bool> {
    Ok(store.has_users().await?)
}

/// Turns feed events into dashboard events until an outage ends (then a fresh first screen is
/// due: returns true) or the dashboard closes (false).
async fn follow_feed(
    store: &Store,
    feed: &mut ChangeFeed,
    tx: &mpsc::Sender<Event>,
    reread: &mpsc::UnboundedSender<Reread>,
    cancel: &CancellationToken,
) -> bool {
    let mut is_down = false;
    let mut shown_mode = String::new();
    let mut refresh = tokio::time::interval(Duration::from_secs(5));
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return false,
            ev = feed.next() => match ev {
                Some(ev) => ev,
                None => return true,
            },
            _ = refresh.tick() => {
                // The polling period stretches with what a round costs: say what it is now.
                let mode = match feed.poll_period() {
                    Some(p) => format!("polling every {:.1} s", p.as_secs_f64()),
                    None => mode_text(feed),
                };
                if mode != shown_mode && !is_down {
                    shown_mode = mode.clone();
                    if tx.send(Event::Link(Link::Feed, LinkState::Up(mode))).await.is_err() {
                        return false;
                    }
                }
                continue;
            }
        };
        let out = match event {
            FeedEvent::Change(c) => match c.record(store) {
                Record::Device(d) => Some(DbChange::Device(d)),
                Record::Classroom(r) => Some(DbChange::Classroom(r)),
                Record::CostVersion(v) => Some(DbChange::CostVersion(v)),
                Record::PowerSettings(p) => Some(DbChange::PowerSettings(p)),
                Record::LedgerRow(row) => Some(DbChange::LedgerRow(Box::new(RowNotice::of(&row)))),
                Record::Activity(a) => {
                    if a.action == action::AGGREGATION_RUN {
                        let _ = reread.send(Reread::History);
                    }
                    // Schedules change rarely, and each change (a run disables a `once`) is
                    // logged: read them again then, and only then.
                    if a.action == action::SCHEDULE_CHANGE || a.action == action::SCHEDULE_RUN {
                        match store.schedules().await {
                            Ok(s) => {
                                let _ = tx.send(Event::Db(DbChange::Schedules(s))).await;
                            }
                            Err(e) => tracing::warn!(error = %e, "schedules not read again"),
                        }
                    }
                    Some(DbChange::Activity(a))
                }
                Record::Deleted | Record::Other => None,
                // Logged and counted by the store's readers; the health view shows the count.
                Record::Unreadable(_) => None,
            },
            FeedEvent::Gap => {
                let _ = reread.send(Reread::Today);
                let _ = reread.send(Reread::Activity);
                None
            }
            FeedEvent::Error(msg) => {
                is_down = true;
                if !down(tx, msg, "waiting for the database").await {
                    return false;
                }
                None
            }
            FeedEvent::Recovered => return true,
        };
        if let Some(change) = out {
            if tx.send(Event::Db(change)).await.is_err() {
                return false;
            }
        }
    }
}

/// The dashboard's books: the activity to start from, today's reconciliations and the month's
/// history, and the health figures.
struct Books {
    store: Store,
    tz: chrono_tz::Tz,
    tx: mpsc::Sender<Event>,
    reconcile_every: Duration,
    /// The last reconciliation: when it ended and how long it took.
    last: Option<(tokio::time::Instant, Duration)>,
    /// The time between reconciliations now (`reconcile_every`, or longer when they are slow).
    period: Duration,
    /// The day the history loaded is for.
    history_day: Option<chrono::NaiveDate>,
}

impl Books {
    fn new(
        store: Store,
        tz: chrono_tz::Tz,
        tx: mpsc::Sender<Event>,
        reconcile_every: Duration,
    ) -> Books {
        Books {
            store,
            tz,
            tx,
            reconcile_every,
            last: None,
            period: reconcile_every,
            history_day: None,
        }
    }

    /// The earliest a reconciliation may start: its predecessor's duration must stay within the
    /// duty share of the time since it began.
    fn earliest_next(&self) -> tokio::time::Instant {
        match self.last {
            Some((ended, took)) => ended + took * (RECONCILE_DUTY - 1),
            None => tokio::time::Instant::now(),
        }
    }

    async fn run(mut self, mut reread: mpsc::UnboundedReceiver<Reread>) {
        self.load_activity().await;
        let mut due = tokio::time::Instant::now();
        let mut next_health = tokio::time::Instant::now() + HEALTH_EVERY;
        loop {
            if tokio::time::Instant::now() >= due {
                match self.reconcile().await {
                    Ok(()) => due = tokio::time::Instant::now() + self.period,
                    Err(e) => {
                        tracing::warn!(error = %e, "today's totals not reconciled; trying again later");
                        due = tokio::time::Instant::now() + Duration::from_secs(30);
                    }
                }
                self.send_health(true).await;
                next_health = tokio::time::Instant::now() + HEALTH_EVERY;
            }
            if tokio::time::Instant::now() >= next_health {
                self.send_health(false).await;
                next_health = tokio::time::Instant::now() + HEALTH_EVERY;
            }
            let wake = due.min(next_health).min(self.next_midnight());
            tokio::select! {
                r = reread.recv() => match r {
                    Some(Reread::Activity) => self.load_activity().await,
                    Some(Reread::History) => {
                        self.history_day = None;
                        due = due.min(self.earliest_next());
                    }
                    Some(Reread::Today) => due = due.min(self.earliest_next()),
                    None => return,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
            // A new day: its totals start from nothing closed and the day that ended joins the
            // history, so both are read again (no sooner than the duty share allows).
            if self
                .history_day
                .is_some_and(|d| d != local_date(chrono::Utc::now(), self.tz))
            {
                self.history_day = None;
                due = due.min(self.earliest_next());
            }
        }
    }

    /// The next campus-local midnight, plus a spread of up to a minute that differs between
    /// dashboards, so that a campus's dashboards do not all read the ledger at once.
    fn next_midnight(&self) -> tokio::time::Instant {
        let now = chrono::Utc::now();
        let next = local_date(now, self.tz)
            .checked_add_days(Days::new(1))
            .map(|d| local_midnight(d, self.tz))
            .unwrap_or(now + chrono::Duration::days(1));
        let spread = Duration::from_millis(u64::from(std::process::id()) % 60_000);
        tokio::time::Instant::now() + (next - now).to_std().unwrap_or_default() + spread
    }

    async fn load_activity(&self) {
        match self.store.latest_activity(ACTIVITY_LOADED).await {
            Ok(mut recent) => {
                recent.reverse();
                let _ = self
                    .tx
                    .send(Event::Db(DbChange::RecentActivity(recent)))
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "recent activity not loaded"),
        }
    }

    /// Reads the history when due and today's closed rows written before a cutoff, and measures
    /// what that took to stretch the period.
    async fn reconcile(&mut self) -> anyhow::Result<()> {
        let started = tokio::time::Instant::now();
        let now = chrono::Utc::now();
        let day = local_date(now, self.tz);
        if self.history_day != Some(day) {
            let history = self.store.totals_history(day, self.tz).await?;
            self.send(DbChange::History { day, history }).await;
            self.history_day = Some(day);
        }
        let cutoff: Instant = now - CUTOFF_MARGIN;
        let closed = self.store.closed_totals(day, Some(cutoff)).await?;
        self.send(DbChange::Reconciled {
            day,
            closed,
            cutoff,
        })
        .await;
        let took = started.elapsed();
        self.last = Some((tokio::time::Instant::now(), took));
        self.period = self.reconcile_every.max(took * RECONCILE_DUTY);
        tracing::info!(
            took_ms = took.as_millis() as u64,
            every_s = self.period.as_secs(),
            "today's totals reconciled with the ledger"
        );
        Ok(())
    }

    async fn send(&self, change: DbChange) {
        let _ = self.tx.send(Event::Db(change)).await;
    }

    async fn send_health(&self, dead_letters: bool) {
        let reconcile = self.last.map(|(_, took)| (took, self.period));
        let h = health(&self.store, reconcile, dead_letters).await;
        self.send(DbChange::Health(h)).await;
        self.send(DbChange::Firmware(firmware(&self.store).await))
            .await;
    }
}

/// Facts about the database for the health view: cheap reads only (the dead letters, a bounded
/// collection, only when asked; the collection sizes are measured apart, see [`collection_sizes`]).
async fn health(
    store: &Store,
    reconcile: Option<(Duration, Duration)>,
    dead_letters: bool,
) -> DbHealth {
    let unreadable = store.unreadable_documents();
    let dead_letters = if dead_letters {
        store.dead_letter_counts().await.ok()
    } else {
        None
    };
    DbHealth {
        dead_letters,
        unreadable: unreadable.iter().map(|u| u.documents as u64).sum(),
        unreadable_reason: (!unreadable.is_empty()).then(|| {
            unreadable
                .iter()
                .map(|u| u.describe())
                .collect::<Vec<_>>()
                .join("; ")
        }),
        server: store.server().to_string(),
        capabilities: store.capabilities().to_string(),
        latency_ms: store.ping().await.ok().map(|d| d.as_secs_f64() * 1000.0),
        schema_version: store.schema_version().await.ok().map(i64::from),
        reconcile_took: reconcile.map(|r| r.0),
        reconcile_every: reconcile.map(|r| r.1),
        ..DbHealth::default()
    }
}

/// The largest collections for the health view: every collection's statistics, which FerretDB
/// computes from its whole database file, so the dashboard reads them only while that view is
/// open (see `App::sizes`).
pub async fn collection_sizes(store: &Store) -> Result<Vec<CollectionSize>, String> {
    match store
        .largest_collections(super::event::LARGEST_COLLECTIONS)
        .await
    {
        Ok(l) => Ok(l
            .into_iter()
            .map(|c| CollectionSize {
                name: c.name,
                documents: c.documents,
                storage_bytes: c.storage_bytes,
                index_bytes: c.index_bytes,
                sizes_unknown_because: c.sizes_unknown_because,
            })
            .collect()),
        Err(e) => {
            tracing::warn!(error = %e, "collection sizes not read");
            Err(e.to_string())
        }
    }
}
