//! Waste: loads on in a classroom where nobody has moved for a while, or outside campus hours.
//! The one rule: the dashboard's waste view and the collector's waste gauge both judge by it.

use crate::domain::tariff::TariffBook;
use crate::domain::totals::OpenSwitch;
use crate::domain::validation::time_of_day;
use crate::domain::{Device, DeviceStatus, Id, Instant};
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

    pub fn hhmm(m: u32) -> String {
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

/// One load that is on in a classroom, on a board that is not offline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub power_w: f64,
    /// Since when it has been on, if known.
    pub since: Option<Instant>,
    /// The rate in force for it now.
    pub cost_per_kwh: f64,
}

/// A classroom wasting now: why, since when its loads have been on (the earliest), and what it
/// costs an hour.
#[derive(Debug, Clone, PartialEq)]
pub struct Waste {
    pub reason: WasteReason,
    pub since: Option<Instant>,
    pub inr_per_hour: f64,
}

/// Whether the classroom whose `loads` are on (on its boards that are not offline, whose newest
/// motion report is `last_motion`) wastes at `now`: outside campus hours any load does; in hours,
/// when nobody has moved for `no_motion_minutes`, or nobody has moved since the loads came on that
/// long ago.
pub fn judge(
    rule: &WasteRule,
    now: Instant,
    loads: &[Load],
    last_motion: Option<Instant>,
) -> Option<Waste> {
    if loads.is_empty() {
        return None;
    }
    let since = loads.iter().filter_map(|l| l.since).min();
    let reason = if !rule.open_at(now) {
        WasteReason::OutsideHours {
            closes: WasteRule::hhmm(rule.open_until),
        }
    } else {
        match last_motion {
            Some(t) => {
                let minutes = (now - t).num_minutes();
                if minutes < rule.no_motion_minutes {
                    return None;
                }
                WasteReason::NoMotion { minutes }
            }
            None => {
                since.filter(|s| (now - *s).num_minutes() >= rule.no_motion_minutes)?;
                WasteReason::NeverMotion
            }
        }
    };
    let inr_per_hour = loads
        .iter()
        .map(|l| l.power_w / 1000.0 * l.cost_per_kwh)
        .sum();
    Some(Waste {
        reason,
        since,
        inr_per_hour,
    })
}

/// What the campus wastes at `now`: ₹ an hour, and the classrooms wasting. The `open` switches are
/// grouped into classrooms by their devices; a board recorded offline counts neither its loads
/// nor its motion (what it last said is not news), as on the dashboard.
pub fn campus_waste(
    rule: &WasteRule,
    now: Instant,
    open: &[OpenSwitch],
    devices: &[Device],
    tariff: &TariffBook,
) -> (f64, usize) {
    use std::collections::HashMap;
    let boards: HashMap<String, &Device> = devices
        .iter()
        .filter(|d| d.status != DeviceStatus::Offline)
        .filter_map(|d| Some((d.ledger_id()?, d)))
        .collect();
    let mut rooms: HashMap<Option<Id>, (Vec<Load>, Option<Instant>)> = HashMap::new();
    for d in boards.values() {
        let room = rooms.entry(d.classroom).or_default();
        room.1 = room.1.max(d.last_motion_at);
    }
    for o in open {
        let Some(d) = boards.get(&o.device_id) else {
            continue;
        };
        let rate = tariff.rate_at(now, &o.device_id, &o.classroom).cost_per_kwh;
        rooms.entry(d.classroom).or_default().0.push(Load {
            power_w: o.power_w,
            since: Some(o.since),
            cost_per_kwh: rate,
        });
    }
    let mut total = 0.0;
    let mut wasting = 0;
    for (loads, motion) in rooms.values() {
        if let Some(w) = judge(rule, now, loads, *motion) {
            total += w.inr_per_hour;
            wasting += 1;
        }
    }
    (total, wasting)
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

    fn rule() -> WasteRule {
        WasteRule::new(
            15,
            "08:00-18:00",
            &[1, 2, 3, 4, 5, 6],
            chrono_tz::Asia::Kolkata,
        )
        .unwrap()
    }

    fn load(w: f64, since: Option<Instant>) -> Load {
        Load {
            power_w: w,
            since,
            cost_per_kwh: 8.0,
        }
    }

    #[test]
    fn nothing_on_is_no_waste() {
        assert_eq!(judge(&rule(), at(23, 0, 24), &[], None), None);
    }

    #[test]
    fn outside_hours_any_load_wastes_at_its_price() {
        let w = judge(
            &rule(),
            at(19, 0, 24),
            &[load(1500.0, None), load(40.0, None)],
            Some(at(18, 59, 24)),
        )
        .unwrap();
        assert_eq!(
            w.reason,
            WasteReason::OutsideHours {
                closes: "18:00".into()
            }
        );
        assert!((w.inr_per_hour - 1.54 * 8.0).abs() < 1e-9);
        assert!(
            judge(
                &rule(),
                at(12, 0, 22),
                &[load(40.0, None)],
                Some(at(12, 0, 22))
            )
            .is_some(),
            "Sunday"
        );
    }

    #[test]
    fn in_hours_motion_decides() {
        let now = at(11, 0, 24);
        let on = [load(1500.0, Some(at(9, 0, 24)))];
        assert_eq!(
            judge(&rule(), now, &on, Some(at(10, 46, 24))),
            None,
            "14 minutes"
        );
        let w = judge(&rule(), now, &on, Some(at(10, 45, 24))).unwrap();
        assert_eq!(w.reason, WasteReason::NoMotion { minutes: 15 });
        assert_eq!(w.since, Some(at(9, 0, 24)));
        assert_eq!(
            judge(&rule(), now, &[load(40.0, Some(at(10, 50, 24)))], None),
            None,
            "on for 10 minutes, nobody seen: not yet"
        );
        assert_eq!(
            judge(&rule(), now, &on, None).map(|w| w.reason),
            Some(WasteReason::NeverMotion)
        );
        assert_eq!(
            judge(&rule(), now, &[load(40.0, None)], None),
            None,
            "start unknown"
        );
    }

    fn board(n: u8, room: Id, status: &str, motion: Option<Instant>) -> Device {
        let mut d: Device = bson::from_document(bson::doc! {
            "_id": bson::oid::ObjectId::from_bytes([n; 12]),
            "name": format!("b{n}"),
            "macAddress": format!("AA:BB:CC:DD:EE:{n:02X}"),
            "classroom": room,
            "status": status,
        })
        .unwrap();
        d.last_motion_at = motion;
        d
    }

    fn on(d: &Device, w: f64, since: Instant) -> OpenSwitch {
        OpenSwitch {
            device_id: d.ledger_id().unwrap(),
            switch_id: "sw1".into(),
            classroom: "R".into(),
            since,
            power_w: w,
        }
    }

    #[test]
    fn the_campus_wastes_by_classroom_with_motion_from_any_of_its_boards() {
        let now = at(11, 0, 24);
        let (r1, r2) = (
            bson::oid::ObjectId::from_bytes([1; 12]),
            bson::oid::ObjectId::from_bytes([2; 12]),
        );
        // Room 1: the AC's board saw nobody, the other board saw someone 5 minutes ago.
        let a = board(1, r1, "online", None);
        let b = board(2, r1, "online", Some(at(10, 55, 24)));
        // Room 2: nobody for an hour; its offline board's load does not count.
        let c = board(3, r2, "online", Some(at(10, 0, 24)));
        let d = board(4, r2, "offline", None);
        let since = at(8, 0, 24);
        let open = [
            on(&a, 1500.0, since),
            on(&c, 40.0, since),
            on(&d, 1500.0, since),
        ];
        let tariff = TariffBook::new(Vec::new(), 8.0);
        let (inr, rooms) = campus_waste(&rule(), now, &open, &[a, b, c, d], &tariff);
        assert_eq!(rooms, 1);
        assert!((inr - 0.04 * 8.0).abs() < 1e-9, "{inr}");
        let (inr, rooms) = campus_waste(&rule(), at(19, 0, 24), &open, &[], &tariff);
        assert_eq!(
            (inr, rooms),
            (0.0, 0),
            "loads of unknown boards are not judged"
        );
    }

    proptest::proptest! {
        #[test]
        fn the_cost_is_the_sum_of_the_loads_and_never_negative(
            watts in proptest::collection::vec(0.0f64..5000.0, 1..20),
            minute in 0u32..(24 * 60),
        ) {
            let now = at(minute / 60, minute % 60, 24);
            let loads: Vec<Load> = watts.iter().map(|w| load(*w, Some(now - chrono::Duration::hours(1)))).collect();
            if let Some(w) = judge(&rule(), now, &loads, None) {
                let sum: f64 = watts.iter().map(|w| w / 1000.0 * 8.0).sum();
                proptest::prop_assert!((w.inr_per_hour - sum).abs() < 1e-9);
                proptest::prop_assert!(w.inr_per_hour >= 0.0);
            } else {
                proptest::prop_assert!(false, "on for an hour with nobody seen wastes");
            }
        }
    }
}
