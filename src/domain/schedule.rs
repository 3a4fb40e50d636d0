//! Automation schedules (`schedules`) and the rule of when they run.
//!
//! A schedule runs at its `time` of campus-local day: every day (`daily`), on its `days`
//! (`weekly`, 0 = Sunday) or on one date (`once`). Local times are read in the campus time zone,
//! so daylight-saving changes are handled where they happen:
//!
//! - a time the clocks skip (02:30 on a night that jumps from 02:00 to 03:00) runs when the clocks
//!   resume, at the first minute that exists after it (03:00), as cron does;
//! - a time that happens twice (01:30 on a night that goes back from 02:00 to 01:00) runs once, the
//!   first time.
//!
//! So every schedule runs exactly once on each day it is for. Runs are to the minute: a run "at" a
//! minute is due from its first second.

use super::{dates, Id, Instant, ValidationError};
use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize};

crate::string_enum! {
    pub enum ScheduleType {
        Daily => "daily",
        Weekly => "weekly",
        Once => "once",
    }
}

/// How late a due run may still be made (a collector restarting, a slow database); a run later
/// than this is not made: it is recorded as missed.
pub const GRACE: chrono::Duration = chrono::Duration::minutes(2);

/// How far back missed runs are looked for (after the collectors were all down).
pub const MISSED_LOOKBACK: chrono::Duration = chrono::Duration::days(7);

/// The day names `days[]` holds, 0 = Sunday.
pub const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledSwitch {
    #[serde(rename = "deviceId", deserialize_with = "super::lenient::id")]
    pub device_id: Id,
    #[serde(rename = "switchId")]
    pub switch_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    pub name: String,
    #[serde(rename = "type")]
    pub schedule_type: ScheduleType,
    /// `HH:MM`, campus-local.
    pub time: String,
    /// 0–6, 0 = Sunday.
    #[serde(default, deserialize_with = "day_list")]
    pub days: Vec<i32>,
    /// **Ours:** the campus-local date (`YYYY-MM-DD`) of a `once` schedule. Without it (another
    /// writer's `once`), the first `time` at or after `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// `on` or `off`.
    pub action: String,
    #[serde(default)]
    pub switches: Vec<ScheduledSwitch>,
    #[serde(default)]
    pub enabled: bool,
    #[serde(
        rename = "createdBy",
        default,
        deserialize_with = "super::lenient::optional_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_by: Option<Id>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

/// Days stored as any whole number type (the back end's `Number` may be a double).
fn day_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    #[derive(Deserialize)]
    struct Day(#[serde(deserialize_with = "super::lenient::int32")] i32);
    Ok(Option::<Vec<Day>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|Day(n)| n)
        .collect())
}

impl Schedule {
    /// What this project writes: a time of day, days 0–6 (at least one for `weekly`), a date for
    /// `once`, `on` or `off`, at least one switch.
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::validation::time_of_day("time", &self.time)?;
        if let Some(d) = self.days.iter().find(|d| !(0..=6).contains(*d)) {
            return Err(ValidationError::new(
                "days",
                d,
                "each day must be 0 (Sunday) to 6 (Saturday)",
            ));
        }
        if self.schedule_type == ScheduleType::Weekly && self.days.is_empty() {
            return Err(ValidationError::new(
                "days",
                "[]",
                "a weekly schedule needs at least one day",
            ));
        }
        if self.schedule_type == ScheduleType::Once {
            let raw = self.date.as_deref().unwrap_or_default();
            if NaiveDate::parse_from_str(raw, "%Y-%m-%d").is_err() {
                return Err(ValidationError::new(
                    "date",
                    raw,
                    "a once schedule needs its date, YYYY-MM-DD",
                ));
            }
        }
        if self.switches_on().is_none() {
            return Err(ValidationError::new(
                "action",
                &self.action,
                "must be \"on\" or \"off\"",
            ));
        }
        if self.switches.is_empty() {
            return Err(ValidationError::new(
                "switches",
                "[]",
                "a schedule needs at least one switch",
            ));
        }
        Ok(())
    }

    /// The relay state it sets: `Some(true)` for `on`, `Some(false)` for `off`.
    pub fn switches_on(&self) -> Option<bool> {
        match self.action.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }
    }

    /// Its time of day; `None` when `time` is not `HH:MM` (another writer's document).
    pub fn time_of_day(&self) -> Option<NaiveTime> {
        let (h, m) = super::validation::time_of_day("time", &self.time).ok()?;
        NaiveTime::from_hms_opt(h, m, 0)
    }

    /// The campus-local date of a `once` schedule: its `date`, else the first `time` at or after
    /// `createdAt`.
    pub fn once_date(&self, tz: Tz) -> Option<NaiveDate> {
        if let Some(d) = self.date.as_deref() {
            return NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        }
        let created = self.created_at?;
        let day = created.with_timezone(&tz).date_naive();
        let at = occurrence(day, self.time_of_day()?, tz);
        if at >= floor_minute(created) {
            Some(day)
        } else {
            day.succ_opt()
        }
    }

    /// Whether it is for campus-local `date`.
    pub fn is_for(&self, date: NaiveDate, tz: Tz) -> bool {
        match self.schedule_type {
            ScheduleType::Daily => true,
            ScheduleType::Weekly => self
                .days
                .contains(&(date.weekday().num_days_from_sunday() as i32)),
            ScheduleType::Once => self.once_date(tz) == Some(date),
            ScheduleType::Other(_) => false,
        }
    }

    /// Its first run in a minute after the minute of `t` (whether or not it is enabled).
    pub fn next_after(&self, t: Instant, tz: Tz) -> Option<Instant> {
        let time = self.time_of_day()?;
        let after = floor_minute(t);
        let today = t.with_timezone(&tz).date_naive();
        // A run belongs to its day even when a skipped hour moves it (just) past midnight, so the
        // day before is looked at too; a week on covers every weekly day.
        let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        let candidates: Vec<NaiveDate> = match self.schedule_type {
            ScheduleType::Once => self.once_date(tz).into_iter().collect(),
            _ => first.iter_days().take(10).collect(),
        };
        candidates
            .into_iter()
            .filter(|d| self.is_for(*d, tz))
            .map(|d| occurrence(d, time, tz))
            .find(|at| *at > after)
    }

    /// Whether it runs in `minute` (the first instant of a minute, as [`floor_minute`] gives).
    pub fn is_due(&self, minute: Instant, tz: Tz) -> bool {
        self.next_after(minute - chrono::Duration::minutes(1), tz) == Some(minute)
    }

    /// Its runs in the minutes after `from`'s up to `to`'s (both as minutes), oldest first; none
    /// before the minute it was created (a run cannot be missed before the schedule existed).
    pub fn runs_between(&self, from: Instant, to: Instant, tz: Tz) -> Vec<Instant> {
        let mut out = Vec::new();
        let mut cursor = match self.created_at {
            Some(c) => from.max(floor_minute(c) - chrono::Duration::minutes(1)),
            None => from,
        };
        let last = floor_minute(to);
        while let Some(at) = self.next_after(cursor, tz) {
            if at > last {
                break;
            }
            out.push(at);
            cursor = at;
        }
        out
    }

    /// "daily 18:00", "weekly mon,wed 18:00", "once 2026-12-01 18:00".
    pub fn describe_when(&self, tz: Tz) -> String {
        match self.schedule_type {
            ScheduleType::Weekly => format!("weekly {} {}", day_names(&self.days), self.time),
            ScheduleType::Once => match self.once_date(tz) {
                Some(d) => format!("once {d} {}", self.time),
                None => format!("once (no date) {}", self.time),
            },
            ref t => format!("{} {}", t.as_str(), self.time),
        }
    }
}

/// The soonest run after `now` of the enabled `schedules` that switch anything `touches`
/// selects (a classroom's boards, say), with its schedule.
pub fn next_run_among(
    schedules: &[Schedule],
    touches: impl Fn(&ScheduledSwitch) -> bool,
    now: Instant,
    tz: Tz,
) -> Option<(Instant, &Schedule)> {
    schedules
        .iter()
        .filter(|s| s.enabled && s.switches.iter().any(&touches))
        .filter_map(|s| Some((s.next_after(now, tz)?, s)))
        .min_by_key(|(at, s)| (*at, s.name.clone()))
}

/// "mon,wed" for `[1, 3]`, in week order from Sunday.
pub fn day_names(days: &[i32]) -> String {
    let mut sorted: Vec<i32> = days.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .iter()
        .filter_map(|d| DAY_NAMES.get(usize::try_from(*d).ok()?).copied())
        .collect::<Vec<_>>()
        .join(",")
}

/// Days typed as `mon,tue,…` (three letters or the full name, any case) → 0–6, sorted and
/// without repeats.
pub fn parse_days(raw: &str) -> Result<Vec<i32>, String> {
    const FULL: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let mut days = Vec::new();
    for word in raw.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let lower = word.to_ascii_lowercase();
        match (0..7).find(|&i| DAY_NAMES[i] == lower || FULL[i] == lower) {
            Some(i) => days.push(i as i32),
            None => {
                return Err(format!(
                    "{:?} is not a day; use sun,mon,tue,wed,thu,fri,sat",
                    word.escape_default().to_string()
                ))
            }
        }
    }
    if days.is_empty() {
        return Err("give at least one day, e.g. mon,wed,fri".into());
    }
    days.sort_unstable();
    days.dedup();
    Ok(days)
}

/// The first instant of the minute of `t`.
pub fn floor_minute(t: Instant) -> Instant {
    let secs = t.timestamp().div_euclid(60) * 60;
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or(t)
}

/// The instant campus-local `time` of `date` happens: the first time if it happens twice, and
/// when the clocks resume if they skip it (see the module's rule).
pub fn occurrence(date: NaiveDate, time: NaiveTime, tz: Tz) -> Instant {
    let wanted = date.and_time(time);
    let mut naive = wanted;
    // Skipped hours are at most a few hours long: look a day ahead at most.
    for _ in 0..=(24 * 60) {
        if let Some(t) = tz.from_local_datetime(&naive).earliest() {
            let t = t.with_timezone(&chrono::Utc);
            return if naive == wanted { t } else { floor_minute(t) };
        }
        naive += chrono::Duration::minutes(1);
        // Land on whole minutes of the local clock after the first step.
        naive = naive.with_second(0).unwrap_or(naive);
    }
    wanted.and_utc()
}

/// What becomes of a run due at `minute` when it is looked at, at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Within [`GRACE`]: make it.
    Run,
    /// Later than that: record it as missed, do not make it.
    Missed,
}

/// Whether a run due at `minute` is still made at `now`.
pub fn fate(minute: Instant, now: Instant) -> Fate {
    if floor_minute(now) - minute <= GRACE {
        Fate::Run
    } else {
        Fate::Missed
    }
}

/// The minute after which a scheduler that last looked through `checked_through` (`None`: never)
/// looks for runs at `now`: never before [`MISSED_LOOKBACK`], and, the first time, from the minute
/// before `now` (nothing was due before anyone looked).
pub fn look_from(checked_through: Option<Instant>, now: Instant) -> Instant {
    let now_minute = floor_minute(now);
    match checked_through {
        Some(t) => floor_minute(t).max(now_minute - MISSED_LOOKBACK),
        None => now_minute - chrono::Duration::minutes(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn another_writers_schedule_reads_with_hex_ids_and_double_days() {
        let doc = bson::doc! {
            "_id": bson::oid::ObjectId::new(),
            "name": "Lights out", "type": "weekly", "time": "18:00",
            "days": [1.0, 3_i64, 5],
            "action": "off",
            "switches": [{"deviceId": "64b7f0c2a1e4c3b2a1d0e9f8", "switchId": "sw1"}],
            "enabled": true,
            "createdBy": "64b7f0c2a1e4c3b2a1d0e9f7",
            "__v": 0,
        };
        let s: Schedule = bson::from_document(doc).unwrap();
        assert_eq!(s.days, [1, 3, 5]);
        assert_eq!(s.switches[0].device_id.to_hex(), "64b7f0c2a1e4c3b2a1d0e9f8");
        assert_eq!(s.created_by.unwrap().to_hex(), "64b7f0c2a1e4c3b2a1d0e9f7");
        let bad = bson::doc! {"name": "x", "type": "daily", "time": "18:00", "action": "off",
        "switches": [{"deviceId": "not-an-id", "switchId": "sw1"}]};
        assert!(bson::from_document::<Schedule>(bad).is_err());
    }

    const IST: Tz = chrono_tz::Asia::Kolkata;
    const NY: Tz = chrono_tz::America::New_York;

    fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Instant {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    fn schedule(kind: ScheduleType, time: &str, days: &[i32], date: Option<&str>) -> Schedule {
        Schedule {
            id: None,
            name: "s".into(),
            schedule_type: kind,
            time: time.into(),
            days: days.to_vec(),
            date: date.map(str::to_string),
            action: "off".into(),
            switches: vec![ScheduledSwitch {
                device_id: Id::new(),
                switch_id: "sw1".into(),
            }],
            enabled: true,
            created_by: None,
            created_at: None,
            updated_at: None,
        }
    }

    #[test]
    fn a_daily_run_is_due_in_its_minute_only() {
        let s = schedule(ScheduleType::Daily, "18:00", &[], None);
        let at = local(IST, 2026, 11, 24, 18, 0);
        assert!(s.is_due(at, IST));
        assert!(!s.is_due(at - chrono::Duration::minutes(1), IST));
        assert!(!s.is_due(at + chrono::Duration::minutes(1), IST));
        assert_eq!(
            s.next_after(at - chrono::Duration::seconds(1), IST),
            Some(at)
        );
        assert_eq!(
            s.next_after(at + chrono::Duration::seconds(30), IST),
            Some(local(IST, 2026, 11, 25, 18, 0))
        );
    }

    #[test]
    fn a_weekly_schedule_runs_on_its_days_only() {
        // 2026-11-23 is a Monday.
        let s = schedule(ScheduleType::Weekly, "18:00", &[1, 3], None);
        let runs = s.runs_between(
            local(IST, 2026, 11, 22, 0, 0),
            local(IST, 2026, 11, 29, 23, 59),
            IST,
        );
        assert_eq!(
            runs,
            [
                local(IST, 2026, 11, 23, 18, 0),
                local(IST, 2026, 11, 25, 18, 0)
            ]
        );
        assert!(!s.is_due(local(IST, 2026, 11, 24, 18, 0), IST));
    }

    #[test]
    fn a_once_schedule_runs_on_its_date_only() {
        let s = schedule(ScheduleType::Once, "07:30", &[], Some("2026-12-01"));
        let at = local(IST, 2026, 12, 1, 7, 30);
        assert!(s.is_due(at, IST));
        assert_eq!(s.next_after(at, IST), None);
        assert_eq!(
            s.runs_between(
                local(IST, 2026, 1, 1, 0, 0),
                local(IST, 2027, 1, 1, 0, 0),
                IST
            ),
            [at]
        );
        // Another writer's once, without a date: the first time at or after its creation.
        let mut other = schedule(ScheduleType::Once, "07:30", &[], None);
        other.created_at = Some(local(IST, 2026, 12, 1, 9, 0));
        assert_eq!(other.once_date(IST), NaiveDate::from_ymd_opt(2026, 12, 2));
        other.created_at = Some(local(IST, 2026, 12, 1, 7, 30));
        assert_eq!(other.once_date(IST), NaiveDate::from_ymd_opt(2026, 12, 1));
    }

    #[test]
    fn a_skipped_time_runs_when_the_clocks_resume_and_a_doubled_time_runs_once() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let s = schedule(ScheduleType::Daily, "02:30", &[], None);
        let resumed = local(NY, 2026, 3, 8, 3, 0);
        assert_eq!(
            resumed,
            chrono::Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap()
        );
        assert!(s.is_due(resumed, NY));
        let day = s.runs_between(
            local(NY, 2026, 3, 8, 0, 0),
            local(NY, 2026, 3, 8, 23, 0),
            NY,
        );
        assert_eq!(day, [resumed]);
        // 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice and runs the first time.
        let s = schedule(ScheduleType::Daily, "01:30", &[], None);
        let first = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 5, 30, 0).unwrap();
        let second = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 0).unwrap();
        assert!(s.is_due(first, NY));
        assert!(!s.is_due(second, NY));
    }

    #[test]
    fn nothing_is_due_before_the_schedule_was_created() {
        let mut s = schedule(ScheduleType::Daily, "18:00", &[], None);
        s.created_at = Some(local(IST, 2026, 11, 24, 18, 5));
        let runs = s.runs_between(
            local(IST, 2026, 11, 24, 17, 0),
            local(IST, 2026, 11, 25, 19, 0),
            IST,
        );
        assert_eq!(runs, [local(IST, 2026, 11, 25, 18, 0)]);
        s.created_at = Some(local(IST, 2026, 11, 24, 18, 0) + chrono::Duration::seconds(30));
        let runs = s.runs_between(
            local(IST, 2026, 11, 24, 17, 0),
            local(IST, 2026, 11, 24, 19, 0),
            IST,
        );
        assert_eq!(
            runs,
            [local(IST, 2026, 11, 24, 18, 0)],
            "the minute it was created counts"
        );
    }

    #[test]
    fn late_runs_are_made_within_the_grace_and_missed_after() {
        let at = local(IST, 2026, 11, 24, 18, 0);
        assert_eq!(fate(at, at), Fate::Run);
        assert_eq!(fate(at, at + chrono::Duration::seconds(179)), Fate::Run);
        assert_eq!(fate(at, at + chrono::Duration::minutes(3)), Fate::Missed);
        let now = at + chrono::Duration::seconds(20);
        assert_eq!(look_from(None, now), at - chrono::Duration::minutes(1));
        assert_eq!(
            look_from(Some(at - chrono::Duration::days(30)), now),
            at - MISSED_LOOKBACK
        );
        assert_eq!(
            look_from(Some(at - chrono::Duration::seconds(5)), now),
            at - chrono::Duration::minutes(1)
        );
    }

    #[test]
    fn validation_says_what_is_missing() {
        assert!(schedule(ScheduleType::Daily, "18:00", &[], None)
            .validate()
            .is_ok());
        let e = schedule(ScheduleType::Weekly, "18:00", &[], None)
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "days");
        let e = schedule(ScheduleType::Once, "18:00", &[], None)
            .validate()
            .unwrap_err();
        assert_eq!(e.field, "date");
        assert!(schedule(ScheduleType::Daily, "24:00", &[], None)
            .validate()
            .is_err());
        assert!(schedule(ScheduleType::Weekly, "18:00", &[7], None)
            .validate()
            .is_err());
        let mut s = schedule(ScheduleType::Daily, "18:00", &[], None);
        s.action = "toggle".into();
        assert_eq!(s.validate().unwrap_err().field, "action");
        s.action = "on".into();
        s.switches.clear();
        assert_eq!(s.validate().unwrap_err().field, "switches");
    }

    #[test]
    fn the_next_run_of_a_classroom_is_the_soonest_enabled_one_that_touches_it() {
        let now = local(IST, 2026, 11, 24, 12, 0);
        let mut lights_off = schedule(ScheduleType::Daily, "18:00", &[], None);
        let mut fans_on = schedule(ScheduleType::Daily, "13:00", &[], None);
        fans_on.action = "on".into();
        let other = schedule(ScheduleType::Daily, "12:30", &[], None);
        let room = lights_off.switches[0].device_id;
        fans_on.switches[0].device_id = room;
        let all = [lights_off.clone(), fans_on.clone(), other];
        let touches = |w: &ScheduledSwitch| w.device_id == room;
        let (at, s) = next_run_among(&all, touches, now, IST).unwrap();
        assert_eq!(
            (at, s.action.as_str()),
            (local(IST, 2026, 11, 24, 13, 0), "on")
        );
        fans_on.enabled = false;
        lights_off.enabled = true;
        let all = [lights_off, fans_on];
        let (at, _) = next_run_among(&all, touches, now, IST).unwrap();
        assert_eq!(at, local(IST, 2026, 11, 24, 18, 0));
        assert!(next_run_among(&all, |_| false, now, IST).is_none());
    }

    #[test]
    fn days_are_typed_by_name() {
        assert_eq!(parse_days("mon,Wed, friday").unwrap(), [1, 3, 5]);
        assert_eq!(parse_days("sun,sun").unwrap(), [0]);
        assert!(parse_days("mo").is_err());
        assert!(parse_days("mon,xyz").is_err());
        assert!(parse_days("monkey").is_err());
        assert!(parse_days(",").is_err());
        assert_eq!(day_names(&[3, 1, 9]), "mon,wed");
    }

    #[test]
    fn days_read_from_any_number_type() {
        let doc = bson::doc! {
            "name": "n", "type": "weekly", "time": "08:00", "days": [1_i32, 2_i64, 3.0_f64],
            "action": "on", "switches": [], "enabled": true,
        };
        let s: Schedule = bson::from_document(doc).unwrap();
        assert_eq!(s.days, [1, 2, 3]);
    }

    fn zones() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::New_York,
            chrono_tz::Europe::London,
            // DST changes at midnight, and half-hour DST.
            chrono_tz::America::Santiago,
            chrono_tz::Australia::Lord_Howe,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A daily schedule runs exactly once on every local day, whatever the zone and the
        /// daylight-saving changes in between; a weekly one on each of its days.
        #[test]
        fn every_day_it_is_for_it_runs_exactly_once(
            tz in zones(),
            h in 0u32..24, m in 0u32..60,
            start_day in 0u64..730,
            days in prop::collection::btree_set(0i32..7, 1..7),
        ) {
            let first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(start_day);
            let last = first + Days::new(20);
            let before = |d: NaiveDate| floor_minute(occurrence(d, NaiveTime::MIN, tz)) - chrono::Duration::minutes(1);
            let (from, to) = (before(first), before(last.succ_opt().unwrap()));
            let time = format!("{h:02}:{m:02}");
            let t = NaiveTime::from_hms_opt(h, m, 0).unwrap();
            for s in [
                schedule(ScheduleType::Daily, &time, &[], None),
                schedule(ScheduleType::Weekly, &time, &days.iter().copied().collect::<Vec<_>>(), None),
            ] {
                let runs = s.runs_between(from, to, tz);
                let wanted: Vec<Instant> = first
                    .iter_days()
                    .take_while(|d| *d <= last)
                    .filter(|d| s.is_for(*d, tz))
                    .map(|d| occurrence(d, t, tz))
                    .collect();
                prop_assert_eq!(&runs, &wanted, "{} in {}", s.describe_when(tz), tz);
                for (r, w) in runs.iter().zip(runs.iter().skip(1)) {
                    prop_assert!(r < w);
                }
                for r in &runs {
                    prop_assert_eq!(*r, floor_minute(*r));
                    // The local clock reads the time, or a later one when it skipped the time.
                    let l = r.with_timezone(&tz).naive_local();
                    let exists = tz.from_local_datetime(&l.date().and_time(t)).earliest().is_some();
                    prop_assert!(l.time() == t || (!exists && l.time() > t) || l.date() > first.pred_opt().unwrap());
                }
            }
        }

        /// Looking minute by minute and looking for the runs of a span find the same runs.
        #[test]
        fn minute_by_minute_agrees_with_the_runs_of_a_span(
            tz in zones(),
            h in 0u32..24, m in 0u32..60,
            start_day in 0u64..730,
            offset_min in 0i64..(3 * 1440),
        ) {
            let s = schedule(ScheduleType::Daily, &format!("{h:02}:{m:02}"), &[], None);
            let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + Days::new(start_day);
            let from = floor_minute(occurrence(day, NaiveTime::MIN, tz)) + chrono::Duration::minutes(offset_min);
            let to = from + chrono::Duration::hours(30);
            let mut by_minute = Vec::new();
            let mut t = from + chrono::Duration::minutes(1);
            while t <= to {
                if s.is_due(t, tz) {
                    by_minute.push(t);
                }
                t += chrono::Duration::minutes(1);
            }
            prop_assert_eq!(s.runs_between(from, to, tz), by_minute);
        }

        /// A run is made or missed, never both, and made only within the grace.
        #[test]
        fn a_run_is_made_only_within_the_grace(late_s in 0i64..100_000) {
            let at = local(IST, 2026, 11, 24, 18, 0);
            let now = at + chrono::Duration::seconds(late_s);
            let f = fate(at, now);
            prop_assert_eq!(f == Fate::Run, floor_minute(now) - at <= GRACE);
            let from = look_from(Some(at), now);
            prop_assert!(from <= floor_minute(now) && floor_minute(now) - from <= MISSED_LOOKBACK);
        }
    }
}
