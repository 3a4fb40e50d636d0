//! A deterministic sample campus (fixed ids, names, states and times) for the view tests, the
//! benchmark and the screenshots' layout checks.

use super::app::{App, Settings};
use super::event::{CollectionSize, DbChange, DbHealth, Event, Link, LinkState, Snapshot};
use super::keymap::Keymap;
use super::theme::{Symbols, Theme, UNICODE};
use crate::domain::interval::local_date;
use crate::domain::totals::{Amount, ClosedSwitch, DayTotal};
use crate::domain::waste::WasteRule;
use crate::domain::{
    ActivityLog, Actor, Classroom, CostVersion, CreatedBy, Device, DeviceConfig, DeviceStatus,
    DeviceType, FirmwareUpdate, FirmwareUpdateStatus, Id, Instant, Mac, PowerSettings, Role,
    Secret, Switch, SwitchType, TariffScope, TriggeredBy,
};
use chrono::{Duration, TimeZone};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// 2026-11-24 14:32:00 IST, a Tuesday during campus hours.
pub fn now() -> Instant {
    chrono_tz::Asia::Kolkata
        .with_ymd_and_hms(2026, 11, 24, 14, 32, 0)
        .single()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

fn id(kind: u8, n: u32) -> Id {
    let mut b = [0u8; 12];
    b[0] = kind;
    b[8..].copy_from_slice(&n.to_be_bytes());
    Id::from_bytes(b)
}

const KINDS: [(SwitchType, &str); 6] = [
    (SwitchType::Light, "Front lights"),
    (SwitchType::Light, "Back lights"),
    (SwitchType::Fan, "Ceiling fan 1"),
    (SwitchType::Fan, "Ceiling fan 2"),
    (SwitchType::Projector, "Projector"),
    (SwitchType::Ac, "AC"),
];

const BLOCKS: [&str; 4] = ["CS", "EE", "ME", "Lib"];

/// The name of classroom `i`: `CS-101`, `EE-102`, …
pub fn room_name(i: usize) -> String {
    format!("{}-{}", BLOCKS[i % BLOCKS.len()], 101 + i / BLOCKS.len())
}

/// `rooms` classrooms of `boards` boards of `switches` switches (at most 6 kinds, repeated).
/// Every seventh board is offline; about a third of the switches are on; room 0 has had no
/// motion for 42 minutes (waste).
pub fn snapshot(rooms: usize, boards: usize, switches: usize) -> Snapshot {
    campus(rooms, boards, switches).0
}

/// What the dashboard reads after the first screen for the sample campus: the newest activity,
/// today's closed rows and this month's earlier days (₹14,200 in all).
pub fn books(rooms: usize, boards: usize, switches: usize) -> Vec<DbChange> {
    campus(rooms, boards, switches).1
}

pub(crate) fn campus(rooms: usize, boards: usize, switches: usize) -> (Snapshot, Vec<DbChange>) {
    let mut closed = Vec::new();
    let mut activity = Vec::new();
    let now = now();
    let mut snap = Snapshot::default();
    let mut n = 0u32;
    for r in 0..rooms {
        let rid = id(1, r as u32);
        snap.classrooms.push(Classroom {
            id: Some(rid),
            name: room_name(r),
            building: Some(format!("Block {}", (b'A' + (r % 4) as u8) as char)),
            floor: Some((r / 4 % 3) as i32 + 1),
            created_at: None,
            updated_at: None,
        });
        for b in 0..boards {
            let offline = n % 7 == 6;
            let did = id(2, n);
            let mac = Mac::from_bytes([0xA4, 0xCF, 0x12, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
            let sws = (0..switches)
                .map(|s| {
                    let (kind, name) = &KINDS[s % KINDS.len()];
                    let on = (n as usize + s).is_multiple_of(3);
                    Switch {
                        switch_id: format!("sw{}", s + 1),
                        name: if s < KINDS.len() {
                            name.to_string()
                        } else {
                            format!("{name} {}", s / KINDS.len() + 1)
                        },
                        switch_type: kind.clone(),
                        gpio: None,
                        relay_gpio: Some([16, 17, 18, 19, 21, 22][s % 6] + 10 * (s / 6) as i32),
                        state: on,
                        last_state_change: Some(
                            now - Duration::minutes(30 + (s as i64 * 17) % 200),
                        ),
                        power_rating: None,
                    }
                })
                .collect();
            snap.devices.push(Device {
                id: Some(did),
                name: format!("{}-{}", room_name(r), (b'A' + b as u8) as char),
                mac_address: mac,
                device_type: DeviceType::Esp32,
                classroom: Some(rid),
                ip_address: Some(format!("10.20.{}.{}", n / 250, n % 250 + 2)),
                firmware_version: Some("1.4.2".into()),
                status: if offline {
                    DeviceStatus::Offline
                } else {
                    DeviceStatus::Online
                },
                last_seen: Some(if offline {
                    now - Duration::minutes(4)
                } else {
                    now - Duration::seconds(3 + (n % 20) as i64)
                }),
                device_secret: Secret::new(format!("{:048x}", n)),
                last_motion_at: Some(if r == 0 {
                    now - Duration::minutes(42)
                } else {
                    now - Duration::minutes(2)
                }),
                boot_clock: None,
                config: DeviceConfig::default(),
                switches: sws,
                created_at: None,
                updated_at: None,
            });
            for s in 0..switches {
                let wh = 40.0 * ((n as usize + s) % 9) as f64 * 10.0;
                closed.push(ClosedSwitch {
                    device_id: did.to_hex(),
                    switch_id: format!("sw{}", s + 1),
                    classroom: room_name(r),
                    amount: Amount {
                        kwh: wh / 1000.0,
                        cost: wh / 1000.0 * 7.5,
                    },
                });
            }
            n += 1;
        }
    }
    snap.settings = Some(PowerSettings::campus_default(7.5));
    snap.cost_versions = vec![
        CostVersion {
            id: Some(id(3, 1)),
            cost_per_kwh: 7.0,
            effective_from: now - Duration::days(60),
            effective_until: Some(now - Duration::days(23)),
            scope: TariffScope::Global,
            classroom: None,
            device_id: None,
            created_by: Some(CreatedBy {
                user_id: None,
                username: "admin".into(),
            }),
            notes: Some("2026 rate".into()),
            is_active: false,
            created_at: None,
            updated_at: None,
        },
        CostVersion {
            id: Some(id(3, 2)),
            cost_per_kwh: 7.5,
            effective_from: now - Duration::days(23),
            effective_until: None,
            scope: TariffScope::Global,
            classroom: None,
            device_id: None,
            created_by: Some(CreatedBy {
                user_id: None,
                username: "admin".into(),
            }),
            notes: Some("MSEDCL revision Nov".into()),
            is_active: true,
            created_at: None,
            updated_at: None,
        },
    ];
    for i in 0..12u32 {
        let mut a = ActivityLog::new(
            if i % 2 == 0 { "on" } else { "off" },
            if i % 3 == 0 {
                TriggeredBy::User
            } else {
                TriggeredBy::ManualSwitch
            },
            now - Duration::minutes(60 - i as i64 * 5),
        );
        a.device_id = Some(id(2, i % n.max(1)));
        a.switch_id = Some("sw1".into());
        a.switch_name = Some("Front lights".into());
        a.classroom = Some(room_name((i as usize) % rooms.max(1)));
        if i % 3 == 0 {
            a.user_name = Some("Technician".into());
        }
        activity.push(a);
    }
    snap.health = Some(DbHealth {
        server: "FerretDB 1.24.2 (sqlite)".into(),
        capabilities: "change streams: no, transactions: no, TTL indexes: no, partial indexes: no"
            .into(),
        latency_ms: Some(3.1),
        schema_version: Some(3),
        newest_telemetry: Some(now - Duration::milliseconds(400)),
        last_aggregation: Some("2026-11-24 00:10".into()),
        reconcile_took: Some(std::time::Duration::from_millis(840)),
        reconcile_every: Some(std::time::Duration::from_secs(900)),
        unreadable: 0,
        unreadable_reason: None,
        dead_letters: None,
        largest: Some(
            [
                ("telemetryevents", 412_508, 96_468_992, 31_457_280),
                ("deviceconsumptionledgers", 184_220, 41_943_040, 22_020_096),
                ("activitylogs", 52_310, 9_437_184, 3_145_728),
                ("dailyaggregates", 4_380, 1_048_576, 524_288),
                ("devices", 12, 36_864, 110_592),
                ("classrooms", 6, 20_480, 36_864),
            ]
            .into_iter()
            .map(|(name, documents, storage, index)| CollectionSize {
                name: name.into(),
                documents,
                storage_bytes: Some(storage),
                index_bytes: Some(index),
                sizes_unknown_because: None,
            })
            .collect(),
        ),
    });
    // Every board was updated to 1.4.2 in the field; every fourth one also failed a trial of
    // 1.5.0-rc1 yesterday.
    let mut firmware = Vec::new();
    for (k, d) in snap.devices.iter().enumerate() {
        let device_id = d.id.map(|i| i.to_hex()).unwrap_or_default();
        if k % 4 == 0 {
            firmware.push(FirmwareUpdate {
                id: Some(id(5, k as u32 * 2 + 1)),
                device_id: device_id.clone(),
                from_version: "1.4.2".into(),
                to_version: "1.5.0-rc1".into(),
                status: FirmwareUpdateStatus::Failed,
                started_at: Some(now - Duration::hours(26)),
                finished_at: Some(now - Duration::hours(26) + Duration::minutes(4)),
                notes: Some("relay 3 chatters after boot; rolled back over USB".into()),
                created_at: None,
                updated_at: None,
            });
        }
        firmware.push(FirmwareUpdate {
            id: Some(id(5, k as u32 * 2)),
            device_id,
            from_version: "1.4.1".into(),
            to_version: "1.4.2".into(),
            status: FirmwareUpdateStatus::Success,
            started_at: Some(now - Duration::days(12)),
            finished_at: Some(now - Duration::days(12) + Duration::minutes(3)),
            notes: None,
            created_at: None,
            updated_at: None,
        });
    }
    firmware.sort_by_key(|u| std::cmp::Reverse(u.when()));
    // ₹14,200 over November 1–23, spread evenly over the boards.
    let day = local_date(now, chrono_tz::Asia::Kolkata);
    let devices = snap.devices.len().max(1) as f64;
    let rooms_by_id: std::collections::HashMap<Id, String> = snap
        .classrooms
        .iter()
        .filter_map(|c| Some((c.id?, c.name.clone())))
        .collect();
    let rooms_by_id = &rooms_by_id;
    let history: Vec<DayTotal> = (1..=23)
        .flat_map(|d| {
            snap.devices.iter().map(move |dev| {
                let cost = 14_200.0 / devices / 23.0;
                DayTotal {
                    date: chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or_default(),
                    device_id: dev.id.map(|i| i.to_hex()).unwrap_or_default(),
                    classroom: dev
                        .classroom
                        .and_then(|c| rooms_by_id.get(&c).cloned())
                        .unwrap_or_default(),
                    amount: Amount {
                        kwh: cost / 7.5,
                        cost,
                    },
                }
            })
        })
        .collect();
    let books = vec![
        DbChange::Firmware(firmware),
        DbChange::RecentActivity(activity),
        DbChange::History { day, history },
        DbChange::Reconciled {
            day,
            closed,
            cutoff: now - Duration::minutes(1),
        },
    ];
    (snap, books)
}

pub fn settings() -> Settings {
    Settings {
        campus: "Main Campus".into(),
        read_only: false,
        toggle_timeout_secs: 5,
        stale_after_secs: 90,
        offline_after_secs: 120,
        tz: chrono_tz::Asia::Kolkata,
        waste: WasteRule {
            no_motion_minutes: 15,
            open_from: 8 * 60,
            open_until: 18 * 60,
            days: vec![1, 2, 3, 4, 5, 6],
            tz: chrono_tz::Asia::Kolkata,
        },
        mqtt_url: "mqtt://broker:1883".into(),
        local_operator: Actor::at_database("operator"),
    }
}

/// How a sample app starts.
#[derive(Debug, Clone)]
pub struct SampleApp {
    pub settings: Settings,
    pub rooms: usize,
    pub boards: usize,
    pub switches: usize,
    pub symbols: Symbols,
    /// Signed in as "Technician" with this role; else nobody is.
    pub role: Option<Role>,
    /// The collection sizes measured two minutes before [`now`]; else never.
    pub sizes_measured: bool,
}

impl SampleApp {
    /// The campus most tests want: 6 classrooms of 2 boards of 6 switches, Unicode symbols,
    /// signed in as `role`.
    pub fn new(role: Role) -> SampleApp {
        SampleApp {
            settings: settings(),
            rooms: 6,
            boards: 2,
            switches: 6,
            symbols: UNICODE,
            role: Some(role),
            sizes_measured: true,
        }
    }

    /// The app showing the sample campus, connected; every state reached through `update`.
    pub fn build(self) -> App {
        let theme = Theme::load("dark", false).unwrap_or_else(|e| panic!("built-in theme: {e}"));
        let mut keymap = Keymap::default();
        keymap.ascii = self.symbols == super::theme::ASCII;
        let (mut snap, books) = campus(self.rooms, self.boards, self.switches);
        let measured = now() - Duration::minutes(2);
        let start = if self.sizes_measured { measured } else { now() };
        let mut app = App::new(self.settings, theme, self.symbols, keymap, start);
        if self.sizes_measured {
            let largest = snap.health.as_ref().and_then(|h| h.largest.clone());
            app.update(Event::Db(DbChange::Sizes {
                result: Ok(largest.unwrap_or_default()),
                took: std::time::Duration::from_millis(1240),
            }));
            app.update(Event::Tick(now()));
        } else if let Some(h) = &mut snap.health {
            h.largest = None;
        }
        if let Some(role) = self.role {
            let technician = Actor::signed_in("Technician", Some(id(4, 1)), role);
            app.update(Event::SignIn(Ok(technician)));
            // Dismissed: the screens show the campus, not the sign-in's notice.
            app.update(Event::Key(KeyEvent::new(
                KeyCode::Char('x'),
                KeyModifiers::NONE,
            )));
        }
        app.update(Event::Db(DbChange::Snapshot(Box::new(snap))));
        for change in books {
            app.update(Event::Db(change));
        }
        app.update(Event::Link(Link::Mqtt, LinkState::Up("live".into())));
        app.update(Event::Link(Link::Db, LinkState::Up("connected".into())));
        app.update(Event::Link(Link::Feed, LinkState::Up("polling".into())));
        app
    }
}

/// An app showing the sample campus, connected, signed in as `role`.
pub fn app(rooms: usize, boards: usize, switches: usize, role: Role, symbols: Symbols) -> App {
    SampleApp {
        rooms,
        boards,
        switches,
        symbols,
        ..SampleApp::new(role)
    }
    .build()
}

/// The sample app with Unicode symbols, as most tests want it.
pub fn default_app(role: Role) -> App {
    SampleApp::new(role).build()
}

/// What a trends read brings for the sample campus of `rooms` classrooms: rollups of every day
/// it asks for (a weekly rhythm, Sundays quiet, dearer since the tariff change 23 days ago),
/// today's ledger until 14:00 as load curves (some of it before opening time), and the month's
/// waste.
pub fn trends(rooms: usize) -> Vec<super::event::TrendsUpdate> {
    use super::event::TrendsUpdate;
    use crate::domain::trends::{DailyBook, LoadCurve};
    use chrono::Datelike;
    let tz = chrono_tz::Asia::Kolkata;
    let now = now();
    let day = local_date(now, tz);
    let (from, to) = super::trends::days_needed(day);
    let mut book = DailyBook::default();
    for d in from.iter_days().take_while(|d| *d <= to) {
        let week = match d.weekday().num_days_from_sunday() {
            0 => 0.3,
            6 => 0.7,
            _ => 1.0,
        };
        let rate = if d >= local_date(now - Duration::days(23), tz) {
            7.5
        } else {
            7.0
        };
        for r in 0..rooms {
            let kwh = (12.0 + 2.0 * (r % 5) as f64 + 0.5 * (d.day() % 7) as f64) * week;
            book.add(
                d,
                &room_name(r),
                Amount {
                    kwh,
                    cost: kwh * rate,
                },
            );
        }
    }
    let mut curves = std::collections::BTreeMap::new();
    let at = |h: u32, m: u32| {
        tz.with_ymd_and_hms(2026, 11, 24, h, m, 0)
            .single()
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(now)
    };
    for r in 0..rooms {
        let mut c = LoadCurve::new(day, tz);
        let w = 400.0 + 150.0 * (r % 4) as f64;
        c.add_power(at(6, 30), at(8, 0), w / 3.0);
        c.add_power(at(8, 0), at(12, 30), w * 2.0);
        c.add_power(at(12, 30), at(13, 15), w / 2.0);
        c.add_power(at(13, 15), at(14, 0), w * 1.5);
        curves.insert(room_name(r), c);
    }
    let waste = (0..rooms)
        .filter(|r| r % 2 == 0)
        .map(|r| {
            let kwh = 30.0 + 9.0 * r as f64;
            (
                room_name(r),
                Amount {
                    kwh,
                    cost: kwh * 7.5,
                },
            )
        })
        .collect();
    vec![
        TrendsUpdate::Loaded(Box::new(super::trends::TrendsData {
            day,
            from,
            to,
            book,
        })),
        TrendsUpdate::Ledger(Box::new(super::trends::LedgerFigures { waste, curves })),
    ]
}
