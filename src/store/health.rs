//! What the on-call person needs at 2 a.m.: is the database there, how fast, what it can do, how
//! big, at which schema version, and are the boards and the collector alive.

use super::telemetry::CollectorStatus;
use super::UnreadableDocuments;
use super::{collections, migrations, Store, StoreError};
use crate::domain::health::{self, Hearing, Problems, Registration};
use crate::domain::{
    ActivityLog, DailyAggregate, Device, DeviceStatus, Instant, LedgerRow, MonthlyAggregate,
    PowerSettings, TelemetryEvent, User,
};
use bson::{doc, Bson, Document};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub use crate::domain::health::HealthLevel;

/// Where a collection's figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SizeSource {
    /// The `$collStats` aggregation stage (`storageStats`): MongoDB's way since 6.2.
    #[serde(rename = "$collStats")]
    CollStatsStage,
    /// The `collStats` command (older servers, FerretDB).
    #[serde(rename = "collStats")]
    CollStatsCommand,
    /// The server gives no statistics: a count of the documents, sizes unknown.
    #[serde(rename = "count")]
    CountOnly,
}

impl SizeSource {
    pub fn describe(self) -> &'static str {
        match self {
            SizeSource::CollStatsStage => "$collStats",
            SizeSource::CollStatsCommand => "collStats",
            SizeSource::CountOnly => "counts only: the server gives no sizes",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectionHealth {
    pub name: String,
    pub documents: u64,
    /// Data size in bytes (uncompressed); `None` where the server does not say.
    pub size_bytes: Option<u64>,
    /// Space the collection takes on disk, in bytes; `None` where the server does not say.
    pub storage_bytes: Option<u64>,
    /// Space its indexes take, in bytes; `None` where the server does not say.
    pub index_bytes: Option<u64>,
    /// Each index's size in bytes, by index name, where the server gives them (`indexSizes`).
    pub index_sizes: Option<BTreeMap<String, u64>>,
    pub indexes: usize,
    /// Where the figures come from.
    pub source: SizeSource,
    /// Why some sizes are `None`; `None` when every size is known.
    pub sizes_unknown_because: Option<String>,
}

impl CollectionHealth {
    /// Says why the sizes the server left out are unknown.
    fn explain_unknown(mut self, server: &str) -> CollectionHealth {
        let mut missing = Vec::new();
        for (what, known) in [
            ("data size", self.size_bytes.is_some()),
            ("storage size", self.storage_bytes.is_some()),
            ("index size", self.index_bytes.is_some()),
            ("each index's size", self.index_sizes.is_some()),
        ] {
            if !known {
                missing.push(what);
            }
        }
        self.sizes_unknown_because = (!missing.is_empty()).then(|| match self.source {
            SizeSource::CountOnly => {
                format!(
                    "{server} answers neither $collStats nor collStats: only the count is known"
                )
            }
            source => format!(
                "{server}'s {} does not report the {}",
                source.describe(),
                missing.join(", ")
            ),
        });
        self
    }
}

/// Each index's size in `stats` (`indexSizes`), if given.
fn index_sizes(stats: &Document) -> Option<BTreeMap<String, u64>> {
    let sizes = stats.get_document("indexSizes").ok()?;
    Some(
        sizes
            .keys()
            .filter_map(|k| Some((k.clone(), number(sizes, k)?)))
            .collect(),
    )
}

impl CollectionHealth {
    /// What the collection weighs on the server: storage and indexes where known, else its data
    /// size, else nothing (then only its count orders it).
    pub fn footprint(&self) -> Option<u64> {
        match (self.storage_bytes, self.index_bytes) {
            (None, None) => self.size_bytes,
            (s, i) => Some(s.unwrap_or(0) + i.unwrap_or(0)),
        }
    }
}

/// The `n` largest collections: by footprint, then by documents, then by name.
pub fn largest(collections: &[CollectionHealth], n: usize) -> Vec<CollectionHealth> {
    let mut v = collections.to_vec();
    v.sort_by(|a, b| {
        b.footprint()
            .cmp(&a.footprint())
            .then(b.documents.cmp(&a.documents))
            .then(a.name.cmp(&b.name))
    });
    v.truncate(n);
    v
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfflineBoard {
    pub name: String,
    pub mac: String,
    pub last_seen: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoardsHealth {
    pub total: usize,
    /// Boards online; `None` while nothing hears them (no collector running, or none connected
    /// to the broker): their recorded state is then only what was last heard.
    pub online: Option<usize>,
    /// Since when nothing hears the boards, while nothing does (`None` also when no collector
    /// ever heard them: then `online` is `None` too).
    pub unknown_since: Option<Instant>,
    /// Boards recorded offline (while nothing hears them: offline when they were last heard).
    pub offline: Vec<OfflineBoard>,
    /// Boards an administrator put in maintenance: not counted as offline (their data is still
    /// recorded when they report).
    pub maintenance: Vec<OfflineBoard>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapabilityFlags {
    pub change_streams: bool,
    pub transactions: bool,
    pub ttl_indexes: bool,
    pub partial_indexes: bool,
}

/// One collector as its status record tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CollectorHealth {
    pub client_id: String,
    /// Whether it runs: it renews its record in time and has not said it stopped.
    pub running: bool,
    /// `running`, `stopped` (it said so when it stopped) or `silent` (it stopped renewing its
    /// record: it died, or cannot reach the database).
    pub state: &'static str,
    /// When it stopped or fell silent; `None` while it runs.
    pub ended_at: Option<Instant>,
    pub updated_at: Instant,
    /// How often it renews its record; it is taken for dead a few renewals late.
    pub renew_every_secs: f64,
    pub broker_connected: bool,
    /// Since when it has been cut off from the broker, while it is.
    pub broker_lost_at: Option<Instant>,
    /// Since when its database writes have been failing (messages wait at the broker).
    pub database_down_since: Option<Instant>,
    pub received: i64,
    pub rejected: i64,
    /// Rejected messages by reason code.
    pub rejected_by_reason: std::collections::BTreeMap<String, i64>,
}

/// What `autovolt health` found of the broker from where it runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BrokerHealth {
    /// The broker's URL, without secrets.
    pub url: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Why it could not be used, in one sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    /// The verdict: critical if any of `criticals`, else a warning if any of `warnings`, else OK.
    /// Change it only through [`HealthReport::raise`].
    pub status: HealthLevel,
    /// Why the status is not OK, one line each.
    pub warnings: Vec<String>,
    /// Why the status is critical, one line each.
    pub criticals: Vec<String>,
    pub checked_at: Instant,
    pub database: String,
    pub ping_ms: f64,
    pub server: String,
    pub server_kind: String,
    pub server_version: String,
    pub capabilities: CapabilityFlags,
    /// How the live view follows changes: `stream` or `polling`.
    pub change_feed: String,
    pub schema_version: i32,
    pub latest_schema_version: i32,
    pub pending_migrations: Vec<i32>,
    pub migration_lock: Option<String>,
    pub collections: Vec<CollectionHealth>,
    pub boards: BoardsHealth,
    /// MACs that sent telemetry but match no device.
    pub unregistered_macs: Vec<String>,
    pub newest_telemetry: Option<Instant>,
    /// Seconds between `checked_at` and the newest telemetry received.
    pub collector_lag_secs: Option<f64>,
    pub last_aggregation: Option<Instant>,
    /// Collectors that have written a status record.
    pub collectors: Vec<CollectorHealth>,
    /// How long the check took, and what took most of it when that was long.
    pub took_secs: f64,
    pub slow_because: Option<String>,
    /// Documents that could not be read and were skipped, by collection and problem: among every
    /// device, classroom, user, power settings document and cost version, and the newest
    /// [`NEWEST_CHECKED`] documents of each growing collection (on FerretDB the first ones in
    /// storage order; `autovolt audit` reads every ledger row of a period).
    pub unreadable: Vec<UnreadableDocuments>,
    /// Messages kept as dead letters, by `kind/reason` (`failed/invalid_document` → 2). Failed
    /// ones are missing from the books until replayed (a warning); malformed ones are only noted.
    pub dead_letters: std::collections::BTreeMap<String, i64>,
    /// The broker as `autovolt health` reached it, when it was tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerHealth>,
}

/// How many of the newest documents of each growing collection `health` checks for readability.
pub const NEWEST_CHECKED: i64 = 1000;

/// A check slower than this says why.
const SLOW_CHECK_SECS: f64 = 2.0;

impl Store {
    /// Gathers the health report at `now`. No collector running, boards offline, pending
    /// migrations, a held lock or a collector lag above `offline_after` make it a warning; boards
    /// that nothing has heard for longer than `offline_after` make it critical.
    pub async fn health(
        &self,
        now: Instant,
        offline_after: Duration,
    ) -> Result<HealthReport, StoreError> {
        let started = std::time::Instant::now();
        let ping = self.ping().await?;
        let status = self.migration_status().await?;
        let mut collections_health = Vec::new();
        let mut slowest: Option<(std::time::Duration, String, u64)> = None;
        for name in self.current_collection_names().await? {
            let t = std::time::Instant::now();
            let h = self.collection_health(&name).await?;
            let took = t.elapsed();
            if slowest.as_ref().is_none_or(|s| took > s.0) {
                slowest = Some((took, name.clone(), h.documents));
            }
            collections_health.push(h);
        }
        let devices: Vec<Device> = self.devices().await?;
        let board = |d: &Device| OfflineBoard {
            name: d.name.clone(),
            mac: d.mac_address.to_string(),
            last_seen: d.last_seen,
        };
        let offline: Vec<OfflineBoard> = devices
            .iter()
            .filter(|d| d.status != DeviceStatus::Online && d.status != DeviceStatus::Maintenance)
            .map(board)
            .collect();
        let maintenance: Vec<OfflineBoard> = devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Maintenance)
            .map(board)
            .collect();
        let statuses = self.collector_statuses().await?;
        let registrations: Vec<Registration> =
            statuses.iter().map(CollectorStatus::registration).collect();
        let hearing = health::hearing(&registrations, now);
        let boards = BoardsHealth {
            total: devices.len(),
            online: (hearing == Hearing::Now)
                .then(|| devices.len() - offline.len() - maintenance.len()),
            unknown_since: match hearing {
                Hearing::Since(t) => Some(t),
                Hearing::Now | Hearing::Never => None,
            },
            offline,
            maintenance,
        };
        // What the collector recorded of boards it could not place (a small collection; the raw
        // telemetry is never searched here: it grows with every message).
        let mut unregistered_macs: Vec<String> = self
            .unregistered_devices()
            .await?
            .into_iter()
            .map(|u| u.mac)
            .collect();
        unregistered_macs.sort();
        unregistered_macs.dedup();
        let collectors: Vec<CollectorHealth> = statuses
            .into_iter()
            .zip(&registrations)
            .map(|(c, r)| {
                let state = r.state(now);
                CollectorHealth {
                    running: state.is_running(),
                    state: state.name(),
                    ended_at: state.ended_at(),
                    client_id: c.client_id,
                    updated_at: c.updated_at,
                    renew_every_secs: c.renew_every_ms as f64 / 1000.0,
                    broker_connected: c.broker_connected,
                    broker_lost_at: c.broker_lost_at,
                    database_down_since: c.database_down_since,
                    received: c.received,
                    rejected: c.rejected.values().sum(),
                    rejected_by_reason: c.rejected,
                }
            })
            .collect();
        // The collector stamps `lastSeen` on the boards it hears: the newest one says how far
        // behind it is, without searching the telemetry (which grows with every message).
        let newest_telemetry = devices.iter().filter_map(|d| d.last_seen).max();
        let collector_lag_secs =
            newest_telemetry.map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        let last_aggregation = self.last_aggregation().await?;
        self.check_readable().await?;
        let unreadable = self.unreadable_documents();

        let dead_letters = self.dead_letter_counts().await?;
        let mut problems = Problems::default();
        let failed: i64 = dead_letters
            .iter()
            .filter(|(k, _)| k.starts_with("failed/"))
            .map(|(_, n)| n)
            .sum();
        if failed > 0 {
            problems.raise(
                HealthLevel::Warning,
                format!(
                    "{failed} message(s) refused by the database for good and kept as dead letters: \
                     see `autovolt rejected list`, fix the cause, then `autovolt rejected replay ID`"
                ),
            );
        }
        if !status.pending.is_empty() {
            problems.raise(
                HealthLevel::Warning,
                format!(
                    "{} pending migration(s): run `autovolt migrate up`",
                    status.pending.len()
                ),
            );
        }
        if let Some(l) = &status.lock {
            problems.raise(
                HealthLevel::Warning,
                format!("migrations are locked: {}", l.describe(now)),
            );
        }
        for u in &unreadable {
            problems.raise(
                HealthLevel::Warning,
                format!(
                    "{} (skipped; e.g. _id {})",
                    u.describe(),
                    u.examples.join(", ")
                ),
            );
        }
        let limit = chrono::Duration::from_std(offline_after)
            .unwrap_or_else(|_| chrono::Duration::seconds(120));
        self.collector_problems(&collectors, hearing, now, limit, &mut problems);
        // While something hears the boards, their state and the newest one heard are facts; while
        // nothing does, the one cause is said above and these would only repeat it.
        if hearing == Hearing::Now {
            if !boards.offline.is_empty() {
                problems.raise(
                    HealthLevel::Warning,
                    format!(
                        "{} of {} boards offline",
                        boards.offline.len(),
                        boards.total
                    ),
                );
            }
            if let Some(lag) = collector_lag_secs.filter(|&l| l > offline_after.as_secs_f64()) {
                problems.raise(
                    HealthLevel::Warning,
                    format!(
                        "collector lag {} is above the offline threshold {} s: the collector hears \
                         the broker, but no board has reported since",
                        crate::format::seconds_ago(lag),
                        offline_after.as_secs()
                    ),
                );
            }
        }
        let caps = *self.capabilities();
        let took = started.elapsed().as_secs_f64();
        let slow_because = slowest
            .filter(|_| took > SLOW_CHECK_SECS)
            .map(|(t, name, n)| {
                format!(
                    "{:.1} s of it counting {name} ({} documents){}",
                    t.as_secs_f64(),
                    crate::format::grouped(n),
                    if self.server().kind == super::ServerKind::FerretDb {
                        ": FerretDB reads a whole collection to count or size it"
                    } else {
                        ""
                    }
                )
            });
        Ok(HealthReport {
            status: problems.level(),
            warnings: problems.warnings,
            criticals: problems.criticals,
            checked_at: now,
            database: self.database().name().to_string(),
            ping_ms: ping.as_secs_f64() * 1000.0,
            server: self.server().to_string(),
            server_kind: format!("{:?}", self.server().kind),
            server_version: self.server().version.clone(),
            capabilities: CapabilityFlags {
                change_streams: caps.change_streams,
                transactions: caps.transactions,
                ttl_indexes: caps.ttl_indexes,
                partial_indexes: caps.partial_indexes,
            },
            change_feed: if caps.change_streams {
                "stream"
            } else {
                "polling"
            }
            .into(),
            schema_version: status.version(),
            latest_schema_version: migrations::latest_version(),
            pending_migrations: status.pending.iter().map(|p| p.0).collect(),
            migration_lock: status.lock.map(|l| l.describe(now)),
            collections: collections_health,
            boards,
            unregistered_macs,
            newest_telemetry,
            collector_lag_secs,
            last_aggregation,
            collectors,
            took_secs: took,
            slow_because,
            unreadable,
            dead_letters,
            broker: None,
        })
    }

    /// What the collectors' records say is wrong: none running (a warning at once, critical past
    /// `limit`), none hearing the boards past `limit`, a running one cut off from the broker or the
    /// database. Collectors that stopped or fell silent raise nothing of their own.
    fn collector_problems(
        &self,
        collectors: &[CollectorHealth],
        hearing: Hearing,
        now: Instant,
        limit: chrono::Duration,
        problems: &mut Problems,
    ) {
        let tz = self.timezone();
        let running: Vec<&CollectorHealth> = collectors.iter().filter(|c| c.running).collect();
        if running.is_empty() {
            let last = collectors
                .iter()
                .filter_map(|c| Some((c.ended_at?, c)))
                .max_by_key(|(t, _)| *t);
            let (since, text) = match last {
                None => (
                    None,
                    "no collector running: none has run on this database; start `autovolt collect`"
                        .to_string(),
                ),
                Some((t, c)) => (
                    Some(t),
                    format!(
                        "no collector running since {}: {} {}; start `autovolt collect`",
                        since_text(t, now, tz),
                        c.client_id,
                        if c.state == "stopped" {
                            "stopped"
                        } else {
                            "stopped renewing its status (it died, or cannot reach the database)"
                        }
                    ),
                ),
            };
            // How long the boards have gone unheard decides the level: since the last collector
            // ended, or since it lost the broker if that came first.
            let since = match hearing {
                Hearing::Since(t) => Some(t),
                Hearing::Now | Hearing::Never => since,
            };
            problems.raise(health::unheard_level(since, now, limit), text);
            return;
        }
        for c in &running {
            if let Some(since) = c.database_down_since {
                problems.raise(
                    HealthLevel::Warning,
                    format!(
                        "collector {} cannot write to the database since {} ago: messages wait at the broker",
                        c.client_id,
                        crate::format::age(now, since)
                    ),
                );
            }
            if !c.broker_connected {
                problems.raise(
                    HealthLevel::Warning,
                    format!(
                        "collector {} is not connected to the broker{}",
                        c.client_id,
                        c.broker_lost_at
                            .map(|t| format!(" since {}", since_text(t, now, tz)))
                            .unwrap_or_default()
                    ),
                );
            }
        }
        if let Hearing::Since(t) = hearing {
            if health::unheard_level(Some(t), now, limit) == HealthLevel::Critical {
                problems.raise(
                    HealthLevel::Critical,
                    format!(
                        "no collector has heard the boards since {}: longer than the offline threshold {} s",
                        since_text(t, now, tz),
                        limit.num_seconds()
                    ),
                );
            }
        }
    }

    /// Reads what `health` vouches for through the same readers as every command, so that the
    /// documents they would skip are counted: all of the small collections, the newest
    /// [`NEWEST_CHECKED`] of the growing ones.
    async fn check_readable(&self) -> Result<(), StoreError> {
        self.classrooms().await?;
        self.cost_versions(None).await?;
        self.active_power_settings().await?;
        let all = |name: &'static str| async move {
            let cursor = self
                .collection::<bson::RawDocumentBuf>(name)
                .find(doc! {})
                .await?;
            Ok::<_, StoreError>(cursor)
        };
        let _: Vec<User> = self
            .read_all(collections::USERS, all(collections::USERS).await?)
            .await?;
        let _: Vec<PowerSettings> = self
            .read_all(
                collections::POWER_SETTINGS,
                all(collections::POWER_SETTINGS).await?,
            )
            .await?;
        // FerretDB sorts by reading the whole collection: there the first documents in storage
        // order are checked instead of the newest, so that `health` stays quick on a big ledger.
        let scans = self.server().kind == super::ServerKind::FerretDb;
        let newest = |name: &'static str| async move {
            let coll = self.collection::<bson::RawDocumentBuf>(name);
            let mut find = coll.find(doc! {}).limit(NEWEST_CHECKED);
            if !scans {
                find = find.sort(doc! {"_id": -1});
            }
            Ok::<_, StoreError>(find.await?)
        };
        let _: Vec<ActivityLog> = self
            .read_all(collections::ACTIVITY, newest(collections::ACTIVITY).await?)
            .await?;
        let _: Vec<LedgerRow> = self
            .read_all(collections::LEDGER, newest(collections::LEDGER).await?)
            .await?;
        let _: Vec<DailyAggregate> = self
            .read_all(collections::DAILY, newest(collections::DAILY).await?)
            .await?;
        let _: Vec<MonthlyAggregate> = self
            .read_all(collections::MONTHLY, newest(collections::MONTHLY).await?)
            .await?;
        let _: Vec<TelemetryEvent> = self
            .read_all(
                collections::TELEMETRY,
                newest(collections::TELEMETRY).await?,
            )
            .await?;
        Ok(())
    }

    /// The `n` largest collections of the database (see [`largest`]).
    pub async fn largest_collections(&self, n: usize) -> Result<Vec<CollectionHealth>, StoreError> {
        let mut all = Vec::new();
        for name in self.current_collection_names().await? {
            all.push(self.collection_health(&name).await?);
        }
        Ok(largest(&all, n))
    }

    /// Counts and sizes of one collection: the `$collStats` stage where the server has it, else
    /// the `collStats` command, else a count with the sizes unknown.
    pub async fn collection_health(&self, name: &str) -> Result<CollectionHealth, StoreError> {
        let server = self.server().to_string();
        // FerretDB 1.24's `$collStats` gives data and indexes together as `size`; its `collStats`
        // command gives the data size alone, as MongoDB does.
        if self.server().kind != super::capabilities::ServerKind::FerretDb {
            if let Some(h) = self.coll_stats_stage(name).await {
                return Ok(h.explain_unknown(&server));
            }
        }
        if let Ok(stats) = self.database().run_command(doc! {"collStats": name}).await {
            if let Some(count) = number(&stats, "count") {
                let indexes = match number(&stats, "nindexes") {
                    Some(n) => n as usize,
                    None => self.index_names(name).await?.len(),
                };
                return Ok(CollectionHealth {
                    name: name.to_string(),
                    documents: count,
                    size_bytes: number(&stats, "size"),
                    storage_bytes: number(&stats, "storageSize"),
                    index_bytes: number(&stats, "totalIndexSize"),
                    index_sizes: index_sizes(&stats),
                    indexes,
                    source: SizeSource::CollStatsCommand,
                    sizes_unknown_because: None,
                }
                .explain_unknown(&server));
            }
        }
        Ok(CollectionHealth {
            name: name.to_string(),
            documents: self
                .collection::<Document>(name)
                .count_documents(doc! {})
                .await?,
            size_bytes: None,
            storage_bytes: None,
            index_bytes: None,
            index_sizes: None,
            indexes: self.index_names(name).await?.len(),
            source: SizeSource::CountOnly,
            sizes_unknown_because: None,
        }
        .explain_unknown(&server))
    }

    /// `$collStats` with `storageStats`, summed over the shards; `None` where the server lacks it
    /// or leaves the figures out.
    async fn coll_stats_stage(&self, name: &str) -> Option<CollectionHealth> {
        use futures::TryStreamExt;
        let cursor = self
            .collection::<Document>(name)
            .aggregate(vec![doc! {"$collStats": {"storageStats": {}}}])
            .await
            .ok()?;
        let shards: Vec<Document> = cursor.try_collect().await.ok()?;
        let mut h = CollectionHealth {
            name: name.to_string(),
            documents: 0,
            size_bytes: Some(0),
            storage_bytes: Some(0),
            index_bytes: Some(0),
            index_sizes: Some(BTreeMap::new()),
            indexes: 0,
            source: SizeSource::CollStatsStage,
            sizes_unknown_because: None,
        };
        let add = |total: &mut Option<u64>, part: Option<u64>| {
            *total = match (*total, part) {
                (Some(t), Some(p)) => Some(t + p),
                _ => None,
            };
        };
        for shard in &shards {
            let stats = shard.get_document("storageStats").ok()?;
            h.documents += number(stats, "count")?;
            add(&mut h.size_bytes, number(stats, "size"));
            add(&mut h.storage_bytes, number(stats, "storageSize"));
            add(&mut h.index_bytes, number(stats, "totalIndexSize"));
            h.index_sizes = match (h.index_sizes.take(), index_sizes(stats)) {
                (Some(mut total), Some(part)) => {
                    for (k, v) in part {
                        *total.entry(k).or_default() += v;
                    }
                    Some(total)
                }
                _ => None,
            };
            h.indexes = h
                .indexes
                .max(number(stats, "nindexes").unwrap_or(0) as usize);
        }
        if shards.is_empty() {
            return None;
        }
        Some(h)
    }
}

/// `21:48 IST` in the campus time zone, with the date when it is not the day of `now` there.
pub fn since_text(t: Instant, now: Instant, tz: chrono_tz::Tz) -> String {
    let local = t.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M %Z").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M %Z").to_string()
    }
}

/// A whole, non-negative number as any numeric type.
fn number(d: &Document, k: &str) -> Option<u64> {
    match d.get(k)? {
        Bson::Int32(v) => u64::try_from(*v).ok(),
        Bson::Int64(v) => u64::try_from(*v).ok(),
        Bson::Double(v) if v.is_finite() && *v >= 0.0 => Some(*v as u64),
        _ => None,
    }
}

impl HealthReport {
    /// The problems found, as the verdict's rule reads them.
    fn problems(&self) -> Problems {
        Problems {
            warnings: self.warnings.clone(),
            criticals: self.criticals.clone(),
        }
    }

    /// Adds a problem found outside the database (the broker, from where the check runs), and
    /// derives the verdict again.
    pub fn raise(&mut self, level: HealthLevel, problem: impl Into<String>) {
        let mut problems = self.problems();
        problems.raise(level, problem);
        self.status = problems.level();
        self.warnings = problems.warnings;
        self.criticals = problems.criticals;
    }

    /// This report with the broker as `autovolt health` found it; a broker it cannot use is a
    /// warning (critical once no collector has heard the boards past the offline threshold, which
    /// the collectors' records say).
    pub fn with_broker(mut self, broker: BrokerHealth) -> HealthReport {
        if let Some(e) = &broker.error {
            self.raise(HealthLevel::Warning, e.clone());
        }
        self.broker = Some(broker);
        self
    }

    /// The broker as `autovolt health` reached it.
    fn render_broker(&self) -> String {
        match &self.broker {
            None => String::new(),
            Some(b) => match (&b.error, b.latency_ms) {
                (Some(e), _) => format!(" Broker    {} {e}\n", HealthLevel::Warning.mark()),
                (None, ms) => format!(
                    " Broker    {} {} answers in {:.1} ms\n",
                    HealthLevel::Ok.mark(),
                    b.url,
                    ms.unwrap_or_default()
                ),
            },
        }
    }

    /// The broker as the running collectors see it.
    fn render_mqtt(&self, tz: chrono_tz::Tz) -> String {
        let running: Vec<&CollectorHealth> = self.collectors.iter().filter(|c| c.running).collect();
        if running.is_empty() {
            let last = self
                .collectors
                .iter()
                .filter_map(|c| Some((c.ended_at?, c)))
                .max_by_key(|(t, _)| *t);
            let level = if self
                .criticals
                .iter()
                .any(|c| c.starts_with("no collector running"))
            {
                HealthLevel::Critical
            } else {
                HealthLevel::Warning
            };
            return match last {
                Some((t, c)) => format!(
                    " MQTT      {} no collector running since {} ({} {})\n",
                    level.mark(),
                    since_text(t, self.checked_at, tz),
                    c.client_id,
                    c.state
                ),
                None => format!(" MQTT      {} no collector running\n", level.mark()),
            };
        }
        let connected = running.iter().filter(|c| c.broker_connected).count();
        let level = if connected == running.len() {
            HealthLevel::Ok
        } else {
            HealthLevel::Warning
        };
        let received: i64 = running.iter().map(|c| c.received).sum();
        let rejected: i64 = running.iter().map(|c| c.rejected).sum();
        let db_down = running
            .iter()
            .filter(|c| c.database_down_since.is_some())
            .count();
        let mut line = format!(
            " MQTT      {} {connected}/{} collector(s) connected · {received} received · {rejected} rejected",
            level.mark(),
            running.len()
        );
        if db_down > 0 {
            line.push_str(&format!(" · {db_down} waiting for the database"));
        }
        line.push('\n');
        line
    }

    /// [`HealthReport::render_in`] with times in UTC.
    pub fn render(&self) -> String {
        self.render_in(chrono_tz::UTC)
    }

    /// The text `autovolt health` prints (SCREENS.md, "Health"), times in `tz` with the zone named.
    pub fn render_in(&self, tz: chrono_tz::Tz) -> String {
        let caps = &self.capabilities;
        let feed = if caps.change_streams {
            "change stream: yes".to_string()
        } else {
            "change stream: no → polling, paced by what a round costs".to_string()
        };
        let schema = if self.pending_migrations.is_empty() {
            format!("schema v{}", self.schema_version)
        } else {
            format!(
                "schema v{} (v{} available: migrate up)",
                self.schema_version, self.latest_schema_version
            )
        };
        let mut out = format!(
            " MongoDB   {} {:.1} ms   {} · {feed} · {schema}\n",
            HealthLevel::Ok.mark(),
            self.ping_ms,
            self.server
        );
        out.push_str(&format!(
            "           transactions: {} · TTL indexes: {} · partial indexes: {}\n",
            yn(caps.transactions),
            yn(caps.ttl_indexes),
            yn(caps.partial_indexes)
        ));
        out.push_str(&self.render_broker());
        // While nothing hears the boards, the newest one heard is no lag of a running collector.
        let heard = self.boards.online.is_some();
        let lag_level = if !heard || self.warnings.iter().any(|w| w.starts_with("collector lag")) {
            HealthLevel::Warning
        } else {
            HealthLevel::Ok
        };
        let lag = match self.collector_lag_secs {
            None => "no board heard yet".to_string(),
            Some(l) if heard => format!("lag {}", crate::format::seconds_ago(l)),
            Some(l) => format!("last board heard {} ago", crate::format::seconds_ago(l)),
        };
        let agg = self.last_aggregation.map_or("never".to_string(), |t| {
            t.with_timezone(&tz)
                .format("%Y-%m-%d at %H:%M %Z")
                .to_string()
        });
        out.push_str(&self.render_mqtt(tz));
        out.push_str(&format!(
            " Collector {} {lag} · last aggregation {agg}\n",
            lag_level.mark()
        ));
        let offline: Vec<String> = self
            .boards
            .offline
            .iter()
            .take(5)
            .map(|b| match b.last_seen {
                Some(t) => format!(
                    "{} {}",
                    b.name,
                    crate::format::seconds_ago((self.checked_at - t).num_seconds().max(0) as f64)
                ),
                None => format!("{} never seen", b.name),
            })
            .collect();
        let more = self.boards.offline.len().saturating_sub(offline.len());
        let mut boards = match (self.boards.online, self.boards.unknown_since) {
            (Some(online), _) => format!(" Boards    {online}/{} online", self.boards.total),
            // Nothing hears them: what is recorded is only what was last heard.
            (None, Some(t)) => format!(
                " Boards    {} unknown since {} (nothing hears them) · {} registered",
                HealthLevel::Warning.mark(),
                since_text(t, self.checked_at, tz),
                self.boards.total
            ),
            (None, None) => format!(
                " Boards    {} unknown (no collector has heard them) · {} registered",
                HealthLevel::Warning.mark(),
                self.boards.total
            ),
        };
        if !self.boards.maintenance.is_empty() {
            boards.push_str(&format!(
                " · {} in maintenance",
                self.boards.maintenance.len()
            ));
        }
        if !offline.is_empty() && self.boards.online.is_some() {
            boards.push_str(&format!(
                " · {} offline ({}{})",
                self.boards.offline.len(),
                offline.join(", "),
                if more > 0 {
                    format!(", +{more} more")
                } else {
                    String::new()
                }
            ));
        }
        let n = self.unregistered_macs.len();
        boards.push_str(&format!(
            " · {n} unregistered MAC{} seen\n",
            if n == 1 { "" } else { "s" }
        ));
        out.push_str(&boards);
        if !self.dead_letters.is_empty() {
            let failed = self.dead_letters.keys().any(|k| k.starts_with("failed/"));
            let total: i64 = self.dead_letters.values().sum();
            let by_reason: Vec<String> = self
                .dead_letters
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            out.push_str(&format!(
                " Rejected  {} {total} dead letter{} ({})\n",
                if failed {
                    HealthLevel::Warning.mark()
                } else {
                    HealthLevel::Ok.mark()
                },
                if total == 1 { "" } else { "s" },
                by_reason.join(", ")
            ));
        }
        out.push_str(&format!(
            "\n {:<26} {:>12} {:>10} {:>10} {:>8} {:>11}\n",
            "collection", "documents", "data", "storage", "indexes", "index size"
        ));
        for c in &self.collections {
            out.push_str(&format!(
                " {:<26} {:>12} {:>10} {:>10} {:>8} {:>11}\n",
                c.name,
                crate::format::grouped(c.documents),
                crate::format::size(c.size_bytes),
                crate::format::size(c.storage_bytes),
                c.indexes,
                crate::format::size(c.index_bytes)
            ));
        }
        let mut sources: Vec<&str> = self
            .collections
            .iter()
            .map(|c| c.source.describe())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        if !sources.is_empty() {
            out.push_str(&format!(" figures from {}\n", sources.join(" and ")));
        }
        let mut unknown: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in &self.collections {
            if let Some(why) = &c.sizes_unknown_because {
                unknown.entry(why).or_default().push(&c.name);
            }
        }
        for (why, names) in unknown {
            out.push_str(&format!(" sizes unknown for {}: {why}\n", names.join(", ")));
        }
        out.push('\n');
        match &self.slow_because {
            Some(why) => out.push_str(&format!(" checked in {:.1} s: {why}\n", self.took_secs)),
            None => out.push_str(&format!(" checked in {:.1} s\n", self.took_secs)),
        }
        out.push_str(&self.problems().render());
        out
    }
}

fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(
        name: &str,
        documents: u64,
        storage: Option<u64>,
        index: Option<u64>,
    ) -> CollectionHealth {
        CollectionHealth {
            name: name.into(),
            documents,
            size_bytes: storage.map(|s| s * 2),
            storage_bytes: storage,
            index_bytes: index,
            index_sizes: None,
            indexes: 1,
            source: if storage.is_some() {
                SizeSource::CollStatsCommand
            } else {
                SizeSource::CountOnly
            },
            sizes_unknown_because: None,
        }
    }

    #[test]
    fn an_unknown_size_says_why() {
        let counted = coll("c", 3, None, None).explain_unknown("MongoDB 3.0");
        assert_eq!(
            counted.sizes_unknown_because.as_deref(),
            Some("MongoDB 3.0 answers neither $collStats nor collStats: only the count is known")
        );
        let partial = coll("p", 3, Some(10), None).explain_unknown("FerretDB 1.24.2 (sqlite)");
        assert_eq!(
            partial.sizes_unknown_because.as_deref(),
            Some("FerretDB 1.24.2 (sqlite)'s collStats does not report the index size, each index's size")
        );
        let mut known = coll("k", 3, Some(10), Some(5));
        known.index_sizes = Some(BTreeMap::from([("_id_".to_string(), 5)]));
        assert_eq!(known.explain_unknown("x").sizes_unknown_because, None);
    }

    #[test]
    fn the_largest_collections_weigh_storage_and_indexes_then_count() {
        let all = vec![
            coll("small", 10, Some(100), Some(50)),
            coll("indexed", 5, Some(100), Some(900)),
            coll("big", 1, Some(5000), Some(10)),
            coll("unsized_many", 1_000_000, None, None),
            coll("unsized_few", 3, None, None),
            coll("tie_b", 10, Some(150), Some(0)),
            coll("tie_a", 10, Some(150), Some(0)),
        ];
        let names: Vec<String> = largest(&all, 10).into_iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "big",
                "indexed",
                "small",
                "tie_a",
                "tie_b",
                "unsized_many",
                "unsized_few"
            ]
        );
        assert_eq!(largest(&all, 2).len(), 2);
        assert!(largest(&[], 3).is_empty());
        // Only the data size known: it is the footprint.
        let mut data_only = coll("d", 1, None, None);
        data_only.size_bytes = Some(7);
        assert_eq!(data_only.footprint(), Some(7));
    }
}
