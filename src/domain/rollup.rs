//! The arithmetic of the daily and monthly rollups, finished in Rust after a portable pipeline
//! (`$match` + `$group` with `$sum` only) has summed the ledger per switch.

use super::aggregate::{DailyTotal, SwitchBreakdown};
use super::{Confidence, DailyAggregate, LedgerRow, MonthlyAggregate};
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// The sums of one day's ledger rows of one switch with one set of labels and one confidence: what
/// the `$group` stage returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SwitchGroup {
    pub device_id: String,
    pub switch_id: String,
    pub classroom: String,
    pub esp32_name: String,
    pub switch_name: String,
    pub confidence: Confidence,
    pub wh: f64,
    pub seconds: f64,
    pub cost: f64,
    pub rows: u64,
}

/// Groups rows the way the pipeline does (for the audit and for tests).
pub fn group_rows<'a>(rows: impl IntoIterator<Item = &'a LedgerRow>) -> Vec<SwitchGroup> {
    let mut groups: BTreeMap<(String, String, String, String, String, String), SwitchGroup> =
        BTreeMap::new();
    for r in rows {
        let key = (
            r.device_id.clone(),
            r.switch_id.clone(),
            r.classroom.clone(),
            r.esp32_name.clone(),
            r.switch_name.clone(),
            r.quality.confidence.to_string(),
        );
        let g = groups.entry(key).or_insert_with(|| SwitchGroup {
            device_id: r.device_id.clone(),
            switch_id: r.switch_id.clone(),
            classroom: r.classroom.clone(),
            esp32_name: r.esp32_name.clone(),
            switch_name: r.switch_name.clone(),
            confidence: r.quality.confidence.clone(),
            ..SwitchGroup::default()
        });
        g.wh += r.delta_wh;
        g.seconds += r.switch_on_duration_seconds;
        g.cost += r.cost();
        g.rows += 1;
    }
    groups.into_values().collect()
}

/// The label of the group that holds most rows (ties: the smallest text), so that a device renamed
/// during the day gets one deterministic name.
fn dominant<'a>(labels: impl Iterator<Item = (&'a str, u64)>) -> String {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for (l, n) in labels {
        *counts.entry(l).or_default() += n;
    }
    let mut best: Option<(&str, u64)> = None;
    for (l, n) in counts {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((l, n));
        }
    }
    best.map(|(l, _)| l.to_string()).unwrap_or_default()
}

/// `Σ cost / Σ kWh`, 0 when there was no energy.
pub fn energy_weighted_rate(cost: f64, kwh: f64) -> f64 {
    if kwh > 0.0 {
        cost / kwh
    } else {
        0.0
    }
}

/// Share of energy from high-confidence rows, 0–100 (100 when there was no energy: nothing doubtful).
pub fn quality_score(high_wh: f64, total_wh: f64) -> f64 {
    if total_wh > 0.0 {
        (100.0 * high_wh / total_wh).clamp(0.0, 100.0)
    } else {
        100.0
    }
}

/// One day's aggregates, one per device, sorted by `device_id`. `createdAt`/`updatedAt` are left
/// to the store.
pub fn daily_aggregates(date_string: &str, groups: &[SwitchGroup]) -> Vec<DailyAggregate> {
    let mut by_device: BTreeMap<&str, Vec<&SwitchGroup>> = BTreeMap::new();
    for g in groups {
        by_device.entry(g.device_id.as_str()).or_default().push(g);
    }
    by_device
        .into_iter()
        .map(|(device_id, gs)| {
            let mut switches: BTreeMap<&str, Vec<&SwitchGroup>> = BTreeMap::new();
            for g in &gs {
                switches.entry(g.switch_id.as_str()).or_default().push(g);
            }
            let breakdown: Vec<SwitchBreakdown> = switches
                .iter()
                .map(|(switch_id, sg)| SwitchBreakdown {
                    switch_id: switch_id.to_string(),
                    switch_name: dominant(sg.iter().map(|g| (g.switch_name.as_str(), g.rows))),
                    energy_kwh: sg.iter().map(|g| g.wh).sum::<f64>() / 1000.0,
                    on_time_sec: sg.iter().map(|g| g.seconds).sum(),
                    cost: sg.iter().map(|g| g.cost).sum(),
                })
                .collect();
            let wh: f64 = gs.iter().map(|g| g.wh).sum();
            let high_wh: f64 = gs
                .iter()
                .filter(|g| g.confidence == Confidence::High)
                .map(|g| g.wh)
                .sum();
            let cost: f64 = gs.iter().map(|g| g.cost).sum();
            let kwh = wh / 1000.0;
            DailyAggregate {
                id: None,
                date_string: date_string.to_string(),
                classroom: dominant(gs.iter().map(|g| (g.classroom.as_str(), g.rows))),
                device_id: device_id.to_string(),
                esp32_name: dominant(gs.iter().map(|g| (g.esp32_name.as_str(), g.rows))),
                total_kwh: kwh,
                on_time_sec: gs.iter().map(|g| g.seconds).sum(),
                cost_at_calc_time: cost,
                cost_per_kwh_used: energy_weighted_rate(cost, kwh),
                switch_count: breakdown.len() as i32,
                switch_breakdown: breakdown,
                quality_score: quality_score(high_wh, wh),
                created_at: None,
                updated_at: None,
            }
        })
        .collect()
}

/// `YYYY-MM` of a date.
pub fn month_string(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// A month's aggregates, one per device, from that month's daily aggregates (others are ignored),
/// sorted by `device_id`; `daily_totals` sorted by date.
pub fn monthly_aggregates(month: NaiveDate, dailies: &[DailyAggregate]) -> Vec<MonthlyAggregate> {
    let ms = month_string(month);
    let mut by_device: BTreeMap<&str, Vec<&DailyAggregate>> = BTreeMap::new();
    for d in dailies.iter().filter(|d| d.date_string.starts_with(&ms)) {
        by_device.entry(d.device_id.as_str()).or_default().push(d);
    }
    by_device
        .into_iter()
        .map(|(device_id, mut days)| {
            days.sort_by(|a, b| a.date_string.cmp(&b.date_string));
            let last = days.last().copied();
            MonthlyAggregate {
                id: None,
                month_string: ms.clone(),
                year: month.year(),
                month: month.month() as i32,
                classroom: last.map(|d| d.classroom.clone()).unwrap_or_default(),
                device_id: device_id.to_string(),
                esp32_name: last.map(|d| d.esp32_name.clone()).unwrap_or_default(),
                total_kwh: days.iter().map(|d| d.total_kwh).sum(),
                on_time_sec: days.iter().map(|d| d.on_time_sec).sum(),
                cost_at_calc_time: days.iter().map(|d| d.cost_at_calc_time).sum(),
                daily_totals: days
                    .iter()
                    .map(|d| DailyTotal {
                        date_string: d.date_string.clone(),
                        total_kwh: d.total_kwh,
                        cost: d.cost_at_calc_time,
                    })
                    .collect(),
                created_at: None,
                updated_at: None,
            }
        })
        .collect()
}

/// Where a stored daily aggregate disagrees with one recomputed from the ledger (beyond
/// `tolerance`, in kWh, ₹, seconds and score points): the names of the fields.
pub fn daily_differences(
    stored: &DailyAggregate,
    fresh: &DailyAggregate,
    tolerance: f64,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    let close = |a: f64, b: f64| (a - b).abs() <= tolerance;
    if !close(stored.total_kwh, fresh.total_kwh) {
        out.push("total_kwh");
    }
    if !close(stored.cost_at_calc_time, fresh.cost_at_calc_time) {
        out.push("cost_at_calc_time");
    }
    if !close(stored.on_time_sec, fresh.on_time_sec) {
        out.push("on_time_sec");
    }
    if !close(stored.cost_per_kwh_used, fresh.cost_per_kwh_used) {
        out.push("cost_per_kwh_used");
    }
    if stored.switch_count != fresh.switch_count {
        out.push("switch_count");
    }
    if !close(stored.quality_score, fresh.quality_score) {
        out.push("quality_score");
    }
    let by_switch = |d: &DailyAggregate| {
        d.switch_breakdown
            .iter()
            .map(|s| (s.switch_id.clone(), (s.energy_kwh, s.cost, s.on_time_sec)))
            .collect::<BTreeMap<_, _>>()
    };
    let (a, b) = (by_switch(stored), by_switch(fresh));
    let same = a.len() == b.len()
        && a.iter().all(|(k, x)| {
            b.get(k)
                .is_some_and(|y| close(x.0, y.0) && close(x.1, y.1) && close(x.2, y.2))
        });
    if !same {
        out.push("switch_breakdown");
    }
    out
}

/// Where a stored monthly aggregate disagrees with one recomputed from the daily aggregates.
pub fn monthly_differences(
    stored: &MonthlyAggregate,
    fresh: &MonthlyAggregate,
    tolerance: f64,
) -> Vec<&'static str> {
    let mut out = Vec::new();
    let close = |a: f64, b: f64| (a - b).abs() <= tolerance;
    if !close(stored.total_kwh, fresh.total_kwh) {
        out.push("total_kwh");
    }
    if !close(stored.cost_at_calc_time, fresh.cost_at_calc_time) {
        out.push("cost_at_calc_time");
    }
    if !close(stored.on_time_sec, fresh.on_time_sec) {
        out.push("on_time_sec");
    }
    let days = |m: &MonthlyAggregate| {
        m.daily_totals
            .iter()
            .map(|d| (d.date_string.clone(), (d.total_kwh, d.cost)))
            .collect::<BTreeMap<_, _>>()
    };
    let (a, b) = (days(stored), days(fresh));
    let same = a.len() == b.len()
        && a.iter()
            .all(|(k, x)| b.get(k).is_some_and(|y| close(x.0, y.0) && close(x.1, y.1)));
    if !same {
        out.push("daily_totals");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::energy::{cost_inr, energy_wh};
    use crate::domain::{CostCalculation, Quality, SwitchType};
    use chrono::{Duration, TimeZone, Utc};
    use proptest::prelude::*;

    fn row(device: &str, switch: &str, day: u32, secs: f64, watts: f64, rate: f64) -> LedgerRow {
        let start = Utc.with_ymd_and_hms(2026, 11, day, 4, 0, 0).unwrap();
        let wh = energy_wh(watts, secs);
        LedgerRow {
            id: None,
            device_id: device.into(),
            esp32_name: format!("board-{device}"),
            classroom: "CS-101".into(),
            switch_id: switch.into(),
            switch_name: format!("sw {switch}"),
            switch_type: SwitchType::Fan,
            start_ts: start,
            end_ts: start + Duration::milliseconds((secs * 1000.0) as i64),
            switch_on_duration_seconds: secs,
            delta_wh: wh,
            power_w: watts,
            cost_calculation: Some(CostCalculation {
                cost_per_kwh: rate,
                cost_inr: cost_inr(wh, rate),
            }),
            quality: Quality::default(),
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn a_day_of_two_switches() {
        let mut low = row("d1", "2", 24, 3600.0, 1000.0, 9.0);
        low.quality.confidence = Confidence::Medium;
        let rows = vec![
            row("d1", "1", 24, 3600.0, 1000.0, 7.0),
            row("d1", "1", 24, 1800.0, 1000.0, 7.0),
            low,
        ];
        let days = daily_aggregates("2026-11-24", &group_rows(&rows));
        assert_eq!(days.len(), 1);
        let d = &days[0];
        assert_eq!(d.total_kwh, 2.5);
        assert_eq!(d.on_time_sec, 9000.0);
        assert_eq!(d.cost_at_calc_time, 1.5 * 7.0 + 9.0);
        assert!((d.cost_per_kwh_used - 19.5 / 2.5).abs() < 1e-12);
        assert_eq!(d.switch_count, 2);
        assert_eq!(d.switch_breakdown[0].switch_id, "1");
        assert_eq!(d.switch_breakdown[0].energy_kwh, 1.5);
        assert_eq!(d.switch_breakdown[1].cost, 9.0);
        assert!((d.quality_score - 60.0).abs() < 1e-12);
        assert_eq!(d.esp32_name, "board-d1");
        assert!(daily_differences(d, d, 0.01).is_empty());
    }

    #[test]
    fn no_energy_means_rate_zero_and_full_quality() {
        let rows = vec![row("d1", "1", 24, 0.0, 40.0, 7.0)];
        let d = &daily_aggregates("2026-11-24", &group_rows(&rows))[0];
        assert_eq!(d.total_kwh, 0.0);
        assert_eq!(d.cost_per_kwh_used, 0.0);
        assert_eq!(d.quality_score, 100.0);
        assert_eq!(d.switch_count, 1);
    }

    #[test]
    fn differences_are_named() {
        let rows = vec![row("d1", "1", 24, 3600.0, 1000.0, 7.0)];
        let fresh = daily_aggregates("2026-11-24", &group_rows(&rows)).remove(0);
        let mut stored = fresh.clone();
        stored.total_kwh += 0.011;
        stored.switch_breakdown[0].cost += 1.0;
        assert_eq!(
            daily_differences(&stored, &fresh, 0.01),
            vec!["total_kwh", "switch_breakdown"]
        );
        stored.total_kwh = fresh.total_kwh + 0.009;
        assert_eq!(
            daily_differences(&stored, &fresh, 0.01),
            vec!["switch_breakdown"]
        );
    }

    fn arb_rows() -> impl Strategy<Value = Vec<LedgerRow>> {
        proptest::collection::vec(
            (
                0usize..4,
                0usize..6,
                1u32..31,
                0.0f64..86_400.0,
                0.0f64..1500.0,
                0.5f64..20.0,
                any::<bool>(),
            ),
            0..200,
        )
        .prop_map(|specs| {
            specs
                .into_iter()
                .map(|(d, s, day, secs, w, rate, high)| {
                    let mut r = row(&format!("d{d}"), &s.to_string(), day, secs, w, rate);
                    if !high {
                        r.quality.confidence = Confidence::Low;
                    }
                    r
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn dailies_equal_the_ledger_and_sum_to_the_month(rows in arb_rows()) {
            let month = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
            let mut dailies = Vec::new();
            for day in 1..=30u32 {
                let date = NaiveDate::from_ymd_opt(2026, 11, day).unwrap();
                let of_day: Vec<&LedgerRow> = rows.iter().filter(|r| r.start_ts.day() == day).collect();
                let ds = date.format("%Y-%m-%d").to_string();
                let days = daily_aggregates(&ds, &group_rows(of_day.iter().copied()));
                // Each daily aggregate equals the rows it came from.
                for d in &days {
                    let mine: Vec<&&LedgerRow> = of_day.iter().filter(|r| r.device_id == d.device_id).collect();
                    let kwh: f64 = mine.iter().map(|r| r.kwh()).sum();
                    let cost: f64 = mine.iter().map(|r| r.cost()).sum();
                    let secs: f64 = mine.iter().map(|r| r.switch_on_duration_seconds).sum();
                    prop_assert!((d.total_kwh - kwh).abs() < 1e-9);
                    prop_assert!((d.cost_at_calc_time - cost).abs() < 1e-9);
                    prop_assert!((d.on_time_sec - secs).abs() < 1e-6);
                    let switches: std::collections::BTreeSet<&str> = mine.iter().map(|r| r.switch_id.as_str()).collect();
                    prop_assert_eq!(d.switch_count as usize, switches.len());
                    let parts: f64 = d.switch_breakdown.iter().map(|s| s.energy_kwh).sum();
                    prop_assert!((parts - d.total_kwh).abs() < 1e-9);
                    prop_assert!((0.0..=100.0).contains(&d.quality_score));
                    if d.total_kwh > 0.0 {
                        prop_assert!((d.cost_per_kwh_used * d.total_kwh - d.cost_at_calc_time).abs() < 1e-9);
                    }
                }
                dailies.extend(days);
            }
            let months = monthly_aggregates(month, &dailies);
            let devices: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.device_id.as_str()).collect();
            prop_assert_eq!(months.len(), devices.len());
            for m in &months {
                let kwh: f64 = rows.iter().filter(|r| r.device_id == m.device_id).map(|r| r.kwh()).sum();
                let cost: f64 = rows.iter().filter(|r| r.device_id == m.device_id).map(|r| r.cost()).sum();
                prop_assert!((m.total_kwh - kwh).abs() < 1e-6);
                prop_assert!((m.cost_at_calc_time - cost).abs() < 1e-6);
                let from_days: f64 = m.daily_totals.iter().map(|d| d.total_kwh).sum();
                prop_assert!((from_days - m.total_kwh).abs() < 1e-9);
                prop_assert!(m.daily_totals.windows(2).all(|w| w[0].date_string < w[1].date_string));
                prop_assert!(monthly_differences(m, m, 0.01).is_empty());
            }
        }
    }
}
