//! The collectors' scheduler: makes the runs of the enabled schedules at their campus-local time,
//! through the relay path a person's toggle takes (sent, acknowledged, logged as triggered by the
//! schedule), once across every collector (a claim per schedule and minute).
//!
//! Each time the clock shows a new minute, the scheduler reads the enabled schedules (a few
//! documents; nothing that grows with history) and looks for runs due since it last looked. A run
//! found within [`GRACE`] of its minute is made; an older one (every collector was down, or this
//! one stalled) is not replayed: it is claimed as missed, logged, and recorded in the activity. A
//! board that is offline is skipped and named in the run's record. A `once` schedule is disabled
//! once its minute has passed, made or missed.

use crate::clock::Clock;
use crate::domain::activity::action;
use crate::domain::schedule::{fate, floor_minute, look_from, Fate, GRACE};
use crate::domain::{
    ActivityLog, Actor, Authority, Device, Id, Instant, Schedule, ScheduleType, TriggeredBy,
};
use crate::mqtt::connection::BrokerAccess;
use crate::mqtt::relay::{Relay, ToggleError};
use crate::store::schedules::{RunClaim, RunOutcome};
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Run the schedules at all.
    pub enabled: bool,
    /// How often the clock is looked at (a run is made within this of its minute).
    pub every: Duration,
    /// How long a board has to acknowledge a command.
    pub ack_timeout: Duration,
    /// The minute (Unix seconds) through which this collector has looked for runs; 0 before its
    /// first look. For observers (tests, the demo).
    pub checked_through: Arc<AtomicI64>,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            enabled: true,
            every: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(5),
            checked_through: Arc::new(AtomicI64::new(0)),
        }
    }
}

/// What the scheduler needs of its collector.
pub(crate) struct Scheduler {
    pub store: Store,
    pub mqtt_url: String,
    pub access: BrokerAccess,
    pub owner: String,
    pub tz: chrono_tz::Tz,
    pub options: SchedulerOptions,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<super::metrics::CollectorMetrics>,
}

impl Scheduler {
    /// Looks for due runs until `shutdown`.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut relay: Option<Relay> = None;
        let mut through: Option<Instant> = None;
        // Said once per outage, not every round.
        let mut failing = false;
        let mut tick = tokio::time::interval(self.options.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = self.clock.now();
            let now_minute = floor_minute(now);
            if through.is_some_and(|t| t >= now_minute) {
                continue;
            }
            match self.look(through, now, &mut relay).await {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("schedules looked at again");
                    }
                    through = Some(now_minute);
                    self.options
                        .checked_through
                        .store(now_minute.timestamp(), Ordering::SeqCst);
                    if let Err(e) = self
                        .store
                        .advance_schedule_checkpoint(now_minute, &self.owner)
                        .await
                    {
                        tracing::debug!("the schedules' checkpoint was not written: {e}");
                    }
                }
                // Looked at again next round: runs this collector already claimed are left.
                Err(e) if failing => tracing::debug!("schedules still not looked at: {e}"),
                Err(e) => {
                    failing = true;
                    tracing::warn!("schedules not looked at ({e}); retrying every round");
                }
            }
        }
        if let Some(r) = relay {
            r.disconnect().await;
        }
    }

    /// Claims and makes (or records missed) every run due after `through` up to `now`.
    async fn look(
        &self,
        through: Option<Instant>,
        now: Instant,
        relay: &mut Option<Relay>,
    ) -> Result<(), StoreError> {
        let from = match through {
            Some(t) => t,
            None => look_from(self.store.schedule_checkpoint().await?, now),
        };
        let schedules = self.store.enabled_schedules().await?;
        let mut due: Vec<(Instant, &Schedule)> = schedules
            .iter()
            .flat_map(|s| {
                s.runs_between(from, now, self.tz)
                    .into_iter()
                    .map(move |m| (m, s))
            })
            .collect();
        due.sort_by_key(|(m, s)| (*m, s.id));
        for (minute, schedule) in due {
            let now = self.clock.now();
            let fate = fate(minute, now);
            match self
                .store
                .claim_schedule_run(schedule, minute, &self.owner, fate, now)
                .await?
            {
                RunClaim::Claimed => {}
                RunClaim::ClaimedElsewhere { owner } => {
                    tracing::debug!(schedule = %schedule.name, %owner, "run claimed by another collector");
                    continue;
                }
            }
            let outcome = match fate {
                Fate::Run => self.make(schedule, minute, relay).await,
                Fate::Missed => {
                    tracing::warn!(
                        schedule = %schedule.name,
                        due = %self.local(minute),
                        "a scheduled run was missed (no collector was running within {} min of it); it is not replayed",
                        GRACE.num_minutes()
                    );
                    RunOutcome::default()
                }
            };
            self.metrics.schedule_run(fate == Fate::Missed);
            self.record(schedule, minute, fate, &outcome).await?;
        }
        Ok(())
    }

    /// Sends the schedule's commands, all at once, and waits for the boards' answers.
    async fn make(
        &self,
        schedule: &Schedule,
        minute: Instant,
        relay: &mut Option<Relay>,
    ) -> RunOutcome {
        let mut outcome = RunOutcome::default();
        let Some(state) = schedule.switches_on() else {
            outcome.failed.push(format!(
                "the action {:?} is neither on nor off",
                schedule.action
            ));
            return outcome;
        };
        let mut devices: BTreeMap<Id, Result<Device, String>> = BTreeMap::new();
        for s in &schedule.switches {
            if let std::collections::btree_map::Entry::Vacant(v) = devices.entry(s.device_id) {
                v.insert(match self.store.device_by_id(s.device_id).await {
                    Ok(Some(d)) => Ok(d),
                    Ok(None) => Err("the board is not registered any more".into()),
                    Err(e) => Err(e.to_string()),
                });
            }
        }
        if relay.is_none() {
            match Relay::connect(
                &self.mqtt_url,
                &format!("{}-schedules", self.owner),
                &self.access,
            )
            .await
            {
                Ok(r) => *relay = Some(r),
                Err(e) => {
                    tracing::error!(schedule = %schedule.name, "a scheduled run could not reach the broker: {e}");
                    outcome.failed.extend(
                        schedule
                            .switches
                            .iter()
                            .map(|s| format!("{}: {e}", s.switch_id)),
                    );
                    return outcome;
                }
            }
        }
        let Some(relay) = relay.as_ref() else {
            return outcome;
        };
        let by = Actor {
            name: format!("schedule {}", schedule.name),
            user_id: None,
            authority: Authority::Automation,
        };
        let mut detail = serde_json::Map::new();
        detail.insert(
            "schedule".into(),
            schedule.id.map(|i| i.to_hex()).unwrap_or_default().into(),
        );
        detail.insert("scheduleName".into(), schedule.name.clone().into());
        detail.insert("dueAt".into(), minute.to_rfc3339().into());

        let mut sends = Vec::new();
        for s in &schedule.switches {
            let device = match devices.get(&s.device_id) {
                Some(Ok(d)) => d,
                Some(Err(why)) => {
                    outcome.failed.push(format!(
                        "board {} / {}: {why}",
                        s.device_id.to_hex(),
                        s.switch_id
                    ));
                    continue;
                }
                None => continue,
            };
            let label = format!("{} / {}", device.name, switch_label(device, &s.switch_id));
            let (by, detail) = (&by, &detail);
            sends.push(async move {
                let r = relay
                    .toggle_with(
                        &self.store,
                        device,
                        &s.switch_id,
                        state,
                        by,
                        detail,
                        self.options.ack_timeout,
                        self.clock.now(),
                    )
                    .await;
                (label, r)
            });
        }
        for (label, result) in futures::future::join_all(sends).await {
            match result {
                Ok(_) => outcome.switched.push(label),
                Err(ToggleError::Offline { .. }) => {
                    tracing::info!(schedule = %schedule.name, switch = %label, "skipped: the board is offline");
                    outcome.offline.push(label);
                }
                Err(e) => {
                    tracing::warn!(schedule = %schedule.name, switch = %label, "not switched: {e}");
                    outcome.failed.push(format!("{label}: {e}"));
                }
            }
        }
        outcome
    }

    /// Records a run (made or missed) on its claim and in the activity log, and disables a `once`
    /// schedule whose minute has passed.
    async fn record(
        &self,
        schedule: &Schedule,
        minute: Instant,
        fate: Fate,
        outcome: &RunOutcome,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let Some(id) = schedule.id else {
            return Ok(());
        };
        self.store
            .finish_schedule_run(id, minute, outcome, now)
            .await?;
        let once = schedule.schedule_type == ScheduleType::Once;
        if once {
            self.store.set_schedule_enabled(id, false).await?;
        }
        let mut entry = ActivityLog::new(action::SCHEDULE_RUN, TriggeredBy::Schedule, now);
        entry.context = Some(serde_json::json!({
            "schedule": id.to_hex(),
            "scheduleName": schedule.name,
            "dueAt": minute.to_rfc3339(),
            "action": schedule.action,
            "outcome": match fate { Fate::Run => "ran", Fate::Missed => "missed" },
            "switched": outcome.switched.len(),
            "offline": outcome.offline,
            "failed": outcome.failed,
            "disabled": once,
            "collector": self.owner,
        }));
        self.store.log_activity(&entry).await?;
        if fate == Fate::Run {
            tracing::info!(
                schedule = %schedule.name,
                due = %self.local(minute),
                switched = outcome.switched.len(),
                offline = outcome.offline.len(),
                failed = outcome.failed.len(),
                "scheduled run made"
            );
        }
        Ok(())
    }

    fn local(&self, t: Instant) -> String {
        crate::domain::dates::campus_time(t, self.tz)
    }
}

/// A switch's name when the board has it, else its id.
fn switch_label(device: &Device, switch_id: &str) -> String {
    device
        .switch_by_id(switch_id)
        .map(|(_, s)| s.name.clone())
        .unwrap_or_else(|| switch_id.to_string())
}
