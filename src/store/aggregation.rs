//! Building `dailyaggregates` and `monthlyaggregates` from the ledger with portable pipelines
//! (`$match` + `$group` with `$sum` only; the ratios are finished in Rust), idempotently: a document
//! is written only when it differs from what is stored, so a second run changes nothing.
//!
//! Runs of the same day or month cannot interleave (a lock document per day and month); the daily
//! run of the collectors happens once across all of them (a claim document per date). Locks and
//! claims are leases ([`super::lease`]): renewed while their run works, taken over once a dead
//! run's lease has expired, so a killed run never blocks the books.

use super::collections::{DAILY, LEDGER, MONTHLY};
use super::{AggregateQuery, Store, StoreError};
use crate::domain::activity::action;
use crate::domain::interval::{local_date, local_midnight};
use crate::domain::rollup::{self, SwitchGroup};
use crate::domain::totals::{
    Amount, ClosedSwitch, DayTotal, OpenSwitch, RunningTotals, PROJECTION_DAYS,
};
use crate::domain::{
    dates, ActivityLog, Actor, Confidence, DailyAggregate, Instant, Permission, TriggeredBy,
};
use bson::{doc, Bson, Document};
use chrono::{Datelike, Days, NaiveDate};
use chrono_tz::Tz;
use futures::TryStreamExt;
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// Locks of running aggregations and the claims of the collectors' daily runs (**Ours**).
pub const AGGREGATION_RUNS: &str = "aggregationruns";

/// The `_id` of the record of the last finished aggregation in [`AGGREGATION_RUNS`].
const LAST_RUN: &str = "last:aggregation";

/// A lock or claim written without a lease (by a version before leases) is stale, and taken over,
/// this long after it was taken.
pub const STALE_LOCK_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// How many days back the collectors' daily run looks for a day whose run died unfinished.
pub const CATCH_UP_DAYS: u64 = 7;
/// The `_id` of the record of days that got ledger rows after they ended (`days.YYYY-MM-DD`: when).
const LATE_DAYS: &str = "late:days";
/// Days whose day books one ledger pass of an aggregation repairs.
const REPAIR_DAYS_PER_PASS: u64 = 31;
/// How often the collectors' daily job looks for late days.
pub const LATE_DAYS_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What to aggregate: the campus-local days `from..=to`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
    pub triggered_by: TriggeredBy,
    /// Who asked, checked for [`Permission::RunAggregation`] and named in the activity log; `None`
    /// for the collector's own nightly run.
    pub by: Option<Actor>,
    /// Remove the locks of these days and months first (after a run died holding them).
    pub break_locks: bool,
}

/// Progress of a run, for a progress bar: `done` of `total` classroom-days, and which one was just
/// written. `total` grows when a day holds classrooms the `classrooms` collection does not know.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationProgress {
    pub done: usize,
    pub total: usize,
    pub date: String,
    pub classroom: String,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregationSummary {
    pub days: usize,
    pub ledger_rows: u64,
    pub daily_written: usize,
    pub daily_unchanged: usize,
    pub daily_removed: usize,
    pub monthly_written: usize,
    pub monthly_unchanged: usize,
    pub monthly_removed: usize,
    /// Day books (one device's day each) the run set right from the ledger.
    pub books_repaired: usize,
    /// Stopped early by its cancellation token; the days finished before are complete.
    pub cancelled: bool,
}

/// What writing one family of documents did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct SyncCounts {
    written: usize,
    unchanged: usize,
    removed: usize,
}

/// The fields of a ledger row the sums need.
#[derive(serde::Deserialize)]
pub(crate) struct RowSums {
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    pub(crate) device_id: String,
    #[serde(default)]
    pub(crate) switch_id: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    pub(crate) classroom: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    esp32_name: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    pub(crate) switch_name: String,
    #[serde(default)]
    pub(crate) quality: Option<crate::domain::Quality>,
    #[serde(default)]
    pub(crate) delta_wh: f64,
    #[serde(default)]
    pub(crate) switch_on_duration_seconds: f64,
    #[serde(default)]
    pub(crate) cost_calculation: Option<crate::domain::CostCalculation>,
    pub(crate) start_ts: bson::DateTime,
    #[serde(rename = "createdAt", default)]
    pub(crate) created_at: Option<bson::DateTime>,
}

/// The `$group` stage's key, mapped back to its fields.
fn group_from(d: &Document) -> SwitchGroup {
    let key = d.get_document("_id").cloned().unwrap_or_default();
    // A classroom or device stored as an ObjectId reference groups as its hex (resolved later).
    let text = |k: &str| match key.get(k) {
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::ObjectId(id)) => id.to_hex(),
        _ => String::new(),
    };
    let num = |k: &str| match d.get(k) {
        Some(Bson::Double(x)) => *x,
        Some(Bson::Int32(x)) => f64::from(*x),
        Some(Bson::Int64(x)) => *x as f64,
        _ => 0.0,
    };
    SwitchGroup {
        device_id: text("device_id"),
        switch_id: text("switch_id"),
        classroom: text("classroom"),
        esp32_name: text("esp32_name"),
        switch_name: text("switch_name"),
        confidence: match key.get_str("confidence") {
            Ok(c) => Confidence::parse(c),
            Err(_) => Confidence::High,
        },
        wh: num("wh"),
        seconds: num("seconds"),
        cost: num("cost"),
        rows: num("rows") as u64,
    }
}

/// The campus-local day `date` as a `start_ts` range: `[midnight, next midnight)`.
pub fn day_range(date: NaiveDate, tz: Tz) -> (Instant, Instant) {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (local_midnight(date, tz), local_midnight(next, tz))
}

pub(crate) fn date_string(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// A document as compared for idempotency: without `_id` and the timestamps.
fn content(mut d: Document) -> Document {
    d.remove("_id");
    d.remove("createdAt");
    d.remove("updatedAt");
    d
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Document, StoreError> {
    bson::to_document(value).map_err(|e| StoreError::Decode(e.to_string()))
}

fn lock_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    )
}

/// Every date of `from..=to`.
pub fn dates_between(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d <= to).collect()
}

impl Store {
    /// The sums of the ledger rows that start in `[from, to)` (and, with `written_before`, were
    /// written before it: `createdAt` earlier or absent), per switch (and labels and confidence).
    pub async fn switch_groups(
        &self,
        from: Instant,
        to: Instant,
        written_before: Option<Instant>,
    ) -> Result<Vec<SwitchGroup>, StoreError> {
        let mut groups = if self.capabilities().group_sums {
            self.switch_groups_pipeline(from, to, written_before)
                .await?
        } else {
            let mut days = self
                .switch_groups_streamed(&[from, to], written_before)
                .await?;
            days.pop().unwrap_or_default()
        };
        let names: Vec<&mut String> = groups.iter_mut().map(|g| &mut g.classroom).collect();
        self.resolve_classroom_refs(names).await?;
        Ok(groups)
    }

    /// The same sums for each campus-local day of `from..=to`, in date order. Where the server sums
    /// several accumulators of one `$group` correctly this is one portable pipeline per day (an
    /// index range each); FerretDB 1.24 feeds only the first accumulator (the others see no
    /// documents), so there the rows of the whole range are streamed once, with a projection, and
    /// summed here instead.
    pub async fn switch_groups_by_day(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tz: Tz,
    ) -> Result<Vec<(NaiveDate, Vec<SwitchGroup>)>, StoreError> {
        let days = dates_between(from, to);
        let mut out = Vec::with_capacity(days.len());
        if self.capabilities().group_sums {
            for d in days {
                let (a, b) = day_range(d, tz);
                out.push((d, self.switch_groups_pipeline(a, b, None).await?));
            }
        } else {
            let mut bounds: Vec<Instant> = days.iter().map(|d| day_range(*d, tz).0).collect();
            bounds.push(day_range(to, tz).1);
            let groups = self.switch_groups_streamed(&bounds, None).await?;
            out.extend(days.into_iter().zip(groups));
        }
        let names: Vec<&mut String> = out
            .iter_mut()
            .flat_map(|(_, groups)| groups.iter_mut().map(|g| &mut g.classroom))
            .collect();
        self.resolve_classroom_refs(names).await?;
        Ok(out)
    }

    async fn switch_groups_pipeline(
        &self,
        from: Instant,
        to: Instant,
        written_before: Option<Instant>,
    ) -> Result<Vec<SwitchGroup>, StoreError> {
        let mut filter = doc! {"start_ts": {
            "$gte": bson::DateTime::from_chrono(from),
            "$lt": bson::DateTime::from_chrono(to),
        }};
        if let Some(t) = written_before {
            filter.insert(
                "createdAt",
                doc! {"$not": {"$gte": bson::DateTime::from_chrono(t)}},
            );
        }
        let pipeline = vec![
            doc! {"$match": filter},
            doc! {"$group": {
                "_id": {
                    "device_id": "$device_id",
                    "switch_id": "$switch_id",
                    "classroom": "$classroom",
                    "esp32_name": "$esp32_name",
                    "switch_name": "$switch_name",
                    "confidence": "$quality.confidence",
                },
                "wh": {"$sum": "$delta_wh"},
                "seconds": {"$sum": "$switch_on_duration_seconds"},
                "cost": {"$sum": "$cost_calculation.cost_inr"},
                "rows": {"$sum": 1},
            }},
        ];
        let docs: Vec<Document> = self
            .collection::<Document>(LEDGER)
            .aggregate(pipeline)
            .await?
            .try_collect()
            .await?;
        Ok(docs.iter().map(group_from).collect())
    }

    /// One pass over the rows starting in `[bounds[0], bounds[last])`, summed per switch within
    /// each `[bounds[i], bounds[i + 1])`.
    async fn switch_groups_streamed(
        &self,
        bounds: &[Instant],
        written_before: Option<Instant>,
    ) -> Result<Vec<Vec<SwitchGroup>>, StoreError> {
        type Key = (String, String, String, String, String, String);
        let slots = bounds.len().saturating_sub(1);
        let mut buckets: Vec<BTreeMap<Key, SwitchGroup>> = vec![BTreeMap::new(); slots];
        let (Some(first), Some(last)) = (bounds.first(), bounds.last()) else {
            return Ok(Vec::new());
        };
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(LEDGER)
            .find(doc! {"start_ts": {
                "$gte": bson::DateTime::from_chrono(*first),
                "$lt": bson::DateTime::from_chrono(*last),
            }})
            .projection(doc! {
                "_id": 1, "device_id": 1, "switch_id": 1, "classroom": 1, "esp32_name": 1,
                "switch_name": 1, "quality": 1, "delta_wh": 1, "switch_on_duration_seconds": 1,
                "cost_calculation": 1, "start_ts": 1, "createdAt": 1,
            })
            .await?;
        while let Some(raw) = cursor.try_next().await? {
            let Some(r) = self.decode_raw::<RowSums>(LEDGER, &raw) else {
                continue;
            };
            if let (Some(limit), Some(created)) = (written_before, r.created_at) {
                if created.to_chrono() >= limit {
                    continue;
                }
            }
            let start = r.start_ts.to_chrono();
            let slot = bounds.partition_point(|b| *b <= start).saturating_sub(1);
            let Some(bucket) = buckets.get_mut(slot) else {
                continue;
            };
            let confidence = r.quality.map(|q| q.confidence).unwrap_or_default();
            let key = (
                r.device_id,
                r.switch_id,
                r.classroom,
                r.esp32_name,
                r.switch_name,
                confidence.to_string(),
            );
            let g = bucket.entry(key).or_insert_with_key(|k| SwitchGroup {
                device_id: k.0.clone(),
                switch_id: k.1.clone(),
                classroom: k.2.clone(),
                esp32_name: k.3.clone(),
                switch_name: k.4.clone(),
                confidence,
                ..SwitchGroup::default()
            });
            g.wh += r.delta_wh;
            g.seconds += r.switch_on_duration_seconds;
            g.cost += r.cost_calculation.map_or(0.0, |c| c.cost_inr);
            g.rows += 1;
        }
        Ok(buckets
            .into_iter()
            .map(|b| b.into_values().collect())
            .collect())
    }

    /// Aggregates the days of `request` (then the months they touch), reporting progress on
    /// `progress` and stopping between classrooms when `cancel` fires. Logs an `aggregation_run`.
    pub async fn aggregate(
        &self,
        request: &AggregationRequest,
        progress: Option<UnboundedSender<AggregationProgress>>,
        cancel: &CancellationToken,
    ) -> Result<AggregationSummary, StoreError> {
        if let Some(by) = &request.by {
            by.may(Permission::RunAggregation)?;
        }
        if request.to < request.from {
            return Err(StoreError::Invalid(crate::domain::ValidationError::new(
                "to",
                date_string(request.to),
                format!("must not be before from ({})", date_string(request.from)),
            )));
        }
        let started = std::time::Instant::now();
        let owner = lock_owner();
        // The whole period is locked before anything is read, so that two runs of overlapping
        // periods cannot interleave; one that finds a day locked gives back what it took.
        let keys: Vec<String> = dates_between(request.from, request.to)
            .iter()
            .map(|d| format!("day:{}", date_string(*d)))
            .collect();
        let mut held: Vec<String> = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Err(e) = self.acquire_lock(key, &owner, request.break_locks).await {
                for k in &held {
                    self.release_lock(k, &owner).await?;
                }
                return Err(e);
            }
            held.push(key.clone());
        }
        let keeper = self.keep_leases(
            AGGREGATION_RUNS,
            held.iter().map(|k| lock_id(k)).collect(),
            &owner,
        );
        // Stops the run between classrooms when the operator cancels or a lease is lost.
        let stop = cancel.child_token();
        let result = {
            let lost = keeper.lost().clone();
            let stop_on_loss = stop.clone();
            let watch = tokio::spawn(async move {
                lost.cancelled().await;
                stop_on_loss.cancel();
            });
            let r = self
                .aggregate_locked(request, &owner, progress, &stop, &keeper)
                .await;
            watch.abort();
            r
        };
        let lost = keeper.lost().is_cancelled();
        drop(keeper);
        for k in &held {
            self.release_lock(k, &owner).await?;
        }
        let summary = result?;
        if lost {
            return Err(StoreError::Conflict(format!(
                "the aggregation of {} to {} stopped: its lock was lost (it could not be renewed in                  time, and another run may have taken it over); the days finished before are                  complete, run it again for the rest",
                date_string(request.from),
                date_string(request.to)
            )));
        }

        let mut log = ActivityLog::new(
            action::AGGREGATION_RUN,
            request.triggered_by.clone(),
            dates::now_millis(),
        );
        log.user_name = request.by.as_ref().map(|b| b.name.clone());
        log.user_id = request.by.as_ref().and_then(|b| b.user_id);
        log.context = Some(serde_json::json!({
            "from": date_string(request.from),
            "to": date_string(request.to),
            "timezone": request.tz.name(),
            "days": summary.days,
            "ledger_rows": summary.ledger_rows,
            "daily_written": summary.daily_written,
            "daily_unchanged": summary.daily_unchanged,
            "daily_removed": summary.daily_removed,
            "monthly_written": summary.monthly_written,
            "books_repaired": summary.books_repaired,
            "cancelled": summary.cancelled,
            "duration_ms": started.elapsed().as_millis() as u64,
        }));
        self.log_activity(&log).await?;
        // One small record of the last run, so that `health` finds it without searching the log.
        self.collection::<Document>(AGGREGATION_RUNS)
            .update_one(
                doc! {"_id": LAST_RUN},
                doc! {"$set": {
                    "at": bson::DateTime::from_chrono(log.timestamp),
                    "from": date_string(request.from),
                    "to": date_string(request.to),
                    "ledger_rows": summary.ledger_rows as i64,
                    "duration_ms": started.elapsed().as_millis() as i64,
                }},
            )
            .upsert(true)
            .await?;
        Ok(summary)
    }

    /// When an aggregation last finished, from its record.
    pub async fn last_aggregation(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .collection::<Document>(AGGREGATION_RUNS)
            .find_one(doc! {"_id": LAST_RUN})
            .await?
            .and_then(|d| d.get_datetime("at").ok().map(|t| t.to_chrono())))
    }

    async fn aggregate_locked(
        &self,
        request: &AggregationRequest,
        owner: &str,
        progress: Option<UnboundedSender<AggregationProgress>>,
        cancel: &CancellationToken,
        keeper: &super::lease::LeaseKeeper,
    ) -> Result<AggregationSummary, StoreError> {
        let known: BTreeSet<String> = self
            .classrooms()
            .await?
            .into_iter()
            .map(|c| c.name)
            .collect();
        let mut done = 0;
        let mut summary = AggregationSummary::default();
        let mut months: BTreeSet<NaiveDate> = BTreeSet::new();
        let groups_by_day = self
            .switch_groups_by_day(request.from, request.to, request.tz)
            .await?;
        // The stored aggregates of the whole period in one query (on FerretDB every query scans).
        let mut existing: BTreeMap<String, Vec<Document>> = BTreeMap::new();
        let mut cursor = self
            .collection::<Document>(DAILY)
            .find(doc! {"date_string": {
                "$gte": date_string(request.from),
                "$lte": date_string(request.to),
            }})
            .await?;
        while let Some(d) = cursor.try_next().await? {
            let day = d.get_str("date_string").unwrap_or_default().to_string();
            existing.entry(day).or_default().push(d);
        }
        // Each day writes every known classroom and any other its rows name; a day whose stored
        // aggregates name still others adds them when it gets there.
        let expected = |groups: &[SwitchGroup]| {
            let mut names: BTreeSet<&str> = known.iter().map(String::as_str).collect();
            names.extend(groups.iter().map(|g| g.classroom.as_str()));
            names.len()
        };
        let mut total: usize = groups_by_day.iter().map(|(_, g)| expected(g)).sum();
        let mut last_finished = None;

        for (date, groups) in &groups_by_day {
            if cancel.is_cancelled() {
                summary.cancelled = true;
                break;
            }
            let planned = expected(groups);
            let mut first = true;
            let stored = existing.remove(&date_string(*date)).unwrap_or_default();
            let (counts, rows, finished) = self
                .aggregate_day(
                    *date,
                    groups,
                    stored,
                    &known,
                    cancel,
                    |classroom, day_total| {
                        if first {
                            total += day_total.saturating_sub(planned);
                            first = false;
                        }
                        done += 1;
                        if let Some(tx) = &progress {
                            let _ = tx.send(AggregationProgress {
                                done,
                                total,
                                date: date_string(*date),
                                classroom: classroom.to_string(),
                            });
                        }
                    },
                )
                .await?;
            summary.days += usize::from(finished);
            summary.ledger_rows += rows;
            summary.daily_written += counts.written;
            summary.daily_unchanged += counts.unchanged;
            summary.daily_removed += counts.removed;
            months.insert(date.with_day(1).unwrap_or(*date));
            if !finished {
                summary.cancelled = true;
                break;
            }
            last_finished = Some(*date);
        }
        // The day books of the finished days from the same ledger, a month of days per pass:
        // rows another program wrote are counted, a tampered book is set right.
        if let Some(last) = last_finished {
            let mut from = request.from;
            while from <= last {
                let to = from
                    .checked_add_days(Days::new(REPAIR_DAYS_PER_PASS - 1))
                    .unwrap_or(last)
                    .min(last);
                let repaired = self.repair_day_books(from, to, |_| {}).await?;
                summary.books_repaired += repaired.books;
                from = match to.succ_opt() {
                    Some(d) => d,
                    None => break,
                };
            }
        }
        for month in months {
            if keeper.lost().is_cancelled() {
                break;
            }
            let key = format!("month:{}", rollup::month_string(month));
            self.acquire_lock(&key, owner, request.break_locks).await?;
            keeper.add(lock_id(&key)).await;
            let result = self.rebuild_month(month).await;
            keeper.remove(&lock_id(&key)).await;
            self.release_lock(&key, owner).await?;
            let counts = result?;
            summary.monthly_written += counts.written;
            summary.monthly_unchanged += counts.unchanged;
            summary.monthly_removed += counts.removed;
        }
        Ok(summary)
    }

    /// One day: the aggregates from its sums, the writes classroom by classroom, then the day's
    /// campus summary (`dailycampustotals`) from the same aggregates. Returns the write counts,
    /// the ledger rows read, and whether the day was finished (not cancelled).
    async fn aggregate_day(
        &self,
        date: NaiveDate,
        groups: &[SwitchGroup],
        existing: Vec<Document>,
        known: &BTreeSet<String>,
        cancel: &CancellationToken,
        mut on_classroom: impl FnMut(&str, usize),
    ) -> Result<(SyncCounts, u64, bool), StoreError> {
        let ds = date_string(date);
        let rows = groups.iter().map(|g| g.rows).sum();
        let fresh = rollup::daily_aggregates(&ds, groups);
        let mut by_classroom: BTreeMap<String, Vec<Document>> =
            known.iter().map(|c| (c.clone(), Vec::new())).collect();
        for d in &fresh {
            by_classroom
                .entry(d.classroom.clone())
                .or_default()
                .push(encode(d)?);
        }
        let mut existing_by_classroom: BTreeMap<String, Vec<Document>> = BTreeMap::new();
        for d in existing {
            let c = d.get_str("classroom").unwrap_or_default().to_string();
            by_classroom.entry(c.clone()).or_default();
            existing_by_classroom.entry(c).or_default().push(d);
        }
        let classrooms = by_classroom.len();
        let mut counts = SyncCounts::default();
        for (classroom, docs) in by_classroom {
            if cancel.is_cancelled() {
                return Ok((counts, rows, false));
            }
            let old = existing_by_classroom.remove(&classroom).unwrap_or_default();
            let c = self.sync_documents(DAILY, "date_string", docs, old).await?;
            counts.written += c.written;
            counts.unchanged += c.unchanged;
            counts.removed += c.removed;
            on_classroom(&classroom, classrooms);
        }
        self.summarize_day(date, &fresh).await?;
        self.write_device_day(date, &fresh).await?;
        Ok((counts, rows, true))
    }

    /// Recomputes a month's aggregates from its daily aggregates.
    async fn rebuild_month(&self, month: NaiveDate) -> Result<SyncCounts, StoreError> {
        let ms = rollup::month_string(month);
        let dailies: Vec<DailyAggregate> = self
            .daily_aggregates(&AggregateQuery {
                from: Some(format!("{ms}-01")),
                to: Some(format!("{ms}-31")),
                ..AggregateQuery::default()
            })
            .await?;
        let fresh = rollup::monthly_aggregates(month, &dailies)
            .iter()
            .map(encode)
            .collect::<Result<Vec<_>, _>>()?;
        let existing: Vec<Document> = self
            .collection::<Document>(MONTHLY)
            .find(doc! {"month_string": &ms})
            .await?
            .try_collect()
            .await?;
        self.sync_documents(MONTHLY, "month_string", fresh, existing)
            .await
    }

    /// Makes the stored documents of one period (`existing`) equal to `fresh`, keyed by
    /// `device_id` + `period_field`: inserts what is new (in one batch), updates what changed,
    /// removes what the ledger no longer supports, and leaves equal documents untouched.
    async fn sync_documents(
        &self,
        collection: &str,
        period_field: &str,
        fresh: Vec<Document>,
        existing: Vec<Document>,
    ) -> Result<SyncCounts, StoreError> {
        let coll = self.collection::<Document>(collection);
        let key = |d: &Document| {
            (
                d.get_str("device_id").unwrap_or_default().to_string(),
                d.get_str(period_field).unwrap_or_default().to_string(),
            )
        };
        let mut stored: BTreeMap<(String, String), Document> =
            existing.into_iter().map(|d| (key(&d), d)).collect();
        let now = bson::DateTime::from_chrono(dates::now_millis());
        let mut counts = SyncCounts::default();
        let mut new = Vec::new();
        let mut changed = Vec::new();
        for d in fresh {
            let d = content(d);
            match stored.remove(&key(&d)) {
                Some(old) if content(old.clone()) == d => counts.unchanged += 1,
                Some(_) => changed.push(d),
                None => new.push(d),
            }
        }
        if !new.is_empty() {
            let batch: Vec<Document> = new
                .iter()
                .map(|d| {
                    let mut d = d.clone();
                    d.insert("createdAt", now);
                    d.insert("updatedAt", now);
                    d
                })
                .collect();
            match coll.insert_many(batch).ordered(false).await {
                Ok(_) => counts.written += new.len(),
                // Someone wrote some of them meanwhile: settle each one by upsert.
                Err(e) if super::error::is_duplicate_key(&e) => changed.extend(new),
                Err(e) => return Err(e.into()),
            }
        }
        for d in changed {
            let filter = key_filter(&d, period_field);
            let mut set = d;
            set.insert("updatedAt", now);
            coll.update_one(
                filter,
                doc! {"$set": set, "$setOnInsert": {"createdAt": now}},
            )
            .upsert(true)
            .await?;
            counts.written += 1;
        }
        for (_, old) in stored {
            if let Ok(id) = old.get_object_id("_id") {
                coll.delete_one(doc! {"_id": id}).await?;
                counts.removed += 1;
            }
        }
        Ok(counts)
    }

    /// Takes the lock `key` for `owner` (taking over one whose lease expired), or says who holds
    /// it. `break_lock` removes it first, whoever holds it (the manual override).
    async fn acquire_lock(
        &self,
        key: &str,
        owner: &str,
        break_lock: bool,
    ) -> Result<(), StoreError> {
        let coll = self.collection::<Document>(AGGREGATION_RUNS);
        let id = lock_id(key);
        if break_lock {
            if let Some(old) = coll.find_one_and_delete(doc! {"_id": &id}).await? {
                tracing::warn!(lock = %id, owner = old.get_str("owner").unwrap_or_default(), "removed an aggregation lock");
            }
        }
        match self
            .take_lease(AGGREGATION_RUNS, &id, owner, doc! {}, STALE_LOCK_AFTER)
            .await?
        {
            Ok(()) => Ok(()),
            Err(holder) => Err(StoreError::Conflict(format!(
                "another aggregation of {key} is running: locked {}. Wait for it to finish (or,                  if you know that run is gone, run again with --break-lock).",
                holder.describe(dates::now_millis(), STALE_LOCK_AFTER)
            ))),
        }
    }

    async fn release_lock(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.release_lease(AGGREGATION_RUNS, &lock_id(key), owner)
            .await
    }
}

/// The `_id` of the lock of `key` (`day:2026-11-24`, `month:2026-11`).
fn lock_id(key: &str) -> String {
    format!("lock:{key}")
}

fn key_filter(d: &Document, period_field: &str) -> Document {
    doc! {
        "device_id": d.get_str("device_id").unwrap_or_default(),
        period_field: d.get(period_field).cloned().unwrap_or(Bson::Null),
    }
}

/// The outcome of the collectors' daily run.
#[derive(Debug, Clone, PartialEq)]
pub enum DailyRun {
    /// This collector aggregated the day.
    Ran(AggregationSummary),
    /// Another collector claimed the day first.
    ClaimedElsewhere { owner: String },
}

/// The collectors' daily job: aggregates yesterday (campus time in `tz`, relative to `now`) once across all
/// collectors, and any of the [`CATCH_UP_DAYS`] days before whose run died or failed unfinished.
/// Each day is claimed with a lease (a claim document per date, renewed while its run works): the
/// first to claim a day runs it, the others leave it; a claim whose lease expired unfinished (its
/// collector was killed) is taken over, and a run that fails ends its claim's lease at once, so the
/// next run (or the next start) completes the day.
pub async fn run_daily_aggregation(
    store: &Store,
    tz: Tz,
    now: Instant,
) -> Result<DailyRun, StoreError> {
    let today = local_date(now, tz);
    let yesterday = today.pred_opt().unwrap_or(today);
    let first = yesterday
        .checked_sub_days(Days::new(CATCH_UP_DAYS - 1))
        .unwrap_or(yesterday);
    let owner = lock_owner();
    let coll = store.collection::<Document>(AGGREGATION_RUNS);
    let days = dates_between(first, yesterday);
    let ids: Vec<String> = days.iter().map(|d| claim_id(*d)).collect();
    let claims: BTreeMap<String, Document> = coll
        .find(doc! {"_id": {"$in": &ids}})
        .await?
        .try_collect::<Vec<Document>>()
        .await?
        .into_iter()
        .filter_map(|d| Some((d.get_str("_id").ok()?.to_string(), d)))
        .collect();
    // Yesterday always; an earlier day only when a run of it was claimed and never finished.
    let mut claimed = Vec::new();
    let mut elsewhere: Option<String> = None;
    for day in days {
        let id = claim_id(day);
        let existing = claims.get(&id);
        if existing.is_some_and(|c| c.contains_key("finished_at"))
            || (existing.is_none() && day != yesterday)
        {
            if day == yesterday {
                elsewhere = existing.and_then(|c| c.get_str("owner").ok().map(str::to_string));
            }
            continue;
        }
        let fields = doc! {"claimed_at": bson::DateTime::from_chrono(dates::now_millis())};
        match store
            .take_lease(AGGREGATION_RUNS, &id, &owner, fields, STALE_LOCK_AFTER)
            .await?
        {
            Ok(()) => claimed.push(day),
            Err(holder) => {
                if day == yesterday || elsewhere.is_none() {
                    elsewhere = Some(holder.owner);
                }
            }
        }
    }
    if claimed.is_empty() {
        return Ok(match elsewhere {
            Some(owner) => DailyRun::ClaimedElsewhere { owner },
            None => DailyRun::Ran(AggregationSummary::default()),
        });
    }
    let keeper = store.keep_leases(
        AGGREGATION_RUNS,
        claimed.iter().map(|d| claim_id(*d)).collect(),
        &owner,
    );
    let mut total = AggregationSummary::default();
    let mut failure = None;
    // Consecutive days run as one request: one pass over the ledger on servers that scan.
    for (from, to) in runs_of_days(&claimed) {
        if keeper.lost().is_cancelled() {
            break;
        }
        let request = AggregationRequest {
            from,
            to,
            tz,
            triggered_by: TriggeredBy::System,
            by: None,
            break_locks: false,
        };
        match store.aggregate(&request, None, keeper.lost()).await {
            Ok(s) if !s.cancelled => {
                for day in dates_between(from, to) {
                    keeper.remove(&claim_id(day)).await;
                    coll.update_one(
                        doc! {"_id": claim_id(day), "owner": &owner},
                        doc! {"$set": {"finished_at": bson::DateTime::from_chrono(dates::now_millis())}},
                    )
                    .await?;
                }
                add_summary(&mut total, &s);
            }
            Ok(_) => break,
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    drop(keeper);
    // Whatever is still claimed and unfinished is given back with its lease ended, and stays: the
    // next run (or start) finds the day unfinished and completes it.
    let ended = bson::DateTime::from_chrono(dates::now_millis());
    let reason = failure
        .as_ref()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "stopped".into());
    coll.update_many(
        doc! {
            "_id": {"$in": claimed.iter().map(|d| claim_id(*d)).collect::<Vec<_>>()},
            "owner": &owner,
            "finished_at": {"$exists": false},
        },
        doc! {"$set": {"expires_at": ended, "failed_at": ended, "error": reason}},
    )
    .await?;
    match failure {
        Some(e) => Err(e),
        None => Ok(DailyRun::Ran(total)),
    }
}

/// The `_id` of the daily run's claim of `date`.
fn claim_id(date: NaiveDate) -> String {
    format!("claim:daily:{}", date_string(date))
}

/// Sorted dates grouped into runs of consecutive days, as `(first, last)`.
fn runs_of_days(days: &[NaiveDate]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut runs: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for &d in days {
        match runs.last_mut() {
            Some((_, last)) if last.succ_opt() == Some(d) => *last = d,
            _ => runs.push((d, d)),
        }
    }
    runs
}

fn add_summary(total: &mut AggregationSummary, s: &AggregationSummary) {
    total.days += s.days;
    total.ledger_rows += s.ledger_rows;
    total.daily_written += s.daily_written;
    total.daily_unchanged += s.daily_unchanged;
    total.daily_removed += s.daily_removed;
    total.monthly_written += s.monthly_written;
    total.monthly_unchanged += s.monthly_unchanged;
    total.monthly_removed += s.monthly_removed;
}

/// The next instant at or after `now` when the local time of day is `at` (`HH:MM`), by the
/// schedules' rule for times the clocks skip or repeat ([`crate::domain::schedule::occurrence`]).
pub fn next_run(now: Instant, tz: Tz, at: (u32, u32)) -> Instant {
    let today = local_date(now, tz);
    let time = chrono::NaiveTime::from_hms_opt(at.0, at.1, 0).unwrap_or(chrono::NaiveTime::MIN);
    for date in [today, today.succ_opt().unwrap_or(today)] {
        let candidate = crate::domain::schedule::occurrence(date, time, tz);
        if candidate >= now {
            return candidate;
        }
    }
    now + chrono::Duration::days(1)
}

/// Starts the collectors' scheduler: at `aggregate_at` (`HH:MM`) campus time in `tz` every day (and
/// at start when today's time has passed, to catch up a missed day) runs
/// [`run_daily_aggregation`]. Abort the handle to stop it.
pub fn spawn_daily_aggregation(
    store: Store,
    tz: Tz,
    aggregate_at: &str,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> Result<tokio::task::JoinHandle<()>, StoreError> {
    let at = crate::domain::validation::time_of_day("aggregate_at", aggregate_at)?;
    Ok(tokio::spawn(async move {
        let start = clock.now();
        let first_today = next_run(local_midnight(local_date(start, tz), tz), tz, at);
        let mut next = if start >= first_today {
            start
        } else {
            first_today
        };
        loop {
            let wait = (next - clock.now()).to_std().unwrap_or_default();
            if wait > LATE_DAYS_EVERY {
                // Days that got rows after they ended (a board's buffered events, intervals
                // closed at a restart) are aggregated again in the meantime.
                tokio::time::sleep(LATE_DAYS_EVERY).await;
                match store.aggregate_late_days(tz).await {
                    Ok(days) if !days.is_empty() => {
                        tracing::info!(?days, "days with late ledger rows aggregated again")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "late days not aggregated again; retried later")
                    }
                }
                continue;
            }
            tokio::time::sleep(wait).await;
            let now = clock.now();
            // After a failure (a day still locked by a run that died, say) try again once the
            // lease it waits for has run out, rather than tomorrow.
            let retry = now
                + chrono::Duration::from_std(store.lock_lease() * 2)
                    .unwrap_or(chrono::Duration::minutes(2));
            next = next_run(now + chrono::Duration::seconds(1), tz, at);
            match run_daily_aggregation(&store, tz, now).await {
                Ok(DailyRun::Ran(s)) => {
                    tracing::info!(
                        days = s.days,
                        rows = s.ledger_rows,
                        written = s.daily_written,
                        "daily aggregation done"
                    )
                }
                Ok(DailyRun::ClaimedElsewhere { owner }) => {
                    tracing::debug!(%owner, "daily aggregation claimed by another collector")
                }
                Err(e) => {
                    tracing::error!(error = %e, "daily aggregation failed; it will be retried");
                    next = next.min(retry);
                }
            }
        }
    }))
}

impl Store {
    /// Notes that `dates` got ledger rows after they ended, so that the collectors' daily job
    /// aggregates them again within [`LATE_DAYS_EVERY`] (one small document, `$max` per day).
    pub async fn note_late_days(&self, dates: &BTreeSet<NaiveDate>) -> Result<(), StoreError> {
        if dates.is_empty() {
            return Ok(());
        }
        let now = bson::DateTime::from_chrono(dates::now_millis());
        let mut max = Document::new();
        for d in dates {
            max.insert(format!("days.{}", date_string(*d)), now);
        }
        self.collection::<Document>(AGGREGATION_RUNS)
            .update_one(doc! {"_id": LATE_DAYS}, doc! {"$max": max})
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Aggregates again each day noted late (oldest first), then forgets it unless it was noted
    /// again meanwhile. Returns the days aggregated; stops at the first failure (a day locked by
    /// another run, say), leaving the rest noted.
    pub async fn aggregate_late_days(&self, tz: Tz) -> Result<Vec<NaiveDate>, StoreError> {
        let coll = self.collection::<Document>(AGGREGATION_RUNS);
        let Some(record) = coll.find_one(doc! {"_id": LATE_DAYS}).await? else {
            return Ok(Vec::new());
        };
        let mut noted: Vec<(NaiveDate, bson::DateTime)> = record
            .get_document("days")
            .map(|days| {
                days.iter()
                    .filter_map(|(k, v)| {
                        let d = NaiveDate::parse_from_str(k, "%Y-%m-%d").ok()?;
                        Some((d, v.as_datetime().copied()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        noted.sort();
        let mut done = Vec::new();
        for (date, at) in noted {
            let request = AggregationRequest {
                from: date,
                to: date,
                tz,
                triggered_by: TriggeredBy::System,
                by: None,
                break_locks: false,
            };
            self.aggregate(&request, None, &CancellationToken::new())
                .await?;
            let field = format!("days.{}", date_string(date));
            coll.update_one(
                doc! {"_id": LATE_DAYS, &field: {"$lte": at}},
                doc! {"$unset": {&field: ""}},
            )
            .await?;
            done.push(date);
        }
        Ok(done)
    }

    /// The closed ledger rows of campus-local `date` written before `written_before` (all of them
    /// when `None`), summed per switch, from the ledger itself (where the day books are not
    /// complete).
    pub(crate) async fn ledger_closed_totals(
        &self,
        date: NaiveDate,
        tz: Tz,
        written_before: Option<Instant>,
    ) -> Result<Vec<ClosedSwitch>, StoreError> {
        let (from, to) = day_range(date, tz);
        Ok(self
            .switch_groups(from, to, written_before)
            .await?
            .into_iter()
            .map(|g| ClosedSwitch {
                device_id: g.device_id,
                switch_id: g.switch_id,
                classroom: g.classroom,
                amount: Amount {
                    kwh: g.wh / 1000.0,
                    cost: g.cost,
                },
            })
            .collect())
    }

    /// Per-device totals of the days before `date` that month-to-date and the projection need
    /// (from the first of the month or 7 days back, whichever is earlier): each day's device totals
    /// (a lookup a day), else its day books, and the ledger only for days neither covers (a
    /// database not migrated yet).
    pub async fn totals_history(
        &self,
        date: NaiveDate,
        tz: Tz,
    ) -> Result<Vec<DayTotal>, StoreError> {
        let first = date.with_day(1).unwrap_or(date);
        let week = date
            .checked_sub_days(Days::new(PROJECTION_DAYS.into()))
            .unwrap_or(date);
        let start = first.min(week);
        let days: Vec<NaiveDate> = start.iter_days().take_while(|d| *d < date).collect();
        let (mut out, missing) = self.device_days(&days).await?;
        if let (Some(&first_missing), Some(&last_missing)) = (missing.first(), missing.last()) {
            let wanted: BTreeSet<NaiveDate> = missing.iter().copied().collect();
            for (day, groups) in self
                .switch_groups_by_day(first_missing, last_missing, tz)
                .await?
            {
                if !wanted.contains(&day) {
                    continue;
                }
                out.extend(groups.into_iter().map(|g| DayTotal {
                    date: day,
                    device_id: g.device_id,
                    classroom: g.classroom,
                    amount: Amount {
                        kwh: g.wh / 1000.0,
                        cost: g.cost,
                    },
                }));
            }
        }
        Ok(out)
    }

    /// Every switch the devices record as on, with its power by the ledger's rules.
    pub async fn open_switches(&self) -> Result<Vec<OpenSwitch>, StoreError> {
        Ok(self.open_switches_and_devices().await?.0)
    }

    /// The open switches (as [`Store::open_switches`]) and the devices they were read from.
    pub async fn open_switches_and_devices(
        &self,
    ) -> Result<(Vec<OpenSwitch>, Vec<crate::domain::Device>), StoreError> {
        let settings = self.active_power_settings().await?;
        let classrooms: BTreeMap<crate::domain::Id, String> = self
            .classrooms()
            .await?
            .into_iter()
            .filter_map(|c| c.id.map(|id| (id, c.name)))
            .collect();
        let devices = self.devices().await?;
        let mut open = Vec::new();
        for device in &devices {
            let Some(device_id) = device.ledger_id() else {
                continue;
            };
            let classroom = device
                .classroom
                .and_then(|c| classrooms.get(&c).cloned())
                .unwrap_or_default();
            open.extend(
                device
                    .switches
                    .iter()
                    .filter_map(|s| OpenSwitch::of(&device_id, &classroom, s, settings.as_ref())),
            );
        }
        Ok((open, devices))
    }

    /// Running totals at `now`, loaded in full: today's closed rows, the history, and every switch
    /// the devices record as on, priced with the tariffs in force. Tick it with new instants; feed it
    /// switch events and the ledger rows written since.
    pub async fn running_totals(&self, now: Instant, tz: Tz) -> Result<RunningTotals, StoreError> {
        let date = local_date(now, tz);
        let book = self
            .tariff_book(local_midnight(date, tz), day_range(date, tz).1)
            .await?;
        let mut totals = RunningTotals::new(tz, now, book);
        // Every row written so far; rows learnt later are those written from now on.
        let written_by = dates::now_millis();
        totals.reconcile(date, &self.closed_totals(date, None).await?, written_by);
        totals.load_history(date, &self.totals_history(date, tz).await?);
        for o in self.open_switches().await? {
            totals.switch_on(&o);
        }
        totals.tick(now);
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const IST: Tz = chrono_tz::Asia::Kolkata;

    fn ist(d: u32, h: u32, m: u32) -> Instant {
        IST.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn the_next_run_is_today_or_tomorrow_at_the_local_time() {
        assert_eq!(next_run(ist(25, 0, 5), IST, (0, 10)), ist(25, 0, 10));
        assert_eq!(next_run(ist(25, 0, 10), IST, (0, 10)), ist(25, 0, 10));
        assert_eq!(next_run(ist(25, 0, 11), IST, (0, 10)), ist(26, 0, 10));
        assert_eq!(next_run(ist(24, 23, 59), IST, (0, 10)), ist(25, 0, 10));
    }

    #[test]
    fn claimed_days_run_as_runs_of_consecutive_days() {
        let d = |n: u32| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        assert_eq!(
            runs_of_days(&[d(18), d(19), d(21), d(23), d(24)]),
            [(d(18), d(19)), (d(21), d(21)), (d(23), d(24))]
        );
        assert!(runs_of_days(&[]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn runs_cover_exactly_the_claimed_days(offsets in proptest::collection::btree_set(0u64..40, 0..20)) {
            let base = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
            let days: Vec<NaiveDate> = offsets.iter().map(|o| base + Days::new(*o)).collect();
            let runs = runs_of_days(&days);
            let covered: Vec<NaiveDate> = runs.iter().flat_map(|(a, b)| dates_between(*a, *b)).collect();
            proptest::prop_assert_eq!(&covered, &days);
            for w in runs.windows(2) {
                proptest::prop_assert!(w[0].1.succ_opt().unwrap() < w[1].0, "runs are maximal");
            }
        }
    }

    #[test]
    fn days_are_local() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(day_range(d, IST), (ist(25, 0, 0), ist(26, 0, 0)));
        assert_eq!(dates_between(d, d).len(), 1);
        assert!(dates_between(d, d.pred_opt().unwrap()).is_empty());
    }
}
