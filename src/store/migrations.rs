//! Schema versions (`migrations`): numbered, reversible steps, recorded one document per applied
//! version, and a lock document so that two runs cannot interleave. The lock is a lease
//! ([`super::lease`]): renewed while migrations run, taken over once a dead run's lease expired;
//! `autovolt migrate unlock` remains the manual override.

use super::lease::LockHolder;
use super::{collections, Store, StoreError};
use crate::domain::{dates, CostVersion, Instant, MigrationRecord, TariffScope};
use crate::domain::{energy, tariff::TariffBook};
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

/// The `_id` of the lock document in `migrations`.
pub(crate) const LOCK_ID: &str = "lock";
/// A lock written without a lease (by a version before leases) is stale, and taken over, this long
/// after it was taken.
pub const STALE_LOCK: chrono::Duration = chrono::Duration::minutes(10);
/// Ledger rows read and updated per round in migration 2.
const BATCH: i64 = 500;
/// The field migration 2 sets on the rows it fills, so that `down` removes only those costs.
pub const COST_FILLED_MARK: &str = "cost_filled_by_migration";

/// Every migration, in order: version and name.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, "collections and indexes"),
    (2, "fill missing ledger costs from the active tariff"),
    (3, "change journal for servers without change streams"),
    (4, "campus day totals from the daily rollups"),
    (5, "day books and device day totals from the ledger"),
    (
        6,
        "day books and device day totals partitioned by day and by month",
    ),
];

/// The recent days migration 5 builds day books for: every day the dashboard's month-to-date and
/// projection can ask for (a month and a week), and a few more.
pub const BOOKS_BUILT_DAYS: u64 = 40;

/// The latest schema version this build knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Who holds the migration lock.
#[derive(Debug, Clone, PartialEq)]
pub struct LockInfo {
    pub owner: String,
    pub acquired_at: Instant,
    /// When its lease runs out unless renewed; `None` for a lock written without a lease.
    pub expires_at: Option<Instant>,
}

impl LockInfo {
    pub fn age(&self, now: Instant) -> chrono::Duration {
        now - self.acquired_at
    }

    fn holder(&self) -> LockHolder {
        LockHolder {
            owner: self.owner.clone(),
            acquired_at: Some(self.acquired_at),
            expires_at: self.expires_at,
        }
    }

    /// Whether its lease has run out (its owner stopped renewing it): the next run takes it over.
    pub fn is_stale(&self, now: Instant) -> bool {
        self.holder().expired(now, STALE_LOCK)
    }

    /// "held by H:P since … (3 min, its lease expires in 40 s unless its owner renews it)".
    pub fn describe(&self, now: Instant) -> String {
        let state = self.holder().lease_state(now, STALE_LOCK);
        format!(
            "held by {} since {} ({} min, {state})",
            self.owner,
            self.acquired_at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.age(now).num_minutes()
        )
    }
}

/// The schema's state.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationStatus {
    pub applied: Vec<MigrationRecord>,
    /// Versions this build knows that are not applied, in order.
    pub pending: Vec<(i32, &'static str)>,
    pub lock: Option<LockInfo>,
}

impl MigrationStatus {
    /// The highest applied version (0 for an empty database).
    pub fn version(&self) -> i32 {
        self.applied.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// One migration run (or, in a dry run, that would run).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub version: i32,
    pub name: &'static str,
    pub direction: Direction,
    /// What it did or would do.
    pub detail: String,
}

/// The host and process that run migrations, for the lock.
pub fn this_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}:{}", std::process::id())
}

impl Store {
    fn migrations(&self) -> mongodb::Collection<Document> {
        self.collection(collections::MIGRATIONS)
    }

    /// Applied versions, pending ones and the lock.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let mut applied = Vec::new();
        let mut lock = None;
        let mut cursor = self.migrations().find(doc! {}).await?;
        while let Some(d) = cursor.try_next().await? {
            if d.get_str("_id") == Ok(LOCK_ID) {
                let date = |k: &str| d.get_datetime(k).ok().map(|t| t.to_chrono());
                lock = Some(LockInfo {
                    owner: d.get_str("owner").unwrap_or("unknown").to_string(),
                    acquired_at: date("acquired_at").unwrap_or_default(),
                    expires_at: date("expires_at"),
                });
                continue;
            }
            if let Some(record) = self.decode::<MigrationRecord>(collections::MIGRATIONS, d) {
                applied.push(record);
            }
        }
        applied.sort_by_key(|m| m.version);
        let pending = MIGRATIONS
            .iter()
            .filter(|(v, _)| !applied.iter().any(|a| a.version == *v))
            .copied()
            .collect();
        Ok(MigrationStatus {
            applied,
            pending,
            lock,
        })
    }

    /// The highest applied migration (0 when none).
    pub async fn schema_version(&self) -> Result<i32, StoreError> {
        Ok(self.migration_status().await?.version())
    }

    /// The schema version, or [`StoreError::NoSchema`] at version 0: a database nothing was ever
    /// migrated into (a new one, or a typo in its name) is named as such before anything reads it.
    pub async fn require_schema(&self) -> Result<i32, StoreError> {
        match self.schema_version().await? {
            0 => Err(StoreError::NoSchema {
                database: self.database().name().to_string(),
            }),
            v => Ok(v),
        }
    }

    /// Takes the lock (taking over one whose lease expired), or says who holds it.
    async fn lock_migrations(&self, owner: &str) -> Result<(), StoreError> {
        match self
            .take_lease(collections::MIGRATIONS, LOCK_ID, owner, doc! {}, STALE_LOCK)
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => {
                let now = dates::now_millis();
                let held = self.migration_status().await?.lock;
                let who = held.map_or("held by another run".to_string(), |l| l.describe(now));
                Err(StoreError::Conflict(format!(
                    "migrations are locked: {who}; wait for that run to finish, or if it is gone, \
                     run `autovolt migrate unlock`"
                )))
            }
        }
    }

    /// Removes the lock whoever holds it; returns what it was.
    pub async fn force_unlock_migrations(&self) -> Result<Option<LockInfo>, StoreError> {
        let lock = self.migration_status().await?.lock;
        self.migrations().delete_one(doc! {"_id": LOCK_ID}).await?;
        Ok(lock)
    }

    /// Applies pending migrations up to `target` (default: the latest). A dry run reports what
    /// would happen and changes nothing, and needs no lock.
    pub async fn migrate_up(
        &self,
        target: Option<i32>,
        dry_run: bool,
    ) -> Result<Vec<Step>, StoreError> {
        let target = target.unwrap_or_else(latest_version);
        if !MIGRATIONS.iter().any(|m| m.0 == target) && target != 0 {
            return Err(StoreError::Conflict(format!(
                "there is no migration {target}; known versions are 1 to {}",
                latest_version()
            )));
        }
        self.run_locked(dry_run, |status| {
            status
                .pending
                .iter()
                .filter(|(v, _)| *v <= target)
                .map(|&(v, n)| (v, n, Direction::Up))
                .collect()
        })
        .await
    }

    /// Reverts applied migrations above `to`, newest first.
    pub async fn migrate_down(&self, to: i32, dry_run: bool) -> Result<Vec<Step>, StoreError> {
        if to < 0 {
            return Err(StoreError::Conflict(
                "the version to go down to must be 0 or more".into(),
            ));
        }
        self.run_locked(dry_run, |status| {
            let mut steps: Vec<_> = status
                .applied
                .iter()
                .filter(|m| m.version > to)
                .filter_map(|m| MIGRATIONS.iter().find(|k| k.0 == m.version))
                .map(|&(v, n)| (v, n, Direction::Down))
                .collect();
            steps.reverse();
            steps
        })
        .await
    }

    async fn run_locked(
        &self,
        dry_run: bool,
        plan: impl FnOnce(&MigrationStatus) -> Vec<(i32, &'static str, Direction)>,
    ) -> Result<Vec<Step>, StoreError> {
        if dry_run {
            return self
                .run_plan(dry_run, plan, &CancellationToken::new())
                .await;
        }
        // One owner per run: two runs of one process must not pass for each other.
        let owner = format!("{}:{}", this_owner(), bson::oid::ObjectId::new());
        self.lock_migrations(&owner).await?;
        let keeper = self.keep_leases(collections::MIGRATIONS, vec![LOCK_ID.into()], &owner);
        let result = self.run_plan(dry_run, plan, keeper.lost()).await;
        drop(keeper);
        // Keep the first error; a failed unlock is reported only when all else went well.
        let unlocked = self
            .release_lease(collections::MIGRATIONS, LOCK_ID, &owner)
            .await;
        let steps = result?;
        unlocked?;
        Ok(steps)
    }

    /// Runs the planned steps; stops before a step, or between batches of one, once `lost` fires
    /// (the lock's lease was lost: another run may have started).
    async fn run_plan(
        &self,
        dry_run: bool,
        plan: impl FnOnce(&MigrationStatus) -> Vec<(i32, &'static str, Direction)>,
        lost: &CancellationToken,
    ) -> Result<Vec<Step>, StoreError> {
        let status = self.migration_status().await?;
        let mut steps = Vec::new();
        for (version, name, direction) in plan(&status) {
            if lost.is_cancelled() {
                return Err(lease_lost());
            }
            let started = std::time::Instant::now();
            let detail = match (version, direction) {
                (1, Direction::Up) => self.m1_up(dry_run).await?,
                (1, Direction::Down) => self.m1_down(dry_run).await?,
                (2, Direction::Up) => self.m2_up(dry_run, lost).await?,
                (2, Direction::Down) => self.m2_down(dry_run).await?,
                (3, Direction::Up) => self.m3_up(dry_run).await?,
                (3, Direction::Down) => self.m3_down(dry_run).await?,
                (4, Direction::Up) => self.m4_up(dry_run).await?,
                (4, Direction::Down) => self.m4_down(dry_run).await?,
                (5, Direction::Up) => self.m5_up(dry_run).await?,
                (5, Direction::Down) => self.m5_down(dry_run).await?,
                (6, Direction::Up) => self.m6_up(dry_run).await?,
                (6, Direction::Down) => self.m6_down(dry_run).await?,
                _ => {
                    return Err(StoreError::Conflict(format!(
                        "migration {version} is not known to this build"
                    )))
                }
            };
            if !dry_run {
                match direction {
                    Direction::Up => {
                        let record = MigrationRecord {
                            version,
                            name: name.to_string(),
                            applied_at: dates::now_millis(),
                            duration_ms: started.elapsed().as_millis() as i64,
                        };
                        let d = bson::to_document(&record)
                            .map_err(|e| StoreError::Decode(e.to_string()))?;
                        self.migrations().insert_one(d).await?;
                    }
                    Direction::Down => {
                        self.migrations().delete_one(doc! {"_id": version}).await?;
                    }
                }
            }
            steps.push(Step {
                version,
                name,
                direction,
                detail,
            });
        }
        Ok(steps)
    }

    async fn m1_up(&self, dry_run: bool) -> Result<String, StoreError> {
        let existing = self.collection_names().await?;
        let missing: Vec<&str> = collections::ALL
            .iter()
            .copied()
            .filter(|c| !existing.iter().any(|e| e == c))
            .collect();
        if dry_run {
            let specs = super::indexes::index_specs(self.capabilities());
            let mut absent = 0;
            for s in &specs {
                if !self.index_names(s.collection).await?.contains(&s.name) {
                    absent += 1;
                }
            }
            return Ok(format!(
                "would create {} collections and {absent} indexes",
                missing.len()
            ));
        }
        for c in &missing {
            match self.database().create_collection(*c).await {
                Ok(()) => {}
                // Created meanwhile by someone else: that is what we wanted.
                Err(e) if super::error::error_code(&e) == Some(NAMESPACE_EXISTS) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let report = self.ensure_indexes().await?;
        Ok(format!(
            "created {} collections and {} indexes ({} already there)",
            missing.len(),
            report.created.len(),
            report.existing
        ))
    }

    async fn m1_down(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok("would drop the schema's indexes (collections and data stay)".into());
        }
        let dropped = self.drop_schema_indexes().await?;
        Ok(format!(
            "dropped {} indexes (collections and data stay)",
            dropped.len()
        ))
    }

    /// The rate migration 2 fills with at `t`: the active power settings' price, else the global
    /// cost version in force at `t`.
    async fn m2_rates(&self) -> Result<(Option<f64>, Vec<CostVersion>), StoreError> {
        let active = self
            .active_power_settings()
            .await?
            .map(|p| p.electricity_price);
        let globals: Vec<CostVersion> = self
            .find_cost_versions(
                doc! {"scope": TariffScope::Global.as_str()},
                doc! {"_id": 1},
            )
            .await?;
        Ok((active, globals))
    }

    async fn m2_up(&self, dry_run: bool, lost: &CancellationToken) -> Result<String, StoreError> {
        let ledger = self.collection::<Document>(collections::LEDGER);
        let missing = doc! {"cost_calculation": null};
        if dry_run {
            let n = ledger.count_documents(missing).await?;
            return Ok(format!("would fill the cost of {n} ledger rows"));
        }
        let (active, globals) = self.m2_rates().await?;
        let book = TariffBook::new(globals, 0.0);
        let rate_at = |t: Instant| -> Option<f64> {
            active.or_else(|| {
                book.versions
                    .iter()
                    .any(|v| v.in_force_at(t))
                    .then(|| book.rate_at(t, "", "").cost_per_kwh)
            })
        };
        let (mut filled, mut skipped) = (0u64, 0u64);
        let mut last: Option<Bson> = None;
        loop {
            if lost.is_cancelled() {
                return Err(lease_lost());
            }
            let mut filter = missing.clone();
            if let Some(id) = &last {
                filter.insert("_id", doc! {"$gt": id.clone()});
            }
            let batch: Vec<Document> = ledger
                .find(filter)
                .sort(doc! {"_id": 1})
                .limit(BATCH)
                .await?
                .try_collect()
                .await?;
            let Some(end) = batch.last().and_then(|d| d.get("_id")).cloned() else {
                break;
            };
            let now = bson::DateTime::from_chrono(dates::now_millis());
            for row in &batch {
                let (Some(id), Ok(start)) = (row.get("_id"), row.get_datetime("start_ts")) else {
                    skipped += 1;
                    continue;
                };
                let Some(rate) = rate_at(start.to_chrono()) else {
                    skipped += 1;
                    continue;
                };
                let wh = row
                    .get("delta_wh")
                    .and_then(Bson::as_f64)
                    .or_else(|| row.get_i64("delta_wh").ok().map(|v| v as f64))
                    .or_else(|| row.get_i32("delta_wh").ok().map(f64::from))
                    .unwrap_or(0.0);
                // Guarded by "still missing", so a cost the collector wrote meanwhile is kept.
                let r = ledger
                    .update_one(
                        doc! {"_id": id.clone(), "cost_calculation": null},
                        doc! {"$set": {
                            "cost_calculation": {"cost_per_kwh": rate, "cost_inr": energy::cost_inr(wh, rate)},
                            COST_FILLED_MARK: 2,
                            "updatedAt": now,
                        }},
                    )
                    .await?;
                filled += r.modified_count;
            }
            last = Some(end);
        }
        Ok(if skipped == 0 {
            format!("filled the cost of {filled} ledger rows")
        } else {
            format!(
                "filled the cost of {filled} ledger rows; {skipped} left without a cost (no active \
                 power settings and no global cost version in force at their start)"
            )
        })
    }

    async fn m2_down(&self, dry_run: bool) -> Result<String, StoreError> {
        let ledger = self.collection::<Document>(collections::LEDGER);
        let marked = doc! {COST_FILLED_MARK: 2};
        if dry_run {
            let n = ledger.count_documents(marked).await?;
            return Ok(format!(
                "would remove the cost it filled on {n} ledger rows"
            ));
        }
        let now = bson::DateTime::from_chrono(dates::now_millis());
        let r = ledger
            .update_many(
                marked,
                doc! {"$unset": {"cost_calculation": "", COST_FILLED_MARK: ""}, "$set": {"updatedAt": now}},
            )
            .await?;
        Ok(format!(
            "removed the cost it filled on {} ledger rows",
            r.modified_count
        ))
    }
}

impl Store {
    async fn m3_up(&self, dry_run: bool) -> Result<String, StoreError> {
        let size = format!(
            "capped at {} entries / {} MiB",
            super::journal::JOURNAL_MAX_ENTRIES,
            super::journal::JOURNAL_MAX_BYTES / (1024 * 1024)
        );
        if dry_run {
            return Ok(format!("would create the change journal ({size})"));
        }
        Ok(if self.ensure_journal().await? {
            format!("created the change journal ({size})")
        } else {
            "the change journal was already there".into()
        })
    }

    async fn m3_down(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok("would drop the change journal (a copy of recent writes only)".into());
        }
        self.drop_journal().await?;
        Ok("dropped the change journal".into())
    }

    async fn m4_up(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok(
                "would sum the daily rollups into one document per campus day (one pass over them)"
                    .into(),
            );
        }
        let (days, rollups) = self.summarize_all_days().await?;
        Ok(format!(
            "summed {rollups} daily rollups into {days} campus days"
        ))
    }

    async fn m4_down(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok("would drop the campus day totals (the rollups stay)".into());
        }
        for c in [
            super::campus_days::CAMPUS_DAYS,
            super::campus_days::CLASSROOM_DAYS,
        ] {
            self.collection::<bson::Document>(c).drop().await?;
        }
        Ok("dropped the campus day totals (the rollups stay)".into())
    }

    async fn m5_up(&self, dry_run: bool) -> Result<String, StoreError> {
        let today = crate::domain::interval::local_date(dates::now_millis(), self.timezone());
        let from = today
            .checked_sub_days(chrono::Days::new(BOOKS_BUILT_DAYS))
            .unwrap_or(today);
        if dry_run {
            return Ok(format!(
                "would build the day books of {from} to {today} from the ledger (one pass over \
                 its rows of those days) and each device's total of the aggregated days"
            ));
        }
        let total = (today - from).num_days() + 1;
        let (books, days) = self
            .build_day_books(from, |date, done| {
                tracing::info!(%date, done, total, "day books built from the ledger");
            })
            .await?;
        Ok(format!(
            "built {books} day books of {from} to {today} ({}) from the ledger, and device totals \
             of {days} aggregated days",
            self.timezone().name()
        ))
    }

    async fn m5_down(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok("would drop the day books and device day totals (the ledger stays)".into());
        }
        self.drop_day_books().await?;
        Ok("dropped the day books and device day totals (the ledger stays)".into())
    }

    async fn m6_up(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok(
                "would move the day books into one collection per day and the device day \
                       totals into one per month"
                    .into(),
            );
        }
        let (books, days) = self.partition_day_books().await?;
        Ok(format!(
            "moved {books} day books into one collection per day and {days} days of device \
             totals into one per month"
        ))
    }

    async fn m6_down(&self, dry_run: bool) -> Result<String, StoreError> {
        if dry_run {
            return Ok(
                "would move the day books and device day totals back into one collection \
                       each"
                    .into(),
            );
        }
        let (books, days) = self.unpartition_day_books().await?;
        Ok(format!(
            "moved {books} day books and {days} days of device totals back into one collection each"
        ))
    }
}

fn lease_lost() -> StoreError {
    StoreError::Conflict(
        "migrating stopped: the migration lock could not be renewed in time and another run may \
         have taken it over; what was done is consistent, run `autovolt migrate up` again"
            .into(),
    )
}

/// MongoDB's "namespace exists" code.
pub(crate) const NAMESPACE_EXISTS: i32 = 48;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (i, (v, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i32 + 1);
        }
        assert_eq!(latest_version(), 6);
    }

    #[test]
    fn a_lock_turns_stale_after_ten_minutes() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let l = LockInfo {
            owner: "ops-1:42".into(),
            acquired_at: at,
            expires_at: None,
        };
        assert!(!l.is_stale(at + chrono::Duration::minutes(10)));
        assert!(l.is_stale(at + chrono::Duration::minutes(11)));
        let text = l.describe(at + chrono::Duration::minutes(11));
        assert!(text.contains("ops-1:42") && text.contains("11 min") && text.contains("stale"));
    }
}
