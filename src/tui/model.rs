//! The view model: classrooms, boards, switches, presence, totals and histories in domain terms,
//! with bounded memory (ring buffers) so that nothing grows with uptime.

use super::event::{ChangeSource, Live, Snapshot, SwitchTotal};
use crate::domain::energy::{cost_inr, energy_wh, seconds_between, switch_power};
use crate::domain::tariff::TariffBook;
use crate::domain::{
    ActivityLog, Classroom, CostVersion, Device, Instant, Mac, PowerSettings, Secret, SwitchType,
};
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

/// Where a relay command stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ToggleState {
    Idle,
    Pending { want: bool, deadline: Instant },
    Confirmed { at: Instant },
    Failed { reason: String },
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
    /// Energy and cost of today's closed intervals (the ledger).
    pub closed_wh: f64,
    pub closed_cost: f64,
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
    pub today_wh: f64,
    pub today_cost: f64,
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
    /// (board, switch) whose pending command the message confirmed.
    pub confirmed: Vec<(usize, usize)>,
    /// The message's MAC is not a registered board.
    pub unregistered: Option<Mac>,
    /// A relay or a command's state changed: worth a frame now. Presence and motion are shown
    /// by the next clock tick (within a second), so heartbeats cost no frames.
    pub changed: bool,
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
    pub month_before_today_inr: f64,
}

/// The price used when neither a cost version nor power settings exist.
pub const DEFAULT_PRICE: f64 = 7.5;

impl Default for Campus {
    fn default() -> Self {
        Campus {
            rooms: Vec::new(),
            boards: Vec::new(),
            by_mac: HashMap::new(),
            by_id: HashMap::new(),
            settings: None,
            tariff: TariffBook::new(Vec::new(), DEFAULT_PRICE),
            activity: Ring::new(ACTIVITY_HISTORY),
            unregistered: Ring::new(UNREGISTERED_KEPT),
            month_before_today_inr: 0.0,
        }
    }
}

/// Name of the room that holds boards assigned to no classroom.
pub const UNASSIGNED: &str = "(no classroom)";

impl Campus {
    /// Rebuilds from a snapshot, keeping pending commands, power histories and unregistered MACs.
    pub fn load(&mut self, snap: Snapshot) {
        let old = std::mem::take(self);
        let mut campus = Campus {
            unregistered: old.unregistered.clone(),
            ..Campus::default()
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
        campus.set_today(&snap.today);
        for a in snap.activity {
            campus.activity.push(a);
        }
        campus.month_before_today_inr = snap.month_before_today_inr;
        *self = campus;
    }

    pub fn set_tariff(&mut self, settings: Option<PowerSettings>, versions: Vec<CostVersion>) {
        let fallback = settings
            .as_ref()
            .map(|s| s.electricity_price)
            .unwrap_or(DEFAULT_PRICE);
        self.tariff = TariffBook::new(versions, fallback);
        self.settings = settings;
        let settings = self.settings.clone();
        for b in self.boards.iter_mut() {
            for s in b.switches.iter_mut() {
                s.watts = watts_of(s, settings.as_ref());
            }
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
                    closed_wh: 0.0,
                    closed_cost: 0.0,
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
                        s.closed_wh = o.closed_wh;
                        s.closed_cost = o.closed_cost;
                        s.toggle = o.toggle.clone();
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
                Some(i)
            }
        }
    }

    pub fn board_by_id(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub fn set_today(&mut self, totals: &[SwitchTotal]) {
        for b in self.boards.iter_mut() {
            for s in b.switches.iter_mut() {
                s.closed_wh = 0.0;
                s.closed_cost = 0.0;
            }
        }
        for t in totals {
            let Some(&bi) = self.by_id.get(&t.device_id) else {
                continue;
            };
            if let Some(s) = self.boards[bi]
                .switches
                .iter_mut()
                .find(|s| s.id == t.switch_id)
            {
                s.closed_wh += t.wh;
                s.closed_cost += t.cost_inr;
            }
        }
    }

    /// Applies a board's message at `now`: presence, relay states, motion, and confirmations of
    /// pending commands.
    pub fn apply_live(&mut self, live: &Live, now: Instant) -> LiveOutcome {
        let mut out = LiveOutcome::default();
        let Some(mac) = live.mac() else {
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
        // Online means heard within the last few seconds at most: anything older may be shown stale.
        out.changed = board
            .last_seen
            .is_none_or(|t| (now - t).num_seconds() >= 60);
        board.last_seen = Some(now);
        let set = |switches: &mut Vec<SwitchView>,
                   si: usize,
                   on: bool,
                   acknowledges: bool,
                   out: &mut LiveOutcome| {
            let s = &mut switches[si];
            if s.on != on {
                s.on = on;
                s.since = Some(now);
                out.changed = true;
            }
            if let ToggleState::Pending { want, .. } = s.toggle {
                if want == on && acknowledges {
                    s.toggle = ToggleState::Confirmed { at: now };
                    out.confirmed.push((bi, si));
                    out.changed = true;
                }
            }
        };
        match live {
            Live::State { relays, .. } => {
                for (pin, on) in relays {
                    if let Some(si) = board.switches.iter().position(|s| s.pin == Some(*pin)) {
                        // A snapshot showing the requested state confirms the command (PROTOCOL.md).
                        set(&mut board.switches, si, *on, true, &mut out);
                    }
                }
            }
            Live::SwitchChanged {
                pin, on, source, ..
            } => {
                if let Some(si) = board.switches.iter().position(|s| s.pin == Some(*pin)) {
                    set(
                        &mut board.switches,
                        si,
                        *on,
                        *source == ChangeSource::Command,
                        &mut out,
                    );
                }
            }
            Live::Motion { detected, .. } => {
                if *detected {
                    board.last_motion = Some(now);
                }
            }
            Live::Heartbeat { .. } | Live::Rejected => {}
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
                let (wh, cost) = self.switch_today(b, s, &r.name, clock);
                st.today_wh += wh;
                st.today_cost += cost;
            }
        }
        st
    }

    /// Today's energy and cost of a switch: the ledger's closed intervals plus the open one.
    pub fn switch_today(&self, b: &Board, s: &SwitchView, room: &str, clock: &Clock) -> (f64, f64) {
        let mut wh = s.closed_wh;
        let mut cost = s.closed_cost;
        if s.on {
            if let Some(since) = s.since {
                let from = since.max(clock.day_start);
                if clock.now > from {
                    let open = energy_wh(s.watts, seconds_between(from, clock.now));
                    wh += open;
                    cost += cost_inr(open, self.rate(b, room, clock.now));
                }
            }
        }
        (wh, cost)
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
