//! The day books: for each campus-local day and device, every ledger row of that day counted once,
//! under a key derived from the row's unique key (switch and start). What the dashboard shows as
//! today's closed energy and cost is the sum of the day's books, which a reader gets with one `_id`
//! lookup per device, however long the ledger is.
//!
//! The books are a copy of the ledger kept in step by its writers, so they are checked against it
//! (the audit) and rebuilt from it (the aggregation): [`repair`] says what to change.

use super::totals::{Amount, ClosedSwitch, DayTotal};
use super::{Instant, LedgerRow};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// Money and energy differences below this are rounding, not disagreement.
pub const BOOK_TOLERANCE: f64 = 1e-6;

/// One ledger row as its day book counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct BookEntry {
    pub switch_id: String,
    pub classroom: String,
    pub wh: f64,
    pub cost: f64,
    /// When the row was written (its `createdAt`), where known.
    pub written_at: Option<Instant>,
}

impl BookEntry {
    pub fn of(row: &LedgerRow) -> BookEntry {
        BookEntry {
            switch_id: row.switch_id.clone(),
            classroom: row.classroom.clone(),
            wh: row.delta_wh,
            cost: row.cost(),
            written_at: row.created_at,
        }
    }

    /// Whether it counts the same energy and money for the same switch and classroom.
    pub fn same_figures(&self, other: &BookEntry) -> bool {
        self.switch_id == other.switch_id
            && self.classroom == other.classroom
            && (self.wh - other.wh).abs() <= BOOK_TOLERANCE
            && (self.cost - other.cost).abs() <= BOOK_TOLERANCE
    }
}

/// The key of a row in its day book: its start (milliseconds) and its switch, with the characters
/// a field name may not hold (`.`, `$`) and the escape itself written as `%XX`.
pub fn entry_key(switch_id: &str, start: Instant) -> String {
    let mut key = format!("{}~", start.timestamp_millis());
    for c in switch_id.chars() {
        match c {
            '.' => key.push_str("%2E"),
            '$' => key.push_str("%24"),
            '%' => key.push_str("%25"),
            c => key.push(c),
        }
    }
    key
}

/// One device's book of one day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayBook {
    pub device_id: String,
    pub entries: BTreeMap<String, BookEntry>,
}

impl DayBook {
    /// The book of `rows` (all of one device and day).
    pub fn of_rows<'a>(device_id: &str, rows: impl IntoIterator<Item = &'a LedgerRow>) -> DayBook {
        DayBook {
            device_id: device_id.to_string(),
            entries: rows
                .into_iter()
                .map(|r| (entry_key(&r.switch_id, r.start_ts), BookEntry::of(r)))
                .collect(),
        }
    }

    /// The book's total.
    pub fn total(&self) -> Amount {
        let mut a = Amount::default();
        for e in self.entries.values() {
            a.add(Amount {
                kwh: e.wh / 1000.0,
                cost: e.cost,
            });
        }
        a
    }

    /// The classroom most of its energy was counted in (a board moved mid-day keeps one name).
    fn classroom(&self) -> String {
        let mut by: BTreeMap<&str, f64> = BTreeMap::new();
        for e in self.entries.values() {
            *by.entry(e.classroom.as_str()).or_default() += e.wh.max(0.0) + 1e-9;
        }
        by.into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, _)| c.to_string())
            .unwrap_or_default()
    }
}

/// The books' rows written before `written_before` (all when `None`; a row whose writing time is
/// unknown counts as written before), summed per switch, as today's reconciliation takes them.
pub fn closed_switches(books: &[DayBook], written_before: Option<Instant>) -> Vec<ClosedSwitch> {
    let mut sums: BTreeMap<(&str, &str, &str), Amount> = BTreeMap::new();
    for b in books {
        for e in b.entries.values() {
            if let (Some(limit), Some(at)) = (written_before, e.written_at) {
                if at >= limit {
                    continue;
                }
            }
            sums.entry((&b.device_id, &e.switch_id, &e.classroom))
                .or_default()
                .add(Amount {
                    kwh: e.wh / 1000.0,
                    cost: e.cost,
                });
        }
    }
    sums.into_iter()
        .map(|((d, s, c), amount)| ClosedSwitch {
            device_id: d.to_string(),
            switch_id: s.to_string(),
            classroom: c.to_string(),
            amount,
        })
        .collect()
}

/// Each device's total of `date`, as the month's history takes it.
pub fn day_totals(date: NaiveDate, books: &[DayBook]) -> Vec<DayTotal> {
    books
        .iter()
        .filter(|b| !b.entries.is_empty())
        .map(|b| DayTotal {
            date,
            device_id: b.device_id.clone(),
            classroom: b.classroom(),
            amount: b.total(),
        })
        .collect()
}

/// What makes a stored book equal to the ledger's: entries to set (missing or different) and
/// entries to remove (no row behind them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookRepair {
    pub set: Vec<(String, BookEntry)>,
    pub remove: Vec<String>,
}

impl BookRepair {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// What to change in `stored` to make it the book of the ledger's rows (`ledger`). An entry
/// without a row is removed only when written before `settled` (or when its writing time is
/// unknown): a later one may belong to a row being written now, which the ledger read missed.
pub fn repair(stored: &DayBook, ledger: &DayBook, settled: Instant) -> BookRepair {
    let mut out = BookRepair::default();
    for (k, e) in &ledger.entries {
        match stored.entries.get(k) {
            Some(s) if s.same_figures(e) => {}
            _ => out.set.push((k.clone(), e.clone())),
        }
    }
    for (k, e) in &stored.entries {
        if !ledger.entries.contains_key(k) && e.written_at.is_none_or(|at| at < settled) {
            out.remove.push(k.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    fn t(min: i64) -> Instant {
        Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn entry(sw: &str, wh: f64, at: i64) -> BookEntry {
        BookEntry {
            switch_id: sw.into(),
            classroom: "CS-101".into(),
            wh,
            cost: wh * 0.008,
            written_at: Some(t(at)),
        }
    }

    fn book(entries: &[(&str, i64, f64, i64)]) -> DayBook {
        DayBook {
            device_id: "d1".into(),
            entries: entries
                .iter()
                .map(|(sw, start, wh, at)| (entry_key(sw, t(*start)), entry(sw, *wh, *at)))
                .collect(),
        }
    }

    #[test]
    fn keys_are_field_names_and_distinct() {
        let a = entry_key("sw.1", t(0));
        assert!(!a.contains('.') && !a.contains('$'), "{a}");
        assert_ne!(entry_key("sw.1", t(0)), entry_key("sw%2E1", t(0)));
        assert_ne!(entry_key("sw1", t(0)), entry_key("sw1", t(1)));
        assert_ne!(entry_key("sw1", t(0)), entry_key("sw2", t(0)));
        assert!(entry_key("", t(0)).starts_with(&t(0).timestamp_millis().to_string()));
    }

    #[test]
    fn closed_switches_sum_per_switch_and_leave_out_rows_written_after_the_cutoff() {
        let b = book(&[
            ("sw1", 0, 100.0, 10),
            ("sw1", 20, 50.0, 30),
            ("sw2", 0, 10.0, 40),
        ]);
        let all = closed_switches(std::slice::from_ref(&b), None);
        assert_eq!(all.len(), 2);
        assert!((all[0].amount.kwh - 0.15).abs() < 1e-12);
        let early = closed_switches(&[b], Some(t(30)));
        assert_eq!(early.len(), 1);
        assert!((early[0].amount.kwh - 0.1).abs() < 1e-12);
    }

    #[test]
    fn a_repair_sets_what_is_missing_or_different_and_removes_only_settled_strays() {
        let ledger = book(&[("sw1", 0, 100.0, 10), ("sw1", 20, 50.0, 30)]);
        let stored = book(&[
            ("sw1", 0, 999.0, 10),
            ("sw2", 5, 1.0, 11),
            ("sw3", 5, 1.0, 90),
        ]);
        let r = repair(&stored, &ledger, t(60));
        assert_eq!(r.set.len(), 2, "{r:?}");
        assert_eq!(r.remove, [entry_key("sw2", t(5))]);
        assert!(repair(&ledger, &ledger, t(60)).is_empty());
    }

    proptest! {
        #[test]
        fn the_repaired_book_totals_the_ledger(
            rows in proptest::collection::vec((0u8..4, 0i64..500, 0.0f64..5000.0), 0..40),
            strays in proptest::collection::vec((0u8..4, 500i64..900, 0.0f64..5000.0), 0..5),
            kept in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let ledger = DayBook {
                device_id: "d1".into(),
                entries: rows.iter().map(|(s, m, wh)| {
                    let sw = format!("sw{s}");
                    (entry_key(&sw, t(*m)), entry(&sw, *wh, 0))
                }).collect(),
            };
            // A stored book that lost some rows, changed none of the rest, and has strays.
            let mut stored = DayBook { device_id: "d1".into(), entries: BTreeMap::new() };
            for (i, (k, e)) in ledger.entries.iter().enumerate() {
                if kept[i % kept.len()] {
                    stored.entries.insert(k.clone(), e.clone());
                }
            }
            for (s, m, wh) in &strays {
                let sw = format!("sw{s}");
                stored.entries.insert(entry_key(&sw, t(*m)), entry(&sw, *wh, 0));
            }
            let r = repair(&stored, &ledger, t(1));
            for (k, e) in r.set { stored.entries.insert(k, e); }
            for k in r.remove { stored.entries.remove(&k); }
            prop_assert_eq!(&stored, &ledger);
            prop_assert!((stored.total().cost - ledger.total().cost).abs() < 1e-9);
        }
    }
}
