//! Running totals for the campus, each classroom, device and switch: today's kWh and ₹ (closed
//! ledger rows + the open intervals up to now), power now, month-to-date and a month-end projection.
//!
//! The one money engine of the screen: every figure is worked out by the ledger's rules (each
//! piece of an interval at the tariff in force for its device and classroom, split at midnight).
//! What it knows grows with events, never with history:
//! - the closed part is a reconciliation (today's rows created before a cutoff, summed by the
//!   database) plus the rows learnt one by one since that cutoff (recognised by their key, so a row
//!   learnt twice or already in the reconciliation counts once);
//! - open intervals come from switch events; a switch turned off keeps its interval as a
//!   provisional piece until the ledger rows that close it are learnt (or a reconciliation covers
//!   them), so the total never dips while the collector writes them;
//! - the earlier days of the month and the last days' average come from the history (daily
//!   rollups), loaded once; at midnight the day that ends moves into it.
//!
//! A tick with a new `now` touches no database and allocates nothing: every open interval's rate
//! pieces are worked out when it opens, and the sums go into vectors indexed the same way each time.

use super::energy::switch_power;
use super::interval::{local_date, local_midnight};
use super::tariff::TariffBook;
use super::{Instant, LedgerRow, PowerSettings, Switch};
use chrono::{Datelike, Days, Months, NaiveDate};
use chrono_tz::Tz;
use std::collections::{HashMap, VecDeque};

/// Energy and money.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Amount {
    pub kwh: f64,
    pub cost: f64,
}

impl Amount {
    pub fn add(&mut self, other: Amount) {
        self.kwh += other.kwh;
        self.cost += other.cost;
    }

    fn is_zero(&self) -> bool {
        self.kwh == 0.0 && self.cost == 0.0
    }
}

/// The totals of one scope at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// Today so far (closed rows + open intervals).
    pub today: Amount,
    /// W of everything on now.
    pub power_w: f64,
    /// This month so far, today included.
    pub month_to_date: Amount,
    /// Month-to-date + the average day of the last full days × the days left; `None` until a full
    /// day of data exists (minutes of a first day say nothing about a month).
    pub month_projection: Option<Amount>,
}

/// Today's closed ledger rows of one switch, summed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedSwitch {
    pub device_id: String,
    pub switch_id: String,
    pub classroom: String,
    pub amount: Amount,
}

/// One device's total of one earlier day (a daily aggregate, or the ledger where none exists).
#[derive(Debug, Clone, PartialEq)]
pub struct DayTotal {
    pub date: NaiveDate,
    pub device_id: String,
    pub classroom: String,
    pub amount: Amount,
}

/// A switch that is on: since when, drawing how much.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenSwitch {
    pub device_id: String,
    pub switch_id: String,
    pub classroom: String,
    pub since: Instant,
    pub power_w: f64,
}

impl OpenSwitch {
    /// An open switch from a device's switch record (`state` on, `lastStateChange` set), with its
    /// power by the ledger's rules. `None` when it is off or its start is unknown.
    pub fn of(
        device_id: &str,
        classroom: &str,
        switch: &Switch,
        settings: Option<&PowerSettings>,
    ) -> Option<OpenSwitch> {
        if !switch.state {
            return None;
        }
        Some(OpenSwitch {
            device_id: device_id.to_string(),
            switch_id: switch.switch_id.clone(),
            classroom: classroom.to_string(),
            since: switch.last_state_change?,
            power_w: switch_power(switch, settings).0,
        })
    }
}

/// A ledger row as the totals need it.
#[derive(Debug, Clone, PartialEq)]
pub struct RowNotice {
    pub device_id: String,
    pub switch_id: String,
    pub classroom: String,
    pub start: Instant,
    pub end: Instant,
    pub amount: Amount,
    /// When it was written (`createdAt`); `None` for rows of writers that do not say.
    pub created_at: Option<Instant>,
}

impl RowNotice {
    pub fn of(row: &LedgerRow) -> RowNotice {
        RowNotice {
            device_id: row.device_id.clone(),
            switch_id: row.switch_id.clone(),
            classroom: row.classroom.clone(),
            start: row.start_ts,
            end: row.end_ts,
            amount: Amount {
                kwh: row.kwh(),
                cost: row.cost(),
            },
            created_at: row.created_at,
        }
    }
}

/// What an open switch has used today by `now`, worked out from nothing: the interval from
/// max(`since`, `day_start`) split at every tariff change, each piece at its rate. The reference the
/// incremental tick is checked against.
pub fn open_amount_from_scratch(
    o: &OpenSwitch,
    tariffs: &TariffBook,
    day_start: Instant,
    now: Instant,
) -> Amount {
    let start = o.since.max(day_start);
    if now <= start {
        return Amount::default();
    }
    let mut bounds = vec![start];
    bounds.extend(tariffs.changes_within(start, now, &o.device_id, &o.classroom));
    bounds.push(now);
    let mut total = Amount::default();
    for w in bounds.windows(2) {
        let kwh =
            o.power_w.max(0.0) / 1000.0 * (w[1] - w[0]).num_milliseconds() as f64 / 3_600_000.0;
        let rate = tariffs
            .rate_at(w[0], &o.device_id, &o.classroom)
            .cost_per_kwh;
        total.add(Amount {
            kwh,
            cost: kwh * rate,
        });
    }
    total
}

/// An interval ready for ticks: from `start` (its start or local midnight) to `end` (open while
/// `None`), pieces of constant rate (the last one reaching the end of the day).
#[derive(Debug, Clone)]
struct LiveInterval {
    switch: usize,
    /// What it was opened from (kept to price it again when the tariffs change).
    open: OpenSwitch,
    start: Instant,
    /// Set once the switch went off: a provisional piece until its ledger rows are learnt.
    end: Option<Instant>,
    kw: f64,
    /// (piece start, ₹/kWh), sorted; the first starts at `start`.
    rates: Vec<(Instant, f64)>,
}

/// Which scopes exist and where each switch's sums go.
#[derive(Debug, Clone, Default)]
struct Layout {
    switch_index: HashMap<(String, String), usize>,
    switch_device: Vec<usize>,
    device_index: HashMap<String, usize>,
    device_classroom: Vec<usize>,
    classrooms: Vec<String>,
    classroom_index: HashMap<String, usize>,
}

impl Layout {
    fn classroom(&mut self, name: &str) -> usize {
        if let Some(&i) = self.classroom_index.get(name) {
            return i;
        }
        self.classrooms.push(name.to_string());
        self.classroom_index
            .insert(name.to_string(), self.classrooms.len() - 1);
        self.classrooms.len() - 1
    }

    fn device(&mut self, device_id: &str, classroom: &str) -> usize {
        if let Some(&i) = self.device_index.get(device_id) {
            return i;
        }
        let c = self.classroom(classroom);
        self.device_classroom.push(c);
        let i = self.device_classroom.len() - 1;
        self.device_index.insert(device_id.to_string(), i);
        i
    }

    fn switch(&mut self, device_id: &str, switch_id: &str, classroom: &str) -> usize {
        let key = (device_id.to_string(), switch_id.to_string());
        if let Some(&i) = self.switch_index.get(&key) {
            return i;
        }
        let d = self.device(device_id, classroom);
        self.switch_device.push(d);
        let i = self.switch_device.len() - 1;
        self.switch_index.insert(key, i);
        i
    }
}

/// A ledger row's identity: the ledger's unique key (device, switch, start).
type RowKey = (String, String, i64);

/// A row learnt one by one: where it went and when it was written.
#[derive(Debug, Clone)]
struct LearntRow {
    switch: usize,
    amount: Amount,
    created_at: Instant,
}

/// How many trailing full days the projection averages.
pub const PROJECTION_DAYS: u32 = 7;

/// The running totals of one campus-local day (moving to the next at midnight).
#[derive(Debug, Clone)]
pub struct RunningTotals {
    tz: Tz,
    day: NaiveDate,
    midnight: Instant,
    next_midnight: Instant,
    next_month: Instant,
    book: TariffBook,
    layout: Layout,
    /// Today's rows per switch as the last reconciliation summed them (created before `cutoff`).
    reconciled: Vec<Amount>,
    /// `reconciled` + the rows learnt since; `None` until the first reconciliation.
    closed: Vec<Amount>,
    cutoff: Option<Instant>,
    learnt: HashMap<RowKey, LearntRow>,
    /// Earlier days of this month, per device; `None` until the history is loaded.
    month_before: Option<Vec<Amount>>,
    /// The last full days (oldest first, at most [`PROJECTION_DAYS`]), per device.
    window: VecDeque<Vec<Amount>>,
    /// The first day the history holds data for (fewer days than the window are averaged over
    /// what exists).
    first_data_day: Option<NaiveDate>,
    intervals: Vec<LiveInterval>,
    switch_totals: Vec<Totals>,
    device_totals: Vec<Totals>,
    classroom_totals: Vec<Totals>,
    campus: Totals,
}

impl RunningTotals {
    /// Empty totals for the campus-local day of `now`, priced with `book`: nothing closed known
    /// yet ([`RunningTotals::reconcile`]), no history yet ([`RunningTotals::load_history`]).
    pub fn new(tz: Tz, now: Instant, book: TariffBook) -> Self {
        let mut t = RunningTotals {
            tz,
            day: local_date(now, tz),
            midnight: now,
            next_midnight: now,
            next_month: now,
            book,
            layout: Layout::default(),
            reconciled: Vec::new(),
            closed: Vec::new(),
            cutoff: None,
            learnt: HashMap::new(),
            month_before: None,
            window: VecDeque::new(),
            first_data_day: None,
            intervals: Vec::new(),
            switch_totals: Vec::new(),
            device_totals: Vec::new(),
            classroom_totals: Vec::new(),
            campus: Totals::default(),
        };
        t.set_day(t.day);
        t
    }

    fn set_day(&mut self, day: NaiveDate) {
        self.day = day;
        self.midnight = local_midnight(day, self.tz);
        self.next_midnight = day
            .checked_add_days(Days::new(1))
            .map(|d| local_midnight(d, self.tz))
            .unwrap_or(self.midnight);
        let first = day.with_day(1).unwrap_or(day);
        self.next_month = first
            .checked_add_months(Months::new(1))
            .map(|d| local_midnight(d, self.tz))
            .unwrap_or(self.next_midnight);
    }

    /// The campus-local day these totals are for.
    pub fn day(&self) -> NaiveDate {
        self.day
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Whether today's closed rows are known (a reconciliation has been applied).
    pub fn is_today_loaded(&self) -> bool {
        self.cutoff.is_some()
    }

    /// Whether the earlier days of the month are known.
    pub fn is_history_loaded(&self) -> bool {
        self.month_before.is_some()
    }

    /// The last reconciliation's cutoff.
    pub fn cutoff(&self) -> Option<Instant> {
        self.cutoff
    }

    fn resize(&mut self) {
        let (s, d, c) = (
            self.layout.switch_device.len(),
            self.layout.device_classroom.len(),
            self.layout.classrooms.len(),
        );
        self.reconciled.resize(s, Amount::default());
        self.closed.resize(s, Amount::default());
        if let Some(m) = self.month_before.as_mut() {
            m.resize(d, Amount::default());
        }
        for w in self.window.iter_mut() {
            w.resize(d, Amount::default());
        }
        self.switch_totals.resize(s, Totals::default());
        self.device_totals.resize(d, Totals::default());
        self.classroom_totals.resize(c, Totals::default());
    }

    /// Sets the closed part from a reconciliation: `closed` sums the rows of `day` written before
    /// `cutoff`; the rows learnt one by one that were written since stay counted on top. A
    /// reconciliation of another day (it ran across midnight) is ignored: false.
    pub fn reconcile(&mut self, day: NaiveDate, closed: &[ClosedSwitch], cutoff: Instant) -> bool {
        if day != self.day {
            return false;
        }
        for c in closed {
            self.layout.switch(&c.device_id, &c.switch_id, &c.classroom);
        }
        self.resize();
        self.reconciled
            .iter_mut()
            .for_each(|a| *a = Amount::default());
        for c in closed {
            let s = self.layout.switch(&c.device_id, &c.switch_id, &c.classroom);
            self.reconciled[s].add(c.amount);
        }
        self.learnt.retain(|_, r| r.created_at >= cutoff);
        self.closed.clone_from(&self.reconciled);
        for r in self.learnt.values() {
            self.closed[r.switch].add(r.amount);
        }
        // Provisional pieces that ended before the cutoff have their rows in the reconciliation.
        self.intervals
            .retain(|i| i.end.is_none_or(|end| end >= cutoff));
        self.cutoff = Some(cutoff);
        true
    }

    /// Loads the earlier days of the month and the last full days (per device) before `day`;
    /// another day's history is ignored (false).
    pub fn load_history(&mut self, day: NaiveDate, history: &[DayTotal]) -> bool {
        if day != self.day {
            return false;
        }
        let first = day.with_day(1).unwrap_or(day);
        let window_start = day
            .checked_sub_days(Days::new(PROJECTION_DAYS.into()))
            .unwrap_or(day);
        for h in history {
            self.layout.device(&h.device_id, &h.classroom);
        }
        let devices = self.layout.device_classroom.len();
        let mut month_before = vec![Amount::default(); devices];
        let mut window: VecDeque<Vec<Amount>> = window_start
            .iter_days()
            .take_while(|d| *d < day)
            .map(|_| vec![Amount::default(); devices])
            .collect();
        let mut first_data = None::<NaiveDate>;
        for h in history.iter().filter(|h| h.date < day) {
            let d = self.layout.device(&h.device_id, &h.classroom);
            if !h.amount.is_zero() {
                first_data = Some(first_data.map_or(h.date, |f| f.min(h.date)));
            }
            if h.date >= first {
                month_before[d].add(h.amount);
            }
            if h.date >= window_start {
                let i = (h.date - window_start).num_days() as usize;
                if let Some(slot) = window.get_mut(i) {
                    slot[d].add(h.amount);
                }
            }
        }
        self.month_before = Some(month_before);
        self.window = window;
        self.first_data_day = first_data;
        self.resize();
        true
    }

    /// A ledger row learnt (from the change feed): counted once, into today when it is today's.
    /// Rows written before the last reconciliation's cutoff are already in it. Returns whether it
    /// changed a total.
    pub fn learn_row(&mut self, row: &RowNotice, now: Instant) -> bool {
        if local_date(row.start, self.tz) != self.day {
            // Earlier days come with the history (reloaded after midnight).
            return false;
        }
        let created = row.created_at.unwrap_or(now);
        if self.cutoff.is_some_and(|c| created < c) {
            return false;
        }
        let key = (
            row.device_id.clone(),
            row.switch_id.clone(),
            row.start.timestamp_millis(),
        );
        if self.learnt.contains_key(&key) {
            return false;
        }
        let s = self
            .layout
            .switch(&row.device_id, &row.switch_id, &row.classroom);
        self.resize();
        self.closed[s].add(row.amount);
        self.learnt.insert(
            key,
            LearntRow {
                switch: s,
                amount: row.amount,
                created_at: created,
            },
        );
        // The rows that close a provisional piece replace it.
        self.intervals
            .retain(|i| !(i.switch == s && i.end.is_some() && i.start < row.end));
        true
    }

    /// A switch is on since `open.since` (replacing what it had open).
    pub fn switch_on(&mut self, open: &OpenSwitch) {
        let s = self
            .layout
            .switch(&open.device_id, &open.switch_id, &open.classroom);
        self.resize();
        self.intervals
            .retain(|i| !(i.switch == s && i.end.is_none()));
        let interval = self.priced(s, open.clone(), None);
        self.intervals.push(interval);
    }

    /// A switch went off at `at`: what it had open stays as a provisional piece until its ledger
    /// rows are learnt.
    pub fn switch_off(&mut self, device_id: &str, switch_id: &str, at: Instant) {
        let key = (device_id.to_string(), switch_id.to_string());
        let Some(&s) = self.layout.switch_index.get(&key) else {
            return;
        };
        let Some(i) = self
            .intervals
            .iter()
            .position(|i| i.switch == s && i.end.is_none())
        else {
            return;
        };
        if at <= self.intervals[i].start {
            self.intervals.swap_remove(i);
        } else {
            self.intervals[i].end = Some(at);
        }
    }

    /// The switch's open interval, if it has one.
    pub fn open_switch(&self, device_id: &str, switch_id: &str) -> Option<&OpenSwitch> {
        let s = *self
            .layout
            .switch_index
            .get(&(device_id.to_string(), switch_id.to_string()))?;
        self.intervals
            .iter()
            .find(|i| i.switch == s && i.end.is_none())
            .map(|i| &i.open)
    }

    /// New tariffs: open and provisional intervals are priced again (closed rows keep theirs).
    pub fn set_tariffs(&mut self, book: TariffBook) {
        self.book = book;
        self.reprice();
    }

    fn reprice(&mut self) {
        let intervals = std::mem::take(&mut self.intervals);
        self.intervals = intervals
            .into_iter()
            .map(|i| self.priced(i.switch, i.open, i.end))
            .collect();
    }

    fn priced(&self, switch: usize, open: OpenSwitch, end: Option<Instant>) -> LiveInterval {
        let start = open.since.max(self.midnight);
        let mut rates = vec![(
            start,
            self.book
                .rate_at(start, &open.device_id, &open.classroom)
                .cost_per_kwh,
        )];
        for cut in
            self.book
                .changes_within(start, self.next_midnight, &open.device_id, &open.classroom)
        {
            rates.push((
                cut,
                self.book
                    .rate_at(cut, &open.device_id, &open.classroom)
                    .cost_per_kwh,
            ));
        }
        LiveInterval {
            switch,
            kw: open.power_w.max(0.0) / 1000.0,
            open,
            start,
            end,
            rates,
        }
    }

    /// Recomputes every total for `now`. At the first tick past midnight the day that ended moves
    /// into the history and the new day starts with nothing closed: returns true then (the caller
    /// reloads the history and reconciles the new day when it can).
    pub fn tick(&mut self, now: Instant) -> bool {
        let mut rolled = false;
        let today = local_date(now, self.tz);
        if today > self.day {
            self.roll_to(today);
            rolled = true;
        }
        self.compute(now);
        rolled
    }

    /// Moves to `today`: the day that ended (worked out at its midnight) joins the month and the
    /// window; what is still on continues from the new midnight.
    fn roll_to(&mut self, today: NaiveDate) {
        let end_of_day = self.next_midnight;
        self.compute(end_of_day);
        let ended: Vec<Amount> = self.device_totals.iter().map(|t| t.today).collect();
        let yesterday = self.day;
        let same_month = today.month() == yesterday.month() && today.year() == yesterday.year();
        if let Some(m) = self.month_before.as_mut() {
            if same_month && today.pred_opt() == Some(yesterday) {
                for (acc, a) in m.iter_mut().zip(&ended) {
                    acc.add(*a);
                }
            } else {
                m.iter_mut().for_each(|a| *a = Amount::default());
            }
        }
        if today.pred_opt() == Some(yesterday) {
            if ended.iter().any(|a| !a.is_zero()) && self.first_data_day.is_none() {
                self.first_data_day = Some(yesterday);
            }
            self.window.push_back(ended);
        } else {
            self.window.clear();
        }
        while self.window.len() > PROJECTION_DAYS as usize {
            self.window.pop_front();
        }
        self.set_day(today);
        self.reconciled
            .iter_mut()
            .for_each(|a| *a = Amount::default());
        self.closed.iter_mut().for_each(|a| *a = Amount::default());
        self.learnt.clear();
        // Provisional pieces belonged to the day that ended.
        self.intervals.retain(|i| i.end.is_none());
        self.reprice();
        self.resize();
    }

    fn compute(&mut self, now: Instant) {
        for (t, c) in self.switch_totals.iter_mut().zip(&self.closed) {
            *t = Totals {
                today: *c,
                ..Totals::default()
            };
        }
        for o in &self.intervals {
            let t = &mut self.switch_totals[o.switch];
            let until = o.end.map_or(now, |e| e.min(now));
            if until <= o.start {
                continue;
            }
            if o.end.is_none() {
                t.power_w += o.kw * 1000.0;
            }
            for (i, &(from, rate)) in o.rates.iter().enumerate() {
                if from >= until {
                    break;
                }
                let to = o
                    .rates
                    .get(i + 1)
                    .map_or(until, |&(next, _)| next.min(until));
                let hours = (to - from).num_milliseconds() as f64 / 3_600_000.0;
                let kwh = o.kw * hours;
                t.today.kwh += kwh;
                t.today.cost += kwh * rate;
            }
        }
        for t in self.device_totals.iter_mut() {
            *t = Totals::default();
        }
        for (s, t) in self.switch_totals.iter().enumerate() {
            let d = &mut self.device_totals[self.layout.switch_device[s]];
            d.today.add(t.today);
            d.power_w += t.power_w;
        }
        let days_left = self.days_left(now);
        let averaged = self.averaged_days();
        for t in self.classroom_totals.iter_mut() {
            *t = Totals::default();
        }
        let history = self.month_before.is_some();
        self.campus = Totals {
            month_projection: averaged.map(|_| Amount::default()),
            ..Totals::default()
        };
        for t in self.classroom_totals.iter_mut() {
            t.month_projection = self.campus.month_projection;
        }
        for (d, t) in self.device_totals.iter_mut().enumerate() {
            t.month_to_date = self
                .month_before
                .as_ref()
                .and_then(|m| m.get(d).copied())
                .unwrap_or_default();
            t.month_to_date.add(t.today);
            t.month_projection = averaged.filter(|_| history).map(|days| {
                let mut sum = Amount::default();
                for w in self.window.iter().rev().take(days) {
                    sum.add(w.get(d).copied().unwrap_or_default());
                }
                Amount {
                    kwh: t.month_to_date.kwh + sum.kwh / days as f64 * days_left,
                    cost: t.month_to_date.cost + sum.cost / days as f64 * days_left,
                }
            });
            let c = &mut self.classroom_totals[self.layout.device_classroom[d]];
            for scope in [c, &mut self.campus] {
                scope.today.add(t.today);
                scope.power_w += t.power_w;
                scope.month_to_date.add(t.month_to_date);
                if let (Some(acc), Some(p)) = (scope.month_projection.as_mut(), t.month_projection)
                {
                    acc.add(p);
                }
            }
        }
    }

    /// Days left in the month at `now`, counting the rest of today: what the projection
    /// multiplies the average day by.
    pub fn days_left(&self, now: Instant) -> f64 {
        (self.next_month - now).num_milliseconds().max(0) as f64 / 86_400_000.0
    }

    /// The last full days the projection averages, oldest first, summed for the campus
    /// (`classroom` `None`) or one classroom: what [`Totals::month_projection`] is worked out
    /// from (its expected value is month-to-date + their average × [`RunningTotals::days_left`]).
    /// Empty while there is no projection.
    pub fn recent_days(&self, classroom: Option<&str>) -> Vec<Amount> {
        let Some(days) = self.averaged_days() else {
            return Vec::new();
        };
        let room = match classroom {
            None => None,
            Some(c) => match self.layout.classroom_index.get(c) {
                Some(&i) => Some(i),
                None => return Vec::new(),
            },
        };
        let mut out: Vec<Amount> = self
            .window
            .iter()
            .rev()
            .take(days)
            .map(|w| {
                let mut sum = Amount::default();
                for (d, a) in w.iter().enumerate() {
                    if room.is_none_or(|r| self.layout.device_classroom.get(d) == Some(&r)) {
                        sum.add(*a);
                    }
                }
                sum
            })
            .collect();
        out.reverse();
        out
    }

    /// How many of the last full days the projection averages: those since the first day with
    /// data, at most [`PROJECTION_DAYS`]; `None` when there is not one full day of data.
    fn averaged_days(&self) -> Option<usize> {
        let first = self.first_data_day?;
        self.month_before.as_ref()?;
        let days = (self.day - first)
            .num_days()
            .clamp(0, self.window.len() as i64) as usize;
        (days > 0).then_some(days)
    }

    pub fn campus(&self) -> Totals {
        self.campus
    }

    pub fn classroom(&self, name: &str) -> Option<Totals> {
        self.layout
            .classroom_index
            .get(name)
            .map(|&i| self.classroom_totals[i])
    }

    pub fn device(&self, device_id: &str) -> Option<Totals> {
        self.layout
            .device_index
            .get(device_id)
            .map(|&i| self.device_totals[i])
    }

    /// A switch's today and power now; its month fields are zero (the history is kept per device).
    pub fn switch(&self, device_id: &str, switch_id: &str) -> Option<Totals> {
        self.layout
            .switch_index
            .get(&(device_id.to_string(), switch_id.to_string()))
            .map(|&i| self.switch_totals[i])
    }

    /// Every classroom's name with its totals.
    pub fn classrooms(&self) -> impl Iterator<Item = (&str, Totals)> {
        self.layout
            .classrooms
            .iter()
            .zip(&self.classroom_totals)
            .map(|(n, t)| (n.as_str(), *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tariff::{CostVersion, TariffScope};
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    const IST: Tz = chrono_tz::Asia::Kolkata;

    fn ist(d: u32, h: u32, m: u32) -> Instant {
        IST.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn version(
        price: f64,
        from: Instant,
        until: Option<Instant>,
        scope: TariffScope,
        classroom: Option<&str>,
    ) -> CostVersion {
        CostVersion {
            id: None,
            cost_per_kwh: price,
            effective_from: from,
            effective_until: until,
            scope,
            classroom: classroom.map(str::to_string),
            device_id: None,
            created_by: None,
            notes: None,
            is_active: until.is_none(),
            created_at: None,
            updated_at: None,
        }
    }

    fn global(price: f64, from: Instant, until: Option<Instant>) -> CostVersion {
        version(price, from, until, TariffScope::Global, None)
    }

    fn open(device: &str, switch: &str, room: &str, since: Instant, w: f64) -> OpenSwitch {
        OpenSwitch {
            device_id: device.into(),
            switch_id: switch.into(),
            classroom: room.into(),
            since,
            power_w: w,
        }
    }

    fn closed(device: &str, switch: &str, room: &str, kwh: f64, cost: f64) -> ClosedSwitch {
        ClosedSwitch {
            device_id: device.into(),
            switch_id: switch.into(),
            classroom: room.into(),
            amount: Amount { kwh, cost },
        }
    }

    fn row(device: &str, switch: &str, start: Instant, end: Instant, kwh: f64) -> RowNotice {
        RowNotice {
            device_id: device.into(),
            switch_id: switch.into(),
            classroom: "A".into(),
            start,
            end,
            amount: Amount {
                kwh,
                cost: kwh * 8.0,
            },
            created_at: Some(end),
        }
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn closed_plus_open_from_midnight() {
        let book = TariffBook::new(vec![global(8.0, ist(1, 0, 0), None)], 7.5);
        let mut t = RunningTotals::new(IST, ist(24, 1, 0), book);
        assert!(!t.is_today_loaded());
        t.reconcile(
            day(),
            &[
                closed("d1", "s1", "A", 1.0, 8.0),
                closed("d2", "s1", "B", 2.0, 16.0),
            ],
            ist(24, 1, 0),
        );
        assert!(t.is_today_loaded());
        // On since yesterday 22:00: only today's part counts.
        t.switch_on(&open("d1", "s2", "A", ist(23, 22, 0), 1000.0));
        t.tick(ist(24, 2, 0));
        let s = t.switch("d1", "s2").unwrap();
        assert!(close(s.today.kwh, 2.0));
        assert!(close(s.today.cost, 16.0));
        assert_eq!(s.power_w, 1000.0);
        assert!(close(t.device("d1").unwrap().today.kwh, 3.0));
        let campus = t.campus();
        assert!(close(campus.today.kwh, 5.0));
        assert!(close(campus.today.cost, 40.0));
        assert_eq!(campus.power_w, 1000.0);
        assert_eq!(t.classroom("B").unwrap().power_w, 0.0);
    }

    #[test]
    fn a_switch_turned_off_counts_until_its_rows_arrive_then_the_rows_count() {
        let book = TariffBook::new(vec![global(8.0, ist(1, 0, 0), None)], 7.5);
        let mut t = RunningTotals::new(IST, ist(24, 1, 0), book);
        t.reconcile(day(), &[], ist(24, 1, 0));
        t.switch_on(&open("d1", "s1", "A", ist(24, 2, 0), 1000.0));
        t.switch_off("d1", "s1", ist(24, 4, 0));
        t.tick(ist(24, 5, 0));
        // Off at 04:00: power gone, the two hours still counted while the ledger is written.
        assert_eq!(t.campus().power_w, 0.0);
        assert!(close(t.campus().today.kwh, 2.0));
        // The collector's row (timed by the board: a little different) replaces the piece.
        assert!(t.learn_row(
            &row("d1", "s1", ist(24, 2, 0), ist(24, 3, 59), 1.983),
            ist(24, 5, 0)
        ));
        t.tick(ist(24, 5, 0));
        assert!(close(t.campus().today.kwh, 1.983));
        // Learnt again (the feed repeats itself at times): counted once.
        assert!(!t.learn_row(
            &row("d1", "s1", ist(24, 2, 0), ist(24, 3, 59), 1.983),
            ist(24, 5, 0)
        ));
        t.tick(ist(24, 5, 1));
        assert!(close(t.campus().today.kwh, 1.983));
    }

    #[test]
    fn a_reconciliation_counts_each_row_once() {
        let book = TariffBook::new(vec![global(8.0, ist(1, 0, 0), None)], 7.5);
        let mut t = RunningTotals::new(IST, ist(24, 1, 0), book);
        // Learnt before the first reconciliation: written at 10:00 and 12:00.
        t.learn_row(
            &row("d1", "s1", ist(24, 9, 0), ist(24, 10, 0), 1.0),
            ist(24, 10, 0),
        );
        t.learn_row(
            &row("d1", "s1", ist(24, 11, 0), ist(24, 12, 0), 2.0),
            ist(24, 12, 0),
        );
        // The reconciliation read what was written before 11:00: the first row, and 0.5 kWh more
        // the feed never showed.
        t.reconcile(day(), &[closed("d1", "s1", "A", 1.5, 12.0)], ist(24, 11, 0));
        t.tick(ist(24, 13, 0));
        assert!(close(t.campus().today.kwh, 3.5));
        // A row written before the cutoff and learnt late is in the reconciliation already.
        assert!(!t.learn_row(
            &row("d1", "s2", ist(24, 8, 0), ist(24, 10, 30), 4.0),
            ist(24, 13, 0)
        ));
        t.tick(ist(24, 13, 0));
        assert!(close(t.campus().today.kwh, 3.5));
        // A reconciliation of another day changes nothing.
        assert!(!t.reconcile(day().pred_opt().unwrap(), &[], ist(24, 13, 0)));
    }

    #[test]
    fn a_tariff_change_during_the_day_prices_each_part() {
        let book = TariffBook::new(
            vec![
                global(6.0, ist(1, 0, 0), Some(ist(24, 12, 0))),
                global(9.0, ist(24, 12, 0), None),
            ],
            7.5,
        );
        let mut t = RunningTotals::new(IST, ist(24, 9, 0), book);
        t.switch_on(&open("d1", "s1", "A", ist(24, 10, 0), 1500.0));
        t.tick(ist(24, 11, 0));
        assert!(close(t.campus().today.cost, 1.5 * 6.0));
        t.tick(ist(24, 14, 0));
        assert!(close(t.campus().today.cost, 3.0 * 6.0 + 3.0 * 9.0));
        assert!(close(t.campus().today.kwh, 6.0));
        // Turning the same switch on again replaces its interval.
        t.switch_on(&open("d1", "s1", "A", ist(24, 13, 0), 1500.0));
        t.tick(ist(24, 14, 0));
        assert!(close(t.campus().today.kwh, 1.5));
    }

    #[test]
    fn a_tariff_edited_while_a_load_is_on_prices_it_again_from_the_change() {
        let mut t = RunningTotals::new(
            IST,
            ist(24, 9, 0),
            TariffBook::new(vec![global(6.0, ist(1, 0, 0), None)], 7.5),
        );
        t.switch_on(&open("d1", "s1", "A", ist(24, 10, 0), 1000.0));
        // At 12:00 a classroom tariff of ₹10 from 11:00 is saved for classroom A.
        t.set_tariffs(TariffBook::new(
            vec![
                global(6.0, ist(1, 0, 0), None),
                version(
                    10.0,
                    ist(24, 11, 0),
                    None,
                    TariffScope::Classroom,
                    Some("A"),
                ),
            ],
            7.5,
        ));
        t.tick(ist(24, 13, 0));
        assert!(close(t.campus().today.cost, 6.0 + 2.0 * 10.0));
    }

    fn history_day(d: u32, kwh: f64) -> DayTotal {
        DayTotal {
            date: NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
            device_id: "d1".into(),
            classroom: "A".into(),
            amount: Amount {
                kwh,
                cost: kwh * 8.0,
            },
        }
    }

    #[test]
    fn month_to_date_and_projection() {
        // Nov 1–16 at 1 kWh a day, then 7 kWh a day: only Nov 17–23 make the 7-day average.
        let history: Vec<DayTotal> = (1..=23)
            .map(|d| history_day(d, if d >= 17 { 7.0 } else { 1.0 }))
            .collect();
        let mut t = RunningTotals::new(IST, ist(24, 1, 0), TariffBook::new(vec![], 8.0));
        t.reconcile(day(), &[closed("d1", "s1", "A", 2.0, 16.0)], ist(24, 1, 0));
        t.tick(ist(24, 12, 0));
        assert_eq!(t.campus().month_projection, None, "no history yet");
        assert!(t.load_history(day(), &history));
        // At noon on the 24th: 6.5 days left in November.
        t.tick(ist(24, 12, 0));
        let c = t.campus();
        let mtd = 16.0 * 1.0 + 7.0 * 7.0 + 2.0;
        assert!(close(c.month_to_date.kwh, mtd));
        let p = c.month_projection.unwrap();
        assert!(close(p.kwh, mtd + 7.0 * 6.5));
        assert!(close(p.cost, (mtd + 7.0 * 6.5) * 8.0));
        // The days it averaged, for the Trends view's range: its expected value is this one.
        let recent = t.recent_days(None);
        assert_eq!(recent.len(), 7);
        assert_eq!(t.recent_days(Some("A")), recent);
        assert!(t.recent_days(Some("nowhere")).is_empty());
        assert!(close(t.days_left(ist(24, 12, 0)), 6.5));
        let range =
            crate::domain::trends::project(c.month_to_date, &recent, t.days_left(ist(24, 12, 0)))
                .unwrap();
        assert!(close(range.expected.kwh, p.kwh) && close(range.expected.cost, p.cost));
        assert!(
            close(range.low.kwh, p.kwh) && close(range.high.kwh, p.kwh),
            "all 7 days alike"
        );
    }

    #[test]
    fn no_projection_from_minutes_of_a_first_day() {
        // A campus that started this morning: half a kWh so far, no earlier day.
        let mut t = RunningTotals::new(IST, ist(1, 9, 0), TariffBook::new(vec![], 8.0));
        let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        t.reconcile(first, &[closed("d1", "s1", "A", 0.5, 4.0)], ist(1, 9, 0));
        t.load_history(first, &[]);
        t.tick(ist(1, 9, 10));
        assert_eq!(t.campus().month_projection, None);
        assert!(close(t.campus().month_to_date.cost, 4.0));
    }

    #[test]
    fn two_days_of_data_average_over_two_days_not_seven() {
        let mut t = RunningTotals::new(IST, ist(24, 1, 0), TariffBook::new(vec![], 8.0));
        t.reconcile(day(), &[], ist(24, 1, 0));
        t.load_history(day(), &[history_day(22, 3.0), history_day(23, 5.0)]);
        t.tick(ist(24, 12, 0));
        let p = t.campus().month_projection.unwrap();
        assert!(close(p.kwh, 8.0 + 4.0 * 6.5));
    }

    #[test]
    fn midnight_moves_the_day_into_the_month_and_keeps_loads_on() {
        let mut t = RunningTotals::new(IST, ist(23, 20, 0), TariffBook::new(vec![], 8.0));
        let d23 = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        t.reconcile(d23, &[closed("d1", "s1", "A", 1.0, 8.0)], ist(23, 20, 0));
        t.load_history(d23, &[history_day(22, 2.0)]);
        t.switch_on(&open("d1", "s2", "A", ist(23, 22, 0), 1000.0));
        assert!(!t.tick(ist(23, 23, 0)));
        assert!(t.tick(ist(24, 1, 0)), "the day rolled");
        assert_eq!(t.day(), day());
        let c = t.campus();
        // Today: the load since midnight. Month: the 22nd, and the 23rd's 1 + 2 kWh.
        assert!(close(c.today.kwh, 1.0));
        assert!(close(c.month_to_date.kwh, 2.0 + 3.0 + 1.0));
        // Two full days of data averaged: (2 + 3) / 2.
        assert!(c.month_projection.is_some());
        assert!(
            t.is_today_loaded(),
            "a new day starts with nothing closed, known"
        );
    }

    #[test]
    fn an_open_switch_from_a_device_record() {
        let sw = Switch {
            switch_id: "s1".into(),
            name: "Fan".into(),
            switch_type: crate::domain::SwitchType::Fan,
            gpio: None,
            relay_gpio: Some(17),
            state: true,
            last_state_change: Some(ist(24, 9, 0)),
            power_rating: None,
        };
        let settings = PowerSettings::campus_default(7.5);
        let o = OpenSwitch::of("d1", "A", &sw, Some(&settings)).unwrap();
        assert_eq!(o.power_w, 75.0);
        assert_eq!(o.since, ist(24, 9, 0));
        let off = Switch {
            state: false,
            ..sw.clone()
        };
        assert!(OpenSwitch::of("d1", "A", &off, Some(&settings)).is_none());
        let unknown = Switch {
            last_state_change: None,
            ..sw
        };
        assert!(OpenSwitch::of("d1", "A", &unknown, Some(&settings)).is_none());
    }

    fn any_minute() -> impl Strategy<Value = Instant> {
        (0i64..(3 * 24 * 60)).prop_map(|m| ist(23, 0, 0) + chrono::Duration::minutes(m))
    }

    proptest! {
        #[test]
        fn the_tick_equals_the_sum_worked_out_from_scratch(
            opens in proptest::collection::vec((0usize..5, 0usize..3, any_minute(), 1.0f64..2000.0), 0..20),
            changes in proptest::collection::vec((any_minute(), 1.0f64..20.0), 0..4),
            now in (0i64..(24 * 60)).prop_map(|m| ist(24, 0, 0) + chrono::Duration::minutes(m)),
        ) {
            let mut changes = changes;
            changes.sort_by_key(|c| c.0);
            let mut versions = Vec::new();
            for (i, (from, price)) in changes.iter().enumerate() {
                versions.push(global(*price, *from, changes.get(i + 1).map(|c| c.0)));
            }
            let book = TariffBook::new(versions, 7.5);
            let opens: Vec<OpenSwitch> = opens
                .iter()
                .map(|(d, s, since, w)| open(&format!("d{d}"), &format!("s{s}"), "A", *since, *w))
                .collect();
            // One interval per switch: the last one given wins, as with switch_on.
            let mut t = RunningTotals::new(IST, ist(24, 0, 0), book.clone());
            for o in &opens {
                t.switch_on(o);
            }
            prop_assert!(!t.tick(now));
            let mut last: HashMap<(String, String), &OpenSwitch> = HashMap::new();
            for o in &opens {
                last.insert((o.device_id.clone(), o.switch_id.clone()), o);
            }
            let midnight = local_midnight(day(), IST);
            let mut want = Amount::default();
            for o in last.values() {
                want.add(open_amount_from_scratch(o, &book, midnight, now));
            }
            prop_assert!((t.campus().today.kwh - want.kwh).abs() < 1e-6);
            prop_assert!((t.campus().today.cost - want.cost).abs() < 1e-6);
        }

        /// However the rows of a day arrive (repeated, before or after a reconciliation, written
        /// before or after its cutoff), each counts exactly once.
        #[test]
        fn every_row_counts_once_whatever_the_order(
            rows in proptest::collection::vec((0usize..3, 0i64..(20 * 60), 1.0f64..5.0, 0i64..(22 * 60)), 1..30),
            cutoff_minute in 0i64..(24 * 60),
            repeats in proptest::collection::vec(0usize..30, 0..10),
            reconcile_after in 0usize..40,
        ) {
            let midnight = local_midnight(day(), IST);
            let at = |m: i64| midnight + chrono::Duration::minutes(m);
            let cutoff = at(cutoff_minute);
            // Distinct rows by (switch, start).
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<RowNotice> = rows
                .into_iter()
                .filter(|(s, start, _, _)| seen.insert((*s, *start)))
                .map(|(s, start, kwh, created)| RowNotice {
                    created_at: Some(at(created.max(start))),
                    ..row("d1", &format!("s{s}"), at(start), at(start + 1), kwh)
                })
                .collect();
            let before: Vec<ClosedSwitch> = rows
                .iter()
                .filter(|r| r.created_at.unwrap() < cutoff)
                .map(|r| ClosedSwitch {
                    device_id: r.device_id.clone(),
                    switch_id: r.switch_id.clone(),
                    classroom: r.classroom.clone(),
                    amount: r.amount,
                })
                .collect();
            let mut feed: Vec<&RowNotice> = rows.iter().collect();
            feed.extend(repeats.iter().filter_map(|&i| rows.get(i)));
            let mut t = RunningTotals::new(IST, at(1), TariffBook::new(vec![], 8.0));
            let mut reconciled = false;
            for (i, r) in feed.iter().enumerate() {
                if i == reconcile_after {
                    t.reconcile(day(), &before, cutoff);
                    reconciled = true;
                }
                t.learn_row(r, at(23 * 60));
            }
            if !reconciled {
                t.reconcile(day(), &before, cutoff);
            }
            t.tick(at(23 * 60 + 30));
            let want: f64 = rows.iter().map(|r| r.amount.kwh).sum();
            prop_assert!((t.campus().today.kwh - want).abs() < 1e-6);
        }
    }
}
