//! The checks of `autovolt audit`: every ledger row against the energy and cost rules, rows that
//! cross local midnight, overlapping intervals of one switch, and every stored aggregate against
//! the same one recomputed (daily from the ledger, monthly from the dailies).

use super::day_books::{repair, DayBook};
use super::interval::{local_date, local_midnight};
use super::rollup::{self, daily_differences, monthly_differences};
use super::totals::Amount;
use super::trends::CampusDay;
use super::{DailyAggregate, Instant, LedgerRow, MonthlyAggregate};
use chrono::{Days, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

/// How far an aggregate may be from its recomputation (kWh, ₹, seconds, score points).
pub const AGGREGATE_TOLERANCE: f64 = 0.01;

/// Something that disagrees.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// A stored row that does not even read as a ledger row.
    UnreadableRow { row_id: String, error: String },
    /// A row that breaks an energy or cost rule.
    InvalidRow {
        row_id: String,
        device_id: String,
        switch_id: String,
        start_ts: Instant,
        error: String,
    },
    /// A row that crosses campus-local midnight (it should have been split).
    CrossesMidnight {
        row_id: String,
        device_id: String,
        switch_id: String,
        start_ts: Instant,
        end_ts: Instant,
    },
    /// Two rows of one switch covering the same time (double billing).
    Overlap {
        device_id: String,
        switch_id: String,
        first_row_id: String,
        second_row_id: String,
        first_end: Instant,
        second_start: Instant,
    },
    /// A stored daily aggregate that is not what the ledger gives (or has no rows behind it).
    StaleDaily {
        date_string: String,
        device_id: String,
        fields: Vec<&'static str>,
        stored_kwh: f64,
        ledger_kwh: f64,
        stored_cost: f64,
        ledger_cost: f64,
    },
    /// A switch whose state, last recorded change and open interval do not agree.
    SwitchDisagrees {
        device_id: String,
        switch_id: String,
        state: bool,
        last_state_change: Option<Instant>,
        /// The collector's last activity entry for the switch, and when.
        last_activity: Option<String>,
        last_activity_at: Option<Instant>,
        why: String,
    },
    /// A day's campus summary (what the Trends view shows) that is not the sum of the day's
    /// stored daily aggregates: its campus total (`classroom` `None`) or one classroom's part.
    StaleCampusDay {
        date_string: String,
        classroom: Option<String>,
        stored_kwh: f64,
        daily_kwh: f64,
        stored_cost: f64,
        daily_cost: f64,
    },
    /// A device's day book (what the dashboard shows as the day's figures) that does not count
    /// the day's ledger rows exactly: rows missing or with other figures, entries without a row.
    StaleDayBook {
        date_string: String,
        device_id: String,
        missing: usize,
        different: usize,
        extra: usize,
        stored_kwh: f64,
        ledger_kwh: f64,
        stored_cost: f64,
        ledger_cost: f64,
    },
    /// A stored monthly aggregate that is not the sum of its stored daily aggregates.
    StaleMonthly {
        month_string: String,
        device_id: String,
        fields: Vec<&'static str>,
        stored_kwh: f64,
        daily_kwh: f64,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::UnreadableRow { row_id, error } => {
                write!(f, "row {row_id}: cannot be read as a ledger row: {error}")
            }
            Finding::InvalidRow {
                row_id,
                device_id,
                switch_id,
                start_ts,
                error,
            } => write!(
                f,
                "row {row_id} (device {device_id} switch {switch_id} at {}): {error}",
                start_ts.to_rfc3339()
            ),
            Finding::CrossesMidnight {
                row_id,
                device_id,
                switch_id,
                start_ts,
                end_ts,
            } => write!(
                f,
                "row {row_id} (device {device_id} switch {switch_id}) crosses local midnight: {} to {}",
                start_ts.to_rfc3339(),
                end_ts.to_rfc3339()
            ),
            Finding::Overlap {
                device_id,
                switch_id,
                first_row_id,
                second_row_id,
                first_end,
                second_start,
            } => write!(
                f,
                "device {device_id} switch {switch_id}: row {second_row_id} starts at {} before row {first_row_id} ends at {} (billed twice)",
                second_start.to_rfc3339(),
                first_end.to_rfc3339()
            ),
            Finding::StaleDaily {
                date_string,
                device_id,
                fields,
                ledger_kwh,
                ledger_cost,
                ..
            } if fields == &["no daily aggregate"] => write!(
                f,
                "device {device_id} has {ledger_kwh:.3} kWh ₹{ledger_cost:.2} in the ledger on {date_string} but no daily aggregate of that day (rows written after it was aggregated, or a run stopped early); run `autovolt aggregate --date {date_string}`"
            ),
            Finding::StaleDaily {
                date_string,
                device_id,
                fields,
                stored_kwh,
                ledger_kwh,
                stored_cost,
                ledger_cost,
            } => write!(
                f,
                "daily aggregate {date_string} device {device_id} differs from the ledger in {}: {stored_kwh:.3} kWh ₹{stored_cost:.2} stored, {ledger_kwh:.3} kWh ₹{ledger_cost:.2} in the ledger; run `autovolt aggregate --date {date_string}`",
                fields.join(", ")
            ),
            Finding::SwitchDisagrees {
                device_id,
                switch_id,
                state,
                last_state_change,
                last_activity,
                last_activity_at,
                why,
            } => write!(
                f,
                "device {device_id} switch {switch_id} is {} since {} but its last activity is {} at {}: {why}",
                if *state { "on" } else { "off" },
                last_state_change.map_or("never".to_string(), |t| t.to_rfc3339()),
                last_activity.as_deref().unwrap_or("none"),
                last_activity_at.map_or("-".to_string(), |t| t.to_rfc3339()),
            ),
            Finding::StaleCampusDay {
                date_string,
                classroom,
                stored_kwh,
                daily_kwh,
                stored_cost,
                daily_cost,
            } => write!(
                f,
                "campus summary {date_string} ({}) differs from its daily aggregates: {stored_kwh:.3} kWh ₹{stored_cost:.2} stored, {daily_kwh:.3} kWh ₹{daily_cost:.2} from the days; run `autovolt aggregate --date {date_string}`",
                classroom
                    .as_deref()
                    .map_or("campus total".to_string(), |c| format!("classroom {c}"))
            ),
            Finding::StaleDayBook {
                date_string,
                device_id,
                missing,
                different,
                extra,
                stored_kwh,
                ledger_kwh,
                stored_cost,
                ledger_cost,
            } => write!(
                f,
                "day book {date_string} device {device_id} does not count the ledger's rows ({missing} missing, {different} with other figures, {extra} without a row): {stored_kwh:.3} kWh ₹{stored_cost:.2} in the book, {ledger_kwh:.3} kWh ₹{ledger_cost:.2} in the ledger; run `autovolt aggregate --date {date_string}`"
            ),
            Finding::StaleMonthly {
                month_string,
                device_id,
                fields,
                stored_kwh,
                daily_kwh,
            } => write!(
                f,
                "monthly aggregate {month_string} device {device_id} differs from its daily aggregates in {}: {stored_kwh:.3} kWh stored, {daily_kwh:.3} kWh from the days",
                fields.join(", ")
            ),
        }
    }
}

fn row_id(r: &LedgerRow) -> String {
    r.id.map(|i| i.to_hex()).unwrap_or_else(|| "?".into())
}

/// What the books say of one switch: the device's state, the collector's last activity entry for
/// it, the device's last `device_offline` entry, and where its ledger rows end.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchBooks {
    pub device_id: String,
    pub switch_id: String,
    pub state: bool,
    pub last_state_change: Option<Instant>,
    /// The action (`on`, `manual_off`, …) and time of the last entry; entries at the same time
    /// (written by older versions) all count.
    pub last_activity: Vec<(String, Instant)>,
    /// The last `device_offline` entry of its device.
    pub offline_at: Option<Instant>,
    /// The latest `end_ts` of its ledger rows.
    pub rows_end: Option<Instant>,
}

/// Whether an activity action turns a switch on (`on`, `manual_on`) or off.
pub fn action_turns_on(action: &str) -> bool {
    action.ends_with("on") && !action.starts_with("device")
}

/// The invariant that keeps a switch billable: its state agrees with its last recorded change
/// (a switch closed by its board going offline excepted), that change is no later than
/// `lastStateChange` (later only where the interval was reopened at local midnight), and no ledger
/// row bills time after an open interval's start.
pub fn check_switch(b: &SwitchBooks, tz: Tz) -> Option<Finding> {
    let finding = |why: &str| {
        let last = b.last_activity.last();
        Some(Finding::SwitchDisagrees {
            device_id: b.device_id.clone(),
            switch_id: b.switch_id.clone(),
            state: b.state,
            last_state_change: b.last_state_change,
            last_activity: last.map(|(a, _)| a.clone()),
            last_activity_at: last.map(|(_, t)| *t),
            why: why.to_string(),
        })
    };
    if let (true, Some(lsc), Some(end)) = (b.state, b.last_state_change, b.rows_end) {
        if end > lsc {
            return finding("a ledger row bills time after the open interval's start");
        }
    }
    let reopened_at_midnight = |l: Instant| {
        b.state && super::interval::local_midnight(super::interval::local_date(l, tz), tz) == l
    };
    let Some(&(_, at)) = b.last_activity.last() else {
        return match b.last_state_change {
            Some(l) if b.state && !reopened_at_midnight(l) => {
                finding("on without an activity entry: an interval no entry explains")
            }
            _ => None,
        };
    };
    let agrees = b
        .last_activity
        .iter()
        .any(|(a, _)| action_turns_on(a) == b.state);
    let lsc = b.last_state_change;
    if !agrees {
        let closed_offline = !b.state && lsc.is_some() && b.offline_at == lsc;
        return if closed_offline {
            None
        } else {
            finding("the state differs from the last recorded change")
        };
    }
    match lsc {
        None => finding("an activity entry for a switch that never changed"),
        Some(l) if l < at => finding("the device shows an older change than the activity log"),
        Some(l) if l > at && !reopened_at_midnight(l) => {
            finding("the device shows a change that no activity entry records")
        }
        _ => None,
    }
}

/// Checks rows one by one (rules, midnight) and per switch (overlaps). `rows` may be in any order.
pub fn check_rows(rows: &[LedgerRow], tz: Tz) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in rows {
        if let Err(e) = r.validate() {
            out.push(Finding::InvalidRow {
                row_id: row_id(r),
                device_id: r.device_id.clone(),
                switch_id: r.switch_id.clone(),
                start_ts: r.start_ts,
                error: e.to_string(),
            });
        }
        let next_midnight = local_date(r.start_ts, tz)
            .checked_add_days(Days::new(1))
            .map(|d| local_midnight(d, tz));
        if next_midnight.is_some_and(|m| r.end_ts > m) {
            out.push(Finding::CrossesMidnight {
                row_id: row_id(r),
                device_id: r.device_id.clone(),
                switch_id: r.switch_id.clone(),
                start_ts: r.start_ts,
                end_ts: r.end_ts,
            });
        }
    }
    let mut order: Vec<&LedgerRow> = rows.iter().collect();
    order.sort_by(|a, b| {
        (&a.device_id, &a.switch_id, a.start_ts, a.end_ts).cmp(&(
            &b.device_id,
            &b.switch_id,
            b.start_ts,
            b.end_ts,
        ))
    });
    let mut latest: Option<&LedgerRow> = None;
    for r in order {
        match latest {
            Some(p) if p.device_id == r.device_id && p.switch_id == r.switch_id => {
                if r.start_ts < p.end_ts {
                    out.push(Finding::Overlap {
                        device_id: r.device_id.clone(),
                        switch_id: r.switch_id.clone(),
                        first_row_id: row_id(p),
                        second_row_id: row_id(r),
                        first_end: p.end_ts,
                        second_start: r.start_ts,
                    });
                }
                if r.end_ts > p.end_ts {
                    latest = Some(r);
                }
            }
            _ => latest = Some(r),
        }
    }
    out
}

/// Compares one day's stored aggregates with the ones its ledger rows give.
pub fn check_dailies(
    date_string: &str,
    rows: &[LedgerRow],
    stored: &[DailyAggregate],
) -> Vec<Finding> {
    let fresh = rollup::daily_aggregates(date_string, &rollup::group_rows(rows));
    let mut out = Vec::new();
    for s in stored.iter().filter(|s| s.date_string == date_string) {
        let recomputed = fresh.iter().find(|f| f.device_id == s.device_id);
        let fields = match recomputed {
            Some(f) => daily_differences(s, f, AGGREGATE_TOLERANCE),
            None if s.total_kwh.abs() > AGGREGATE_TOLERANCE
                || s.cost_at_calc_time.abs() > AGGREGATE_TOLERANCE
                || s.switch_count != 0 =>
            {
                vec!["no ledger rows"]
            }
            None => Vec::new(),
        };
        if !fields.is_empty() {
            out.push(Finding::StaleDaily {
                date_string: date_string.to_string(),
                device_id: s.device_id.clone(),
                fields,
                stored_kwh: s.total_kwh,
                ledger_kwh: recomputed.map_or(0.0, |f| f.total_kwh),
                stored_cost: s.cost_at_calc_time,
                ledger_cost: recomputed.map_or(0.0, |f| f.cost_at_calc_time),
            });
        }
    }
    // A day that was aggregated (some of it is stored) must have every device its rows give:
    // one missing was written after the run, or the run stopped before its classroom.
    let day_stored: Vec<&DailyAggregate> = stored
        .iter()
        .filter(|s| s.date_string == date_string)
        .collect();
    if !day_stored.is_empty() {
        for f in &fresh {
            let used = f.total_kwh.abs() > AGGREGATE_TOLERANCE
                || f.cost_at_calc_time.abs() > AGGREGATE_TOLERANCE;
            if used && !day_stored.iter().any(|s| s.device_id == f.device_id) {
                out.push(Finding::StaleDaily {
                    date_string: date_string.to_string(),
                    device_id: f.device_id.clone(),
                    fields: vec!["no daily aggregate"],
                    stored_kwh: 0.0,
                    ledger_kwh: f.total_kwh,
                    stored_cost: 0.0,
                    ledger_cost: f.cost_at_calc_time,
                });
            }
        }
    }
    out
}

/// Compares a day's campus summary (its campus total, and its classrooms when they were read)
/// with the sums of the day's stored daily aggregates.
pub fn check_campus_day(
    date_string: &str,
    dailies: &[DailyAggregate],
    stored_total: Amount,
    stored_rooms: Option<&[(String, Amount)]>,
) -> Vec<Finding> {
    let day = NaiveDate::parse_from_str(date_string, "%Y-%m-%d").unwrap_or_default();
    let fresh = CampusDay::of_rollups(
        day,
        dailies
            .iter()
            .filter(|d| d.date_string == date_string)
            .map(|d| {
                (
                    d.classroom.as_str(),
                    Amount {
                        kwh: d.total_kwh,
                        cost: d.cost_at_calc_time,
                    },
                )
            }),
    );
    let differs = |a: Amount, b: Amount| {
        (a.kwh - b.kwh).abs() > AGGREGATE_TOLERANCE || (a.cost - b.cost).abs() > AGGREGATE_TOLERANCE
    };
    let finding =
        |classroom: Option<&str>, stored: Amount, daily: Amount| Finding::StaleCampusDay {
            date_string: date_string.to_string(),
            classroom: classroom.map(str::to_string),
            stored_kwh: stored.kwh,
            daily_kwh: daily.kwh,
            stored_cost: stored.cost,
            daily_cost: daily.cost,
        };
    let mut out = Vec::new();
    if differs(stored_total, fresh.total()) {
        out.push(finding(None, stored_total, fresh.total()));
    }
    if let Some(rooms) = stored_rooms {
        let mut both: std::collections::BTreeMap<&str, (Amount, Amount)> = Default::default();
        for (c, a) in rooms {
            both.entry(c.as_str()).or_default().0.add(*a);
        }
        for (c, a) in &fresh.classrooms {
            both.entry(c.as_str()).or_default().1.add(*a);
        }
        for (c, (stored, daily)) in both {
            if differs(stored, daily) {
                out.push(finding(Some(c), stored, daily));
            }
        }
    }
    out
}

/// Compares the stored day books of a day (`stored`, one per device) with the day's ledger rows.
/// An entry without a row written at or after `settled` is not counted against its book (its row
/// may be being written).
pub fn check_day_books(
    date_string: &str,
    rows: &[LedgerRow],
    stored: &[DayBook],
    settled: Instant,
) -> Vec<Finding> {
    let mut by_device: std::collections::BTreeMap<&str, Vec<&LedgerRow>> = Default::default();
    for r in rows {
        by_device.entry(r.device_id.as_str()).or_default().push(r);
    }
    let stored: std::collections::BTreeMap<&str, &DayBook> =
        stored.iter().map(|b| (b.device_id.as_str(), b)).collect();
    let devices: std::collections::BTreeSet<&str> =
        by_device.keys().chain(stored.keys()).copied().collect();
    let empty = DayBook::default();
    let mut out = Vec::new();
    for device in devices {
        let ledger = DayBook::of_rows(device, by_device.get(device).into_iter().flatten().copied());
        let have = stored.get(device).copied().unwrap_or(&empty);
        let fix = repair(have, &ledger, settled);
        if fix.is_empty() {
            continue;
        }
        let missing = fix
            .set
            .iter()
            .filter(|(k, _)| !have.entries.contains_key(k))
            .count();
        let (s, l) = (have.total(), ledger.total());
        out.push(Finding::StaleDayBook {
            date_string: date_string.to_string(),
            device_id: device.to_string(),
            missing,
            different: fix.set.len() - missing,
            extra: fix.remove.len(),
            stored_kwh: s.kwh,
            ledger_kwh: l.kwh,
            stored_cost: s.cost,
            ledger_cost: l.cost,
        });
    }
    out
}

/// Compares a month's stored aggregates with the sums of its stored daily aggregates.
pub fn check_monthlies(
    month: NaiveDate,
    dailies: &[DailyAggregate],
    stored: &[MonthlyAggregate],
) -> Vec<Finding> {
    let fresh = rollup::monthly_aggregates(month, dailies);
    let ms = rollup::month_string(month);
    stored
        .iter()
        .filter(|m| m.month_string == ms)
        .filter_map(|m| {
            let recomputed = fresh.iter().find(|f| f.device_id == m.device_id);
            let fields = match recomputed {
                Some(f) => monthly_differences(m, f, AGGREGATE_TOLERANCE),
                None => vec!["no daily aggregates"],
            };
            (!fields.is_empty()).then(|| Finding::StaleMonthly {
                month_string: ms.clone(),
                device_id: m.device_id.clone(),
                fields,
                stored_kwh: m.total_kwh,
                daily_kwh: recomputed.map_or(0.0, |f| f.total_kwh),
            })
        })
        .collect()
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AuditReport {
    pub from: String,
    pub to: String,
    pub timezone: String,
    pub rows_checked: u64,
    pub daily_checked: u64,
    pub monthly_checked: u64,
    /// Switches changed within the days, checked against their activity entries.
    #[serde(default)]
    pub switches_checked: u64,
    /// Day books (a device's day each) checked against the ledger.
    #[serde(default)]
    pub books_checked: u64,
    /// Days with ledger rows but no stored aggregate (not a disagreement: not aggregated yet).
    pub days_not_aggregated: Vec<String>,
    pub findings: Vec<Finding>,
}

impl AuditReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::energy::{cost_inr, energy_wh};

    #[test]
    fn a_switch_agrees_with_its_last_change_or_is_found() {
        let t = Utc.with_ymd_and_hms(2026, 11, 24, 5, 0, 0).unwrap();
        let books = |state: bool, lsc: Option<Instant>, acts: &[(&str, Instant)]| SwitchBooks {
            device_id: "d".into(),
            switch_id: "sw1".into(),
            state,
            last_state_change: lsc,
            last_activity: acts.iter().map(|(a, t)| (a.to_string(), *t)).collect(),
            offline_at: None,
            rows_end: None,
        };
        assert!(check_switch(&books(false, None, &[]), IST).is_none());
        assert!(check_switch(&books(true, Some(t), &[("manual_on", t)]), IST).is_none());
        assert!(check_switch(&books(true, Some(t), &[("off", t)]), IST).is_some());
        // Flipped without an entry: the burst bug.
        assert!(check_switch(&books(true, Some(t), &[]), IST).is_some());
        let later = t + Duration::seconds(11);
        assert!(check_switch(&books(true, Some(later), &[("on", t)]), IST).is_some());
        // Reopened at local midnight: fine.
        let midnight = crate::domain::interval::local_midnight(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            IST,
        );
        assert!(check_switch(&books(true, Some(midnight), &[("on", t)]), IST).is_none());
        // Closed by going offline: fine only at the offline entry's time.
        let mut off = books(false, Some(later), &[("on", t)]);
        assert!(check_switch(&off, IST).is_some());
        off.offline_at = Some(later);
        assert!(check_switch(&off, IST).is_none());
        // Billed past the open interval's start.
        let mut billed = books(true, Some(t), &[("on", t)]);
        billed.rows_end = Some(later);
        assert!(check_switch(&billed, IST).is_some());
    }
    use crate::domain::{CostCalculation, Quality, SwitchType};
    use chrono::{Duration, TimeZone, Utc};

    const IST: Tz = chrono_tz::Asia::Kolkata;

    fn ist(d: u32, h: u32, m: u32) -> Instant {
        IST.with_ymd_and_hms(2026, 11, d, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row(switch: &str, start: Instant, minutes: i64) -> LedgerRow {
        let secs = minutes as f64 * 60.0;
        let wh = energy_wh(100.0, secs);
        LedgerRow {
            id: Some(bson::oid::ObjectId::new()),
            device_id: "d1".into(),
            esp32_name: "b".into(),
            classroom: "A".into(),
            switch_id: switch.into(),
            switch_name: "s".into(),
            switch_type: SwitchType::Outlet,
            start_ts: start,
            end_ts: start + Duration::minutes(minutes),
            switch_on_duration_seconds: secs,
            delta_wh: wh,
            power_w: 100.0,
            cost_calculation: Some(CostCalculation {
                cost_per_kwh: 8.0,
                cost_inr: cost_inr(wh, 8.0),
            }),
            quality: Quality::default(),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn clean_rows_give_nothing() {
        let rows = vec![
            row("1", ist(24, 8, 0), 60),
            row("1", ist(24, 9, 0), 60),
            row("2", ist(24, 8, 30), 60),
        ];
        assert!(check_rows(&rows, IST).is_empty());
    }

    #[test]
    fn tampered_crossing_and_overlapping_rows_are_found() {
        let mut tampered = row("1", ist(24, 8, 0), 60);
        tampered.delta_wh *= 2.0;
        let crossing = row("2", ist(24, 23, 0), 120);
        let a = row("3", ist(24, 8, 0), 60);
        let b = row("3", ist(24, 8, 30), 60);
        let findings = check_rows(&[tampered, crossing, b, a], IST);
        assert_eq!(findings.len(), 3, "{findings:#?}");
        assert!(
            matches!(&findings[0], Finding::InvalidRow { error, .. } if error.contains("delta_wh"))
        );
        assert!(matches!(findings[1], Finding::CrossesMidnight { .. }));
        assert!(matches!(findings[2], Finding::Overlap { .. }));
        // Ending exactly at midnight is fine.
        assert!(check_rows(&[row("2", ist(24, 23, 0), 60)], IST).is_empty());
    }

    #[test]
    fn stale_aggregates_are_found() {
        let rows = vec![row("1", ist(24, 8, 0), 60), row("2", ist(24, 9, 0), 30)];
        let fresh = rollup::daily_aggregates("2026-11-24", &rollup::group_rows(&rows));
        assert!(check_dailies("2026-11-24", &rows, &fresh).is_empty());
        let mut stale = fresh.clone();
        stale[0].total_kwh += 0.5;
        let findings = check_dailies("2026-11-24", &rows, &stale);
        assert!(
            matches!(&findings[..], [Finding::StaleDaily { fields, .. }] if fields == &vec!["total_kwh"])
        );
        // An aggregate with energy but no rows behind it.
        let findings = check_dailies("2026-11-24", &[], &fresh);
        assert_eq!(findings.len(), 1);
        // A device whose rows came after the day was aggregated has no aggregate of the day.
        let mut late = row("1", ist(24, 10, 0), 60);
        late.device_id = "d2".into();
        let with_late: Vec<LedgerRow> = rows.iter().cloned().chain([late]).collect();
        let findings = check_dailies("2026-11-24", &with_late, &fresh);
        assert!(
            matches!(&findings[..], [Finding::StaleDaily { fields, device_id, stored_kwh, .. }]
                if fields == &vec!["no daily aggregate"] && device_id == "d2" && *stored_kwh == 0.0),
            "{findings:?}"
        );
        assert!(findings[0].to_string().contains("but no daily aggregate"));
        // A day not aggregated at all is not a disagreement (the report lists it apart).
        assert!(check_dailies("2026-11-24", &rows, &[]).is_empty());

        let month = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let mut monthly = rollup::monthly_aggregates(month, &fresh);
        assert!(check_monthlies(month, &fresh, &monthly).is_empty());
        monthly[0].cost_at_calc_time += 1.0;
        assert_eq!(check_monthlies(month, &fresh, &monthly).len(), 1);
    }

    #[test]
    fn a_campus_summary_is_checked_against_the_days_rollups() {
        let rollup = |classroom: &str, device: &str, kwh: f64| DailyAggregate {
            id: None,
            date_string: "2026-11-20".into(),
            classroom: classroom.into(),
            device_id: device.into(),
            esp32_name: device.into(),
            total_kwh: kwh,
            on_time_sec: 0.0,
            cost_at_calc_time: kwh * 7.5,
            cost_per_kwh_used: 7.5,
            switch_count: 1,
            switch_breakdown: Vec::new(),
            quality_score: 100.0,
            created_at: None,
            updated_at: None,
        };
        let dailies = [
            rollup("A", "a1", 2.0),
            rollup("A", "a2", 1.0),
            rollup("B", "b1", 4.0),
        ];
        let amount = |kwh: f64| Amount {
            kwh,
            cost: kwh * 7.5,
        };
        let rooms = [
            ("A".to_string(), amount(3.0)),
            ("B".to_string(), amount(4.0)),
        ];
        assert!(check_campus_day("2026-11-20", &dailies, amount(7.0), Some(&rooms)).is_empty());
        assert!(check_campus_day("2026-11-20", &dailies, amount(7.0), None).is_empty());
        // Another program aggregated B again after the summary was written.
        let found = check_campus_day("2026-11-20", &dailies[..2], amount(7.0), Some(&rooms));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(matches!(
            &found[0],
            Finding::StaleCampusDay {
                classroom: None,
                ..
            }
        ));
        assert!(
            matches!(&found[1], Finding::StaleCampusDay { classroom: Some(c), daily_kwh, .. } if c == "B" && *daily_kwh == 0.0)
        );
        assert!(found[0]
            .to_string()
            .contains("autovolt aggregate --date 2026-11-20"));
    }
}
