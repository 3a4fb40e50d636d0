//! Running totals for the campus, each classroom, device and switch: today's kWh and ₹ (closed
//! ledger rows + the open intervals up to now), power now, month-to-date and a month-end projection.
//!
//! The closed part and the history are loaded once (and again only when the ledger changes); a
//! tick with a new `now` touches no database and allocates nothing: every open interval's rate
//! pieces are worked out when it opens, and the sums go into vectors indexed the same way each time.

use super::energy::switch_power;
use super::interval::{local_date, local_midnight};
use super::tariff::TariffBook;
use super::{Instant, PowerSettings, Switch};
use chrono::{Datelike, Days, Months, NaiveDate};
use chrono_tz::Tz;
use std::collections::HashMap;

/// Energy and money.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Amount {
    pub kwh: f64,
    pub cost: f64,
}

impl Amount {
    fn add(&mut self, other: Amount) {
        self.kwh += other.kwh;
        self.cost += other.cost;
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
    /// Month-to-date + the trailing 7-day daily average × the days left (a projection).
    pub month_projection: Amount,
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

/// An open interval ready for ticks: from `start` (its start or local midnight), pieces of constant
/// rate (`until` exclusive, the last one open-ended).
#[derive(Debug, Clone)]
struct LiveInterval {
    switch: usize,
    start: Instant,
    kw: f64,
    /// (piece start, ₹/kWh), sorted; the first starts at `start`.
    rates: Vec<(Instant, f64)>,
}

/// Which scopes exist and where each switch's sums go.
#[derive(Debug, Clone, Default)]
struct Layout {
    switches: Vec<(String, String)>,
    switch_index: HashMap<(String, String), usize>,
    switch_device: Vec<usize>,
    devices: Vec<String>,
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
        self.devices.push(device_id.to_string());
        self.device_classroom.push(c);
        self.device_index
            .insert(device_id.to_string(), self.devices.len() - 1);
        self.devices.len() - 1
    }

    fn switch(&mut self, device_id: &str, switch_id: &str, classroom: &str) -> usize {
        let key = (device_id.to_string(), switch_id.to_string());
        if let Some(&i) = self.switch_index.get(&key) {
            return i;
        }
        let d = self.device(device_id, classroom);
        self.switches.push(key.clone());
        self.switch_device.push(d);
        self.switch_index.insert(key, self.switches.len() - 1);
        self.switches.len() - 1
    }
}

/// The running totals of one campus-local day.
#[derive(Debug, Clone)]
pub struct RunningTotals {
    tz: Tz,
    day: NaiveDate,
    midnight: Instant,
    next_month: Instant,
    layout: Layout,
    closed: Vec<Amount>,
    /// Earlier days of this month, per device.
    month_before: Vec<Amount>,
    /// The trailing 7 full days' average per day, per device.
    daily_average: Vec<Amount>,
    open: Vec<LiveInterval>,
    switch_totals: Vec<Totals>,
    device_totals: Vec<Totals>,
    classroom_totals: Vec<Totals>,
    campus: Totals,
}

/// How many trailing full days the projection averages.
pub const PROJECTION_DAYS: u32 = 7;

impl RunningTotals {
    /// Totals for campus-local `day`, from its closed rows so far and the earlier days' totals
    /// (those of this month count toward month-to-date; the last 7 toward the projection's average).
    pub fn new(tz: Tz, day: NaiveDate, closed: &[ClosedSwitch], history: &[DayTotal]) -> Self {
        let mut layout = Layout::default();
        let midnight = local_midnight(day, tz);
        let first = day.with_day(1).unwrap_or(day);
        let next_month = first
            .checked_add_months(Months::new(1))
            .map(|d| local_midnight(d, tz))
            .unwrap_or(midnight);
        let mut totals = RunningTotals {
            tz,
            day,
            midnight,
            next_month,
            layout: Layout::default(),
            closed: Vec::new(),
            month_before: Vec::new(),
            daily_average: Vec::new(),
            open: Vec::new(),
            switch_totals: Vec::new(),
            device_totals: Vec::new(),
            classroom_totals: Vec::new(),
            campus: Totals::default(),
        };
        let mut closed_amounts = Vec::new();
        for c in closed {
            let i = layout.switch(&c.device_id, &c.switch_id, &c.classroom);
            if closed_amounts.len() <= i {
                closed_amounts.resize(i + 1, Amount::default());
            }
            closed_amounts[i].add(c.amount);
        }
        let window_start = day.checked_sub_days(Days::new(PROJECTION_DAYS.into()));
        let mut month_before = Vec::new();
        let mut window = Vec::new();
        for h in history.iter().filter(|h| h.date < day) {
            let d = layout.device(&h.device_id, &h.classroom);
            if month_before.len() <= d {
                month_before.resize(d + 1, Amount::default());
                window.resize(d + 1, Amount::default());
            }
            if h.date >= first {
                month_before[d].add(h.amount);
            }
            if window_start.is_some_and(|w| h.date >= w) {
                window[d].add(h.amount);
            }
        }
        totals.layout = layout;
        totals.closed = closed_amounts;
        totals.month_before = month_before;
        totals.daily_average = window
            .into_iter()
            .map(|a| Amount {
                kwh: a.kwh / f64::from(PROJECTION_DAYS),
                cost: a.cost / f64::from(PROJECTION_DAYS),
            })
            .collect();
        totals.resize();
        totals
    }

    /// The campus-local day these totals are for.
    pub fn day(&self) -> NaiveDate {
        self.day
    }

    /// Whether `now` is past this day (the caller then reloads for the new day).
    pub fn is_stale_at(&self, now: Instant) -> bool {
        local_date(now, self.tz) != self.day
    }

    fn resize(&mut self) {
        let (s, d, c) = (
            self.layout.switches.len(),
            self.layout.devices.len(),
            self.layout.classrooms.len(),
        );
        self.closed.resize(s, Amount::default());
        self.month_before.resize(d, Amount::default());
        self.daily_average.resize(d, Amount::default());
        self.switch_totals.resize(s, Totals::default());
        self.device_totals.resize(d, Totals::default());
        self.classroom_totals.resize(c, Totals::default());
    }

    /// Replaces the set of open switches (all of them), pricing each with `tariffs`.
    pub fn set_open(&mut self, open: &[OpenSwitch], tariffs: &TariffBook) {
        self.open.clear();
        for o in open {
            self.add_open(o, tariffs);
        }
    }

    /// A switch turned on (replacing any open interval it had).
    pub fn switch_on(&mut self, open: &OpenSwitch, tariffs: &TariffBook) {
        self.switch_off(&open.device_id, &open.switch_id);
        self.add_open(open, tariffs);
    }

    /// A switch turned off: its interval leaves the open part (its ledger rows arrive with the next
    /// reload of the closed part).
    pub fn switch_off(&mut self, device_id: &str, switch_id: &str) {
        let key = (device_id.to_string(), switch_id.to_string());
        if let Some(&i) = self.layout.switch_index.get(&key) {
            self.open.retain(|o| o.switch != i);
        }
    }

    fn add_open(&mut self, o: &OpenSwitch, tariffs: &TariffBook) {
        let switch = self.layout.switch(&o.device_id, &o.switch_id, &o.classroom);
        self.resize();
        let start = o.since.max(self.midnight);
        let mut rates = vec![(
            start,
            tariffs
                .rate_at(start, &o.device_id, &o.classroom)
                .cost_per_kwh,
        )];
        for cut in tariffs.changes_within(start, self.next_month, &o.device_id, &o.classroom) {
            rates.push((
                cut,
                tariffs
                    .rate_at(cut, &o.device_id, &o.classroom)
                    .cost_per_kwh,
            ));
        }
        self.open.push(LiveInterval {
            switch,
            start,
            kw: o.power_w.max(0.0) / 1000.0,
            rates,
        });
    }

    /// Recomputes every total for `now` (no database, no allocation).
    pub fn tick(&mut self, now: Instant) {
        for (t, c) in self.switch_totals.iter_mut().zip(&self.closed) {
            *t = Totals {
                today: *c,
                ..Totals::default()
            };
        }
        for o in &self.open {
            let t = &mut self.switch_totals[o.switch];
            if now <= o.start {
                continue;
            }
            t.power_w += o.kw * 1000.0;
            for (i, &(from, rate)) in o.rates.iter().enumerate() {
                if from >= now {
                    break;
                }
                let to = o.rates.get(i + 1).map_or(now, |&(next, _)| next.min(now));
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
        let days_left = (self.next_month - now).num_milliseconds().max(0) as f64 / 86_400_000.0;
        for t in self.classroom_totals.iter_mut() {
            *t = Totals::default();
        }
        self.campus = Totals::default();
        for (d, t) in self.device_totals.iter_mut().enumerate() {
            t.month_to_date = self.month_before[d];
            t.month_to_date.add(t.today);
            let avg = self.daily_average[d];
            t.month_projection = Amount {
                kwh: t.month_to_date.kwh + avg.kwh * days_left,
                cost: t.month_to_date.cost + avg.cost * days_left,
            };
            let c = &mut self.classroom_totals[self.layout.device_classroom[d]];
            for scope in [c, &mut self.campus] {
                scope.today.add(t.today);
                scope.power_w += t.power_w;
                scope.month_to_date.add(t.month_to_date);
                scope.month_projection.add(t.month_projection);
            }
        }
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

    fn global(price: f64, from: Instant, until: Option<Instant>) -> CostVersion {
        CostVersion {
            id: None,
            cost_per_kwh: price,
            effective_from: from,
            effective_until: until,
            scope: TariffScope::Global,
            classroom: None,
            device_id: None,
            created_by: None,
            notes: None,
            is_active: until.is_none(),
            created_at: None,
            updated_at: None,
        }
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

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn closed_plus_open_from_midnight() {
        let book = TariffBook::new(vec![global(8.0, ist(1, 0, 0), None)], 7.5);
        let mut t = RunningTotals::new(
            IST,
            day(),
            &[
                closed("d1", "s1", "A", 1.0, 8.0),
                closed("d2", "s1", "B", 2.0, 16.0),
            ],
            &[],
        );
        // On since yesterday 22:00: only today's part counts.
        t.set_open(&[open("d1", "s2", "A", ist(23, 22, 0), 1000.0)], &book);
        t.tick(ist(24, 2, 0));
        let s = t.switch("d1", "s2").unwrap();
        assert!((s.today.kwh - 2.0).abs() < 1e-9);
        assert!((s.today.cost - 16.0).abs() < 1e-9);
        assert_eq!(s.power_w, 1000.0);
        let d1 = t.device("d1").unwrap();
        assert!((d1.today.kwh - 3.0).abs() < 1e-9);
        let campus = t.campus();
        assert!((campus.today.kwh - 5.0).abs() < 1e-9);
        assert!((campus.today.cost - 40.0).abs() < 1e-9);
        assert_eq!(campus.power_w, 1000.0);
        assert_eq!(t.classroom("B").unwrap().power_w, 0.0);

        // The switch goes off: power drops, its energy waits for the ledger reload.
        t.switch_off("d1", "s2");
        t.tick(ist(24, 3, 0));
        assert_eq!(t.campus().power_w, 0.0);
        assert!((t.campus().today.kwh - 3.0).abs() < 1e-9);
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
        let mut t = RunningTotals::new(IST, day(), &[], &[]);
        t.switch_on(&open("d1", "s1", "A", ist(24, 10, 0), 1500.0), &book);
        t.tick(ist(24, 11, 0));
        assert!((t.campus().today.cost - 1.5 * 6.0).abs() < 1e-9);
        t.tick(ist(24, 14, 0));
        assert!((t.campus().today.cost - (3.0 * 6.0 + 3.0 * 9.0)).abs() < 1e-9);
        assert!((t.campus().today.kwh - 6.0).abs() < 1e-9);
        // Turning the same switch on again replaces its interval.
        t.switch_on(&open("d1", "s1", "A", ist(24, 13, 0), 1500.0), &book);
        t.tick(ist(24, 14, 0));
        assert!((t.campus().today.kwh - 1.5).abs() < 1e-9);
    }

    #[test]
    fn month_to_date_and_projection() {
        let h = |d: u32, kwh: f64| DayTotal {
            date: NaiveDate::from_ymd_opt(2026, 11, d).unwrap(),
            device_id: "d1".into(),
            classroom: "A".into(),
            amount: Amount {
                kwh,
                cost: kwh * 8.0,
            },
        };
        // Nov 1–16 at 1 kWh a day, then 7 kWh a day: only Nov 17–23 make the 7-day average.
        let history: Vec<DayTotal> = (1..=23)
            .map(|d| h(d, if d >= 17 { 7.0 } else { 1.0 }))
            .collect();
        let mut t = RunningTotals::new(IST, day(), &[closed("d1", "s1", "A", 2.0, 16.0)], &history);
        // At noon on the 24th: 6.5 days left in November.
        t.tick(ist(24, 12, 0));
        let c = t.campus();
        let mtd = 16.0 * 1.0 + 7.0 * 7.0 + 2.0;
        assert!((c.month_to_date.kwh - mtd).abs() < 1e-9);
        assert!((c.month_projection.kwh - (mtd + 7.0 * 6.5)).abs() < 1e-9);
        assert!((c.month_projection.cost - (mtd + 7.0 * 6.5) * 8.0).abs() < 1e-9);
        assert!(!t.is_stale_at(ist(24, 23, 59)));
        assert!(t.is_stale_at(ist(25, 0, 0)));
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
            now in any_minute(),
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
            let mut t = RunningTotals::new(IST, day(), &[], &[]);
            for o in &opens {
                t.switch_on(o, &book);
            }
            t.tick(now);
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
    }
}
