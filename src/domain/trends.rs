//! The arithmetic of trends: daily series from rollups, a day's load curve in 15-minute slots,
//! the month against the same days of the month before, the month-end projection with its range,
//! and the top N. Pure functions: the store reads, the dashboard and the reports show.

use super::interval::local_midnight;
use super::totals::Amount;
use super::Instant;
use chrono::{Datelike, Days, Months, NaiveDate};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// The width of one slot of a load curve.
pub const SLOT_MINUTES: i64 = 15;

/// One classroom's total of one day (the devices' daily rollups summed).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassroomDay {
    pub date: NaiveDate,
    pub classroom: String,
    pub amount: Amount,
}

/// Daily totals of the campus and of each classroom over a range of days, filled from rollups
/// one at a time (so that a reader can stream them), or from campus summaries (the campus's day
/// first, its classrooms later), and read back as series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DailyBook {
    campus: BTreeMap<NaiveDate, Amount>,
    rooms: BTreeMap<(NaiveDate, String), Amount>,
    /// The days at least one rollup exists for.
    covered: BTreeSet<NaiveDate>,
    /// Days whose campus total is in but whose classrooms are not yet.
    rooms_pending: BTreeSet<NaiveDate>,
}

impl DailyBook {
    /// One rollup: its classroom's day and the campus's.
    pub fn add(&mut self, date: NaiveDate, classroom: &str, amount: Amount) {
        self.covered.insert(date);
        self.campus.entry(date).or_default().add(amount);
        self.add_room(date, classroom, amount);
    }

    /// A campus day summed ahead from `rollups` rollups, its classrooms to follow
    /// ([`DailyBook::add_room`], then [`DailyBook::rooms_in`]).
    pub fn add_campus(&mut self, date: NaiveDate, rollups: u32, amount: Amount) {
        if rollups == 0 {
            return;
        }
        self.covered.insert(date);
        self.campus.entry(date).or_default().add(amount);
        self.rooms_pending.insert(date);
    }

    /// A classroom's part of a campus day already added.
    pub fn add_room(&mut self, date: NaiveDate, classroom: &str, amount: Amount) {
        match self.rooms.get_mut(&(date, classroom.to_string())) {
            Some(a) => a.add(amount),
            None => {
                self.rooms.insert((date, classroom.to_string()), amount);
            }
        }
    }

    /// Every classroom of `date` is in.
    pub fn rooms_in(&mut self, date: NaiveDate) {
        self.rooms_pending.remove(&date);
    }

    /// Whether any rollup exists for `date`.
    pub fn is_covered(&self, date: NaiveDate) -> bool {
        self.covered.contains(&date)
    }

    /// Whether every classroom of every day of `from..=to` is in.
    pub fn has_rooms(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.rooms_pending.range(from..=to).next().is_none()
    }

    /// The days whose classrooms are still to come.
    pub fn rooms_pending(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.rooms_pending.iter().copied()
    }

    /// Every classroom's day, by date then classroom.
    pub fn rows(&self) -> impl Iterator<Item = ClassroomDay> + '_ {
        self.rooms.iter().map(|((d, c), a)| ClassroomDay {
            date: *d,
            classroom: c.clone(),
            amount: *a,
        })
    }

    /// One amount per day of `from..=to` (zero where nothing is stored), for the campus
    /// (`classroom` `None`) or one classroom.
    pub fn series(&self, from: NaiveDate, to: NaiveDate, classroom: Option<&str>) -> Vec<Amount> {
        let days = days_in(from, to);
        let mut out = vec![Amount::default(); days];
        let Some(want) = classroom else {
            for (d, a) in self.campus.range(from..).take_while(|(d, _)| **d <= to) {
                out[(*d - from).num_days() as usize].add(*a);
            }
            return out;
        };
        for ((d, c), a) in self
            .rooms
            .range((from, String::new())..)
            .take_while(|((d, _), _)| *d <= to)
        {
            if want == c {
                out[(*d - from).num_days() as usize].add(*a);
            }
        }
        out
    }

    /// The sum over `from..=to`.
    pub fn total(&self, from: NaiveDate, to: NaiveDate, classroom: Option<&str>) -> Amount {
        sum(&self.series(from, to, classroom))
    }

    /// Each classroom's sum over `from..=to`.
    pub fn by_classroom(&self, from: NaiveDate, to: NaiveDate) -> Vec<(String, Amount)> {
        let mut sums: BTreeMap<&str, Amount> = BTreeMap::new();
        for ((_, c), a) in self
            .rooms
            .range((from, String::new())..)
            .take_while(|((d, _), _)| *d <= to)
        {
            sums.entry(c.as_str()).or_default().add(*a);
        }
        sums.into_iter().map(|(c, a)| (c.to_string(), a)).collect()
    }
}

/// The campus's day in one document: each classroom's sum of its devices' daily rollups, and how
/// many rollups were summed. Written with the rollups by the aggregation, so that trends read a
/// document per day shown, not a rollup per device and day.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CampusDay {
    pub date: NaiveDate,
    /// Daily rollups summed (0: the day was aggregated and had no energy).
    pub rollups: u32,
    /// Each classroom's total (the rollups' classroom), by name.
    pub classrooms: Vec<(String, Amount)>,
}

impl CampusDay {
    /// The day of `date` from its rollups, given as (classroom, amount).
    pub fn of_rollups<'a>(
        date: NaiveDate,
        rollups: impl IntoIterator<Item = (&'a str, Amount)>,
    ) -> CampusDay {
        let mut rooms: BTreeMap<&str, Amount> = BTreeMap::new();
        let mut count = 0;
        for (classroom, amount) in rollups {
            count += 1;
            rooms.entry(classroom).or_default().add(amount);
        }
        CampusDay {
            date,
            rollups: count,
            classrooms: rooms.into_iter().map(|(c, a)| (c.to_string(), a)).collect(),
        }
    }

    /// The campus's total of the day.
    pub fn total(&self) -> Amount {
        let mut s = Amount::default();
        for (_, a) in &self.classrooms {
            s.add(*a);
        }
        s
    }
}

/// Days in `from..=to` (0 when reversed).
pub fn days_in(from: NaiveDate, to: NaiveDate) -> usize {
    ((to - from).num_days() + 1).max(0) as usize
}

pub fn sum(amounts: &[Amount]) -> Amount {
    let mut s = Amount::default();
    for a in amounts {
        s.add(*a);
    }
    s
}

/// The first day of `date`'s month.
pub fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// The last day of `date`'s month.
pub fn month_end(date: NaiveDate) -> NaiveDate {
    month_start(date)
        .checked_add_months(Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(date)
}

/// The full days of this month before `today` and the same days of the month before, for a
/// like-for-like comparison: `None` on the first of the month (no full day yet). Days the month
/// before does not have (the 31st against a 30-day month) are left out of both sides' count.
pub fn month_against_last(today: NaiveDate) -> Option<MonthComparison> {
    let this_from = month_start(today);
    let this_to = today.pred_opt().filter(|d| *d >= this_from)?;
    let last_from = this_from.checked_sub_months(Months::new(1))?;
    let last_end = month_end(last_from);
    let wanted = last_from.checked_add_days(Days::new(u64::from(this_to.day0())))?;
    Some(MonthComparison {
        this: (this_from, this_to),
        last: (last_from, wanted.min(last_end)),
    })
}

/// Two ranges of days compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthComparison {
    pub this: (NaiveDate, NaiveDate),
    pub last: (NaiveDate, NaiveDate),
}

/// The change from `before` to `now` in percent; `None` when `before` is zero.
pub fn change_percent(now: f64, before: f64) -> Option<f64> {
    (before.abs() > f64::EPSILON).then(|| (now - before) / before * 100.0)
}

/// A month-end projection: month-to-date plus the days left at the lowest, the average and the
/// highest of the recent full days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub low: Amount,
    pub expected: Amount,
    pub high: Amount,
}

/// The projection from `month_to_date`, the recent full days (`recent`, at least one) and the
/// days left in the month (a fraction: the rest of today counts). `None` without a full day.
pub fn project(month_to_date: Amount, recent: &[Amount], days_left: f64) -> Option<Projection> {
    if recent.is_empty() {
        return None;
    }
    let days_left = days_left.max(0.0);
    let n = recent.len() as f64;
    let mean = sum(recent);
    let by = |pick: fn(f64, f64) -> f64, field: fn(&Amount) -> f64| {
        recent.iter().map(field).fold(field(&recent[0]), pick)
    };
    let at = |kwh: f64, cost: f64| Amount {
        kwh: month_to_date.kwh + kwh * days_left,
        cost: month_to_date.cost + cost * days_left,
    };
    Some(Projection {
        low: at(by(f64::min, |a| a.kwh), by(f64::min, |a| a.cost)),
        expected: at(mean.kwh / n, mean.cost / n),
        high: at(by(f64::max, |a| a.kwh), by(f64::max, |a| a.cost)),
    })
}

/// The `n` largest by value, largest first; ties by name, so that the order is stable.
pub fn top_n(items: impl IntoIterator<Item = (String, f64)>, n: usize) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = items.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// A day's energy in slots of [`SLOT_MINUTES`] from its local midnight (92, 96 or 100 slots:
/// days of a clock change are shorter or longer).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadCurve {
    pub start: Instant,
    pub end: Instant,
    /// kWh in each slot.
    pub kwh: Vec<f64>,
}

impl LoadCurve {
    /// An empty curve for campus-local `day`.
    pub fn new(day: NaiveDate, tz: Tz) -> LoadCurve {
        let start = local_midnight(day, tz);
        let end = day
            .succ_opt()
            .map(|d| local_midnight(d, tz))
            .unwrap_or(start);
        let slots = ((end - start).num_minutes() / SLOT_MINUTES).max(0) as usize;
        LoadCurve {
            start,
            end,
            kwh: vec![0.0; slots],
        }
    }

    /// The start of slot `i`.
    pub fn slot_start(&self, i: usize) -> Instant {
        self.start + chrono::Duration::minutes(SLOT_MINUTES * i as i64)
    }

    /// Spreads `kwh` used evenly over `[from, to)` into the slots it overlaps; the part outside
    /// the day is left out. An instant interval puts its energy in the slot it falls in.
    pub fn add(&mut self, from: Instant, to: Instant, kwh: f64) {
        if self.kwh.is_empty() || !kwh.is_finite() {
            return;
        }
        let slot_ms = SLOT_MINUTES * 60_000;
        let span = (to - from).num_milliseconds();
        if span <= 0 {
            if from >= self.start && from < self.end {
                let last = self.kwh.len() - 1;
                let i = ((from - self.start).num_milliseconds() / slot_ms) as usize;
                self.kwh[i.min(last)] += kwh;
            }
            return;
        }
        let a = from.max(self.start);
        let b = to.min(self.end);
        if b <= a {
            return;
        }
        let first = ((a - self.start).num_milliseconds() / slot_ms) as usize;
        let last = (((b - self.start).num_milliseconds() - 1) / slot_ms) as usize;
        let day_start = self.start;
        for (i, slot) in self.kwh.iter_mut().enumerate().take(last + 1).skip(first) {
            let slot_start = day_start + chrono::Duration::milliseconds(slot_ms * i as i64);
            let s = slot_start.max(a);
            let e = (slot_start + chrono::Duration::milliseconds(slot_ms)).min(b);
            let overlap = (e - s).num_milliseconds().max(0) as f64;
            *slot += kwh * overlap / span as f64;
        }
    }

    /// A load of `power_w` on over `[from, to)`.
    pub fn add_power(&mut self, from: Instant, to: Instant, power_w: f64) {
        let hours = (to - from).num_milliseconds().max(0) as f64 / 3_600_000.0;
        self.add(from, to, power_w.max(0.0) / 1000.0 * hours);
    }

    pub fn total(&self) -> f64 {
        self.kwh.iter().sum()
    }

    /// The average kW of each slot.
    pub fn kw(&self) -> Vec<f64> {
        let per_hour = 60.0 / SLOT_MINUTES as f64;
        self.kwh.iter().map(|k| k * per_hour).collect()
    }

    /// Adjacent slots merged `by` at a time (a narrow screen shows fewer, wider slots): the
    /// energy of each group, with the start of its first slot.
    pub fn merged(&self, by: usize) -> Vec<(Instant, f64)> {
        let by = by.max(1);
        self.kwh
            .chunks(by)
            .enumerate()
            .map(|(i, c)| (self.slot_start(i * by), c.iter().sum()))
            .collect()
    }

    /// The energy in the slots that start when `open_at` says the campus is closed.
    pub fn outside(&self, open_at: impl Fn(Instant) -> bool) -> f64 {
        self.kwh
            .iter()
            .enumerate()
            .filter(|(i, _)| !open_at(self.slot_start(*i)))
            .map(|(_, k)| k)
            .sum()
    }
}

/// The part of an interval's amount used in the slots of its day that start while the campus is
/// closed (the waste rule's hours), spread evenly over the interval.
pub fn outside_hours(
    from: Instant,
    to: Instant,
    amount: Amount,
    tz: Tz,
    open_at: impl Fn(Instant) -> bool,
) -> Amount {
    if amount.kwh == 0.0 && amount.cost == 0.0 {
        return Amount::default();
    }
    let day = super::interval::local_date(from, tz);
    let mut curve = LoadCurve::new(day, tz);
    // The share of the interval outside hours, applied to both kWh and ₹.
    curve.add(from, to, 1.0);
    let share = curve.outside(open_at);
    Amount {
        kwh: amount.kwh * share,
        cost: amount.cost * share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const IST: Tz = chrono_tz::Asia::Kolkata;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn ist(day: u32, h: u32, m: u32) -> Instant {
        IST.with_ymd_and_hms(2026, 11, day, h, m, 0)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn amt(kwh: f64, cost: f64) -> Amount {
        Amount { kwh, cost }
    }

    #[test]
    fn a_book_sums_rollups_per_classroom_and_day() {
        let mut b = DailyBook::default();
        b.add(d(2026, 11, 2), "CS-101", amt(1.0, 7.5));
        b.add(d(2026, 11, 2), "CS-101", amt(2.0, 15.0));
        b.add(d(2026, 11, 2), "EE-102", amt(4.0, 30.0));
        b.add(d(2026, 11, 4), "CS-101", amt(1.0, 8.0));
        assert_eq!(
            b.series(d(2026, 11, 1), d(2026, 11, 4), None),
            [amt(0.0, 0.0), amt(7.0, 52.5), amt(0.0, 0.0), amt(1.0, 8.0)]
        );
        assert_eq!(
            b.series(d(2026, 11, 2), d(2026, 11, 2), Some("CS-101")),
            [amt(3.0, 22.5)]
        );
        assert_eq!(b.total(d(2026, 11, 3), d(2026, 11, 4), None), amt(1.0, 8.0));
        assert_eq!(
            b.by_classroom(d(2026, 11, 1), d(2026, 11, 30)),
            [
                ("CS-101".to_string(), amt(4.0, 30.5)),
                ("EE-102".to_string(), amt(4.0, 30.0))
            ]
        );
        assert!(b.is_covered(d(2026, 11, 4)) && !b.is_covered(d(2026, 11, 3)));
        assert!(b.series(d(2026, 11, 5), d(2026, 11, 4), None).is_empty());
    }

    #[test]
    fn the_month_is_compared_with_the_same_full_days_of_the_last() {
        assert_eq!(month_against_last(d(2026, 11, 1)), None);
        assert_eq!(
            month_against_last(d(2026, 11, 24)),
            Some(MonthComparison {
                this: (d(2026, 11, 1), d(2026, 11, 23)),
                last: (d(2026, 10, 1), d(2026, 10, 23)),
            })
        );
        // 1–30 March against February's 28 days.
        assert_eq!(
            month_against_last(d(2026, 3, 31)).unwrap().last,
            (d(2026, 2, 1), d(2026, 2, 28))
        );
        // January against December of the year before.
        assert_eq!(
            month_against_last(d(2027, 1, 10)).unwrap().last,
            (d(2026, 12, 1), d(2026, 12, 9))
        );
        assert!((change_percent(110.0, 100.0).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(change_percent(5.0, 0.0), None);
    }

    #[test]
    fn the_projection_brackets_the_average() {
        let p = project(
            amt(10.0, 75.0),
            &[amt(1.0, 7.0), amt(3.0, 21.0), amt(2.0, 14.0)],
            2.0,
        )
        .unwrap();
        assert_eq!(p.low, amt(12.0, 89.0));
        assert_eq!(p.expected, amt(14.0, 103.0));
        assert_eq!(p.high, amt(16.0, 117.0));
        assert_eq!(project(amt(1.0, 1.0), &[], 3.0), None);
        assert_eq!(
            project(amt(1.0, 1.0), &[amt(5.0, 5.0)], -1.0).unwrap().high,
            amt(1.0, 1.0)
        );
    }

    #[test]
    fn top_n_is_largest_first_and_stable_on_ties() {
        let v = vec![
            ("b".to_string(), 2.0),
            ("a".to_string(), 2.0),
            ("c".to_string(), 5.0),
            ("d".to_string(), 1.0),
        ];
        assert_eq!(
            top_n(v, 3),
            [
                ("c".to_string(), 5.0),
                ("a".to_string(), 2.0),
                ("b".to_string(), 2.0)
            ]
        );
        assert!(top_n(Vec::new(), 10).is_empty());
    }

    #[test]
    fn a_load_curve_spreads_energy_over_the_slots() {
        let mut c = LoadCurve::new(d(2026, 11, 24), IST);
        assert_eq!(c.kwh.len(), 96);
        // 1 kWh from 08:10 to 08:40: 5 min, 15 min, 10 min.
        c.add(ist(24, 8, 10), ist(24, 8, 40), 1.0);
        assert!((c.kwh[32] - 1.0 / 6.0).abs() < 1e-12);
        assert!((c.kwh[33] - 0.5).abs() < 1e-12);
        assert!((c.kwh[34] - 1.0 / 3.0).abs() < 1e-12);
        // 2 kW for 15 minutes is 0.5 kWh, an average of 2 kW in its slot.
        c.add_power(ist(24, 10, 0), ist(24, 10, 15), 2000.0);
        assert!((c.kw()[40] - 2.0).abs() < 1e-12);
        // Another day's interval adds nothing; one crossing midnight only its part.
        c.add(ist(23, 10, 0), ist(23, 11, 0), 5.0);
        c.add(ist(24, 23, 0), ist(25, 1, 0), 2.0);
        assert!((c.total() - 2.5).abs() < 1e-12);
        assert_eq!(c.merged(2).len(), 48);
        assert!((c.merged(4)[8].1 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_clock_change_day_has_fewer_or_more_slots() {
        let ny: Tz = chrono_tz::America::New_York;
        assert_eq!(LoadCurve::new(d(2026, 3, 8), ny).kwh.len(), 92);
        assert_eq!(LoadCurve::new(d(2026, 11, 1), ny).kwh.len(), 100);
    }

    #[test]
    fn energy_outside_hours_follows_the_slots() {
        let open = |t: Instant| {
            let h = t.with_timezone(&IST).format("%H").to_string();
            ("08".."18").contains(&h.as_str())
        };
        // 07:00–09:00: half before opening.
        let a = outside_hours(ist(24, 7, 0), ist(24, 9, 0), amt(2.0, 15.0), IST, open);
        assert_eq!(a, amt(1.0, 7.5));
        let inside = outside_hours(ist(24, 9, 0), ist(24, 10, 0), amt(2.0, 15.0), IST, open);
        assert_eq!(inside, amt(0.0, 0.0));
    }

    proptest! {
        #[test]
        fn spreading_an_interval_within_the_day_keeps_its_energy(
            start_min in 0i64..1440, len_min in 0i64..1440, kwh in 0.0f64..1000.0
        ) {
            let mut c = LoadCurve::new(d(2026, 11, 24), IST);
            let from = ist(24, 0, 0) + chrono::Duration::minutes(start_min);
            let to = (from + chrono::Duration::minutes(len_min)).min(ist(25, 0, 0));
            c.add(from, to, kwh);
            prop_assert!((c.total() - kwh).abs() < 1e-9 * kwh.max(1.0));
            prop_assert!(c.kwh.iter().all(|k| *k >= 0.0));
        }

        #[test]
        fn the_projection_range_is_ordered(
            mtd in 0.0f64..1e5,
            recent in proptest::collection::vec(0.0f64..1e4, 1..8),
            left in 0.0f64..31.0
        ) {
            let r: Vec<Amount> = recent.iter().map(|v| amt(*v / 7.5, *v)).collect();
            let p = project(amt(mtd / 7.5, mtd), &r, left).unwrap();
            prop_assert!(p.low.cost <= p.expected.cost + 1e-6);
            prop_assert!(p.expected.cost <= p.high.cost + 1e-6);
            prop_assert!(p.low.cost >= mtd - 1e-6);
        }

        #[test]
        fn top_n_keeps_the_largest(values in proptest::collection::vec(0.0f64..100.0, 0..30), n in 0usize..12) {
            let items: Vec<(String, f64)> = values.iter().enumerate().map(|(i, v)| (format!("r{i:02}"), *v)).collect();
            let top = top_n(items.clone(), n);
            prop_assert_eq!(top.len(), n.min(items.len()));
            prop_assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
            if let Some(least) = top.last() {
                let shown: std::collections::HashSet<&str> = top.iter().map(|t| t.0.as_str()).collect();
                prop_assert!(items.iter().filter(|i| !shown.contains(i.0.as_str())).all(|i| i.1 <= least.1));
            }
        }

        #[test]
        fn the_compared_ranges_have_the_same_days_where_the_month_before_has_them(
            offset in 0u64..3000
        ) {
            let today = d(2020, 1, 1) + Days::new(offset);
            match month_against_last(today) {
                None => prop_assert_eq!(today.day(), 1),
                Some(m) => {
                    let this = days_in(m.this.0, m.this.1);
                    let last = days_in(m.last.0, m.last.1);
                    prop_assert_eq!(this, today.day0() as usize);
                    prop_assert_eq!(last, this.min(days_in(m.last.0, month_end(m.last.0))));
                    prop_assert_eq!(m.last.0.day(), 1);
                }
            }
        }
    }

    proptest! {
        /// A day summed ahead gives the book what its rollups one by one would: the same days,
        /// classrooms, coverage and amounts.
        #[test]
        fn a_campus_day_is_its_rollups_summed(
            rollups in prop::collection::vec((0usize..5, 0.0f64..500.0, 0.0f64..9.0), 0..40),
        ) {
            let day = d(2026, 11, 20);
            let rooms = ["A-101", "A-102", "B-201", "", "64b7f0c2a1b2c3d4e5f60718"];
            let amounts: Vec<(&str, Amount)> = rollups
                .iter()
                .map(|(r, kwh, rate)| (rooms[*r], Amount { kwh: *kwh, cost: kwh * rate }))
                .collect();
            let mut one_by_one = DailyBook::default();
            for (c, a) in &amounts {
                one_by_one.add(day, c, *a);
            }
            let summed = CampusDay::of_rollups(day, amounts.iter().copied());
            prop_assert_eq!(summed.rollups as usize, amounts.len());
            // As the store fills it: the campus's day first, its classrooms after.
            let mut ahead = DailyBook::default();
            ahead.add_campus(day, summed.rollups, summed.total());
            prop_assert_eq!(ahead.has_rooms(day, day), summed.rollups == 0);
            for (classroom, amount) in &summed.classrooms {
                ahead.add_room(day, classroom, *amount);
            }
            ahead.rooms_in(day);
            prop_assert!(ahead.has_rooms(day, day));
            prop_assert_eq!(ahead.is_covered(day), one_by_one.is_covered(day));
            let a: Vec<_> = ahead.rows().collect();
            let b: Vec<_> = one_by_one.rows().collect();
            prop_assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                prop_assert_eq!(&x.classroom, &y.classroom);
                prop_assert!((x.amount.kwh - y.amount.kwh).abs() < 1e-9);
                prop_assert!((x.amount.cost - y.amount.cost).abs() < 1e-9);
            }
            let total = summed.total();
            let want = one_by_one.total(day, day, None);
            prop_assert!((total.kwh - want.kwh).abs() < 1e-9 && (total.cost - want.cost).abs() < 1e-9);
        }
    }
}
