//! A small campus for the energy-book tests: classrooms, boards with six switches, power settings,
//! and a way to bill an interval exactly as the collector does (`tariff_book` + `ledger_rows`).
#![allow(dead_code)]

use autovolt::domain::interval::{ledger_rows, BillingContext};
use autovolt::domain::{
    Classroom, DataSource, Device, DeviceConfig, DeviceStatus, DeviceType, Instant, LedgerRow, Mac,
    PowerSettings, Secret, Switch, SwitchType,
};
use autovolt::store::Store;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;

pub const IST: Tz = chrono_tz::Asia::Kolkata;

/// An IST wall-clock time as a UTC instant.
pub fn ist(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Instant {
    IST.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn date(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub struct Campus {
    pub store: Store,
    /// The URI of the campus's database (for running the binary against it).
    pub uri: String,
    pub settings: PowerSettings,
    /// (classroom name, device) pairs.
    pub boards: Vec<(String, Device)>,
}

fn switches() -> Vec<Switch> {
    let kinds = [
        SwitchType::Light,
        SwitchType::Light,
        SwitchType::Fan,
        SwitchType::Fan,
        SwitchType::Projector,
        SwitchType::Ac,
    ];
    [16, 17, 18, 19, 21, 22]
        .iter()
        .zip(kinds)
        .enumerate()
        .map(|(i, (pin, kind))| Switch {
            switch_id: format!("sw{}", i + 1),
            name: format!("{kind} {}", i + 1),
            switch_type: kind,
            gpio: Some(*pin),
            relay_gpio: Some(*pin),
            state: false,
            last_state_change: None,
            power_rating: None,
        })
        .collect()
}

/// A campus of `classrooms` classrooms with `boards` boards each, power settings at `price`.
pub async fn campus(label: &str, classrooms: usize, boards: usize, price: f64) -> Campus {
    let uri = super::support::fresh_database_uri(label);
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate_up(None, false).await.unwrap();
    let settings = store
        .save_power_settings(&PowerSettings::campus_default(price))
        .await
        .unwrap();
    let mut all = Vec::new();
    for c in 0..classrooms {
        let name = format!("CS-{}", 101 + c);
        let room = store
            .insert_classroom(&Classroom {
                id: None,
                name: name.clone(),
                building: None,
                floor: None,
                created_at: None,
                updated_at: None,
            })
            .await
            .unwrap();
        for b in 0..boards {
            let mut device = Device {
                id: None,
                name: format!("{name}-{b}"),
                mac_address: Mac::from_bytes([0xA4, 0xCF, 0x12, 0, c as u8, b as u8]),
                device_type: DeviceType::Esp32,
                classroom: Some(room),
                ip_address: None,
                firmware_version: None,
                status: DeviceStatus::Online,
                last_seen: None,
                device_secret: Secret::new("00ff"),
                last_motion_at: None,
                boot_clock: None,
                config: DeviceConfig::default(),
                switches: switches(),
                created_at: None,
                updated_at: None,
            };
            device.id = Some(store.insert_device(&device).await.unwrap());
            all.push((name.clone(), device));
        }
    }
    Campus {
        store,
        uri,
        settings,
        boards: all,
    }
}

impl Campus {
    /// Aggregates `from..=to` as an operator would (the database's authority), and waits for it.
    pub async fn aggregate(&self, from: chrono::NaiveDate, to: chrono::NaiveDate) {
        self.store
            .aggregate(
                &autovolt::store::aggregation::AggregationRequest {
                    from,
                    to,
                    tz: IST,
                    triggered_by: autovolt::domain::TriggeredBy::User,
                    by: None,
                    break_locks: false,
                },
                None,
                &tokio_util::sync::CancellationToken::new(),
            )
            .await
            .unwrap();
    }

    /// The rows of switch `switch` of board `board` on from `start` to `end`, billed with the
    /// stored tariffs, and inserted.
    pub async fn bill(
        &self,
        board: usize,
        switch: usize,
        start: Instant,
        end: Instant,
    ) -> Vec<LedgerRow> {
        let (classroom, device) = &self.boards[board];
        let book = self.store.tariff_book(start, end).await.unwrap();
        let ctx = BillingContext {
            device,
            switch: &device.switches[switch],
            classroom,
            settings: Some(&self.settings),
            tariffs: &book,
            tz: IST,
        };
        let rows = ledger_rows(&ctx, start, end, DataSource::PowerTracker);
        self.store.insert_ledger_rows(&rows).await.unwrap();
        rows
    }

    pub fn device_id(&self, board: usize) -> String {
        self.boards[board].1.ledger_id().unwrap()
    }
}
