//! The dashboard's state and `update`, the only way it changes. Effects (publish, write, run) are
//! returned to the runtime, which runs them and feeds their results back as events.

use super::cursor::{Cursor, Row};
use super::event::{AggregationUpdate, DbChange, DbHealth, Event, Link, LinkState, Live};
use super::keymap::{Action, Keymap};
use super::model::{Campus, Clock, Presence, Ring, RoomKey, ToggleState};
use super::theme::{Symbols, Theme};
use super::trends::TrendsState;
use super::waste::{waste, WasteRow};
use crate::domain::activity::action;
use crate::domain::waste::WasteRule;
use crate::domain::{validation, ActivityLog, Actor, Instant, Permission};
use crate::mqtt::relay::{action_entry, Command, Target};
use chrono::{Duration, NaiveDate, TimeZone};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

/// Classrooms (ledger names) with a figure, largest first.
pub type Ranking = Vec<(String, f64)>;

/// How long a confirmed toggle shows its tick.
const CONFIRMED_FOR_SECS: i64 = 3;
/// Seconds of one-per-second message counts kept for the rate figure.
const RATE_WINDOW: usize = 60;
/// How old the collection sizes may be while the health view is open.
const SIZES_EVERY_SECS: i64 = 900;
/// A measurement of the sizes takes at most 1/`SIZES_DUTY` of the time the health view is open.
const SIZES_DUTY: i64 = 20;

/// The collection sizes of the health view: measured when it opens, and again while it stays
/// open once they are `SIZES_EVERY_SECS` old (or 20 times the last measurement's time, if longer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizesState {
    /// Since when a measurement runs.
    pub loading: Option<Instant>,
    /// When the last measurement ended, and how long it took.
    pub measured: Option<(Instant, std::time::Duration)>,
    /// Why the last measurement failed.
    pub error: Option<String>,
}

impl SizesState {
    /// Whether a new measurement is due at `now`.
    fn due(&self, now: Instant) -> bool {
        if self.loading.is_some() {
            return false;
        }
        match self.measured {
            None => true,
            Some((at, took)) => {
                let took = Duration::from_std(took).unwrap_or(Duration::zero());
                now - at >= Duration::seconds(SIZES_EVERY_SECS).max(took * SIZES_DUTY as i32)
            }
        }
    }
}

/// Fixed settings of a dashboard session.
#[derive(Debug, Clone)]
pub struct Settings {
    pub campus: String,
    pub read_only: bool,
    pub toggle_timeout_secs: i64,
    pub stale_after_secs: i64,
    pub offline_after_secs: i64,
    pub tz: chrono_tz::Tz,
    pub waste: WasteRule,
    pub mqtt_url: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish a relay command; `device_id` and `switch_id` say which switch waits for it.
    Publish {
        device_id: String,
        switch_id: String,
        command: Command,
    },
    /// Record an operator's action in `activitylogs`.
    Record(Box<ActivityLog>),
    SaveTariff {
        price: f64,
        from: Option<Instant>,
        note: String,
        by: Actor,
    },
    Aggregate {
        date: NaiveDate,
        by: Actor,
    },
    /// Stop the running aggregation after the classroom it is on (what it finished stays).
    CancelAggregation,
    SignIn {
        email: String,
        password: String,
    },
    ChangeTheme(String),
    /// Read the history the trends view shows (a read: allowed in read-only sessions).
    LoadTrends {
        now: Instant,
        rule: WasteRule,
    },
    /// Measure the largest collections for the health view (a read of every collection's
    /// statistics, which on FerretDB costs with the data: only while the view is open).
    LoadSizes,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Classrooms,
    Classroom(usize),
    Board(usize),
    Activity,
    Health,
    Tariff,
    Waste,
    Schedules,
    Trends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Cost,
    SwitchesOn,
    Offline,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Cost => "cost",
            SortKey::SwitchesOn => "switches on",
            SortKey::Offline => "offline boards",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::Cost => SortKey::SwitchesOn,
            SortKey::SwitchesOn => SortKey::Offline,
            SortKey::Offline => SortKey::Name,
            SortKey::Name => SortKey::Cost,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TariffForm {
    pub fields: [Input; 3],
    pub focus: usize,
    pub saving: bool,
    pub error: Option<String>,
}

impl TariffForm {
    pub const LABELS: [&'static str; 3] = ["New", "From", "Note"];

    /// The price if valid, else what is wrong.
    pub fn price(&self) -> Result<f64, String> {
        validation::tariff_text("cost_per_kwh", self.fields[0].value())
            .map_err(|e| format!("{:?} {}", e.value, e.rule))
    }

    /// `now` (None) or a local `YYYY-MM-DD` / `YYYY-MM-DD HH:MM`.
    pub fn from(&self, tz: chrono_tz::Tz) -> Result<Option<Instant>, String> {
        let text = self.fields[1].value().trim();
        if text.is_empty() || text.eq_ignore_ascii_case("now") {
            return Ok(None);
        }
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .or_else(|_| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
            })
            .map_err(|_| format!("from {text:?}: use now, YYYY-MM-DD or YYYY-MM-DD HH:MM"))?;
        tz.from_local_datetime(&naive)
            .earliest()
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .ok_or_else(|| format!("from {text:?} does not exist in the campus time zone"))
    }
}

#[derive(Debug, Clone)]
pub struct SignInForm {
    pub email: Input,
    pub password: Input,
    pub focus: usize,
    pub busy: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Modal {
    Help,
    Filter(Input),
    TariffEdit(TariffForm),
    ConfirmAllOff(usize),
    Aggregate(Input),
    SignIn(SignInForm),
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregationState {
    Running {
        date: NaiveDate,
        done: u64,
        total: u64,
    },
    Done(String),
    Stopped(String),
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Info,
    Error,
}

#[derive(Debug, Clone)]
pub struct Links {
    pub mqtt: LinkState,
    pub db: LinkState,
    pub feed: LinkState,
}

pub struct App {
    pub settings: Settings,
    pub campus: Campus,
    pub clock: Clock,
    pub view: View,
    history: Vec<View>,
    /// The classrooms list's cursor.
    rooms_cursor: Cursor,
    /// The open classroom's switches' cursor.
    switch_cursor: Cursor,
    /// The cursor of the other views' lists.
    list_cursor: Cursor,
    pub sort: SortKey,
    pub filter: String,
    pub modal: Option<Modal>,
    pub theme: Theme,
    pub symbols: Symbols,
    pub keymap: Keymap,
    pub no_color: bool,
    pub links: Links,
    pub db_health: DbHealth,
    msgs_per_second: Ring<u32>,
    msgs_this_second: u32,
    pub rejected: u64,
    /// Live messages applied since start (the benchmark matches them to frames).
    pub live_messages: u64,
    pub aggregation: Option<AggregationState>,
    /// Every schedule, by name (they change rarely: read at start and after each change).
    pub schedules: Vec<crate::domain::Schedule>,
    pub notice: Option<(NoticeKind, String)>,
    pub operator: Option<Actor>,
    pub trends: TrendsState,
    pub sizes: SizesState,
    pub loaded: bool,
    pub width: u16,
    pub height: u16,
    pub dirty: bool,
    pub quit: bool,
    last_sample_minute: i64,
}

impl App {
    pub fn new(
        settings: Settings,
        theme: Theme,
        symbols: Symbols,
        keymap: Keymap,
        now: Instant,
    ) -> App {
        let tz = settings.tz;
        let clock = Clock {
            now,
            day_start: day_start(now, settings.tz),
            stale_after_secs: settings.stale_after_secs,
            offline_after_secs: settings.offline_after_secs,
        };
        App {
            settings,
            campus: Campus::new(tz, now),
            clock,
            view: View::Classrooms,
            history: Vec::new(),
            rooms_cursor: Cursor::default(),
            switch_cursor: Cursor::default(),
            list_cursor: Cursor::default(),
            sort: SortKey::Cost,
            filter: String::new(),
            modal: None,
            no_color: theme.on.fg == Some(ratatui::style::Color::Reset),
            theme,
            symbols,
            keymap,
            links: Links {
                mqtt: LinkState::Connecting,
                db: LinkState::Connecting,
                feed: LinkState::Connecting,
            },
            db_health: DbHealth::default(),
            msgs_per_second: Ring::new(RATE_WINDOW),
            msgs_this_second: 0,
            rejected: 0,
            live_messages: 0,
            aggregation: None,
            schedules: Vec::new(),
            notice: None,
            operator: None,
            trends: TrendsState::default(),
            sizes: SizesState::default(),
            loaded: false,
            width: 120,
            height: 40,
            dirty: true,
            quit: false,
            last_sample_minute: i64::MIN,
        }
    }

    /// Asks the operator to sign in (the database has users and the session may act).
    pub fn require_sign_in(&mut self) {
        self.operator = None;
        self.modal = Some(Modal::SignIn(SignInForm {
            email: Input::default(),
            password: Input::default(),
            focus: 0,
            busy: false,
            error: None,
        }));
    }

    /// Messages per minute over the last minute.
    pub fn msgs_per_minute(&self) -> u64 {
        let sum: u64 = self.msgs_per_second.iter().map(|&n| n as u64).sum();
        let secs = self.msgs_per_second.len().max(1) as u64;
        sum * 60 / secs
    }

    /// The next scheduled run that switches something in classroom `room`: when, and its schedule.
    pub fn next_scheduled(&self, room: usize) -> Option<(Instant, &crate::domain::Schedule)> {
        let ids: Vec<&str> = self.campus.rooms[room]
            .boards
            .iter()
            .map(|&b| self.campus.boards[b].id.as_str())
            .collect();
        crate::domain::schedule::next_run_among(
            &self.schedules,
            |w| ids.contains(&w.device_id.to_hex().as_str()),
            self.clock.now,
            self.settings.tz,
        )
    }

    pub fn waste_rows(&self) -> Vec<WasteRow> {
        waste(&self.campus, &self.clock, &self.settings.waste)
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Tick(now) => {
                self.tick(now);
                self.measure_sizes_if_due(&mut fx);
            }
            Event::Resize(w, h) => {
                self.width = w;
                self.height = h;
                self.dirty = true;
            }
            // A key acts on the row the operator sees: the cursor is on what that row shows from
            // now on, wherever a re-sort takes it.
            Event::Key(k) => {
                self.move_by(0);
                self.key(k, &mut fx)
            }
            Event::Mouse(m) => {
                self.move_by(0);
                self.mouse(m)
            }
            Event::Live(live) => {
                if self.live(live, &mut fx) {
                    self.campus.totals.tick(self.clock.now);
                }
            }
            Event::LiveBatch(batch) => {
                let mut totals_changed = false;
                for live in batch {
                    totals_changed |= self.live(live, &mut fx);
                }
                if totals_changed {
                    self.campus.totals.tick(self.clock.now);
                }
            }
            Event::Db(change) => self.db(change),
            Event::Link(link, state) => {
                let slot = match link {
                    Link::Mqtt => &mut self.links.mqtt,
                    Link::Db => &mut self.links.db,
                    Link::Feed => &mut self.links.feed,
                };
                if *slot != state {
                    *slot = state;
                    self.dirty = true;
                }
            }
            Event::PublishFailed {
                device_id,
                switch_id,
                reason,
            } => {
                if let Some(bi) = self.campus.board_by_id(&device_id) {
                    if let Some(s) = self.campus.boards[bi]
                        .switches
                        .iter_mut()
                        .find(|s| s.id == switch_id)
                    {
                        s.toggle = ToggleState::Failed {
                            reason: format!("failed: not sent ({reason})"),
                        };
                    }
                }
                self.dirty = true;
            }
            Event::TariffResult(result) => {
                match result {
                    Ok(version) => {
                        let price = version.cost_per_kwh;
                        let mut versions = self.campus.tariff.versions.clone();
                        for v in versions
                            .iter_mut()
                            .filter(|v| v.scope == version.scope && v.effective_until.is_none())
                        {
                            v.effective_until = Some(version.effective_from);
                        }
                        versions.push(version);
                        let settings = self.campus.settings.clone();
                        self.campus.set_tariff(settings, versions);
                        self.campus.totals.tick(self.clock.now);
                        if matches!(self.modal, Some(Modal::TariffEdit(_))) {
                            self.modal = None;
                        }
                        self.notice = Some((
                            NoticeKind::Info,
                            format!("tariff saved: {}{price:.2}/kWh", self.symbols.rupee),
                        ));
                    }
                    Err(e) => {
                        if let Some(Modal::TariffEdit(form)) = &mut self.modal {
                            form.saving = false;
                            form.error = Some(e);
                        } else {
                            self.notice =
                                Some((NoticeKind::Error, format!("tariff not saved: {e}")));
                        }
                    }
                }
                self.dirty = true;
            }
            Event::Aggregation(u) => {
                self.aggregation = Some(match (u, self.aggregation.take()) {
                    (
                        AggregationUpdate::Progress { done, total },
                        Some(AggregationState::Running { date, .. }),
                    ) => AggregationState::Running { date, done, total },
                    (AggregationUpdate::Progress { .. }, other) => {
                        other.unwrap_or(AggregationState::Failed("progress without a run".into()))
                    }
                    (AggregationUpdate::Done { summary }, _) => AggregationState::Done(summary),
                    (AggregationUpdate::Stopped(summary), _) => {
                        self.notice = None;
                        AggregationState::Stopped(summary)
                    }
                    (AggregationUpdate::Failed(e), _) => AggregationState::Failed(e),
                });
                self.dirty = true;
            }
            Event::Trends(update) => {
                self.trends.apply(update);
                self.clamp_selection();
                self.dirty = true;
            }
            Event::SignIn(result) => {
                match result {
                    Ok(op) => {
                        self.notice = Some((
                            NoticeKind::Info,
                            format!("signed in as {} ({})", op.name, op.label()),
                        ));
                        self.operator = Some(op);
                        self.modal = None;
                    }
                    Err(e) => {
                        if let Some(Modal::SignIn(f)) = &mut self.modal {
                            f.busy = false;
                            f.error = Some(e);
                            f.password = Input::default();
                        }
                    }
                }
                self.dirty = true;
            }
        }
        fx
    }

    fn tick(&mut self, now: Instant) {
        self.clock.now = now;
        self.clock.day_start = day_start(now, self.settings.tz);
        self.msgs_per_second.push(self.msgs_this_second);
        self.msgs_this_second = 0;
        let timeout = self.settings.toggle_timeout_secs;
        for b in self.campus.boards.iter_mut() {
            for s in b.switches.iter_mut() {
                match &s.toggle {
                    ToggleState::Pending { deadline, .. } if *deadline <= now => {
                        let reason = format!("failed: no acknowledgement in {timeout} s");
                        // Also in the status line, which every width shows, until dismissed.
                        self.notice = Some((
                            NoticeKind::Error,
                            format!("{} {}: {reason}", b.name, s.name),
                        ));
                        s.toggle = ToggleState::Failed { reason };
                    }
                    ToggleState::Confirmed { at }
                        if (now - *at).num_seconds() >= CONFIRMED_FOR_SECS =>
                    {
                        s.toggle = ToggleState::Idle;
                    }
                    _ => {}
                }
            }
        }
        // The running totals move with the clock; at midnight the day that ended joins the month.
        self.campus.totals.tick(now);
        let minute = now.timestamp() / 60;
        if minute != self.last_sample_minute {
            self.last_sample_minute = minute;
            self.campus.sample_power();
        }
        // The clock, presence ages and running totals move every second.
        self.dirty = true;
    }

    /// Applies one board message; true when the running totals must be brought up to date.
    fn live(&mut self, live: Live, fx: &mut Vec<Effect>) -> bool {
        self.live_messages += 1;
        self.msgs_this_second = self.msgs_this_second.saturating_add(1);
        if live == Live::Rejected {
            self.rejected += 1;
            return false;
        }
        let out = self.campus.apply_live(&live, self.clock.now);
        if out.untrusted.is_some() {
            self.rejected += 1;
        }
        for (bi, si, by, how) in out.confirmed {
            // The one entry of the operator's action, written once the board has confirmed it.
            let b = &self.campus.boards[bi];
            let s = &b.switches[si];
            let target = Target {
                device_id: bson::oid::ObjectId::parse_str(&b.id).ok(),
                switch_id: s.id.clone(),
                switch_name: s.name.clone(),
                classroom: Some(self.campus.rooms[b.room].name.clone()),
            };
            fx.push(Effect::Record(Box::new(action_entry(
                &target,
                s.on,
                &by,
                how,
                self.clock.now,
            ))));
        }
        if out.changed {
            self.dirty = true;
        }
        out.totals_changed
    }

    fn db(&mut self, change: DbChange) {
        let now = self.clock.now;
        match change {
            DbChange::Snapshot(snap) => {
                if let Some(mut h) = snap.health.clone() {
                    h.last_aggregation = h
                        .last_aggregation
                        .take()
                        .or(self.db_health.last_aggregation.take());
                    h.newest_telemetry = snap.devices.iter().filter_map(|d| d.last_seen).max();
                    h.largest = h.largest.take().or(self.db_health.largest.take());
                    self.db_health = h;
                }
                // The campus is rebuilt and may number its classrooms and boards otherwise: the
                // views open, and a confirmation asked, stay on what they show.
                let places = self.places();
                self.campus.load(*snap, now);
                self.find_places(places);
                self.loaded = true;
                // New rooms start their power history at the next tick, not a minute later.
                self.last_sample_minute = i64::MIN;
            }
            DbChange::Device(d) => {
                // The collector stamps `lastSeen`: the newest one says how far behind it is.
                self.db_health.newest_telemetry = self.db_health.newest_telemetry.max(d.last_seen);
                self.campus.upsert_device(*d);
            }
            DbChange::Classroom(c) => {
                self.campus.upsert_classroom(c);
            }
            DbChange::CostVersion(v) => self.campus.upsert_cost_version(v),
            DbChange::PowerSettings(p) => self.campus.upsert_power_settings(p),
            DbChange::Activity(a) => {
                if a.action == action::AGGREGATION_RUN {
                    self.db_health.last_aggregation = Some(crate::domain::dates::campus_time(
                        a.timestamp,
                        self.settings.tz,
                    ));
                }
                self.campus.add_activity(*a);
            }
            DbChange::RecentActivity(recent) => {
                if let Some(a) = recent
                    .iter()
                    .rev()
                    .find(|a| a.action == action::AGGREGATION_RUN)
                {
                    self.db_health.last_aggregation = Some(crate::domain::dates::campus_time(
                        a.timestamp,
                        self.settings.tz,
                    ));
                }
                self.campus.set_activity(recent);
            }
            DbChange::Schedules(mut schedules) => {
                schedules.sort_by(|a, b| a.name.cmp(&b.name));
                self.schedules = schedules;
            }
            DbChange::LedgerRow(row) => {
                self.campus.totals.learn_row(&row, now);
            }
            DbChange::Reconciled {
                day,
                closed,
                cutoff,
            } => {
                self.campus.totals.reconcile(day, &closed, cutoff);
            }
            DbChange::History { day, history } => {
                self.campus.totals.load_history(day, &history);
            }
            DbChange::Health(h) => {
                // What the health read does not know is kept: the last aggregation seen in the
                // activity, the newest board contact, what could not be read.
                let old = std::mem::replace(&mut self.db_health, h);
                let h = &mut self.db_health;
                h.last_aggregation = h.last_aggregation.take().or(old.last_aggregation);
                h.newest_telemetry = h.newest_telemetry.max(old.newest_telemetry);
                if h.dead_letters.is_none() {
                    h.dead_letters = old.dead_letters;
                }
                h.largest = old.largest;
            }
            DbChange::Sizes { result, took } => {
                self.sizes.loading = None;
                self.sizes.measured = Some((self.clock.now, took));
                match result {
                    Ok(largest) => {
                        self.db_health.largest = Some(largest);
                        self.sizes.error = None;
                    }
                    Err(e) => self.sizes.error = Some(e),
                }
            }
            DbChange::Firmware(records) => self.campus.set_firmware(records),
            DbChange::UsersExist(exist) => {
                let signing_in = matches!(self.modal, Some(Modal::SignIn(_)));
                if exist && !self.settings.read_only && self.operator.is_none() && !signing_in {
                    self.require_sign_in();
                } else if !exist && self.operator.is_none() {
                    self.operator = Some(local_operator());
                }
            }
        }
        self.campus.totals.tick(now);
        self.clamp_selection();
        self.dirty = true;
    }

    fn key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        if k.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            fx.push(Effect::Quit);
            return;
        }
        if let Some(modal) = self.modal.take() {
            self.modal = self.modal_key(modal, k, fx);
            return;
        }
        let Some(action) = self.keymap.action(&k) else {
            return;
        };
        self.action(action, fx);
    }

    /// Keys while a modal is open; returns the modal to keep open, if any.
    fn modal_key(&mut self, modal: Modal, k: KeyEvent, fx: &mut Vec<Effect>) -> Option<Modal> {
        let ev = crossterm::event::Event::Key(k);
        match modal {
            Modal::Help => match self.keymap.action(&k) {
                Some(Action::Quit) => {
                    self.quit = true;
                    fx.push(Effect::Quit);
                    None
                }
                _ => None,
            },
            Modal::Filter(mut input) => match k.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.list_cursor = Cursor::default();
                    self.rooms_cursor = Cursor::default();
                    None
                }
                KeyCode::Enter => None,
                _ => {
                    input.handle_event(&ev);
                    self.filter = input.value().to_string();
                    self.rooms_cursor = Cursor::default();
                    self.list_cursor = Cursor::default();
                    Some(Modal::Filter(input))
                }
            },
            Modal::ConfirmAllOff(room) => match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                    self.all_off(room, fx);
                    None
                }
                _ => None,
            },
            Modal::Aggregate(mut input) => match k.code {
                KeyCode::Esc => None,
                KeyCode::Enter => {
                    let text = input.value().trim().to_string();
                    match self.aggregation_date(&text) {
                        Ok(date) => {
                            let by = self.operator.clone()?;
                            self.aggregation = Some(AggregationState::Running {
                                date,
                                done: 0,
                                total: 0,
                            });
                            fx.push(Effect::Aggregate { date, by });
                            None
                        }
                        Err(e) => {
                            self.notice = Some((NoticeKind::Error, e));
                            Some(Modal::Aggregate(input))
                        }
                    }
                }
                _ => {
                    input.handle_event(&ev);
                    Some(Modal::Aggregate(input))
                }
            },
            Modal::TariffEdit(mut form) => {
                if form.saving {
                    return Some(Modal::TariffEdit(form));
                }
                match k.code {
                    KeyCode::Esc => None,
                    KeyCode::Tab | KeyCode::Down => {
                        form.focus = (form.focus + 1) % 3;
                        Some(Modal::TariffEdit(form))
                    }
                    KeyCode::BackTab | KeyCode::Up => {
                        form.focus = (form.focus + 2) % 3;
                        Some(Modal::TariffEdit(form))
                    }
                    KeyCode::Enter => {
                        let checked = form
                            .price()
                            .and_then(|p| form.from(self.settings.tz).map(|f| (p, f)));
                        match (checked, self.operator.clone()) {
                            (Ok((price, from)), Some(by)) => {
                                form.saving = true;
                                form.error = None;
                                fx.push(Effect::SaveTariff {
                                    price,
                                    from,
                                    note: form.fields[2].value().trim().to_string(),
                                    by,
                                });
                            }
                            (Err(e), _) => form.error = Some(e),
                            (_, None) => form.error = Some("sign in first".into()),
                        }
                        Some(Modal::TariffEdit(form))
                    }
                    _ => {
                        form.fields[form.focus].handle_event(&ev);
                        form.error = None;
                        Some(Modal::TariffEdit(form))
                    }
                }
            }
            Modal::SignIn(mut f) => {
                if f.busy {
                    return Some(Modal::SignIn(f));
                }
                match k.code {
                    KeyCode::Esc => {
                        self.quit = true;
                        fx.push(Effect::Quit);
                        None
                    }
                    KeyCode::Tab | KeyCode::Down | KeyCode::Up | KeyCode::BackTab => {
                        f.focus = 1 - f.focus;
                        Some(Modal::SignIn(f))
                    }
                    KeyCode::Enter if f.focus == 0 => {
                        f.focus = 1;
                        Some(Modal::SignIn(f))
                    }
                    KeyCode::Enter => {
                        let email = f.email.value().trim().to_string();
                        let password = f.password.value().to_string();
                        if email.is_empty() || password.is_empty() {
                            f.error = Some("enter your e-mail and password".into());
                        } else {
                            f.busy = true;
                            f.error = None;
                            fx.push(Effect::SignIn { email, password });
                        }
                        Some(Modal::SignIn(f))
                    }
                    _ => {
                        if f.focus == 0 {
                            f.email.handle_event(&ev);
                        } else {
                            f.password.handle_event(&ev);
                        }
                        Some(Modal::SignIn(f))
                    }
                }
            }
        }
    }

    fn aggregation_date(&self, text: &str) -> Result<NaiveDate, String> {
        let today = self
            .settings
            .tz
            .from_utc_datetime(&self.clock.now.naive_utc())
            .date_naive();
        match text {
            "" | "today" => Ok(today),
            "yesterday" => Ok(today - Duration::days(1)),
            other => NaiveDate::parse_from_str(other, "%Y-%m-%d").map_err(|_| {
                format!("{other:?} is not a date: use today, yesterday or YYYY-MM-DD")
            }),
        }
    }

    fn action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        match action {
            Action::Quit => {
                self.quit = true;
                fx.push(Effect::Quit);
            }
            Action::Help => self.modal = Some(Modal::Help),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as i64)),
            Action::PageDown => self.move_by(self.page() as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Open => self.open(fx),
            Action::Toggle => {
                if matches!(self.view, View::Classroom(_) | View::Board(_)) {
                    self.toggle_selected(fx);
                }
            }
            // Esc first stops an aggregation that is running.
            Action::Back if matches!(self.aggregation, Some(AggregationState::Running { .. })) => {
                fx.push(Effect::CancelAggregation);
                self.notice = Some((
                    NoticeKind::Info,
                    "stopping the aggregation after the current classroom".into(),
                ));
            }
            Action::Back => self.back(),
            Action::AllOff => {
                if let Some(room) = self.current_room() {
                    if let Err(e) = self.may_act() {
                        self.notice = Some((NoticeKind::Error, e));
                    } else {
                        self.modal = Some(Modal::ConfirmAllOff(room));
                    }
                }
            }
            Action::NextBoard if self.view == View::Trends => {
                // The charts show the campus, or the classroom selected in the lists.
                let selected = self.trends_rows().into_iter().nth(self.list_sel());
                self.trends.scope = match (&self.trends.scope, selected) {
                    (None, Some(name)) => Some(name),
                    _ => None,
                };
            }
            Action::NextBoard => {
                if let View::Classroom(room) = self.view {
                    let at = self.switch_sel();
                    let mut next = 0;
                    let mut acc = 0;
                    for &bi in &self.campus.rooms[room].boards {
                        acc += self.campus.boards[bi].switches.len();
                        if at < acc {
                            next = acc;
                            break;
                        }
                    }
                    if next >= self.flat_switches(room).len() {
                        next = 0;
                    }
                    self.select(next);
                }
            }
            Action::BoardInfo => {
                if let Some((bi, _)) = self.selected_switch() {
                    self.go(View::Board(bi));
                }
            }
            Action::Filter => {
                if matches!(self.view, View::Classrooms | View::Activity) {
                    self.modal = Some(Modal::Filter(Input::new(self.filter.clone())));
                }
            }
            Action::Sort => {
                self.sort = self.sort.next();
                self.rooms_cursor = Cursor::default();
            }
            Action::Classrooms => {
                self.history.clear();
                self.view = View::Classrooms;
            }
            Action::Waste => self.go(View::Waste),
            Action::Activity => self.go(View::Activity),
            Action::Health => {
                self.go(View::Health);
                self.measure_sizes_if_due(fx);
            }
            Action::Tariff => self.go(View::Tariff),
            Action::Schedules => self.go(View::Schedules),
            Action::Trends => self.open_trends(fx),
            Action::EditTariff => match self.may_administer() {
                Ok(()) => {
                    let current = format!("{:.2}", self.campus.global_rate(self.clock.now));
                    self.modal = Some(Modal::TariffEdit(TariffForm {
                        fields: [
                            Input::new(current),
                            Input::new("now".into()),
                            Input::default(),
                        ],
                        focus: 0,
                        saving: false,
                        error: None,
                    }));
                }
                Err(e) => self.notice = Some((NoticeKind::Error, e)),
            },
            Action::Aggregate => match self.may_administer() {
                Ok(()) if matches!(self.aggregation, Some(AggregationState::Running { .. })) => {
                    self.notice = Some((
                        NoticeKind::Error,
                        "an aggregation is already running".into(),
                    ));
                }
                Ok(()) => self.modal = Some(Modal::Aggregate(Input::new("today".into()))),
                Err(e) => self.notice = Some((NoticeKind::Error, e)),
            },
            Action::Theme => fx.push(Effect::ChangeTheme(
                Theme::next_name(&self.theme.name).to_string(),
            )),
            Action::Dismiss => {
                self.notice = None;
                if matches!(
                    self.aggregation,
                    Some(
                        AggregationState::Done(_)
                            | AggregationState::Stopped(_)
                            | AggregationState::Failed(_)
                    )
                ) {
                    self.aggregation = None;
                }
                for b in self.campus.boards.iter_mut() {
                    for s in b.switches.iter_mut() {
                        if matches!(s.toggle, ToggleState::Failed { .. }) {
                            s.toggle = ToggleState::Idle;
                        }
                    }
                }
            }
        }
    }

    fn go(&mut self, view: View) {
        if self.view != view {
            self.history.push(self.view);
            self.view = view;
            self.list_cursor = Cursor::default();
        }
    }

    fn back(&mut self) {
        if let Some(v) = self.history.pop() {
            self.view = v;
        } else if !self.filter.is_empty() {
            self.filter.clear();
        }
        self.clamp_selection();
    }

    fn open(&mut self, fx: &mut Vec<Effect>) {
        match self.view {
            View::Classrooms => {
                if let Some(&room) = self.visible_rooms().get(self.rooms_sel()) {
                    self.go(View::Classroom(room));
                    self.switch_cursor = Cursor::default();
                }
            }
            View::Waste => {
                if let Some(row) = self.waste_rows().get(self.list_sel()) {
                    let room = row.room;
                    self.go(View::Classroom(room));
                    self.switch_cursor = Cursor::default();
                }
            }
            View::Trends => {
                if let Some(room) = self.trends_room(self.list_sel()) {
                    self.go(View::Classroom(room));
                    self.switch_cursor = Cursor::default();
                }
            }
            View::Classroom(_) | View::Board(_) => self.toggle_selected(fx),
            _ => {}
        }
    }

    /// Asks for the collection sizes while the health view is open and they are due.
    fn measure_sizes_if_due(&mut self, fx: &mut Vec<Effect>) {
        if self.view == View::Health && self.sizes.due(self.clock.now) {
            self.sizes.loading = Some(self.clock.now);
            fx.push(Effect::LoadSizes);
            self.dirty = true;
        }
    }

    /// Shows the trends, reading their history unless what is loaded is today's.
    fn open_trends(&mut self, fx: &mut Vec<Effect>) {
        self.go(View::Trends);
        let today = self.campus.totals.day();
        if !self.trends.loading && !self.trends.is_current(today) {
            self.trends.loading = true;
            self.trends.error = None;
            self.trends.ledger = None;
            fx.push(Effect::LoadTrends {
                now: self.clock.now,
                rule: self.settings.waste.clone(),
            });
        }
    }

    /// The classrooms of the trends' two top lists, one after the other (ledger names).
    pub fn trends_rows(&self) -> Vec<String> {
        let (cost, waste) = self.trends_tops();
        cost.into_iter().chain(waste).map(|(n, _)| n).collect()
    }

    /// The top classrooms by ₹ this month (the running totals) and by ₹ outside campus hours
    /// this month (the month's ledger, once read).
    pub fn trends_tops(&self) -> (Ranking, Ranking) {
        use crate::domain::trends::top_n;
        let cost = top_n(
            self.campus
                .totals
                .classrooms()
                .map(|(n, t)| (n.to_string(), t.month_to_date.cost)),
            super::trends::TOP,
        );
        let waste = self
            .trends
            .ledger
            .as_ref()
            .map(|l| &l.waste)
            .map(|w| {
                top_n(
                    w.iter()
                        .filter(|(_, a)| a.cost > 0.0)
                        .map(|(n, a)| (n.clone(), a.cost)),
                    super::trends::TOP,
                )
            })
            .unwrap_or_default();
        (cost, waste)
    }

    /// The room of row `i` of the trends' top lists.
    pub fn trends_room(&self, i: usize) -> Option<usize> {
        let name = self.trends_rows().into_iter().nth(i)?;
        (0..self.campus.rooms.len()).find(|&r| self.campus.ledger_classroom(r) == name)
    }

    fn may_act(&self) -> Result<(), String> {
        self.may(Permission::Toggle)
    }

    fn may_administer(&self) -> Result<(), String> {
        self.may(Permission::ChangeTariff)?;
        self.may(Permission::RunAggregation)
    }

    /// The library's rule ([`Actor::may`]), asked before anything is sent so that the screen says
    /// why at once; the store and the relay path ask it again.
    fn may(&self, what: Permission) -> Result<(), String> {
        if self.settings.read_only {
            return Err("read-only: this dashboard sends nothing".into());
        }
        match &self.operator {
            Some(op) => op.may(what).map_err(|e| e.to_string()),
            None => Err("sign in first".into()),
        }
    }

    fn toggle_selected(&mut self, fx: &mut Vec<Effect>) {
        let Some((bi, si)) = self.selected_switch() else {
            return;
        };
        let want = !self.campus.boards[bi].switches[si].on;
        if let Err(e) = self.command(bi, si, want, fx) {
            self.notice = Some((NoticeKind::Error, e));
        }
    }

    /// Sends one relay command, marking the switch pending.
    fn command(
        &mut self,
        bi: usize,
        si: usize,
        want: bool,
        fx: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.may_act()?;
        let presence = self.clock.presence(self.campus.boards[bi].last_seen);
        let b = &self.campus.boards[bi];
        let s = &b.switches[si];
        if presence == Presence::Offline {
            return Err(format!(
                "{} is offline: the command would not arrive",
                b.name
            ));
        }
        if matches!(s.toggle, ToggleState::Pending { .. }) {
            return Err(format!(
                "{}: a command is already waiting for the board",
                s.name
            ));
        }
        let Some(pin) = s.pin else {
            return Err(format!(
                "{}: the switch has no relay pin configured",
                s.name
            ));
        };
        let Some(by) = self.operator.clone() else {
            return Err("sign in first".into());
        };
        fx.push(Effect::Publish {
            device_id: b.id.clone(),
            switch_id: s.id.clone(),
            command: Command::new(b.mac, b.secret.clone(), pin, want, &by),
        });
        let deadline = self.clock.now + Duration::seconds(self.settings.toggle_timeout_secs);
        self.campus.boards[bi].switches[si].toggle = ToggleState::Pending { want, deadline, by };
        Ok(())
    }

    fn all_off(&mut self, room: usize, fx: &mut Vec<Effect>) {
        let mut sent = 0;
        let mut skipped = 0;
        let boards = self.campus.rooms[room].boards.clone();
        for bi in boards {
            for si in 0..self.campus.boards[bi].switches.len() {
                if !self.campus.boards[bi].switches[si].on {
                    continue;
                }
                match self.command(bi, si, false, fx) {
                    Ok(()) => sent += 1,
                    Err(_) => skipped += 1,
                }
            }
        }
        let name = &self.campus.rooms[room].name;
        self.notice = Some(if skipped == 0 {
            (
                NoticeKind::Info,
                format!("{name}: {sent} off command(s) sent"),
            )
        } else {
            (
                NoticeKind::Error,
                format!("{name}: {sent} sent, {skipped} not sent (offline or already pending)"),
            )
        });
    }

    fn current_room(&self) -> Option<usize> {
        match self.view {
            View::Classrooms => self.visible_rooms().get(self.rooms_sel()).copied(),
            View::Classroom(r) => Some(r),
            View::Board(b) => Some(self.campus.boards[b].room),
            View::Waste => self.waste_rows().get(self.list_sel()).map(|w| w.room),
            _ => None,
        }
    }

    /// (board, switch) pairs of a classroom in display order.
    pub fn flat_switches(&self, room: usize) -> Vec<(usize, usize)> {
        self.campus.rooms[room]
            .boards
            .iter()
            .flat_map(|&bi| (0..self.campus.boards[bi].switches.len()).map(move |si| (bi, si)))
            .collect()
    }

    pub fn selected_switch(&self) -> Option<(usize, usize)> {
        match self.view {
            View::Classroom(room) => self.flat_switches(room).get(self.switch_sel()).copied(),
            View::Board(bi) => {
                let si = self.list_sel();
                (si < self.campus.boards[bi].switches.len()).then_some((bi, si))
            }
            _ => None,
        }
    }

    /// The classrooms shown on the home view: filtered, then sorted.
    pub fn visible_rooms(&self) -> Vec<usize> {
        let f = self.filter.to_lowercase();
        let mut rooms: Vec<(usize, super::model::RoomStats)> = (0..self.campus.rooms.len())
            .filter(|&i| {
                let r = &self.campus.rooms[i];
                f.is_empty()
                    || r.name.to_lowercase().contains(&f)
                    || r.building
                        .as_deref()
                        .is_some_and(|b| b.to_lowercase().contains(&f))
            })
            .map(|i| (i, self.campus.room_stats(i, &self.clock)))
            .collect();
        let name = |i: usize| &self.campus.rooms[i].name;
        match self.sort {
            SortKey::Name => rooms.sort_by(|a, b| name(a.0).cmp(name(b.0))),
            SortKey::Cost => rooms.sort_by(|a, b| {
                b.1.totals
                    .today
                    .cost
                    .total_cmp(&a.1.totals.today.cost)
                    .then(name(a.0).cmp(name(b.0)))
            }),
            SortKey::SwitchesOn => rooms.sort_by(|a, b| {
                b.1.switches_on
                    .cmp(&a.1.switches_on)
                    .then(name(a.0).cmp(name(b.0)))
            }),
            SortKey::Offline => rooms.sort_by(|a, b| {
                let off = |s: &super::model::RoomStats| s.boards_total - s.boards_online;
                off(&b.1).cmp(&off(&a.1)).then(name(a.0).cmp(name(b.0)))
            }),
        }
        rooms.into_iter().map(|(i, _)| i).collect()
    }

    /// Activity entries shown (newest first), filtered.
    pub fn visible_activity(&self) -> Vec<&ActivityLog> {
        let f = self.filter.to_lowercase();
        self.campus
            .activity
            .iter()
            .rev()
            .filter(|a| {
                f.is_empty()
                    || [
                        Some(a.action.as_str()),
                        a.classroom.as_deref(),
                        a.switch_name.as_deref(),
                        a.user_name.as_deref(),
                        Some(a.triggered_by.as_str()),
                    ]
                    .iter()
                    .flatten()
                    .any(|t| t.to_lowercase().contains(&f))
            })
            .collect()
    }

    /// Rows in `view`'s list.
    fn list_len(&self, view: View) -> usize {
        match view {
            View::Classrooms => self.visible_rooms().len(),
            View::Classroom(r) => self.flat_switches(r).len(),
            View::Board(b) => self.campus.boards[b].switches.len(),
            View::Activity => self.visible_activity().len(),
            View::Waste => self.waste_rows().len(),
            View::Tariff => self.campus.tariff.versions.len(),
            View::Schedules => self.schedules.len(),
            View::Trends => self.trends_rows().len(),
            View::Health => 0,
        }
    }

    /// What the rows of `view`'s list show, in display order: classrooms and switches, which the
    /// cursor follows; `None` for the lists it follows by position (the activity, newest first,
    /// the tariff's and the schedules').
    fn rows(&self, view: View) -> Option<Vec<Row>> {
        let room = |r: usize| Row::Room(self.campus.room_key(r));
        let switch = |b: usize, s: usize| Row::Switch {
            board: self.campus.boards[b].id.clone(),
            switch: self.campus.boards[b].switches[s].id.clone(),
        };
        match view {
            View::Classrooms => Some(self.visible_rooms().into_iter().map(room).collect()),
            View::Classroom(r) => Some(
                self.flat_switches(r)
                    .into_iter()
                    .map(|(b, s)| switch(b, s))
                    .collect(),
            ),
            View::Board(b) => Some(
                (0..self.campus.boards[b].switches.len())
                    .map(|s| switch(b, s))
                    .collect(),
            ),
            View::Waste => Some(self.waste_rows().iter().map(|w| room(w.room)).collect()),
            View::Trends => {
                let (cost, waste) = self.trends_tops();
                let ranked = |waste: bool| {
                    move |(classroom, _): (String, f64)| Row::Ranked { waste, classroom }
                };
                Some(
                    cost.into_iter()
                        .map(ranked(false))
                        .chain(waste.into_iter().map(ranked(true)))
                        .collect(),
                )
            }
            View::Activity | View::Tariff | View::Schedules | View::Health => None,
        }
    }

    fn cursor(&self, view: View) -> &Cursor {
        match view {
            View::Classrooms => &self.rooms_cursor,
            View::Classroom(_) => &self.switch_cursor,
            _ => &self.list_cursor,
        }
    }

    fn cursor_mut(&mut self, view: View) -> &mut Cursor {
        match view {
            View::Classrooms => &mut self.rooms_cursor,
            View::Classroom(_) => &mut self.switch_cursor,
            _ => &mut self.list_cursor,
        }
    }

    /// The row of `view`'s list its cursor is on.
    fn selected_row(&self, view: View) -> usize {
        let rows = self.rows(view);
        let len = rows.as_ref().map_or_else(|| self.list_len(view), Vec::len);
        self.cursor(view).row(len, rows.as_deref())
    }

    /// The row of the classrooms list the cursor is on (it follows its classroom as the list
    /// re-sorts).
    pub fn rooms_sel(&self) -> usize {
        self.selected_row(View::Classrooms)
    }

    /// The row of the open classroom's switches the cursor is on.
    pub fn switch_sel(&self) -> usize {
        match self.view {
            View::Classroom(_) => self.selected_row(self.view),
            _ => 0,
        }
    }

    /// The row of the current view's list (a board's switches, waste, activity, …) the cursor
    /// is on.
    pub fn list_sel(&self) -> usize {
        match self.view {
            View::Classrooms | View::Classroom(_) => 0,
            v => self.selected_row(v),
        }
    }

    /// Puts the current view's cursor on row `i`, and on what that row shows.
    fn select(&mut self, i: usize) {
        let view = self.view;
        let rows = self.rows(view);
        self.cursor_mut(view).set(i, rows.as_deref());
    }

    /// Rows a page move jumps.
    fn page(&self) -> usize {
        self.height.saturating_sub(8).max(1) as usize
    }

    /// Moves the current view's cursor by `delta` rows within its list; `move_by(0)` puts it on
    /// what its row shows now (the row the operator sees is the one a key acts on).
    fn move_by(&mut self, delta: i64) {
        let view = self.view;
        let rows = self.rows(view);
        let len = rows.as_ref().map_or_else(|| self.list_len(view), Vec::len);
        let cursor = self.cursor_mut(view);
        let at = cursor.row(len, rows.as_deref()) as i64;
        let to = at
            .saturating_add(delta)
            .clamp(0, len.saturating_sub(1) as i64) as usize;
        cursor.set(to, rows.as_deref());
    }

    /// Leaves a classroom or board that is gone. The cursors need nothing: each finds its row
    /// when read.
    fn clamp_selection(&mut self) {
        if let View::Classroom(r) | View::Board(r) = self.view {
            let limit = match self.view {
                View::Classroom(_) => self.campus.rooms.len(),
                _ => self.campus.boards.len(),
            };
            if r >= limit {
                self.view = View::Classrooms;
                self.history.clear();
            }
        }
    }

    fn mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(i) = super::views::row_at(self, m.row) {
                    self.select(i);
                    self.move_by(0);
                }
            }
            _ => return,
        }
        self.dirty = true;
    }
}

/// A view by what it shows, to find it again in a rebuilt campus.
#[derive(Debug, Clone, PartialEq)]
enum Place {
    Room(RoomKey),
    Board(String),
    Other(View),
}

/// The views open (the current one last) and the room of an all-off confirmation, by what they
/// show.
struct Places {
    views: Vec<Place>,
    all_off: Option<RoomKey>,
}

impl App {
    fn place(&self, view: View) -> Place {
        match view {
            View::Classroom(r) => Place::Room(self.campus.room_key(r)),
            View::Board(b) => Place::Board(self.campus.boards[b].id.clone()),
            v => Place::Other(v),
        }
    }

    fn places(&self) -> Places {
        Places {
            views: self
                .history
                .iter()
                .chain([&self.view])
                .map(|&v| self.place(v))
                .collect(),
            all_off: match self.modal {
                Some(Modal::ConfirmAllOff(r)) => Some(self.campus.room_key(r)),
                _ => None,
            },
        }
    }

    /// Puts the views and the confirmation back on what they showed; a classroom or board that
    /// is gone closes its view (and the confirmation, its question).
    fn find_places(&mut self, places: Places) {
        let find = |p: &Place| match p {
            Place::Room(k) => self.campus.room_by_key(k).map(View::Classroom),
            Place::Board(id) => self.campus.board_by_id(id).map(View::Board),
            Place::Other(v) => Some(*v),
        };
        let mut views: Vec<Option<View>> = places.views.iter().map(find).collect();
        match views.pop().flatten() {
            Some(v) => {
                self.view = v;
                self.history = views.into_iter().flatten().collect();
            }
            None => {
                self.view = View::Classrooms;
                self.history.clear();
            }
        }
        if let Some(key) = places.all_off {
            self.modal = self.campus.room_by_key(&key).map(Modal::ConfirmAllOff);
        }
    }
}

/// The operator when the database has no users: the local account, with the database's own
/// authority (a campus without accounts has no one else to ask, and the dashboard holds the
/// database's credentials).
pub fn local_operator() -> Actor {
    let name = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "operator".into());
    Actor::at_database(name)
}

/// Midnight of `now`'s day in the campus time zone, as a UTC instant.
pub fn day_start(now: Instant, tz: chrono_tz::Tz) -> Instant {
    let local = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    tz.from_local_datetime(&local.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or(now)
}

impl App {
    /// Whether live messages are arriving (else the switch states shown are the last known).
    pub fn live_ok(&self) -> bool {
        matches!(self.links.mqtt, LinkState::Up(_))
    }
}
