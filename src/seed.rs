//! A realistic demo campus: classrooms named like a real one, boards with six relays on the
//! firmware's default pins, random unique MACs and secrets, the campus wattage table and a tariff.
//! Generation is deterministic for a seed and draws from the operating system without one (every
//! database then has its own MACs and device secrets); [`seed`] inserts it through the store.

use crate::domain::{
    dates, Classroom, CostVersion, CreatedBy, Device, DeviceConfig, DeviceStatus, DeviceType, Id,
    Instant, Mac, PowerSettings, Secret, Switch, SwitchType, TariffScope,
};
use crate::store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// The firmware's default relay pins, in switch order.
pub const RELAY_PINS: [i32; 6] = [16, 17, 18, 19, 21, 22];
/// The seeded tariff, ₹/kWh.
pub const SEED_TARIFF: f64 = 7.5;

const DEPARTMENTS: [(&str, &str); 8] = [
    ("CS", "Block A"),
    ("EE", "Block B"),
    ("ME", "Workshop Block"),
    ("CE", "Block C"),
    ("EC", "Block B"),
    ("IT", "Block A"),
    ("Lib", "Library"),
    ("Admin", "Main Building"),
];

/// Espressif's OUIs, as real boards report them.
const OUIS: [[u8; 3]; 4] = [
    [0xA4, 0xCF, 0x12],
    [0x24, 0x6F, 0x28],
    [0x30, 0xAE, 0xA4],
    [0x7C, 0x9E, 0xBD],
];

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    pub classrooms: usize,
    pub devices_per_classroom: usize,
    /// The random seed: the same seed gives the same campus (MACs and device secrets included, so
    /// only for tests and demos). `None` draws them from the operating system's generator.
    pub seed: Option<u64>,
}

/// A generated campus, with ids assigned.
#[derive(Debug, Clone)]
pub struct Campus {
    pub classrooms: Vec<Classroom>,
    pub devices: Vec<Device>,
    pub power_settings: PowerSettings,
    pub cost_version: CostVersion,
}

/// The name, building and floor of the `i`-th classroom: departments in turn; every fifth room
/// of a department is a lab (`EE-Lab-1`), the others numbered by floor (`CS-101`, `CS-102`, ...).
pub fn classroom_name(i: usize) -> (String, &'static str, i32) {
    let (dept, building) = DEPARTMENTS[i % DEPARTMENTS.len()];
    let n = i / DEPARTMENTS.len();
    if n % 5 == 4 {
        return (format!("{dept}-Lab-{}", n / 5 + 1), building, 0);
    }
    let m = n - n / 5;
    let floor = 1 + (m / 20) as i32;
    (
        format!("{dept}-{}{:02}", floor, m % 20 + 1),
        building,
        floor,
    )
}

/// The board suffix: A, B, ... Z, then 27, 28, ...
fn board_suffix(j: usize) -> String {
    match u8::try_from(j).ok().filter(|&j| j < 26) {
        Some(j) => char::from(b'A' + j).to_string(),
        None => (j + 1).to_string(),
    }
}

fn switches(rng: &mut StdRng, now: Instant) -> Vec<Switch> {
    let extra = [SwitchType::Projector, SwitchType::Ac, SwitchType::Outlet];
    let fifth = extra[rng.random_range(0..extra.len())].clone();
    let sixth = if rng.random_bool(0.5) {
        SwitchType::Outlet
    } else {
        SwitchType::Ac
    };
    let plan = [
        (SwitchType::Light, "Front lights"),
        (SwitchType::Light, "Back lights"),
        (SwitchType::Fan, "Ceiling fan 1"),
        (SwitchType::Fan, "Ceiling fan 2"),
        (fifth.clone(), type_label(&fifth)),
        (sixth.clone(), type_label(&sixth)),
    ];
    plan.into_iter()
        .zip(RELAY_PINS)
        .enumerate()
        .map(|(k, ((t, name), pin))| Switch {
            switch_id: format!("sw{}", k + 1),
            name: name.to_string(),
            switch_type: t,
            gpio: Some(pin),
            relay_gpio: Some(pin),
            state: false,
            last_state_change: Some(now),
            power_rating: None,
        })
        .collect()
}

fn type_label(t: &SwitchType) -> &'static str {
    match t {
        SwitchType::Projector => "Projector",
        SwitchType::Ac => "AC",
        _ => "Outlet",
    }
}

/// A random ObjectId whose time part is `now`, like one made at `now`.
fn object_id(rng: &mut StdRng, now: Instant) -> Id {
    let mut b: [u8; 12] = rng.random();
    b[..4].copy_from_slice(&(now.timestamp() as u32).to_be_bytes());
    Id::from_bytes(b)
}

/// Generates a campus. With a seed, pure: the same options and `now` give the same campus.
pub fn generate(options: &SeedOptions, now: Instant) -> Campus {
    let mut rng = match options.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let mut macs = HashSet::new();
    let mut classrooms = Vec::with_capacity(options.classrooms);
    let mut devices = Vec::new();
    for i in 0..options.classrooms {
        let (name, building, floor) = classroom_name(i);
        let id = object_id(&mut rng, now);
        for j in 0..options.devices_per_classroom {
            let mac = loop {
                let oui = OUIS[rng.random_range(0..OUIS.len())];
                let tail: [u8; 3] = rng.random();
                let mac = Mac::from_bytes([oui[0], oui[1], oui[2], tail[0], tail[1], tail[2]]);
                if macs.insert(mac) {
                    break mac;
                }
            };
            devices.push(Device {
                id: Some(object_id(&mut rng, now)),
                name: format!("{name}-{}", board_suffix(j)),
                mac_address: mac,
                device_type: DeviceType::Esp32,
                classroom: Some(id),
                ip_address: None,
                firmware_version: None,
                status: DeviceStatus::Offline,
                last_seen: None,
                device_secret: Secret::generate(&mut rng),
                last_motion_at: None,
                boot_clock: None,
                config: DeviceConfig::default(),
                switches: switches(&mut rng, now),
                created_at: Some(now),
                updated_at: Some(now),
            });
        }
        classrooms.push(Classroom {
            id: Some(id),
            name,
            building: Some(building.to_string()),
            floor: Some(floor),
            created_at: Some(now),
            updated_at: Some(now),
        });
    }
    let mut power_settings = PowerSettings::campus_default(SEED_TARIFF);
    power_settings.created_at = Some(now);
    power_settings.updated_at = Some(now);
    let cost_version = CostVersion {
        id: None,
        cost_per_kwh: SEED_TARIFF,
        effective_from: now,
        effective_until: None,
        scope: TariffScope::Global,
        classroom: None,
        device_id: None,
        created_by: Some(CreatedBy {
            user_id: None,
            username: "seed".into(),
        }),
        notes: Some("seeded campus tariff".into()),
        is_active: true,
        created_at: Some(now),
        updated_at: Some(now),
    };
    Campus {
        classrooms,
        devices,
        power_settings,
        cost_version,
    }
}

/// What [`seed`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedReport {
    pub classrooms: usize,
    pub devices: usize,
}

/// Inserts a generated campus into an empty campus. A database that already has classrooms or
/// devices is refused (nothing is written), so seeding never mixes with real data.
pub async fn seed(store: &Store, options: &SeedOptions) -> Result<SeedReport, StoreError> {
    let (existing_rooms, existing_devices) = store.campus_size().await?;
    if existing_rooms > 0 || existing_devices > 0 {
        return Err(StoreError::Conflict(format!(
            "the database already holds {existing_rooms} classrooms and {existing_devices} devices; \
             seed only fills an empty campus (restore a backup or use another database)"
        )));
    }
    let campus = generate(options, dates::now_millis());
    for c in &campus.classrooms {
        store.insert_classroom(c).await?;
    }
    store.insert_generated_devices(&campus.devices).await?;
    store
        .insert_power_settings_if_none(&campus.power_settings)
        .await?;
    store
        .insert_global_tariff_if_none(&campus.cost_version)
        .await?;
    Ok(SeedReport {
        classrooms: campus.classrooms.len(),
        devices: campus.devices.len(),
    })
}

/// How a campus uses a day, by weekday: the chance that a relay is used at all.
fn busy(date: chrono::NaiveDate) -> f64 {
    use chrono::Datelike;
    match date.weekday() {
        chrono::Weekday::Sun => 0.1,
        chrono::Weekday::Sat => 0.5,
        _ => 0.85,
    }
}

/// The on-intervals of one relay on one day, as minutes after local midnight: a morning block,
/// often an afternoon one after it, and now and then a light left on into the evening.
fn day_intervals(rng: &mut StdRng, date: chrono::NaiveDate) -> Vec<(i64, i64)> {
    let busy = busy(date);
    if rng.random::<f64>() > busy {
        return Vec::new();
    }
    let start = 8 * 60 + rng.random_range(0..90);
    if rng.random::<f64>() < 0.05 {
        // Forgotten: on until somebody notices in the evening.
        return vec![(start, 18 * 60 + rng.random_range(30..240))];
    }
    let end = start + rng.random_range(90..300);
    let mut out = vec![(start, end)];
    if rng.random::<f64>() < 0.7 * busy {
        let from = (14 * 60 + rng.random_range(0..60)).max(end + 15);
        out.push((from, from + rng.random_range(60..180)));
    }
    out
}

/// A month of history for a freshly seeded campus (the demo's): each relay used in class hours on
/// weekdays, less on Saturdays, next to nothing on Sundays, now and then left on into the evening;
/// billed by the ledger's own rules for the `days` days before `now`'s day, then aggregated like
/// any day (rollups and campus summaries). Deterministic for `seed`. Returns the rows written.
pub async fn history(
    store: &Store,
    tz: chrono_tz::Tz,
    days: u64,
    now: Instant,
    seed: u64,
) -> Result<usize, StoreError> {
    use crate::domain::interval::{ledger_rows, local_date, local_midnight, BillingContext};
    let today = local_date(now, tz);
    let first = today
        .checked_sub_days(chrono::Days::new(days))
        .unwrap_or(today);
    let settings = store.active_power_settings().await?;
    let names: std::collections::HashMap<Id, String> = store
        .classrooms()
        .await?
        .into_iter()
        .filter_map(|c| Some((c.id?, c.name)))
        .collect();
    let devices = store.devices().await?;
    let tariffs = store
        .tariff_book(local_midnight(first, tz), local_midnight(today, tz))
        .await?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for date in first.iter_days().take_while(|d| *d < today) {
        let midnight = local_midnight(date, tz);
        for device in &devices {
            let classroom = device
                .classroom
                .and_then(|c| names.get(&c))
                .map_or("", String::as_str);
            for switch in &device.switches {
                let ctx = BillingContext {
                    device,
                    switch,
                    classroom,
                    settings: settings.as_ref(),
                    tariffs: &tariffs,
                    tz,
                };
                for (from, to) in day_intervals(&mut rng, date) {
                    rows.extend(ledger_rows(
                        &ctx,
                        midnight + chrono::Duration::minutes(from),
                        midnight + chrono::Duration::minutes(to),
                        crate::domain::DataSource::PowerTracker,
                    ));
                }
            }
        }
    }
    for chunk in rows.chunks(1000) {
        store.insert_past_ledger_rows(chunk).await?;
    }
    if first < today {
        let request = crate::store::aggregation::AggregationRequest {
            from: first,
            to: today.pred_opt().unwrap_or(today),
            tz,
            triggered_by: crate::domain::TriggeredBy::System,
            by: None,
            break_locks: false,
        };
        store
            .aggregate(&request, None, &tokio_util::sync::CancellationToken::new())
            .await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> Instant {
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
    }

    #[test]
    fn names_are_unique_and_realistic() {
        let names: Vec<_> = (0..500).map(|i| classroom_name(i).0).collect();
        let unique: HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names[0], "CS-101");
        assert_eq!(names[1], "EE-101");
        assert_eq!(names[8], "CS-102");
        assert_eq!(names[33], "EE-Lab-1");
        assert!(names.iter().all(|n| (2..=50).contains(&n.len())));
    }

    #[test]
    fn boards_have_six_relays_on_the_default_pins_and_unique_macs() {
        let campus = generate(
            &SeedOptions {
                classrooms: 40,
                devices_per_classroom: 30,
                seed: Some(7),
            },
            now(),
        );
        assert_eq!(campus.devices.len(), 1200);
        let macs: HashSet<_> = campus.devices.iter().map(|d| d.mac_address).collect();
        assert_eq!(macs.len(), 1200);
        let names: HashSet<_> = campus.devices.iter().map(|d| d.name.clone()).collect();
        assert_eq!(names.len(), 1200);
        for d in &campus.devices {
            let pins: Vec<_> = d.switches.iter().map(|s| s.relay_pin().unwrap()).collect();
            assert_eq!(pins, RELAY_PINS);
            assert_eq!(d.device_secret.expose().len(), 48);
            assert!(d
                .switches
                .iter()
                .any(|s| s.switch_type == SwitchType::Light));
            assert!(d.switches.iter().any(|s| s.switch_type == SwitchType::Fan));
        }
        assert!(campus.power_settings.is_active && campus.power_settings.version == 1);
        assert_eq!(campus.cost_version.cost_per_kwh, 7.5);
    }

    #[test]
    fn the_same_seed_gives_the_same_campus() {
        let o = SeedOptions {
            classrooms: 3,
            devices_per_classroom: 2,
            seed: Some(42),
        };
        let a = generate(&o, now());
        let b = generate(&o, now());
        assert_eq!(a.devices, b.devices);
        let c = generate(
            &SeedOptions {
                seed: Some(43),
                ..o
            },
            now(),
        );
        assert_ne!(a.devices[0].mac_address, c.devices[0].mac_address);
    }

    #[test]
    fn without_a_seed_every_campus_has_its_own_macs_and_secrets() {
        let o = SeedOptions {
            classrooms: 2,
            devices_per_classroom: 2,
            seed: None,
        };
        let a = generate(&o, now());
        let b = generate(&o, now());
        for (x, y) in a.devices.iter().zip(&b.devices) {
            assert_ne!(x.mac_address, y.mac_address);
            assert_ne!(x.device_secret.expose(), y.device_secret.expose());
        }
    }
}
