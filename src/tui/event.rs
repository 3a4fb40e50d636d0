//! Everything that can change the dashboard's state arrives as one `Event` on one channel.

use crate::domain::totals::{ClosedSwitch, DayTotal, RowNotice};
use crate::domain::{
    ActivityLog, Actor, Classroom, CostVersion, Device, FirmwareUpdate, Instant, Mac, PowerSettings,
};
pub use crate::mqtt::message::Event as BoardMessage;
use chrono::NaiveDate;
use crossterm::event::{KeyEvent, MouseEvent};

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// A frame showed the state as it is.
    Drawn,
    /// The theme an `Effect::ChangeTheme` asked for, loaded.
    Theme(Box<super::theme::Theme>),
    /// The 1 s clock.
    Tick(Instant),
    /// A board's message, straight from the broker (no database round trip).
    Live(Live),
    /// Board messages that were waiting together, applied in order with one update of the running
    /// totals (a burst of thousands a second costs one recomputation, not one per message).
    LiveBatch(Vec<Live>),
    /// A change read from the database (change stream or polling: the same events).
    Db(DbChange),
    /// A connection went up or down.
    Link(Link, LinkState),
    /// A relay command could not be handed to the broker.
    PublishFailed {
        device_id: String,
        switch_id: String,
        reason: String,
    },
    TariffResult(Result<CostVersion, String>),
    Aggregation(AggregationUpdate),
    SignIn(Result<Actor, String>),
    /// History read for the trends view.
    Trends(TrendsUpdate),
}

/// What a trends read brought.
#[derive(Debug, Clone, PartialEq)]
pub enum TrendsUpdate {
    /// The campus's total of the days shown.
    Loaded(Box<super::trends::TrendsData>),
    /// The same days with each classroom's part.
    Classrooms(Box<crate::domain::trends::DailyBook>),
    /// This month's waste and today's load curves (read after the first frame).
    Ledger(Box<super::trends::LedgerFigures>),
    Failed(String),
}

/// A board's message, as the live pipeline's parser reads it (PROTOCOL.md).
#[derive(Debug, Clone, PartialEq)]
pub enum Live {
    Board(BoardMessage),
    /// A message that was not valid (counted for the health view, never shown raw).
    Rejected,
}

impl Live {
    pub fn mac(&self) -> Option<Mac> {
        match self {
            Live::Board(m) => m.mac(),
            Live::Rejected => None,
        }
    }
}

/// What the dashboard loads first (and again after a reconnection): the campus as it is now,
/// small collections only, so that it shows at once whatever the history.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub classrooms: Vec<Classroom>,
    pub devices: Vec<Device>,
    pub settings: Option<PowerSettings>,
    pub cost_versions: Vec<CostVersion>,
    pub health: Option<DbHealth>,
}

#[derive(Debug, Clone)]
pub enum DbChange {
    Snapshot(Box<Snapshot>),
    Device(Box<Device>),
    Classroom(Classroom),
    CostVersion(CostVersion),
    PowerSettings(PowerSettings),
    /// A new activity entry.
    Activity(Box<ActivityLog>),
    /// The newest activity entries, oldest first (loaded after the first screen).
    RecentActivity(Vec<ActivityLog>),
    /// A ledger row written (from the change feed).
    LedgerRow(Box<RowNotice>),
    /// Today's closed rows written before `cutoff`, as the database sums them.
    Reconciled {
        day: NaiveDate,
        closed: Vec<ClosedSwitch>,
        cutoff: Instant,
    },
    /// The earlier days of the month and the last full days.
    History {
        day: NaiveDate,
        history: Vec<DayTotal>,
    },
    Health(DbHealth),
    /// The largest collections as measured for the health view, or why they could not be, and
    /// how long measuring took.
    Sizes {
        result: Result<Vec<CollectionSize>, String>,
        took: std::time::Duration,
    },
    /// Whether the `users` collection has users (then acting needs a sign-in).
    UsersExist(bool),
    /// Every schedule, as stored now (read at start and after each schedule change or run).
    Schedules(Vec<crate::domain::Schedule>),
    /// The newest firmware records of every board, newest first.
    Firmware(Vec<FirmwareUpdate>),
}

/// Facts about the database for the health view and the header.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DbHealth {
    pub server: String,
    pub capabilities: String,
    pub latency_ms: Option<f64>,
    pub schema_version: Option<i64>,
    /// Receive time of the newest telemetry document (the collector's lag is now minus this).
    pub newest_telemetry: Option<Instant>,
    pub last_aggregation: Option<String>,
    /// The last reconciliation of today's totals: how long it took, and the time between two.
    pub reconcile_took: Option<std::time::Duration>,
    pub reconcile_every: Option<std::time::Duration>,
    /// Documents this dashboard could not read and skipped (another writer's shape), and what
    /// was wrong with them ("2 activity entries unreadable: classroom is an ObjectId …").
    pub unreadable: u64,
    pub unreadable_reason: Option<String>,
    /// Messages the collectors kept as dead letters, by `kind/reason` (read at reconciliations:
    /// the collection is bounded, but a count is still a read of all of it).
    pub dead_letters: Option<std::collections::BTreeMap<String, i64>>,
    /// The largest collections, largest first (measured while the health view is open: counting
    /// and sizing is a read of every collection's statistics).
    pub largest: Option<Vec<CollectionSize>>,
}

/// How many of the largest collections the health view shows.
pub const LARGEST_COLLECTIONS: usize = 6;

/// What one collection weighs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CollectionSize {
    pub name: String,
    pub documents: u64,
    /// On disk; `None` where the server gives no sizes.
    pub storage_bytes: Option<u64>,
    pub index_bytes: Option<u64>,
    /// Why a size is unknown, as the server's answer shows.
    pub sizes_unknown_because: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Mqtt,
    Db,
    /// The change feed; its `Up` detail says `stream` or `polling every N s`.
    Feed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Connecting,
    Up(String),
    Down(String),
    /// Reached, but not usable as it is (a database without a schema): why, and what to do.
    Unusable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregationUpdate {
    Progress {
        done: u64,
        total: u64,
    },
    Done {
        summary: String,
    },
    /// Stopped on request; the days and classrooms finished before stay written.
    Stopped(String),
    Failed(String),
}
