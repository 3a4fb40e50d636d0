//! The view model: classrooms, boards, switches, presence, totals and histories in domain terms,
//! with bounded memory (ring buffers) so that nothing grows with uptime.

use super::event::{BoardMessage, Live, Snapshot};
use crate::domain::energy::switch_power;
use crate::domain::tariff::TariffBook;
use crate::domain::totals::{OpenSwitch, RunningTotals, Totals};
use crate::domain::{
    ActivityLog, Actor, Classroom, CostVersion, Device, FirmwareUpdate, Instant, Mac,
    PowerSettings, Secret, SwitchType,
};
use crate::mqtt::relay::{Confirmation, Pending};
use std::collections::{HashMap, VecDeque};

/// A fixed-capacity history: pushing past the capacity drops the oldest.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Ring<T> {
    pub fn new(capacity: usize) -> Self {
        Ring {
            items: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Keeps only the items for which `keep` is true.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }
}

/// Samples of a classroom's power kept for its sparkline (one a minute: the last two hours).
pub const POWER_HISTORY: usize = 120;
/// Activity entries kept in memory.
pub const ACTIVITY_HISTORY: usize = 1000;
/// Distinct unregistered MACs remembered.
pub const UNREGISTERED_KEPT: usize = 64;
/// Firmware records kept per board (the newest).
pub const FIRMWARE_KEPT: usize = 8;

/// Where a relay command stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ToggleState {
    Idle,
    /// Sent for `by`; waiting for the board's acknowledgement until `deadline`.
    Pending {
        want: bool,
        deadline: Instant,
        by: Actor,
    },
    Confirmed {
        at: Instant,
    },
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct SwitchView {
    pub id: String,
    pub name: String,
    pub kind: SwitchType,
    pub pin: Option<i32>,
    pub on: bool,
    pub since: Option<Instant>,
    pub power_rating: Option<f64>,
    /// Rated power now (rating, else the power settings' wattage for the type, else 50 W).
    pub watts: f64,
    pub toggle: ToggleState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Online,
    Stale,
    Offline,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub id: String,
    pub name: String,
    pub mac: Mac,
    pub room: usize,
    pub ip: Option<String>,
    pub firmware: Option<String>,
    pub last_seen: Option<Instant>,
    pub last_motion: Option<Instant>,
    pub secret: Secret,
    pub switches: Vec<SwitchView>,
}

/// A classroom by identity, whatever its place in the campus's list: its `_id`, else (the room of
/// boards assigned to no classroom) its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoomKey {
    Id(String),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct Room {
    pub id: Option<String>,
    pub name: String,
    pub building: Option<String>,
    pub floor: Option<i32>,
    pub boards: Vec<usize>,
    pub power_history: Ring<u64>,
}

/// A classroom's figures at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RoomStats {
    pub boards_online: usize,
    pub boards_total: usize,
    pub switches_on: usize,
    pub power_w: f64,
    /// Today, this month and the projection (the running totals' figures for the classroom).
    pub totals: Totals,
}

/// Presence thresholds and the campus's day.
#[derive(Debug, Clone)]
pub struct Clock {
    pub now: Instant,
    /// Start of today in the campus time zone.
    pub day_start: Instant,
    pub stale_after_secs: i64,
    pub offline_after_secs: i64,
}

impl Clock {
    pub fn presence(&self, last_seen: Option<Instant>) -> Presence {
        match last_seen {
            None => Presence::Offline,
            Some(t) => {
                let age = (self.now - t).num_seconds();
                if age >= self.offline_after_secs {
                    Presence::Offline
                } else if age >= self.stale_after_secs {
                    Presence::Stale
                } else {
                    Presence::Online
                }
            }
        }
    }
}

/// The result of applying a live message.
#[derive(Debug, Default, PartialEq)]
pub struct LiveOutcome {
    /// (board, switch, who asked, how) of each pending command the message confirmed.
    pub confirmed: Vec<(usize, usize, Actor, Confirmation)>,
    /// The message did not carry its board's secret (`wrong_secret`, `missing_secret`): anyone
    /// can publish on the device topics, so it changed nothing.
    pub untrusted: Option<&'static str>,
    /// The message's MAC is not a registered board.
    pub unregistered: Option<Mac>,
    /// A relay or a command's state changed: worth a frame now. Presence and motion are shown
    /// by the next clock tick (within a second), so heartbeats cost no frames.
    pub changed: bool,
    /// A switch's interval opened or closed: the totals need working out again.
    pub totals_changed: bool,
}

#[derive(Debug, Clone)]
pub struct Campus {
    pub rooms: Vec<Room>,
    pub boards: Vec<Board>,
    by_mac: HashMap<Mac, usize>,
    by_id: HashMap<String, usize>,
    pub settings: Option<PowerSettings>,
    pub tariff: TariffBook,
    pub activity: Ring<ActivityLog>,
    pub unregistered: Ring<Mac>,
    /// Each board's newest firmware records (by the board's `_id` in hex), newest first.
    pub firmware: HashMap<String, Vec<FirmwareUpdate>>,
    /// kWh and ₹ of every scope: the books' own engine, fed by events and reconciliations.
    pub totals: RunningTotals,
}

/// The price of an interval that no cost version covers when there are no power settings either
/// (what the collector bills it at too).
pub const NO_TARIFF_PRICE: f64 = 0.0;

impl Campus {
    /// An empty campus whose totals are for the campus-local day of `now`.
    pub fn new(tz: chrono_tz::Tz, now: Instant) -> Campus {
        Campus {
            rooms: Vec::new(),
            boards: Vec::new(),
            by_mac: HashMap::new(),
            by_id: HashMap::new(),
            settings: None,
            tariff: TariffBook::new(Vec::new(), NO_TARIFF_PRICE),
            activity: Ring::new(ACTIVITY_HISTORY),
            unregistered: Ring::new(UNREGISTERED_KEPT),
            firmware: HashMap::new(),
            totals: RunningTotals::new(tz, now, TariffBook::new(Vec::new(), NO_TARIFF_PRICE)),
        }
    }
}

/// Name of the room that holds boards assigned to no classroom.
pub const UNASSIGNED: &str = "(no classroom)";

impl Campus {
    /// Rebuilds from a snapshot, keeping pending commands, power histories, unregistered MACs,
    /// the activity and the totals (their open intervals follow the snapshot's switches).
    pub fn load(&mut self, snap: Snapshot, now: Instant) {
        let tz = self.totals.tz();
        let old = std::mem::replace(self, Campus::new(tz, now));
        let mut campus = Campus {
            unregistered: old.unregistered.clone(),
            activity: old.activity.clone(),
            totals: old.totals.clone(),
            ..Campus::new(tz, now)
        };
        campus.set_tariff(snap.settings, snap.cost_versions);
        for c in snap.classrooms {
            campus.upsert_classroom(c);
        }
        for d in snap.devices {
            campus.upsert_device(d);
        }
        for room in campus.rooms.iter_mut() {
            if let Some(o) = old.rooms.iter().find(|r| r.name == room.name) {
                room.power_history = o.power_history.clone();
            }
        }
        for b in campus.boards.iter_mut() {
            let Some(&ob) = old.by_id.get(&b.id) else {
                continue;
            };
            for s in b.switches.iter_mut() {
                if let Some(os) = old.boards[ob].switches.iter().find(|o| o.id == s.id) {
                    s.toggle = os.toggle.clone();
                }
            }
        }
        // A board heard before the snapshot arrived, or registered since, is not unregistered.
        let by_mac = &campus.by_mac;
        campus.unregistered.retain(|m| !by_mac.contains_key(m));
        *self = campus;
        self.sync_all_totals();
    }

    /// Replaces the firmware histories with `records` (newest first), keeping the newest
    /// [`FIRMWARE_KEPT`] of each registered board.
    pub fn set_firmware(&mut self, records: Vec<FirmwareUpdate>) {
        self.firmware.clear();
        for r in records {
            if !self.by_id.contains_key(&r.device_id) {
                continue;
            }
            let history = self.firmware.entry(r.device_id.clone()).or_default();
            if history.len() < FIRMWARE_KEPT {
                history.push(r);
            }
        }
    }

    /// Replaces the activity shown with `recent` (oldest first).
    pub fn set_activity(&mut self, recent: Vec<ActivityLog>) {
        self.activity = Ring::new(ACTIVITY_HISTORY);
        for a in recent {
            self.activity.push(a);
        }
    }

    /// Adds an entry unless it is already shown (the feed may repeat one).
    pub fn add_activity(&mut self, entry: ActivityLog) -> bool {
        if entry.id.is_some()
            && self
                .activity
                .iter()
                .rev()
                .take(200)
                .any(|a| a.id == entry.id)
        {
            return false;
        }
        self.activity.push(entry);
        true
    }

    pub fn set_tariff(&mut self, settings: Option<PowerSettings>, versions: Vec<CostVersion>) {
        let fallback = settings
            .as_ref()
            .map(|s| s.electricity_price)
            .unwrap_or(NO_TARIFF_PRICE);
        self.tariff = TariffBook::new(versions, fallback);
        self.totals.set_tariffs(self.tariff.clone());
        self.settings = settings;
        let settings = self.settings.clone();
        for b in self.boards.iter_mut() {
            for s in b.switches.iter_mut() {
                s.watts = watts_of(s, settings.as_ref());
            }
        }
        self.sync_all_totals();
    }

    /// A cost version added or changed (by `_id`).
    pub fn upsert_cost_version(&mut self, version: CostVersion) {
        let mut versions = self.tariff.versions.clone();
        match versions
            .iter_mut()
            .find(|v| v.id.is_some() && v.id == version.id)
        {
            Some(v) => *v = version,
            None => versions.push(version),
        }
        let settings = self.settings.clone();
        self.set_tariff(settings, versions);
    }

    /// Power settings changed: the active ones replace the ones in use; others matter only when
    /// they deactivate the ones in use.
    pub fn upsert_power_settings(&mut self, settings: PowerSettings) {
        let current = self.settings.as_ref().and_then(|s| s.id);
        if settings.is_active || (settings.id.is_some() && settings.id == current) {
            let versions = self.tariff.versions.clone();
            self.set_tariff(Some(settings), versions);
        }
    }

    pub fn upsert_classroom(&mut self, c: Classroom) -> usize {
        let id = c.id.map(|i| i.to_hex());
        let existing = self
            .rooms
            .iter()
            .position(|r| (id.is_some() && r.id == id) || r.name == c.name);
        match existing {
            Some(i) => {
                let r = &mut self.rooms[i];
                r.id = id;
                r.name = c.name;
                r.building = c.building;
                r.floor = c.floor;
                i
            }
            None => {
                self.rooms.push(Room {
                    id,
                    name: c.name,
                    building: c.building,
                    floor: c.floor,
                    boards: Vec::new(),
                    power_history: Ring::new(POWER_HISTORY),
                });
                self.rooms.len() - 1
            }
        }
    }

    fn room_for(&mut self, classroom: Option<String>) -> usize {
        if let Some(id) = &classroom {
            if let Some(i) = self.rooms.iter().position(|r| r.id.as_ref() == Some(id)) {
                return i;
            }
        }
        match self
            .rooms
            .iter()
            .position(|r| r.id.is_none() && r.name == UNASSIGNED)
        {
            Some(i) => i,
            None => {
                self.rooms.push(Room {
                    id: None,
                    name: UNASSIGNED.into(),
                    building: None,
                    floor: None,
                    boards: Vec::new(),
                    power_history: Ring::new(POWER_HISTORY),
                });
                self.rooms.len() - 1
            }
        }
    }

    /// Adds or replaces a board from its database document; live state newer than the document
    /// (a pending command, a fresher `last_seen`) is kept.
    pub fn upsert_device(&mut self, d: Device) -> Option<usize> {
        let id = d.id?.to_hex();
        let room = self.room_for(d.classroom.map(|c| c.to_hex()));
        let settings = self.settings.clone();
        let mut switches: Vec<SwitchView> = d
            .switches
            .iter()
            .map(|s| {
                let mut v = SwitchView {
                    id: s.switch_id.clone(),
                    name: s.name.clone(),
                    kind: s.switch_type.clone(),
                    pin: s.relay_pin(),
                    on: s.state,
                    since: s.last_state_change,
                    power_rating: s.power_rating,
                    watts: 0.0,
                    toggle: ToggleState::Idle,
                };
                v.watts = watts_of(&v, settings.as_ref());
                v
            })
            .collect();
        let mut board = Board {
            id: id.clone(),
            name: d.name,
            mac: d.mac_address,
            room,
            ip: d.ip_address,
            firmware: d.firmware_version,
            last_seen: d.last_seen,
            last_motion: d.last_motion_at,
            secret: d.device_secret,
            switches: Vec::new(),
        };
        match self.by_id.get(&id).copied() {
            Some(i) => {
                let old = &self.boards[i];
                for s in switches.iter_mut() {
                    if let Some(o) = old.switches.iter().find(|o| o.id == s.id) {
                        s.toggle = o.toggle.clone();
                        // A document older than what the board said since (the collector has not
                        // written that change yet) does not turn the switch back.
                        if o.on != s.on
                            && o.since.is_some()
                            && s.since.is_none_or(|t| Some(t) < o.since)
                        {
                            s.on = o.on;
                            s.since = o.since;
                        }
                    }
                }
                board.last_seen = later(board.last_seen, old.last_seen);
                board.last_motion = later(board.last_motion, old.last_motion);
                board.switches = switches;
                let old_room = old.room;
                if old_room != room {
                    self.rooms[old_room].boards.retain(|&b| b != i);
                    self.rooms[room].boards.push(i);
                }
                if old.mac != board.mac {
                    self.by_mac.remove(&old.mac);
                    self.by_mac.insert(board.mac, i);
                    let mac = board.mac;
                    self.unregistered.retain(|m| *m != mac);
                }
                self.boards[i] = board;
                self.sync_board_totals(i);
                Some(i)
            }
            None => {
                board.switches = switches;
                let i = self.boards.len();
                self.by_mac.insert(board.mac, i);
                let mac = board.mac;
                self.unregistered.retain(|m| *m != mac);
                self.by_id.insert(id, i);
                self.rooms[room].boards.push(i);
                self.boards.push(board);
                self.sync_board_totals(i);
                Some(i)
            }
        }
    }

    /// The name a room's intervals carry in the ledger (the collector writes none for a board
    /// without a classroom).
    pub fn ledger_classroom(&self, room: usize) -> &str {
        let r = &self.rooms[room];
        if r.id.is_none() && r.name == UNASSIGNED {
            ""
        } else {
            &r.name
        }
    }

    /// Makes the totals' open intervals of a board match its switches as shown: on since `since`
    /// at its rated power, or off since `since`. Returns whether anything changed.
    fn sync_board_totals(&mut self, bi: usize) -> bool {
        let mut changed = false;
        let b = &self.boards[bi];
        let classroom = self.ledger_classroom(b.room).to_string();
        for s in &b.switches {
            let want = match (s.on, s.since) {
                (true, Some(since)) => Some(OpenSwitch {
                    device_id: b.id.clone(),
                    switch_id: s.id.clone(),
                    classroom: classroom.clone(),
                    since,
                    power_w: s.watts,
                }),
                _ => None,
            };
            let have = self.totals.open_switch(&b.id, &s.id);
            match (want, have) {
                (Some(w), h) if h != Some(&w) => {
                    self.totals.switch_on(&w);
                    changed = true;
                }
                (None, Some(_)) => {
                    let at = s.since.unwrap_or_else(chrono::Utc::now);
                    self.totals.switch_off(&b.id, &s.id, at);
                    changed = true;
                }
                _ => {}
            }
        }
        changed
    }

    fn sync_all_totals(&mut self) {
        for bi in 0..self.boards.len() {
            self.sync_board_totals(bi);
        }
    }

    pub fn room_key(&self, room: usize) -> RoomKey {
        let r = &self.rooms[room];
        match &r.id {
            Some(id) => RoomKey::Id(id.clone()),
            None => RoomKey::Name(r.name.clone()),
        }
    }

    pub fn room_by_key(&self, key: &RoomKey) -> Option<usize> {
        self.rooms.iter().position(|r| match key {
            RoomKey::Id(id) => r.id.as_ref() == Some(id),
            RoomKey::Name(name) => r.id.is_none() && r.name == *name,
        })
    }

    pub fn board_by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Applies a board's message at `now`: presence, relay states, motion, and confirmations of
    /// pending commands. A message without its board's secret changes nothing (as in the
    /// collector); a heartbeat, which carries none, only says the board is there.
    pub fn apply_live(&mut self, live: &Live, now: Instant) -> LiveOutcome {
        let mut out = LiveOutcome::default();
        let Live::Board(message) = live else {
            return out;
        };
        let Some(mac) = message.mac() else {
            return out;
        };
        let Some(&bi) = self.by_mac.get(&mac) else {
            if !self.unregistered.iter().any(|m| *m == mac) {
                self.unregistered.push(mac);
            }
            out.unregistered = Some(mac);
            return out;
        };
        let board = &mut self.boards[bi];
        if let Err(code) = message.trusted_by(&board.secret) {
            out.untrusted = Some(code);
            return out;
        }
        // Online means heard within the last few seconds at most: anything older may be shown stale.
        out.changed = board
            .last_seen
            .is_none_or(|t| (now - t).num_seconds() >= 60);
        board.last_seen = Some(now);
        let secret = board.secret.clone();
        let mut set = |switches: &mut Vec<SwitchView>, pin: i32, on: bool| {
            let Some(si) = switches.iter().position(|s| s.pin == Some(pin)) else {
                return;
            };
            let s = &mut switches[si];
            if s.on != on {
                s.on = on;
                s.since = Some(now);
                out.changed = true;
            }
            if let ToggleState::Pending { want, by, .. } = &s.toggle {
                let pending = Pending {
                    mac,
                    pin,
                    state: *want,
                };
                if let Some(how) = pending.acknowledged_by(message, &secret) {
                    out.confirmed.push((bi, si, by.clone(), how));
                    s.toggle = ToggleState::Confirmed { at: now };
                    out.changed = true;
                }
            }
        };
        match message {
            BoardMessage::StateSnapshot { switches, .. } => {
                for r in switches {
                    set(&mut board.switches, r.gpio, r.state);
                }
            }
            BoardMessage::SwitchEvent { gpio, state, .. }
            | BoardMessage::ManualSwitch { gpio, state, .. } => {
                set(&mut board.switches, *gpio, *state);
            }
            BoardMessage::Motion { detected, .. } => {
                if *detected {
                    board.last_motion = Some(now);
                }
            }
            BoardMessage::Heartbeat { .. }
            | BoardMessage::UnknownType { .. }
            | BoardMessage::Status { .. }
            | BoardMessage::Command { .. } => {}
        }
        if matches!(
            message,
            BoardMessage::StateSnapshot { .. }
                | BoardMessage::SwitchEvent { .. }
                | BoardMessage::ManualSwitch { .. }
        ) {
            out.totals_changed = self.sync_board_totals(bi);
        }
        out
    }

    pub fn room_stats(&self, room: usize, clock: &Clock) -> RoomStats {
        let mut st = RoomStats::default();
        let r = &self.rooms[room];
        st.boards_total = r.boards.len();
        for &bi in &r.boards {
            let b = &self.boards[bi];
            if clock.presence(b.last_seen) != Presence::Offline {
                st.boards_online += 1;
            }
            for s in &b.switches {
                if s.on {
                    st.switches_on += 1;
                    st.power_w += s.watts;
                }
            }
        }
        st.totals = self
            .totals
            .classroom(self.ledger_classroom(room))
            .unwrap_or_default();
        st
    }

    /// Today's energy and cost of a switch so far (closed rows and its open interval).
    pub fn switch_totals(&self, b: &Board, s: &SwitchView) -> Totals {
        self.totals.switch(&b.id, &s.id).unwrap_or_default()
    }

    pub fn rate(&self, b: &Board, room: &str, now: Instant) -> f64 {
        self.tariff.rate_at(now, &b.id, room).cost_per_kwh
    }

    /// The campus-wide rate in force now (the header's figure).
    pub fn global_rate(&self, now: Instant) -> f64 {
        self.tariff.rate_at(now, "", "").cost_per_kwh
    }

    /// Records each classroom's power now in its sparkline history.
    pub fn sample_power(&mut self) {
        for ri in 0..self.rooms.len() {
            let w: f64 = self.rooms[ri]
                .boards
                .iter()
                .flat_map(|&b| self.boards[b].switches.iter())
                .filter(|s| s.on)
                .map(|s| s.watts)
                .sum();
            self.rooms[ri].power_history.push(w.round() as u64);
        }
    }
}

fn watts_of(s: &SwitchView, settings: Option<&PowerSettings>) -> f64 {
    let sw = crate::domain::Switch {
        switch_id: s.id.clone(),
        name: s.name.clone(),
        switch_type: s.kind.clone(),
        gpio: None,
        relay_gpio: s.pin,
        state: s.on,
        last_state_change: None,
        power_rating: s.power_rating,
    };
    switch_power(&sw, settings).0
}

fn later(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
