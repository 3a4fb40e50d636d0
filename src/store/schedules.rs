//! Schedules (`schedules`) and the record of their runs (`schedulerruns`, **Ours**).
//!
//! A run is claimed once across every collector by inserting its claim, whose `_id` names the
//! schedule and the minute: the primary key lets one insert through, and the others learn who
//! has it. A claim is never taken over: the minute has passed by the time its collector could
//! have died, and a run is made at most once. The claim then records how the run went, or that
//! it was missed. The checkpoint document says through which minute the collectors have looked,
//! so that a collector starting after all were down knows which runs were missed.

use super::{collections, stamp_new, Store, StoreError};
use crate::domain::schedule::Fate;
use crate::domain::{dates, Id, Instant, Schedule, ValidationError};
use bson::{doc, Document};
use futures::TryStreamExt;

/// Claims and outcomes of schedule runs, and the collectors' checkpoint (**Ours**).
pub const SCHEDULE_RUNS: &str = "schedulerruns";

const CHECKPOINT: &str = "checkpoint";

/// Who has a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunClaim {
    /// This collector: it makes the run (or records it missed).
    Claimed,
    /// Another collector claimed the run first.
    ClaimedElsewhere { owner: String },
}

/// How a run went, switch by switch (each as "board / switch" text for people).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutcome {
    /// Confirmed by the board (or already in the state).
    pub switched: Vec<String>,
    /// Not sent: the board was offline.
    pub offline: Vec<String>,
    /// Sent and not confirmed, or not sendable: with why.
    pub failed: Vec<String>,
}

/// A stored run, as `schedule runs` and the tests read it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub schedule_id: Id,
    pub due_at: Instant,
    pub owner: String,
    /// `run` or `missed`.
    pub fate: String,
    pub finished_at: Option<Instant>,
    pub switched: usize,
    pub offline: Vec<String>,
    pub failed: Vec<String>,
}

fn run_id(schedule: Id, due_at: Instant) -> String {
    format!(
        "run:{}:{}",
        schedule.to_hex(),
        due_at.format("%Y-%m-%dT%H:%MZ")
    )
}

fn date(t: Instant) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

impl Store {
    /// Stores a new schedule (checked first); its id.
    pub async fn insert_schedule(&self, schedule: &Schedule) -> Result<Id, StoreError> {
        let mut s = schedule.clone();
        s.name = crate::domain::validation::name("name", &s.name)?;
        s.validate()?;
        let id = *s.id.get_or_insert_with(Id::new);
        stamp_new(&mut s.created_at, &mut s.updated_at);
        self.collection::<Schedule>(collections::SCHEDULES)
            .insert_one(&s)
            .await?;
        Ok(id)
    }

    /// Every readable schedule, by name (those that do not read are recorded and skipped).
    pub async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::SCHEDULES)
            .find(doc! {})
            .sort(doc! {"name": 1})
            .await?;
        self.read_all(collections::SCHEDULES, cursor).await
    }

    /// The enabled schedules (what the collectors run).
    pub async fn enabled_schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::SCHEDULES)
            .find(doc! {"enabled": true})
            .await?;
        self.read_all(collections::SCHEDULES, cursor).await
    }

    /// The schedule a person names: its id, else its name (an exact match wins over one in
    /// another case). Nothing matching is `NotFound`; a name several share is `Invalid`.
    pub async fn schedule_named(&self, key: &str) -> Result<Schedule, StoreError> {
        let key = key.trim();
        if let Ok(id) = Id::parse_str(key) {
            let found = self
                .collection::<Document>(collections::SCHEDULES)
                .find_one(doc! {"_id": id})
                .await?;
            if let Some(s) = found.and_then(|d| self.decode(collections::SCHEDULES, d)) {
                return Ok(s);
            }
        }
        let all = self.schedules().await?;
        let same: Vec<&Schedule> = all
            .iter()
            .filter(|s| s.name.to_lowercase() == key.to_lowercase())
            .collect();
        let exact: Vec<&Schedule> = same.iter().copied().filter(|s| s.name == key).collect();
        match (same.as_slice(), exact.as_slice()) {
            ([one], _) | (_, [one]) => Ok((*one).clone()),
            ([], _) => Err(StoreError::NotFound(format!(
                "no schedule {key:?} (by id or name); `autovolt schedule list` shows them"
            ))),
            (many, _) => Err(StoreError::Invalid(ValidationError::new(
                "schedule",
                key,
                format!(
                    "names {} schedules; give its id: {}",
                    many.len(),
                    many.iter()
                        .filter_map(|s| s.id.map(|i| i.to_hex()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))),
        }
    }

    /// Enables or disables a schedule; false when it is gone.
    pub async fn set_schedule_enabled(&self, id: Id, enabled: bool) -> Result<bool, StoreError> {
        let r = self
            .collection::<Document>(collections::SCHEDULES)
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {"enabled": enabled, "updatedAt": date(dates::now_millis())}},
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    /// Removes a schedule; false when it was already gone. Its runs stay recorded.
    pub async fn delete_schedule(&self, id: Id) -> Result<bool, StoreError> {
        let r = self
            .collection::<Document>(collections::SCHEDULES)
            .delete_one(doc! {"_id": id})
            .await?;
        Ok(r.deleted_count == 1)
    }

    /// Claims the run of `schedule` due at `due_at` for `owner`, to make it or (`Fate::Missed`) to
    /// record it missed.
    pub async fn claim_schedule_run(
        &self,
        schedule: &Schedule,
        due_at: Instant,
        owner: &str,
        fate: Fate,
        now: Instant,
    ) -> Result<RunClaim, StoreError> {
        let Some(sid) = schedule.id else {
            return Err(StoreError::Conflict(format!(
                "the schedule {:?} has no id",
                schedule.name
            )));
        };
        let id = run_id(sid, due_at);
        let coll = self.collection::<Document>(SCHEDULE_RUNS);
        let fate = match fate {
            Fate::Run => "run",
            Fate::Missed => "missed",
        };
        let claim = doc! {
            "_id": &id,
            "schedule_id": sid,
            "schedule": &schedule.name,
            "due_at": date(due_at),
            "owner": owner,
            "fate": fate,
            "claimed_at": date(now),
        };
        match coll.insert_one(claim).await {
            Ok(_) => Ok(RunClaim::Claimed),
            Err(e) if super::error::is_duplicate_key(&e) => {
                let owner = coll
                    .find_one(doc! {"_id": &id})
                    .await?
                    .and_then(|d| d.get_str("owner").ok().map(str::to_string))
                    .unwrap_or_else(|| "unknown".into());
                Ok(RunClaim::ClaimedElsewhere { owner })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records how a claimed run went.
    pub async fn finish_schedule_run(
        &self,
        schedule_id: Id,
        due_at: Instant,
        outcome: &RunOutcome,
        now: Instant,
    ) -> Result<(), StoreError> {
        let switched = i32::try_from(outcome.switched.len()).unwrap_or(i32::MAX);
        let (offline, failed) = (outcome.offline.clone(), outcome.failed.clone());
        self.collection::<Document>(SCHEDULE_RUNS)
            .update_one(
                doc! {"_id": run_id(schedule_id, due_at)},
                doc! {"$set": {
                    "finished_at": date(now),
                    "switched": switched,
                    "offline": offline,
                    "failed": failed,
                }},
            )
            .await?;
        Ok(())
    }

    /// The recorded runs of one schedule, oldest first.
    pub async fn schedule_runs(&self, schedule_id: Id) -> Result<Vec<RunRecord>, StoreError> {
        let docs: Vec<Document> = self
            .collection::<Document>(SCHEDULE_RUNS)
            .find(doc! {"schedule_id": schedule_id})
            .await?
            .try_collect()
            .await?;
        let mut runs: Vec<RunRecord> = docs
            .iter()
            .filter_map(|d| {
                let strings = |k: &str| -> Vec<String> {
                    d.get_array(k)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                Some(RunRecord {
                    schedule_id: d.get_object_id("schedule_id").ok()?,
                    due_at: d.get_datetime("due_at").ok()?.to_chrono(),
                    owner: d.get_str("owner").unwrap_or("unknown").to_string(),
                    fate: d.get_str("fate").unwrap_or("run").to_string(),
                    finished_at: d.get_datetime("finished_at").ok().map(|t| t.to_chrono()),
                    switched: d.get_i32("switched").unwrap_or(0) as usize,
                    offline: strings("offline"),
                    failed: strings("failed"),
                })
            })
            .collect();
        runs.sort_by_key(|r| r.due_at);
        Ok(runs)
    }

    /// Through which minute the collectors have looked for due runs (`None`: never).
    pub async fn schedule_checkpoint(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .collection::<Document>(SCHEDULE_RUNS)
            .find_one(doc! {"_id": CHECKPOINT})
            .await?
            .and_then(|d| d.get_datetime("through").ok().map(|t| t.to_chrono())))
    }

    /// Moves the checkpoint on to `through` (never back: collectors write it in any order).
    pub async fn advance_schedule_checkpoint(
        &self,
        through: Instant,
        owner: &str,
    ) -> Result<(), StoreError> {
        let coll = self.collection::<Document>(SCHEDULE_RUNS);
        let filter = doc! {"_id": CHECKPOINT, "through": {"$lt": date(through)}};
        let update = doc! {"$set": {"through": date(through), "owner": owner}};
        let r = coll.update_one(filter, update.clone()).await?;
        if r.matched_count == 0 {
            // Absent, or already there: only the first write inserts; a duplicate means another
            // collector inserted it meanwhile, which is as good.
            let first = doc! {"_id": CHECKPOINT, "through": date(through), "owner": owner};
            if coll.find_one(doc! {"_id": CHECKPOINT}).await?.is_none() {
                match coll.insert_one(first).await {
                    Ok(_) => {}
                    Err(e) if super::error::is_duplicate_key(&e) => {
                        coll.update_one(
                            doc! {"_id": CHECKPOINT, "through": {"$lt": date(through)}},
                            update,
                        )
                        .await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}
