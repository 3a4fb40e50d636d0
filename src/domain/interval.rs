//! Turning a closed switch on-interval into ledger rows: split at campus-local midnight and at every
//! tariff change, so that each row has exactly one day and one rate, and further into equal parts
//! where a piece would exceed a row's caps (a day of a 25-hour DST day, a 20 kW load for 7 h): an
//! interval is never refused for its length or its energy.

use super::energy::{
    cost_inr, energy_wh, seconds_between, switch_power, MAX_ROW_SECONDS, MAX_ROW_WH,
};
use super::tariff::TariffBook;
use super::{
    CostCalculation, DataSource, Device, Instant, LedgerRow, PowerSettings, Quality, Switch,
};
use chrono::{Days, NaiveDate, TimeZone};
use chrono_tz::Tz;

/// The campus-local calendar day an instant falls on.
pub fn local_date(t: Instant, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The UTC instant of campus-local midnight starting `date`. Where a time zone skips midnight (a DST
/// change at 00:00), the first instant of the day that exists.
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Instant {
    let mut naive = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..48 {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            return t.with_timezone(&chrono::Utc);
        }
        naive += chrono::Duration::minutes(30);
    }
    date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The local midnights strictly inside `(start, end)`.
pub fn midnights_within(start: Instant, end: Instant, tz: Tz) -> Vec<Instant> {
    let mut out = Vec::new();
    if end <= start {
        return out;
    }
    let mut day = local_date(start, tz);
    while let Some(next) = day.checked_add_days(Days::new(1)) {
        let m = local_midnight(next, tz);
        if m >= end {
            break;
        }
        if m > start {
            out.push(m);
        }
        day = next;
    }
    out
}

/// Splits `[start, end)` at the given cut instants (any order; those outside are ignored) and at
/// local midnights. An empty or backwards interval gives no pieces.
pub fn split(start: Instant, end: Instant, tz: Tz, cuts: &[Instant]) -> Vec<(Instant, Instant)> {
    if end <= start {
        return Vec::new();
    }
    let mut bounds: Vec<Instant> = midnights_within(start, end, tz);
    bounds.extend(cuts.iter().copied().filter(|&c| c > start && c < end));
    bounds.sort();
    bounds.dedup();
    let mut pieces = Vec::with_capacity(bounds.len() + 1);
    let mut from = start;
    for b in bounds {
        pieces.push((from, b));
        from = b;
    }
    pieces.push((from, end));
    pieces
}

/// Splits `[start, end)` into the fewest equal parts (to the millisecond) of which none is longer
/// than a row may be nor holds more energy at `power_w` than a row may: the parts tile the
/// interval exactly. A power no millisecond can hold within the cap (beyond 360 GW, which
/// [`switch_power`] never gives) leaves one part per millisecond.
pub fn within_caps(start: Instant, end: Instant, power_w: f64) -> Vec<(Instant, Instant)> {
    let total_ms = (end - start).num_milliseconds();
    if total_ms <= 0 {
        return Vec::new();
    }
    let fits = |ms: i64| {
        let secs = ms as f64 / 1000.0;
        secs <= MAX_ROW_SECONDS && energy_wh(power_w, secs) <= MAX_ROW_WH
    };
    let longest = |n: i64| (total_ms + n - 1) / n;
    // The caps' own estimate, then upwards past rounding to whole milliseconds.
    let by_time = (total_ms as f64 / (MAX_ROW_SECONDS * 1000.0)).ceil();
    let by_energy = if power_w.is_finite() && power_w > 0.0 {
        (energy_wh(power_w, total_ms as f64 / 1000.0) / MAX_ROW_WH).ceil()
    } else {
        1.0
    };
    let mut n = (by_time.max(by_energy).max(1.0) as i64).clamp(1, total_ms);
    while n < total_ms && !fits(longest(n)) {
        n += 1;
    }
    (0..n)
        .map(|k| {
            let at = |k: i64| {
                let ms = i128::from(total_ms) * i128::from(k) / i128::from(n);
                start + chrono::Duration::milliseconds(ms as i64)
            };
            (at(k), at(k + 1))
        })
        .collect()
}

/// Everything needed to bill one switch's interval.
pub struct BillingContext<'a> {
    pub device: &'a Device,
    pub switch: &'a Switch,
    /// The classroom's name ("" when the device has none).
    pub classroom: &'a str,
    pub settings: Option<&'a PowerSettings>,
    pub tariffs: &'a TariffBook,
    pub tz: Tz,
}

/// The ledger rows of the closed interval `[start, end)` of a switch: one per local day and tariff
/// (more where a piece exceeds a row's caps, see [`within_caps`]), with power from the switch/type
/// rules and cost from the rate in force at each piece's start.
pub fn ledger_rows(
    ctx: &BillingContext<'_>,
    start: Instant,
    end: Instant,
    data_source: DataSource,
) -> Vec<LedgerRow> {
    let device_id = ctx.device.ledger_id().unwrap_or_default();
    let (power_w, confidence) = switch_power(ctx.switch, ctx.settings);
    let cuts = ctx
        .tariffs
        .changes_within(start, end, &device_id, ctx.classroom);
    split(start, end, ctx.tz, &cuts)
        .into_iter()
        .flat_map(|(from, to)| within_caps(from, to, power_w))
        .map(|(from, to)| {
            let seconds = seconds_between(from, to);
            let wh = energy_wh(power_w, seconds);
            let rate = ctx
                .tariffs
                .rate_at(from, &device_id, ctx.classroom)
                .cost_per_kwh;
            LedgerRow {
                id: None,
                device_id: device_id.clone(),
                esp32_name: ctx.device.name.clone(),
                classroom: ctx.classroom.to_string(),
                switch_id: ctx.switch.switch_id.clone(),
                switch_name: ctx.switch.name.clone(),
                switch_type: ctx.switch.switch_type.clone(),
                start_ts: from,
                end_ts: to,
                switch_on_duration_seconds: seconds,
                delta_wh: wh,
                power_w,
                cost_calculation: Some(CostCalculation {
                    cost_per_kwh: rate,
                    cost_inr: cost_inr(wh, rate),
                }),
                quality: Quality {
                    confidence: confidence.clone(),
                    data_source: data_source.clone(),
                    notes: None,
                },
                created_at: None,
                updated_at: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::energy::MAX_SWITCH_WATTS;
    use crate::domain::tariff::{CostVersion, TariffScope};
    use crate::domain::{DeviceConfig, DeviceStatus, DeviceType, Id, Mac, Secret, SwitchType};
    use chrono::Utc;
    use proptest::prelude::*;

    const IST: Tz = chrono_tz::Asia::Kolkata;

    fn ist(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Instant {
        IST.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn device() -> Device {
        Device {
            id: Some(Id::parse_str("64b7f0c2a1e4c3b2a1d0e9f8").unwrap()),
            name: "CS-101-A".into(),
            mac_address: Mac::parse("A4:CF:12:B3:C4:D5").unwrap(),
            device_type: DeviceType::Esp32,
            classroom: None,
            ip_address: None,
            firmware_version: None,
            status: DeviceStatus::Online,
            last_seen: None,
            device_secret: Secret::new("s"),
            last_motion_at: None,
            boot_clock: None,
            config: DeviceConfig::default(),
            switches: vec![Switch {
                switch_id: "sw1".into(),
                name: "Fan".into(),
                switch_type: SwitchType::Fan,
                gpio: Some(17),
                relay_gpio: Some(17),
                state: false,
                last_state_change: None,
                power_rating: None,
            }],
            created_at: None,
            updated_at: None,
        }
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

    #[test]
    fn midnight_in_ist_is_1830_utc() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        assert_eq!(
            local_midnight(d, IST),
            Utc.with_ymd_and_hms(2026, 11, 24, 18, 30, 0).unwrap()
        );
        // 02:00 IST on the 25th is 20:30 UTC on the 24th, but the local day is the 25th.
        assert_eq!(local_date(ist(2026, 11, 25, 2, 0), IST), d);
    }

    #[test]
    fn interval_across_midnight_splits_in_two() {
        let pieces = split(ist(2026, 11, 24, 23, 0), ist(2026, 11, 25, 1, 0), IST, &[]);
        assert_eq!(
            pieces,
            vec![
                (ist(2026, 11, 24, 23, 0), ist(2026, 11, 25, 0, 0)),
                (ist(2026, 11, 25, 0, 0), ist(2026, 11, 25, 1, 0)),
            ]
        );
    }

    #[test]
    fn interval_ending_at_midnight_is_one_piece() {
        let pieces = split(ist(2026, 11, 24, 23, 0), ist(2026, 11, 25, 0, 0), IST, &[]);
        assert_eq!(pieces.len(), 1);
        assert!(split(ist(2026, 11, 24, 23, 0), ist(2026, 11, 24, 23, 0), IST, &[]).is_empty());
    }

    #[test]
    fn three_days_give_three_rows_with_the_right_rates() {
        let d = device();
        let sw = &d.switches[0];
        let settings = PowerSettings::campus_default(7.5);
        let change = ist(2026, 11, 25, 12, 0);
        let book = TariffBook::new(
            vec![
                global(7.5, ist(2026, 11, 1, 0, 0), Some(change)),
                global(9.0, change, None),
            ],
            7.5,
        );
        let ctx = BillingContext {
            device: &d,
            switch: sw,
            classroom: "CS-101",
            settings: Some(&settings),
            tariffs: &book,
            tz: IST,
        };
        let rows = ledger_rows(
            &ctx,
            ist(2026, 11, 24, 22, 0),
            ist(2026, 11, 26, 2, 0),
            DataSource::PowerTracker,
        );
        assert_eq!(rows.len(), 4);
        let secs: Vec<f64> = rows.iter().map(|r| r.switch_on_duration_seconds).collect();
        assert_eq!(secs, vec![7200.0, 43200.0, 43200.0, 7200.0]);
        let rates: Vec<f64> = rows
            .iter()
            .map(|r| r.cost_calculation.as_ref().unwrap().cost_per_kwh)
            .collect();
        assert_eq!(rates, vec![7.5, 7.5, 9.0, 9.0]);
        for r in &rows {
            assert_eq!(r.power_w, 75.0);
            assert_eq!(r.device_id, "64b7f0c2a1e4c3b2a1d0e9f8");
            r.validate().unwrap();
        }
    }

    #[test]
    fn twenty_kilowatts_for_seven_hours_bills_140_kwh_in_rows_within_the_caps() {
        let mut d = device();
        d.switches[0].power_rating = Some(20_000.0);
        let book = TariffBook::new(vec![], 8.0);
        let ctx = BillingContext {
            device: &d,
            switch: &d.switches[0],
            classroom: "CS-101",
            settings: None,
            tariffs: &book,
            tz: IST,
        };
        let start = ist(2026, 11, 24, 9, 0);
        let rows = ledger_rows(
            &ctx,
            start,
            start + chrono::Duration::hours(7),
            DataSource::Telemetry,
        );
        assert_eq!(rows.len(), 2);
        for r in &rows {
            r.validate().unwrap();
        }
        let wh: f64 = rows.iter().map(|r| r.delta_wh).sum();
        assert!((wh - 140_000.0).abs() < 1e-6, "{wh}");
        let cost: f64 = rows.iter().map(|r| r.cost()).sum();
        assert!((cost - 140.0 * 8.0).abs() < 1e-6, "{cost}");
        assert_eq!(rows[0].end_ts, rows[1].start_ts);
        assert_eq!(rows[1].end_ts, start + chrono::Duration::hours(7));
    }

    #[test]
    fn a_25_hour_day_is_two_rows() {
        // New York leaves DST on 2026-11-01: that local day lasts 25 hours.
        let ny = chrono_tz::America::New_York;
        let day = local_midnight(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), ny);
        let next = local_midnight(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(), ny);
        assert_eq!((next - day).num_hours(), 25);
        let pieces: Vec<_> = split(day, next, ny, &[])
            .into_iter()
            .flat_map(|(a, b)| within_caps(a, b, 40.0))
            .collect();
        assert_eq!(pieces.len(), 2);
        assert!(pieces
            .iter()
            .all(|(a, b)| seconds_between(*a, *b) <= MAX_ROW_SECONDS));
    }

    #[test]
    fn an_unbelievable_rating_falls_back_to_the_type() {
        let mut d = device();
        d.switches[0].power_rating = Some(5e12);
        let settings = PowerSettings::campus_default(7.5);
        let (w, _) = switch_power(&d.switches[0], Some(&settings));
        assert_eq!(w, 75.0);
    }

    fn any_instant() -> impl Strategy<Value = Instant> {
        // 2020..2030, millisecond resolution.
        (1_577_836_800_000i64..1_893_456_000_000i64)
            .prop_map(|ms| chrono::DateTime::from_timestamp_millis(ms).unwrap())
    }

    proptest! {
        #[test]
        fn splitting_preserves_seconds_and_energy(
            start in any_instant(),
            len_ms in 0i64..(10 * 86_400_000),
            cut_offsets in proptest::collection::vec(0i64..(10 * 86_400_000), 0..6),
            watts in 1.0f64..3000.0,
        ) {
            let end = start + chrono::Duration::milliseconds(len_ms);
            let cuts: Vec<Instant> = cut_offsets.iter().map(|&o| start + chrono::Duration::milliseconds(o)).collect();
            let pieces = split(start, end, IST, &cuts);
            let total: i64 = pieces.iter().map(|(a, b)| (*b - *a).num_milliseconds()).sum();
            prop_assert_eq!(total, if len_ms > 0 { len_ms } else { 0 });
            let wh: f64 = pieces.iter().map(|(a, b)| energy_wh(watts, seconds_between(*a, *b))).sum();
            prop_assert!((wh - energy_wh(watts, len_ms as f64 / 1000.0)).abs() < 1e-6);
            for w in pieces.windows(2) {
                prop_assert_eq!(w[0].1, w[1].0);
            }
            for (a, b) in &pieces {
                prop_assert!(a < b);
                // No piece crosses a local midnight: the end is at most the next midnight.
                let next = local_midnight(local_date(*a, IST).succ_opt().unwrap(), IST);
                prop_assert!(*b <= next);
                prop_assert!(seconds_between(*a, *b) <= 86_400.0);
            }
        }

        #[test]
        fn any_power_and_length_gives_rows_within_the_caps_summing_to_the_whole(
            start in any_instant(),
            len_ms in 1i64..(40 * 86_400_000),
            watts in prop_oneof![0.0f64..100.0, 100.0f64..100_000.0, 100_000.0f64..=MAX_SWITCH_WATTS],
            change_offset in 0i64..(40 * 86_400_000),
        ) {
            let mut d = device();
            d.switches[0].power_rating = Some(watts);
            let end = start + chrono::Duration::milliseconds(len_ms);
            let change = start + chrono::Duration::milliseconds(change_offset);
            let book = TariffBook::new(
                vec![global(5.0, start - chrono::Duration::days(1), Some(change)), global(8.0, change, None)],
                7.5,
            );
            let ctx = BillingContext { device: &d, switch: &d.switches[0], classroom: "CS-101", settings: None, tariffs: &book, tz: IST };
            let rows = ledger_rows(&ctx, start, end, DataSource::Telemetry);
            let (power, _) = switch_power(&d.switches[0], None);
            let mut ms = 0i64;
            let mut wh = 0.0;
            for r in &rows {
                prop_assert!(r.validate().is_ok(), "{:?}", r.validate());
                prop_assert!(r.switch_on_duration_seconds <= MAX_ROW_SECONDS);
                prop_assert!(r.delta_wh <= MAX_ROW_WH);
                prop_assert!(r.start_ts < r.end_ts);
                ms += (r.end_ts - r.start_ts).num_milliseconds();
                wh += r.delta_wh;
            }
            for w in rows.windows(2) {
                prop_assert_eq!(w[0].end_ts, w[1].start_ts);
            }
            prop_assert_eq!(rows.first().map(|r| r.start_ts), Some(start));
            prop_assert_eq!(rows.last().map(|r| r.end_ts), Some(end));
            prop_assert_eq!(ms, len_ms);
            let whole = energy_wh(power, len_ms as f64 / 1000.0);
            prop_assert!((wh - whole).abs() <= 1e-9 * whole.max(1.0), "{} vs {}", wh, whole);
        }

        #[test]
        fn rows_never_mix_tariffs(
            start in any_instant(),
            len_ms in 1i64..(3 * 86_400_000),
            change_offset in 0i64..(3 * 86_400_000),
        ) {
            let d = device();
            let end = start + chrono::Duration::milliseconds(len_ms);
            let change = start + chrono::Duration::milliseconds(change_offset);
            let book = TariffBook::new(
                vec![global(5.0, start - chrono::Duration::days(1), Some(change)), global(8.0, change, None)],
                7.5,
            );
            let ctx = BillingContext { device: &d, switch: &d.switches[0], classroom: "CS-101", settings: None, tariffs: &book, tz: IST };
            let rows = ledger_rows(&ctx, start, end, DataSource::PowerTracker);
            for r in &rows {
                prop_assert!(r.end_ts <= change || r.start_ts >= change);
                let rate = r.cost_calculation.as_ref().unwrap().cost_per_kwh;
                prop_assert_eq!(rate, if r.start_ts >= change { 8.0 } else { 5.0 });
                prop_assert!(r.validate().is_ok());
            }
            let secs: f64 = rows.iter().map(|r| r.switch_on_duration_seconds).sum();
            prop_assert!((secs - len_ms as f64 / 1000.0).abs() < 1e-6);
        }
    }
}
