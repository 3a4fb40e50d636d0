//! Waste: loads on in a classroom where nobody has moved for a while, or outside campus hours.

use super::model::{Campus, Clock, Presence};
use crate::domain::validation::time_of_day;
use crate::domain::Instant;
use chrono::{Datelike, TimeZone, Timelike};

/// When loads count as waste (from the config).
#[derive(Debug, Clone, PartialEq)]
pub struct WasteRule {
    pub no_motion_minutes: i64,
    /// Minutes after local midnight.
    pub open_from: u32,
    pub open_until: u32,
    /// 0 = Sunday.
    pub days: Vec<u8>,
    pub tz: chrono_tz::Tz,
}

impl WasteRule {
    /// From the config's `campus_hours` (`HH:MM-HH:MM`), days and minutes.
    pub fn new(
        no_motion_minutes: u64,
        hours: &str,
        days: &[u8],
        tz: chrono_tz::Tz,
    ) -> Result<WasteRule, String> {
        let (a, b) = hours.split_once('-').ok_or_else(|| {
            format!("campus_hours = {hours:?}: must be HH:MM-HH:MM, e.g. 08:00-18:00")
        })?;
        let (ah, am) = time_of_day("campus_hours", a.trim()).map_err(|e| e.to_string())?;
        let (bh, bm) = time_of_day("campus_hours", b.trim()).map_err(|e| e.to_string())?;
        Ok(WasteRule {
            no_motion_minutes: no_motion_minutes as i64,
            open_from: ah * 60 + am,
            open_until: bh * 60 + bm,
            days: days.to_vec(),
            tz,
        })
    }

    /// Whether the campus is open at `t`.
    pub fn open_at(&self, t: Instant) -> bool {
        let local = self.tz.from_utc_datetime(&t.naive_utc());
        let day = local.weekday().num_days_from_sunday() as u8;
        let minute = local.hour() * 60 + local.minute();
        self.days.contains(&day) && minute >= self.open_from && minute < self.open_until
    }

    fn hhmm(m: u32) -> String {
        format!("{:02}:{:02}", m / 60, m % 60)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WasteReason {
    NoMotion { minutes: i64 },
    NeverMotion,
    OutsideHours { closes: String },
}

impl WasteReason {
    pub fn describe(&self) -> String {
        match self {
            WasteReason::NoMotion { minutes } => format!("no motion for {minutes} min"),
            WasteReason::NeverMotion => "no motion reported".into(),
            WasteReason::OutsideHours { closes } => format!("outside hours (after {closes})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WasteRow {
    pub room: usize,
    /// "AC, 3 lights".
    pub loads: String,
    pub reason: WasteReason,
    /// Since when the loads have been on (the earliest of them).
    pub since: Option<Instant>,
    pub inr_per_hour: f64,
}

/// Every classroom wasting now, most expensive first.
pub fn waste(campus: &Campus, clock: &Clock, rule: &WasteRule) -> Vec<WasteRow> {
    let open = rule.open_at(clock.now);
    let mut rows = Vec::new();
    for (ri, room) in campus.rooms.iter().enumerate() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut inr = 0.0;
        let mut since: Option<Instant> = None;
        let mut last_motion: Option<Instant> = None;
        for &bi in &room.boards {
            let b = &campus.boards[bi];
            if clock.presence(b.last_seen) == Presence::Offline {
                continue;
            }
            last_motion = last_motion.max(b.last_motion);
            let rate = campus.rate(b, &room.name, clock.now);
            for s in b.switches.iter().filter(|s| s.on) {
                inr += s.watts / 1000.0 * rate;
                since = match (since, s.since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                let kind = s.kind.as_str().to_string();
                match counts.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((kind, 1)),
                }
            }
        }
        if counts.is_empty() {
            continue;
        }
        let reason = if !open {
            Some(WasteReason::OutsideHours {
                closes: WasteRule::hhmm(rule.open_until),
            })
        } else {
            match last_motion {
                Some(t) => {
                    let minutes = (clock.now - t).num_minutes();
                    (minutes >= rule.no_motion_minutes).then_some(WasteReason::NoMotion { minutes })
                }
                // Nobody has moved since the loads came on, for long enough: nobody is there.
                None => since
                    .filter(|s| (clock.now - *s).num_minutes() >= rule.no_motion_minutes)
                    .map(|_| WasteReason::NeverMotion),
            }
        };
        if let Some(reason) = reason {
            rows.push(WasteRow {
                room: ri,
                loads: describe_loads(&counts),
                reason,
                since,
                inr_per_hour: inr,
            });
        }
    }
    rows.sort_by(|a, b| b.inr_per_hour.total_cmp(&a.inr_per_hour));
    rows
}

fn describe_loads(counts: &[(String, usize)]) -> String {
    let mut sorted = counts.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted
        .iter()
        .map(|(k, n)| {
            let label = if k == "ac" {
                "AC".to_string()
            } else {
                k.clone()
            };
            if *n == 1 {
                label
            } else {
                format!("{n} {label}s")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32, day: u32) -> Instant {
        // 2026-11-22 is a Sunday; IST is UTC+5:30.
        chrono_tz::Asia::Kolkata
            .with_ymd_and_hms(2026, 11, day, h, m, 0)
            .single()
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn campus_hours_follow_the_local_clock_and_days() {
        let r = WasteRule::new(
            15,
            "08:00-18:00",
            &[1, 2, 3, 4, 5, 6],
            chrono_tz::Asia::Kolkata,
        )
        .unwrap();
        assert!(r.open_at(at(8, 0, 24)));
        assert!(r.open_at(at(17, 59, 24)));
        assert!(!r.open_at(at(18, 0, 24)));
        assert!(!r.open_at(at(7, 59, 24)));
        assert!(!r.open_at(at(12, 0, 22)), "Sunday is closed");
    }

    #[test]
    fn bad_hours_are_explained() {
        let e = WasteRule::new(15, "8 to 6", &[], chrono_tz::UTC).unwrap_err();
        assert!(e.contains("HH:MM-HH:MM"), "{e}");
    }

    #[test]
    fn loads_are_summarised_by_kind() {
        let c = vec![("light".to_string(), 3), ("ac".to_string(), 1)];
        assert_eq!(describe_loads(&c), "3 lights, AC");
    }
}
