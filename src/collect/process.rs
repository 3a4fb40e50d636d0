//! One batch of messages → its effects in the database: relay transitions (compare-and-set, then
//! ledger rows and activity), coalesced presence, telemetry and the unregistered boards.
//!
//! Processing a batch is idempotent: when the database fails half-way the whole batch is processed
//! again (nothing was acknowledged), and what was already written is recognised, not written twice.
//! Nothing a retry reads as done is written before what completes it: a relay transition is claimed
//! first and its switch moved last (after its ledger rows and its activity), a board comes online
//! after its `device_online` entry, and a retry times the messages with the clock anchors the failed
//! attempt read, not with those it stored.

use super::presence::{OnlineMarks, Presence, PresenceWrites, LAST_SEEN_EVERY};
use super::stats::Stats;
use crate::domain::activity::action;
use crate::domain::board_clock::{self, ClockStep};
use crate::domain::interval::{ledger_rows, local_date, BillingContext};
use crate::domain::telemetry::{event_hash, without_secret};
use crate::domain::{
    ActivityLog, BootClock, DataSource, Device, DeviceStatus, Id, Instant, Mac, TelemetryEvent,
    TriggeredBy,
};
use crate::mqtt::message::{self, Event, SwitchSource};
use crate::store::deadletters::{DeadKind, DeadLetter};
use crate::store::presence::PresenceUpdate;
use crate::store::switching::{SwitchClaim, SwitchGuard};
use crate::store::{Store, StoreError};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A message as it arrived, with the wall time it arrived at.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub topic: String,
    pub payload: Vec<u8>,
    pub received: Instant,
    /// The broker marked it as a redelivery (MQTT DUP).
    pub redelivered: bool,
}

/// A message of a batch that was refused (counted under `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Its position in the batch.
    pub index: usize,
    pub reason: &'static str,
}

/// How far a board's clock anchor may drift from the stored one before it is stored at once
/// rather than with the coalesced presence.
const ANCHOR_SLACK_MS: i64 = 20;

/// How often the devices the collector holds are read again, all in one query: what others change
/// (another collector's sweep, an operator) is seen within this, and a board's messages in between
/// cost no device read (on FerretDB every read but one by `_id` scans the whole collection).
pub const DEVICE_REFRESH: std::time::Duration = std::time::Duration::from_secs(30);

/// From this many boards of a batch not yet read, every device is read (and kept) at once.
const FLEET_READ_FROM: usize = 8;

/// A read of many devices is done again no sooner than this many times the last one took: on
/// FerretDB a read of 2,000 devices costs the server about a second of CPU, and a 5 s sweep or
/// a 30 s refresh would keep it busy with nothing new.
const READ_DUTY: u32 = 50;

/// When a read of many devices was last done, and how long it took.
#[derive(Debug, Default)]
pub struct Paced {
    last: Option<(std::time::Instant, std::time::Duration)>,
}

impl Paced {
    /// Whether the read is due at `now`: `every` after the last, and [`READ_DUTY`] times as long as
    /// it took.
    pub fn due(&self, now: std::time::Instant, every: std::time::Duration) -> bool {
        self.last.is_none_or(|(at, took)| {
            now.duration_since(at) >= every.max(took.saturating_mul(READ_DUTY))
        })
    }

    /// Records a read begun at `started` that has just ended.
    pub fn done(&mut self, started: std::time::Instant) {
        self.last = Some((started, started.elapsed()));
    }

    /// Makes the read due at once.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// How many times a transition re-reads the device after losing a compare-and-set.
const CAS_ATTEMPTS: usize = 5;

/// The writes of a batch, in the order they happen, for [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The `device_online` entries of boards coming online.
    OnlineActivity,
    /// A board's status set to online (and its clock anchor with it).
    OnlineMark,
    /// A board's clock anchor stored before its relay changes are timed.
    Anchor,
    /// A relay transition claimed.
    Claim,
    /// The ledger rows of the interval a transition closes.
    Ledger,
    /// The activity of a transition.
    SwitchActivity,
    /// The switch moved to its new state.
    SwitchState,
    /// The batch's raw telemetry.
    Telemetry,
    /// The batch's malformed messages kept as dead letters.
    DeadLetters,
    /// Unregistered boards counted.
    Unregistered,
}

/// A way to make a batch fail at a chosen write, to prove that a retry completes it: the collector
/// runs without one; tests inject failures with it.
pub trait Faults: Send + Sync + std::fmt::Debug {
    /// Called before each write of a batch, with the board it is for (if one): an error fails the
    /// batch there.
    fn before(&self, step: Step, board: Option<Mac>) -> Result<(), StoreError>;
}

/// What a relay change is, for the activity log.
#[derive(Debug, Clone)]
pub struct Cause {
    pub triggered_by: TriggeredBy,
    pub manual: bool,
    /// What reported it: `switch_event`, `manual_switch`, `state`, `offline`, `midnight`.
    pub reported_by: &'static str,
    /// The board carried out a relay command: whoever sent it records the action, with who asked
    /// and what confirmed it (`mqtt::relay`), so the change itself adds no second entry.
    pub commanded: bool,
}

impl Cause {
    /// The activity a change to `state` records.
    pub fn action(&self, state: bool) -> String {
        if self.commanded || boot_end_note(self.reported_by).is_some() {
            return String::new();
        }
        match (self.manual, state) {
            (true, true) => action::MANUAL_ON,
            (true, false) => action::MANUAL_OFF,
            (false, true) => action::ON,
            (false, false) => action::OFF,
        }
        .to_string()
    }

    fn of_source(source: &SwitchSource) -> Cause {
        let (triggered_by, manual) = match source {
            SwitchSource::Backend => (TriggeredBy::User, false),
            SwitchSource::Motion => (TriggeredBy::Pir, false),
            SwitchSource::Manual => (TriggeredBy::ManualSwitch, true),
            SwitchSource::Other(_) => (TriggeredBy::System, false),
        };
        Cause {
            triggered_by,
            manual,
            reported_by: "switch_event",
            commanded: *source == SwitchSource::Backend,
        }
    }
}

/// What reports a board's intervals closed because its clock showed a new boot.
const REBOOT: &str = "reboot";
/// What reports them closed because its clock jumped as after a reboot or a slow delivery.
const REBOOT_UNSURE: &str = "reboot_unsure";

/// The ledger note of an interval closed at the end of a boot (`quality.notes`), by what reported
/// the close.
fn boot_end_note(reported_by: &str) -> Option<&'static str> {
    match reported_by {
        REBOOT => Some(
            "closed at the board's last certain time before it rebooted: its load may have run until the reboot",
        ),
        REBOOT_UNSURE => Some(
            "closed at the board's last certain time: its clock jumped as after a reboot or a delivery held back, which it cannot tell apart",
        ),
        _ => None,
    }
}

/// The ledger note of an interval timed by a board clock anchored on such a jump.
const UNSURE_ANCHOR_NOTE: &str =
    "timed by a board clock anchored after a jump that a reboot or a delivery held back could explain";

/// Whose claim held for a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// This call made it.
    Made,
    /// The same transition claimed before (a redelivery, or another collector with the same message).
    Same,
    /// A different transition from the same state: re-read and try again.
    Other,
}

/// The result of one transition attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Applied,
    /// The switch already was in that state.
    NoChange,
    /// Older than the switch's last change: a late message.
    Stale,
    UnknownPin,
    /// Lost the compare-and-set every time (heavy contention): counted, left to the next snapshot.
    Contended,
}

/// The collector's processing state: only caches and soft state, never the truth.
pub struct Processor {
    store: Store,
    tz: Tz,
    pub(crate) stats: Stats,
    /// Presence heard and not yet written (soft state, written apart from the batches).
    presence: Presence,
    /// The clock anchor last stored per board.
    clocks_written: HashMap<Id, BootClock>,
    /// Devices as last read or written, read again every [`DEVICE_REFRESH`]. Safe to be stale:
    /// every transition is claimed against the state it leaves, and a stale departure only
    /// completes the claim already there and re-reads the device.
    cache: HashMap<Mac, Device>,
    /// Boards looked up since the last refresh and not registered.
    absent: HashSet<Mac>,
    /// When the cached devices were last read (reset: read them before they are used again).
    refreshed: Paced,
    classrooms: HashMap<Id, String>,
    /// The clock anchors the last failed attempt read, per board: its retry times the messages as
    /// it did, whatever it stored before failing.
    retry_anchors: HashMap<Mac, Option<BootClock>>,
    faults: Option<std::sync::Arc<dyn Faults>>,
}

impl Processor {
    pub fn new(store: Store, tz: Tz) -> Processor {
        Processor {
            store: store.with_timezone(tz),
            tz,
            stats: Stats::default(),
            presence: Presence::new(LAST_SEEN_EVERY),
            clocks_written: HashMap::new(),
            cache: HashMap::new(),
            absent: HashSet::new(),
            refreshed: Paced::default(),
            classrooms: HashMap::new(),
            retry_anchors: HashMap::new(),
            faults: None,
        }
    }

    /// Fails the batch where `faults` says (tests).
    pub fn with_faults(mut self, faults: std::sync::Arc<dyn Faults>) -> Processor {
        self.faults = Some(faults);
        self
    }

    fn before(&self, step: Step, board: Option<Mac>) -> Result<(), StoreError> {
        match &self.faults {
            Some(f) => f.before(step, board),
            None => Ok(()),
        }
    }

    /// Writes a talking board's `lastSeen` at most this often (it is always written once the board
    /// has been quiet that long, and at exit).
    pub fn with_last_seen_every(mut self, every: chrono::Duration) -> Processor {
        self.presence = Presence::new(every);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Processes a batch; on error nothing of it is counted and it must be processed again. Returns
    /// the messages refused (by position, with the reason counted): malformed ones are kept as dead
    /// letters, untrusted ones only counted.
    pub async fn process(&mut self, batch: &[Incoming]) -> Result<Vec<Refusal>, StoreError> {
        let mut anchors = HashMap::new();
        let result = self.process_once(batch, &mut anchors).await;
        if result.is_err() {
            // What was written before the failure is unknown: read everything again, but time the
            // messages as this attempt did.
            self.refreshed.reset();
            self.retry_anchors.extend(anchors);
        }
        result
    }

    /// Keeps a message whose effects the database refused for good as a dead letter, and counts it.
    pub async fn dead_letter(
        &mut self,
        msg: &Incoming,
        error: &StoreError,
        now: Instant,
    ) -> Result<(), StoreError> {
        let mac = message::parse(&msg.topic, &msg.payload)
            .ok()
            .and_then(|p| p.event.mac())
            .map(|m| m.to_string());
        let reason = error.reason_code();
        let letter = DeadLetter::new(
            &msg.topic,
            &msg.payload,
            msg.received,
            DeadKind::Failed,
            reason,
            &error.to_string(),
            mac,
            now,
        );
        self.store.insert_dead_letters(&[letter]).await?;
        self.stats.received += 1;
        self.stats.reject(reason);
        self.stats.dead_letters += 1;
        Ok(())
    }

    /// Forgets a device read earlier (the sweep changed it).
    pub(crate) fn forget(&mut self, mac: Mac) {
        self.cache.remove(&mac);
    }

    pub(crate) fn forget_all(&mut self) {
        self.refreshed.reset();
    }

    /// The batch's devices: from the cache, read again together every [`DEVICE_REFRESH`] (or less
    /// often, see [`Paced`]); a board
    /// not yet cached is read at its first message (one query for all of a batch's).
    async fn batch_devices(&mut self, macs: &[Mac]) -> Result<HashMap<Mac, Device>, StoreError> {
        let now = std::time::Instant::now();
        if self.refreshed.due(now, DEVICE_REFRESH) {
            if !self.cache.is_empty() {
                let fleet = self.store.fleet().await?;
                let held = std::mem::take(&mut self.cache);
                for d in fleet {
                    if held.contains_key(&d.mac_address) {
                        self.cache_device(d);
                    }
                }
            }
            self.absent.clear();
            self.refreshed.done(now);
        }
        let mut missing: Vec<Mac> = macs
            .iter()
            .filter(|m| !self.cache.contains_key(m) && !self.absent.contains(m))
            .copied()
            .collect();
        if missing.len() >= FLEET_READ_FROM {
            // Many boards at once (a campus powering up, a collector starting): one read of every
            // device, where a lookup of several costs as much on a server that scans (FerretDB).
            let started = std::time::Instant::now();
            for d in self.store.fleet().await? {
                self.cache_device(d);
            }
            self.refreshed.done(started);
            missing.retain(|m| !self.cache.contains_key(m));
        }
        if !missing.is_empty() {
            for d in self.store.devices_by_macs(&missing).await? {
                self.cache_device(d);
            }
            for m in missing {
                if !self.cache.contains_key(&m) {
                    self.absent.insert(m);
                }
            }
        }
        Ok(macs
            .iter()
            .filter_map(|m| self.cache.get(m).map(|d| (*m, d.clone())))
            .collect())
    }

    /// Keeps a device as read, with the clock anchor heard for it and not yet written.
    fn cache_device(&mut self, mut d: Device) {
        let Some(id) = d.id else { return };
        if let Some(c) = d.boot_clock {
            self.clocks_written.insert(id, c);
        }
        if let Some(c) = self.presence.unwritten_clock(id) {
            d.boot_clock = Some(c);
        }
        self.cache.insert(d.mac_address, d);
    }

    async fn process_once(
        &mut self,
        batch: &[Incoming],
        anchors: &mut HashMap<Mac, Option<BootClock>>,
    ) -> Result<Vec<Refusal>, StoreError> {
        let mut local = Stats::default();
        let mut refused = Vec::new();
        let mut dead = Vec::new();
        let parsed: Vec<_> = batch
            .iter()
            .map(|m| message::parse(&m.topic, &m.payload))
            .collect();
        let mut macs: Vec<Mac> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().and_then(|p| p.event.mac()))
            .collect();
        macs.sort();
        macs.dedup();
        let mut devices = self.batch_devices(&macs).await?;
        for (mac, device) in devices.iter_mut() {
            if let Some(clock) = self.retry_anchors.remove(mac) {
                device.boot_clock = clock;
            }
            anchors.insert(*mac, device.boot_clock);
        }
        let mut telemetry = Vec::new();
        let mut unregistered: BTreeMap<Mac, (Instant, Instant, i64)> = BTreeMap::new();
        let mut presence: HashMap<Id, PresenceUpdate> = HashMap::new();
        let (readings, finals) = board_readings(batch, &parsed, &devices);
        let snapshots = snapshot_times(batch, &parsed, &readings);
        self.mark_online(batch, &parsed, &mut devices).await?;
        self.store_moved_anchors(&parsed, &devices, &finals).await?;
        for (index, (msg, parsed)) in batch.iter().zip(parsed).enumerate() {
            local.received += 1;
            let parsed = match parsed {
                Ok(p) => p,
                Err(rejection) => {
                    tracing::debug!(topic = %msg.topic, reason = %rejection, "message rejected");
                    local.reject(rejection.code());
                    local.dead_letters += 1;
                    refused.push(Refusal {
                        index,
                        reason: rejection.code(),
                    });
                    dead.push(DeadLetter::new(
                        &msg.topic,
                        &msg.payload,
                        msg.received,
                        DeadKind::Malformed,
                        rejection.code(),
                        &rejection.to_string(),
                        None,
                        msg.received,
                    ));
                    continue;
                }
            };
            let Some(mac) = parsed.event.mac() else {
                // esp32/status names no board: nothing to change, nothing worth keeping.
                local.committed += 1;
                continue;
            };
            let recv = msg.received;
            let Some(device) = devices.get_mut(&mac) else {
                local.reject("unregistered");
                refused.push(Refusal {
                    index,
                    reason: "unregistered",
                });
                // Counted and surfaced (`devices unregistered`, health), never stored: anyone can
                // claim any MAC, and what no board of ours said is not our record.
                let e = unregistered.entry(mac).or_insert((recv, recv, 0));
                e.0 = e.0.min(recv);
                e.1 = e.1.max(recv);
                e.2 += 1;
                continue;
            };
            let Some(device_id) = device.id else {
                continue;
            };
            // Only what carries the board's secret is recorded as the board's, or as a command to
            // it (ours carry it): anyone can publish on the device topics. Refused messages are
            // counted, not kept as dead letters: a wrong secret may be a near miss of the real one,
            // which must not be stored, and no replay could make it right (the board is fixed by
            // provisioning it, and its next messages pass).
            if let Err(code) = parsed.event.trusted_by(&device.device_secret) {
                // Said at debug level for whoever provisions a board; never with what it carried.
                tracing::debug!(board = %mac, reason = code, "a message without its board's secret was refused");
                local.reject(code);
                refused.push(Refusal {
                    index,
                    reason: code,
                });
                continue;
            }
            let classroom = self.classroom_of(device).await?;
            if let Event::Command { .. } = parsed.event {
                telemetry.push(telemetry_event(msg, &parsed, device_id, &classroom, mac));
                local.committed += 1;
                continue;
            }
            let mut update = PresenceUpdate {
                last_seen: Some(recv),
                ..Default::default()
            };
            let reading = readings.get(&index);
            if let Some(r) = reading.filter(|r| r.step.ends_a_boot()) {
                local.reboots += 1;
                if r.step == ClockStep::Unsure {
                    local.unsure_boots += 1;
                }
                tracing::info!(board = %mac, step = ?r.step, last_certain = ?r.last_certain, "a board's clock shows a new boot: its open intervals are closed at its last certain time");
            }
            let event_time = match reading {
                Some(reading) => {
                    device.boot_clock = Some(reading.clock);
                    update.boot_clock = Some(reading.clock);
                    local.ledger_rows += self.end_earlier_boot(device, &classroom).await? as i64;
                    reading.event_time
                }
                None => snapshots.get(&index).copied().unwrap_or(recv),
            };
            if reading.is_some_and(|r| r.step == ClockStep::Untimed) {
                // Sent in a boot no longer known: kept, but its time is unknown, so nothing is
                // done on its word.
                local.count_transition(Transition::Stale, 0);
                presence
                    .entry(device_id)
                    .or_default()
                    .merge(PresenceUpdate {
                        last_seen: Some(recv),
                        ..Default::default()
                    });
                telemetry.push(telemetry_event(msg, &parsed, device_id, &classroom, mac));
                local.committed += 1;
                continue;
            }
            match &parsed.event {
                Event::Motion { detected: true, .. } => update.last_motion_at = Some(event_time),
                Event::SwitchEvent {
                    gpio,
                    state,
                    source,
                    ..
                } => {
                    let t = self
                        .transition(
                            device,
                            &classroom,
                            *gpio,
                            *state,
                            event_time,
                            &Cause::of_source(source),
                        )
                        .await?;
                    local.count_transition(t.0, t.1);
                }
                Event::ManualSwitch { gpio, state, .. } => {
                    let cause = Cause {
                        triggered_by: TriggeredBy::ManualSwitch,
                        manual: true,
                        reported_by: "manual_switch",
                        commanded: false,
                    };
                    let t = self
                        .transition(device, &classroom, *gpio, *state, event_time, &cause)
                        .await?;
                    local.count_transition(t.0, t.1);
                }
                // A snapshot has no timestamp: one delivered again (after a crash) may predate
                // changes already recorded, so only a first delivery corrects the relays.
                Event::StateSnapshot { switches, .. } if !msg.redelivered => {
                    let cause = Cause {
                        triggered_by: TriggeredBy::Monitoring,
                        manual: false,
                        reported_by: "state",
                        commanded: false,
                    };
                    for relay in switches {
                        let t = self
                            .transition(
                                device,
                                &classroom,
                                relay.gpio,
                                relay.state,
                                event_time,
                                &cause,
                            )
                            .await?;
                        local.count_transition(t.0, t.1);
                    }
                }
                _ => {}
            }
            presence.entry(device_id).or_default().merge(update);
            telemetry.push(telemetry_event(msg, &parsed, device_id, &classroom, mac));
            local.committed += 1;
        }
        if !telemetry.is_empty() {
            self.before(Step::Telemetry, None)?;
        }
        local.telemetry_inserted += self.store.insert_telemetry(&telemetry).await?;
        if !dead.is_empty() {
            self.before(Step::DeadLetters, None)?;
            self.store.insert_dead_letters(&dead).await?;
        }
        // Last: a count is the one write that is not idempotent.
        for (mac, (first, last, count)) in unregistered {
            self.before(Step::Unregistered, Some(mac))?;
            self.store
                .record_unregistered(mac, first, last, count)
                .await?;
        }
        for (id, p) in presence {
            self.presence.heard(id, p);
        }
        for (mac, d) in devices {
            if let Some(entry) = self.cache.get_mut(&mac) {
                *entry = d;
            }
        }
        self.stats.add(&local);
        Ok(refused)
    }

    /// Logs, before the batch's messages are processed, that every board of the batch not online
    /// as read came online at its first message that may act for it, and queues its mark for the
    /// presence rounds. The entries go in one insert; the marks go apart from the batches, a
    /// bounded number per round: on FerretDB each is a scan of the devices, and a campus
    /// powering up at once would hold the batches (and the broker's queue) for minutes. Their
    /// clock anchors and exact `lastSeen` go with their coalesced presence.
    async fn mark_online(
        &mut self,
        batch: &[Incoming],
        parsed: &[Result<message::Parsed, message::Rejection>],
        devices: &mut HashMap<Mac, Device>,
    ) -> Result<(), StoreError> {
        let mut first: BTreeMap<Mac, Instant> = BTreeMap::new();
        for (msg, p) in batch.iter().zip(parsed) {
            let Ok(p) = p else { continue };
            let Some(mac) = p.event.mac() else { continue };
            let Some(device) = devices.get(&mac) else {
                continue;
            };
            // A board in maintenance keeps that status; its messages are still recorded.
            if device.id.is_none()
                || device.status == DeviceStatus::Online
                || device.status == DeviceStatus::Maintenance
                || matches!(p.event, Event::Command { .. })
                || p.event.trusted_by(&device.device_secret).is_err()
            {
                continue;
            }
            first.entry(mac).or_insert(msg.received);
        }
        let mut ids = Vec::with_capacity(first.len());
        let mut entries = Vec::with_capacity(first.len());
        for (mac, recv) in &first {
            let Some(device) = devices.get(mac) else {
                continue;
            };
            let Some(device_id) = device.id else { continue };
            let classroom = self.classroom_of(device).await?;
            // The entry is written before the mark, so that a retry (which finds the board online)
            // has it; its id names the state left, so that collectors coming upon the same board
            // at once write one entry.
            let mut entry = ActivityLog::new(action::DEVICE_ONLINE, TriggeredBy::Monitoring, *recv);
            entry.device_id = Some(device_id);
            entry.classroom = Some(classroom);
            let key = format!(
                "online:{device_id}:{}:{}",
                device.status.as_str(),
                device
                    .last_seen
                    .map_or("-".to_string(), |t| t.timestamp_millis().to_string())
            );
            entries.push((entry, key));
            ids.push(device_id);
        }
        if !entries.is_empty() {
            self.before(Step::OnlineActivity, None)?;
        }
        self.store.log_activities_once(&entries).await?;
        for mac in first.keys() {
            self.before(Step::OnlineMark, Some(*mac))?;
        }
        // Marked with the next presence round. Their first messages came a batch's linger apart:
        // the earliest keeps the sweep off them until their presence is written.
        if let Some(seen) = first.values().min() {
            for id in ids {
                self.presence.mark_online(id, *seen);
            }
        }
        for mac in first.keys() {
            if let Some(device) = devices.get_mut(mac) {
                device.status = DeviceStatus::Online;
            }
        }
        Ok(())
    }

    /// Stores, before anything of the batch is written, the clock anchor of each board with a timed
    /// relay change in the batch when it moved by more than [`ANCHOR_SLACK_MS`] from the stored one
    /// (a new boot, a tighter bound): the change is timed with it, and a redelivery after a crash
    /// must be timed the same way. Other boards' anchors go with their coalesced presence.
    async fn store_moved_anchors(
        &mut self,
        parsed: &[Result<message::Parsed, message::Rejection>],
        devices: &HashMap<Mac, Device>,
        finals: &HashMap<Mac, BootClock>,
    ) -> Result<(), StoreError> {
        let timed: HashSet<Mac> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .filter(|p| {
                matches!(
                    p.event,
                    Event::SwitchEvent { .. } | Event::ManualSwitch { .. }
                )
            })
            .filter_map(|p| p.event.mac())
            .collect();
        let moved: Vec<(Id, BootClock)> = finals
            .iter()
            .filter(|(mac, _)| timed.contains(mac))
            .filter_map(|(mac, clock)| {
                let id = devices.get(mac).and_then(|d| d.id)?;
                moved(self.clocks_written.get(&id), clock).then_some((id, *clock))
            })
            .collect();
        // One write per presence group, however many boards.
        let updates: Vec<(Id, PresenceUpdate)> = moved
            .iter()
            .map(|(id, clock)| {
                let update = PresenceUpdate {
                    boot_clock: Some(*clock),
                    ..Default::default()
                };
                (*id, update)
            })
            .collect();
        for _ in &updates {
            self.before(Step::Anchor, None)?;
        }
        self.store.write_presences(&updates).await?;
        self.clocks_written.extend(moved);
        Ok(())
    }

    /// Takes the presence writes due at `now` (all of them when `None`), to be written with
    /// [`PresenceWrites::write`] and then settled with [`Processor::settle_presence`].
    pub fn take_presence(&mut self, now: Option<Instant>) -> PresenceWrites {
        // At the last flush every anchor that changed at all is stored, also one whose presence
        // went out earlier without it: the collector that starts next tells a reboot from a
        // delivery held back by up to the stored `lastMillis`.
        let last = now.is_none();
        if last {
            let unstored: Vec<(Id, BootClock)> = self
                .cache
                .values()
                .filter_map(|d| Some((d.id?, d.boot_clock?)))
                .filter(|(id, c)| self.clocks_written.get(id) != Some(c))
                .collect();
            for (id, clock) in unstored {
                let update = PresenceUpdate {
                    boot_clock: Some(clock),
                    ..Default::default()
                };
                self.presence.heard(id, update);
            }
        }
        let written = &self.clocks_written;
        self.presence.take_due(now, |id, clock| {
            moved(written.get(&id), clock) || (last && written.get(&id) != Some(clock))
        })
    }

    /// Records how presence writes taken with [`Processor::take_presence`] ended.
    pub fn settle_presence(&mut self, writes: PresenceWrites, written: bool) {
        if written {
            self.clocks_written.extend(writes.clocks());
        }
        self.presence.settle(writes, written);
    }

    /// Writes the presence due at `now` (all of it when `None`, and every online mark queued)
    /// and waits for it.
    pub async fn flush_presence(&mut self, now: Option<Instant>) -> Result<(), StoreError> {
        let writes = self.take_presence(now);
        let result = writes.write(&self.store).await;
        self.settle_presence(writes, result.is_ok());
        result?;
        if now.is_none() {
            let marks = self.take_online_marks(true);
            let result = marks.write(&self.store).await;
            self.settle_online_marks(marks, result.is_ok());
            result?;
        }
        Ok(())
    }

    /// Takes the next boards to mark online (all of them when `all`), to be written with
    /// [`OnlineMarks::write`] and settled with [`Processor::settle_online_marks`].
    pub fn take_online_marks(&mut self, all: bool) -> OnlineMarks {
        self.presence.take_marks(all)
    }

    /// Records how online marks taken with [`Processor::take_online_marks`] ended.
    pub fn settle_online_marks(&mut self, marks: OnlineMarks, written: bool) {
        self.presence.settle_marks(marks, written);
    }

    /// The `lastSeen` heard for a board but not yet written, if any.
    pub(crate) fn unwritten_last_seen(&self, device: Id) -> Option<Instant> {
        self.presence.unwritten_last_seen(device)
    }

    /// Writes one board's presence now, whatever is due.
    pub(crate) async fn flush_board(&mut self, device: Id) -> Result<(), StoreError> {
        let writes = self.presence.take_board(device);
        let result = writes.write(&self.store).await;
        self.settle_presence(writes, result.is_ok());
        result
    }

    pub(crate) async fn classroom_of(&mut self, device: &Device) -> Result<String, StoreError> {
        let Some(id) = device.classroom else {
            return Ok(String::new());
        };
        if let Some(name) = self.classrooms.get(&id) {
            return Ok(name.clone());
        }
        let name = self
            .store
            .classroom_by_id(id)
            .await?
            .map(|c| c.name)
            .unwrap_or_default();
        self.classrooms.insert(id, name.clone());
        Ok(name)
    }

    /// Moves the switch on relay `pin` to `state` at `at`: claims the departure from the switch's
    /// current state and completes the claim that holds (see [`Processor::complete`]); if another
    /// collector's claim held, re-reads the device and tries again.
    pub async fn transition(
        &self,
        device: &mut Device,
        classroom: &str,
        pin: i32,
        state: bool,
        at: Instant,
        cause: &Cause,
    ) -> Result<(Transition, u64), StoreError> {
        let mut rows = 0;
        // A board's event reports a change: when the device as cached already shows it, another
        // collector of the group may have moved the switch since it was read, so read it again.
        let mut reread = !matches!(cause.reported_by, "switch_event" | "manual_switch");
        for _ in 0..CAS_ATTEMPTS {
            let Some((index, sw)) = device.switch_by_pin(pin) else {
                return Ok((Transition::UnknownPin, rows));
            };
            let sw = sw.clone();
            if sw.state == state && !reread && sw.last_state_change != Some(at) {
                reread = true;
                if !self.reread(device).await? {
                    return Ok((Transition::UnknownPin, rows));
                }
                continue;
            }
            if sw.state == state {
                // Its activity and ledger rows were written before the switch moved.
                return Ok((Transition::NoChange, rows));
            }
            if sw.last_state_change.is_some_and(|lsc| at < lsc) {
                return Ok((Transition::Stale, rows));
            }
            // Changes at one board instant (a burst from a wall switch) are kept in the order they
            // came, a millisecond apart: every state a switch leaves is then a distinct one (its
            // claim, its activity), and a redelivered change is older than the last one.
            let at = match sw.last_state_change {
                Some(lsc) if at == lsc => lsc + chrono::Duration::milliseconds(1),
                _ => at,
            };
            let (outcome, billed) = self
                .claim_and_complete(device, classroom, index, state, at, Some(cause))
                .await?;
            rows += billed;
            if outcome != Claimed::Other {
                device.switches[index].state = state;
                device.switches[index].last_state_change = Some(at);
                return Ok((
                    if outcome == Claimed::Made {
                        Transition::Applied
                    } else {
                        Transition::NoChange
                    },
                    rows,
                ));
            }
            reread = true;
            if !self.reread(device).await? {
                return Ok((Transition::UnknownPin, rows));
            }
        }
        Ok((Transition::Contended, rows))
    }

    /// Closes, at the last certain time of the boot before the board's current one, every interval
    /// of `device` still open from then (the rows say so in `quality.notes`); intervals opened since
    /// (by the new boot's snapshot) stay open. Read from the anchor itself, so that a batch done
    /// again after a failure, or by another collector, closes the same intervals at the same time.
    /// Returns the ledger rows written.
    async fn end_earlier_boot(
        &self,
        device: &mut Device,
        classroom: &str,
    ) -> Result<u64, StoreError> {
        let Some(clock) = device.boot_clock else {
            return Ok(0);
        };
        let Some(before) = clock.previous.filter(|p| !p.wrapped) else {
            return Ok(0);
        };
        let at = (before.boot_at + chrono::Duration::milliseconds(before.last_millis))
            .min(clock.boot_at);
        let pins: Vec<i32> = device
            .switches
            .iter()
            .filter(|sw| sw.state && sw.last_state_change.is_none_or(|t| t <= at))
            .filter_map(|sw| sw.relay_pin())
            .collect();
        if pins.is_empty() {
            return Ok(0);
        }
        let cause = Cause {
            triggered_by: TriggeredBy::Monitoring,
            manual: false,
            reported_by: if before.unsure { REBOOT_UNSURE } else { REBOOT },
            commanded: false,
        };
        let mut rows = 0;
        for pin in pins {
            rows += self
                .transition(device, classroom, pin, false, at, &cause)
                .await?
                .1;
        }
        Ok(rows)
    }

    /// Replaces `device` with the database's copy, keeping the clock anchor and status this batch
    /// has seen; false if it is gone.
    async fn reread(&self, device: &mut Device) -> Result<bool, StoreError> {
        let Some(device_id) = device.id else {
            return Ok(false);
        };
        match self.store.device_by_id(device_id).await? {
            Some(mut fresh) => {
                fresh.boot_clock = device.boot_clock;
                fresh.status = device.status.clone();
                *device = fresh;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Claims moving switch `index` of `device` (as read) to `(state, at)` and completes the claim
    /// that holds. Returns whose claim it was, and the ledger rows written.
    pub(crate) async fn claim_and_complete(
        &self,
        device: &Device,
        classroom: &str,
        index: usize,
        state: bool,
        at: Instant,
        cause: Option<&Cause>,
    ) -> Result<(Claimed, u64), StoreError> {
        let (Some(device_id), Some(sw)) = (device.id, device.switches.get(index)) else {
            return Ok((Claimed::Other, 0));
        };
        let guard = SwitchGuard {
            device: device_id,
            index,
            switch_id: sw.switch_id.clone(),
            state: sw.state,
            last_state_change: sw.last_state_change,
        };
        let ours = SwitchClaim {
            key: guard.claim_key(),
            state,
            at,
            action: cause.map(|c| c.action(state)).unwrap_or_default(),
            triggered_by: cause
                .map(|c| c.triggered_by.clone())
                .unwrap_or(TriggeredBy::Monitoring),
            reported_by: cause
                .map(|c| c.reported_by)
                .unwrap_or("collector")
                .to_string(),
            created_at: at,
        };
        self.before(Step::Claim, Some(device.mac_address))?;
        let (claim, made) = self.store.claim_transition(&ours).await?;
        let rows = self.complete(device, classroom, &guard, &claim).await?;
        let outcome = match (made, claim.state == state && claim.at == at) {
            (true, _) => Claimed::Made,
            (false, true) => Claimed::Same,
            (false, false) => Claimed::Other,
        };
        Ok((outcome, rows))
    }

    /// Completes a claimed transition, idempotently, in an order that survives a crash anywhere:
    /// the ledger rows of the interval it closes (unique key), the activity (derived id), then the
    /// guarded update of the switch, which is what a retry reads as done.
    async fn complete(
        &self,
        device: &Device,
        classroom: &str,
        guard: &SwitchGuard,
        claim: &SwitchClaim,
    ) -> Result<u64, StoreError> {
        let Some(sw) = device.switches.get(guard.index) else {
            return Ok(0);
        };
        let mut rows = 0;
        if let (true, Some(start)) = (guard.state, guard.last_state_change) {
            if claim.at > start {
                self.before(Step::Ledger, Some(device.mac_address))?;
                let unsure_anchor = device
                    .boot_clock
                    .is_some_and(|c| c.previous.is_some_and(|p| p.unsure) && claim.at >= c.boot_at);
                let note = boot_end_note(&claim.reported_by)
                    .or(unsure_anchor.then_some(UNSURE_ANCHOR_NOTE));
                rows = self
                    .bill(device, sw, classroom, start, claim.at, note)
                    .await?;
            }
        }
        if !claim.action.is_empty() {
            self.before(Step::SwitchActivity, Some(device.mac_address))?;
            self.log_switch_activity(
                device,
                classroom,
                sw,
                claim.state,
                claim.at,
                &claim.action,
                &claim.triggered_by,
                &claim.reported_by,
            )
            .await?;
        }
        self.before(Step::SwitchState, Some(device.mac_address))?;
        self.store
            .set_switch_if(guard, claim.state, claim.at)
            .await?;
        Ok(rows)
    }

    /// Closes `[start, end)` of a switch into ledger rows; `note` (why its end is not the board's
    /// own word) goes into the last row's `quality.notes`. Returns how many were new.
    pub async fn bill(
        &self,
        device: &Device,
        sw: &crate::domain::Switch,
        classroom: &str,
        start: Instant,
        end: Instant,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        if end <= start {
            return Ok(0);
        }
        let tariffs = self.store.tariff_book(start, end).await?;
        let settings = self.store.active_power_settings().await?;
        let ctx = BillingContext {
            device,
            switch: sw,
            classroom,
            settings: settings.as_ref(),
            tariffs: &tariffs,
            tz: self.tz,
        };
        let mut rows = ledger_rows(&ctx, start, end, DataSource::Telemetry);
        if let (Some(note), Some(last)) = (note, rows.last_mut()) {
            last.add_note(note);
        }
        // Rows of a day that has ended: its rollups (if made) must be made again. Noted before
        // the insert, so that a retry after a failure in between still finds it noted.
        let today = local_date(crate::domain::dates::now_millis(), self.tz);
        let late: std::collections::BTreeSet<chrono::NaiveDate> = rows
            .iter()
            .map(|r| local_date(r.start_ts, self.tz))
            .filter(|d| *d < today)
            .collect();
        self.store.note_late_days(&late).await?;
        Ok(self.store.insert_ledger_rows(&rows).await?.inserted)
    }

    #[allow(clippy::too_many_arguments)]
    async fn log_switch_activity(
        &self,
        device: &Device,
        classroom: &str,
        sw: &crate::domain::Switch,
        state: bool,
        at: Instant,
        action_name: &str,
        triggered_by: &TriggeredBy,
        reported_by: &str,
    ) -> Result<(), StoreError> {
        let mut entry = ActivityLog::new(action_name, triggered_by.clone(), at);
        entry.device_id = device.id;
        entry.switch_id = Some(sw.switch_id.clone());
        entry.switch_name = Some(sw.name.clone());
        entry.classroom = Some(classroom.to_string());
        entry.context = Some(serde_json::json!({
            "reportedBy": reported_by,
            "gpio": sw.relay_pin(),
        }));
        let key = format!(
            "switch:{}:{}:{}:{}",
            device.ledger_id().unwrap_or_default(),
            sw.switch_id,
            at.timestamp_millis(),
            state
        );
        self.store.log_activity_once(&entry, &key).await?;
        Ok(())
    }
}

/// How far a board's `millis()` must go past the stored `lastMillis` (and at least double it)
/// before it is stored again.
const LAST_MILLIS_STEP: i64 = 60_000;

/// Whether a board's clock anchor moved enough from the stored one to be stored again: a new boot,
/// a tighter bound, or its `lastMillis` doubled (a collector that starts again tells a reboot from
/// a delivery held back by up to the stored `lastMillis`: a write per doubling keeps that within
/// half the board's uptime, a few writes per boot).
fn moved(stored: Option<&BootClock>, clock: &BootClock) -> bool {
    match stored {
        None => true,
        Some(old) => {
            clock.last_millis < old.last_millis
                || (clock.boot_at - old.boot_at).num_milliseconds().abs() > ANCHOR_SLACK_MS
                || clock.previous != old.previous
                || clock.last_millis
                    >= old
                        .last_millis
                        .saturating_mul(2)
                        .max(old.last_millis.saturating_add(LAST_MILLIS_STEP))
        }
    }
}

/// The board-clock reading of every trusted timestamped message of the batch, by position: each
/// board's messages are timed together so that a late burst keeps the board's spacing.
fn board_readings(
    batch: &[Incoming],
    parsed: &[Result<message::Parsed, message::Rejection>],
    devices: &HashMap<Mac, Device>,
) -> (
    HashMap<usize, board_clock::Reading>,
    HashMap<Mac, BootClock>,
) {
    let mut runs: HashMap<Mac, Vec<(usize, i64, Instant, bool)>> = HashMap::new();
    for (i, (msg, p)) in batch.iter().zip(parsed).enumerate() {
        let Ok(p) = p else { continue };
        let (Some(mac), Some(ms)) = (p.event.mac(), p.event.board_millis()) else {
            continue;
        };
        match devices.get(&mac) {
            Some(d) if p.event.trusted_by(&d.device_secret).is_ok() => runs
                .entry(mac)
                .or_default()
                .push((i, ms, msg.received, msg.redelivered)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    let mut finals = HashMap::new();
    for (mac, run) in runs {
        let prev = devices.get(&mac).and_then(|d| d.boot_clock);
        let msgs: Vec<(i64, Instant, bool)> =
            run.iter().map(|&(_, ms, t, dup)| (ms, t, dup)).collect();
        for ((i, ms, received, _), r) in run
            .iter()
            .zip(board_clock::observe_run(prev.as_ref(), &msgs))
        {
            tracing::debug!(board = %mac, millis = ms, %received, step = ?r.step, event_time = %r.event_time, boot_at = %r.clock.boot_at, last_millis = r.clock.last_millis, "board clock");
            finals.insert(mac, r.clock);
            out.insert(*i, r);
        }
    }
    (out, finals)
}

/// The time of each relay snapshot that a timed message of its board follows in the batch: just
/// before that message (a board sends in order), and never after its arrival. Timed at arrival, a
/// snapshot would pass for newer than the changes the board reported after it, and undo them where
/// a retry finds them already applied.
fn snapshot_times(
    batch: &[Incoming],
    parsed: &[Result<message::Parsed, message::Rejection>],
    readings: &HashMap<usize, board_clock::Reading>,
) -> HashMap<usize, Instant> {
    let mut next: HashMap<Mac, Instant> = HashMap::new();
    let mut out = HashMap::new();
    for (i, (msg, p)) in batch.iter().zip(parsed).enumerate().rev() {
        let Ok(p) = p else { continue };
        let Some(mac) = p.event.mac() else { continue };
        if let Some(r) = readings.get(&i) {
            next.insert(mac, r.event_time);
        } else if let (Event::StateSnapshot { .. }, Some(n)) = (&p.event, next.get(&mac)) {
            out.insert(i, msg.received.min(*n - chrono::Duration::milliseconds(1)));
        }
    }
    out
}

fn telemetry_event(
    msg: &Incoming,
    parsed: &message::Parsed,
    device: Id,
    classroom: &str,
    mac: Mac,
) -> TelemetryEvent {
    let payload = without_secret(parsed.payload.clone());
    TelemetryEvent {
        device_id: Some(device.to_hex()),
        mac: mac.to_string(),
        classroom: classroom.to_string(),
        topic: msg.topic.clone(),
        event_type: parsed.event.kind().to_string(),
        received_at: msg.received,
        event_hash: event_hash(&msg.topic, &payload, msg.received),
        payload,
        created_at: Some(msg.received),
        updated_at: Some(msg.received),
    }
}
