//! MongoDB: the connection and capability probe, and one module per collection family.
//!
//! Only this module (and `mqtt`) talks to servers. Every write is single-document atomic and
//! idempotent, because FerretDB and standalone servers have no transactions.

pub mod accounts;
pub mod aggregation;
pub mod audit;
mod capabilities;
pub mod error;
pub mod tariffs;

pub mod activity;
pub mod aggregates;
pub mod backup;
pub mod campus_days;
pub mod changefeed;
pub mod classrooms;
pub mod day_books;
pub mod deadletters;
pub mod devices;
pub mod firmware;
pub mod health;
pub mod indexes;
pub mod journal;
pub mod lease;
pub mod ledger;
pub mod migrations;
pub mod presence;
pub mod schedules;
pub mod seeding;
pub mod switching;
pub mod telemetry;
pub mod trends;
pub mod unreadable;
pub mod users;

pub use capabilities::{Capabilities, ServerInfo, ServerKind};
pub use error::StoreError;

pub use accounts::{AccountError, AccountOutcome, Admin};
pub use activity::{ActivityCursor, ActivityFilter};
pub use aggregates::AggregateQuery;
pub use indexes::{IndexReport, IndexSpec};
pub use ledger::{InsertSummary, LedgerCursor, LedgerQuery, Page};
pub use unreadable::{Unreadable, UnreadableDocuments};
pub use users::{AuthError, NewUser};

use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Collection names (SCHEMA.md).
pub mod collections {
    pub const USERS: &str = "users";
    pub const CLASSROOMS: &str = "classrooms";
    pub const DEVICES: &str = "devices";
    pub const POWER_SETTINGS: &str = "powersettings";
    pub const COST_VERSIONS: &str = "costversions";
    pub const LEDGER: &str = "deviceconsumptionledgers";
    pub const DAILY: &str = "dailyaggregates";
    pub const MONTHLY: &str = "monthlyaggregates";
    pub const TELEMETRY: &str = "telemetryevents";
    pub const ACTIVITY: &str = "activitylogs";
    pub const SCHEDULES: &str = "schedules";
    pub const FIRMWARE_UPDATES: &str = "firmwareupdates";
    pub const MIGRATIONS: &str = "migrations";

    /// Every collection of the design, in a stable order.
    pub const ALL: &[&str] = &[
        USERS,
        CLASSROOMS,
        DEVICES,
        POWER_SETTINGS,
        COST_VERSIONS,
        LEDGER,
        DAILY,
        MONTHLY,
        TELEMETRY,
        ACTIVITY,
        SCHEDULES,
        FIRMWARE_UPDATES,
        MIGRATIONS,
    ];
}

/// Sees every command a connection sends, as its name and the collection it names where it names
/// one ("find devices", "ping"): what a reader sends can be proved with it.
pub type CommandObserver = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// How long to wait for a server before saying it does not answer.
pub const DEFAULT_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a lock (an aggregation's, the migrations') stays held without its holder renewing it.
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(60);

/// The time zone of a store not told its campus's (the configuration's default).
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

/// A connected database, with what its server can do.
#[derive(Clone)]
pub struct Store {
    client: Client,
    db: Database,
    server: ServerInfo,
    capabilities: Capabilities,
    journal: journal::SharedJournalState,
    /// Documents the readers skipped because they do not decode, shared by every clone.
    unreadable: Arc<Mutex<unreadable::Tally>>,
    lock_lease: Duration,
    /// The campus's time zone: what "a day" is for the day books.
    timezone: chrono_tz::Tz,
}

impl Store {
    /// Connects to `uri` (the database is the URI's path, default `autovolt`), checks that the server
    /// answers within `timeout`, and probes what it can do.
    pub async fn connect(uri: &str, timeout: Duration) -> Result<Store, StoreError> {
        Self::connect_observed(uri, timeout, None).await
    }

    /// [`Store::connect`], with every command the connection sends shown to `observer`.
    pub async fn connect_observed(
        uri: &str,
        timeout: Duration,
        observer: Option<CommandObserver>,
    ) -> Result<Store, StoreError> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| StoreError::BadUri(error::redact(&e.to_string(), uri)))?;
        if let Some(observer) = observer {
            options.command_event_handler =
                Some(mongodb::event::EventHandler::callback(move |event| {
                    if let mongodb::event::command::CommandEvent::Started(started) = event {
                        let name = &started.command_name;
                        match started.command.get(name).and_then(|c| c.as_str()) {
                            Some(collection) => observer(&format!("{name} {collection}")),
                            None => observer(name),
                        }
                    }
                }));
        }
        let mut refused = refusals(&mut options);
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options.app_name = Some("autovolt".into());
        let db_name = options
            .default_database
            .clone()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "autovolt".into());
        let client = Client::with_options(options)
            .map_err(|e| StoreError::BadUri(error::redact(&e.to_string(), uri)))?;
        let db = client.database(&db_name);
        let address = crate::domain::uri::redacted_uri(uri);
        tokio::select! {
            answer = db.run_command(bson::doc! {"ping": 1}) => {
                answer.map_err(|e| StoreError::from_connect(e, &address, timeout))?;
            }
            _ = async {
                if refused.wait_for(|every_host| *every_host).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {
                client.shutdown().immediate(true).await;
                return Err(StoreError::ConnectionRefused { address });
            }
        }
        let server = capabilities::server_info(&db).await?;
        let capabilities = capabilities::probe(&db, &server).await;
        tracing::info!(server = %server, capabilities = %capabilities, database = %db_name, "connected to the database");
        Ok(Store {
            client,
            db,
            server,
            capabilities,
            journal: Default::default(),
            unreadable: Arc::default(),
            lock_lease: DEFAULT_LOCK_LEASE,
            timezone: DEFAULT_TIMEZONE,
        })
    }

    /// This store with locks leased for `lease` (renewed every third of it while held); at least
    /// one second. Short leases are for tests; real runs keep the default.
    pub fn with_lock_lease(mut self, lease: Duration) -> Store {
        self.lock_lease = lease.max(Duration::from_secs(1));
        self
    }

    /// This store with the campus's time zone (the configuration's `timezone`).
    pub fn with_timezone(mut self, tz: chrono_tz::Tz) -> Store {
        self.timezone = tz;
        self
    }

    /// The campus's time zone, in which the day books count days.
    pub fn timezone(&self) -> chrono_tz::Tz {
        self.timezone
    }

    /// How long a lock this store takes stays held without renewal.
    pub fn lock_lease(&self) -> Duration {
        self.lock_lease
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn server(&self) -> &ServerInfo {
        &self.server
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub(crate) fn journal_state(&self) -> &journal::SharedJournalState {
        &self.journal
    }

    /// A typed collection, raw. Inside the crate only the store reads and writes through it (the
    /// architecture test refuses it elsewhere in `src/`); it stays public for the tests and benches
    /// that check stored documents directly.
    pub fn collection<T: Send + Sync>(&self, name: &str) -> mongodb::Collection<T> {
        self.db.collection(name)
    }

    /// Closes the connection now, so that none of the driver's tasks outlives the program's runtime.
    pub async fn close(&self) {
        self.client.clone().shutdown().immediate(true).await;
    }

    /// Round-trip time of a `ping`.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let start = std::time::Instant::now();
        self.db.run_command(bson::doc! {"ping": 1}).await?;
        Ok(start.elapsed())
    }
}

/// Watches the driver's first contacts with the servers of `options`: the receiver turns true once
/// every host the URI names has refused the connection. Nothing listens there, so waiting for the
/// server selection timeout would only delay the answer; a host that is silent or slow (starting,
/// far away) is still waited for.
fn refusals(options: &mut ClientOptions) -> tokio::sync::watch::Receiver<bool> {
    let seeds: Vec<String> = options.hosts.iter().map(|h| h.to_string()).collect();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let refused = Mutex::new(std::collections::HashSet::<String>::new());
    options.sdam_event_handler = Some(mongodb::event::EventHandler::callback(move |event| {
        let mongodb::event::sdam::SdamEvent::ServerHeartbeatFailed(failed) = event else {
            return;
        };
        if !error::is_refusal(&failed.failure) || tx.is_closed() {
            return;
        }
        let mut hosts = refused.lock().unwrap_or_else(|p| p.into_inner());
        hosts.insert(failed.server_address.to_string());
        if !seeds.is_empty() && seeds.iter().all(|s| hosts.contains(s)) {
            let _ = tx.send(true);
        }
    }));
    rx
}

/// Sets `createdAt` (unless already given) and `updatedAt` on a new document.
pub(crate) fn stamp_new(
    created_at: &mut Option<crate::domain::Instant>,
    updated_at: &mut Option<crate::domain::Instant>,
) {
    let now = crate::domain::dates::now_millis();
    created_at.get_or_insert(now);
    *updated_at = Some(now);
}
