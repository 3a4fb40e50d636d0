//! Classrooms, devices, ledger and activity repositories against a real server.

mod support;

use autovolt::domain::activity::action;
use autovolt::domain::{
    ActivityLog, Classroom, CostCalculation, Device, DeviceConfig, DeviceStatus, DeviceType, Id,
    Instant, LedgerRow, Mac, Quality, Secret, Switch, SwitchType, TriggeredBy,
};
use autovolt::store::{ActivityFilter, LedgerQuery, Store, StoreError};
use chrono::{Duration, TimeZone, Utc};

async fn store(label: &str) -> Store {
    let s = support::store(label).await;
    s.ensure_indexes().await.unwrap();
    s
}

fn classroom(name: &str) -> Classroom {
    Classroom {
        id: None,
        name: name.into(),
        building: Some("Block A".into()),
        floor: Some(1),
        created_at: None,
        updated_at: None,
    }
}

fn device(name: &str, mac: &str, classroom: Option<Id>) -> Device {
    Device {
        id: None,
        name: name.into(),
        mac_address: Mac::parse(mac).unwrap(),
        device_type: DeviceType::Esp32,
        classroom,
        ip_address: None,
        firmware_version: None,
        status: DeviceStatus::Offline,
        last_seen: None,
        device_secret: Secret::new("00ff"),
        last_motion_at: None,
        boot_clock: None,
        config: DeviceConfig::default(),
        switches: vec![Switch {
            switch_id: "sw1".into(),
            name: "Front lights".into(),
            switch_type: SwitchType::Light,
            gpio: Some(16),
            relay_gpio: Some(16),
            state: false,
            last_state_change: None,
            power_rating: None,
        }],
        created_at: None,
        updated_at: None,
    }
}

fn t0() -> Instant {
    Utc.with_ymd_and_hms(2026, 11, 24, 4, 0, 0).unwrap()
}

fn row(device_id: &str, classroom: &str, switch: &str, start: Instant) -> LedgerRow {
    LedgerRow {
        id: None,
        device_id: device_id.into(),
        esp32_name: "CS-101-A".into(),
        classroom: classroom.into(),
        switch_id: switch.into(),
        switch_name: "Front lights".into(),
        switch_type: SwitchType::Light,
        start_ts: start,
        end_ts: start + Duration::seconds(3600),
        switch_on_duration_seconds: 3600.0,
        delta_wh: 40.0,
        power_w: 40.0,
        cost_calculation: Some(CostCalculation {
            cost_per_kwh: 7.5,
            cost_inr: 0.3,
        }),
        quality: Quality::default(),
        created_at: None,
        updated_at: None,
    }
}

#[tokio::test]
async fn classrooms_insert_list_and_find() {
    let s = store("classrooms").await;
    let b = s.insert_classroom(&classroom("EE-Lab-1")).await.unwrap();
    let a = s.insert_classroom(&classroom("  CS-101 ")).await.unwrap();
    let all = s.classrooms().await.unwrap();
    let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["CS-101", "EE-Lab-1"]);
    assert!(all
        .iter()
        .all(|c| c.created_at.is_some() && c.updated_at.is_some()));
    assert_eq!(
        s.classroom_by_name("CS-101").await.unwrap().unwrap().id,
        Some(a)
    );
    assert_eq!(
        s.classroom_by_id(b).await.unwrap().unwrap().name,
        "EE-Lab-1"
    );
    assert!(s.classroom_by_name("nowhere").await.unwrap().is_none());

    let err = s.insert_classroom(&classroom("CS-101")).await.unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert!(err.to_string().contains("CS-101"), "{err}");
    let err = s.insert_classroom(&classroom("x")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(s.classrooms().await.unwrap().len(), 2);
}

#[tokio::test]
async fn devices_insert_find_and_refuse_a_duplicate_mac() {
    let s = store("devices").await;
    let room = s.insert_classroom(&classroom("CS-101")).await.unwrap();
    let other = s.insert_classroom(&classroom("CS-102")).await.unwrap();
    let b = s
        .insert_device(&device("CS-101-B", "24:6f:28:aa:10:0b", Some(room)))
        .await
        .unwrap();
    let a = s
        .insert_device(&device("CS-101-A", "A4-CF-12-B3-C4-D5", Some(room)))
        .await
        .unwrap();
    let c = s
        .insert_device(&device("CS-102-A", "A4:CF:12:B3:C4:D6", Some(other)))
        .await
        .unwrap();

    let found = s
        .device_by_mac(Mac::parse("a4:cf:12:b3:c4:d5").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, Some(a));
    assert_eq!(found.device_secret.expose(), "00ff");
    assert_eq!(found.switches[0].relay_pin(), Some(16));
    assert_eq!(s.device_by_id(c).await.unwrap().unwrap().name, "CS-102-A");
    assert!(s
        .device_by_mac(Mac::parse("00:00:00:00:00:01").unwrap())
        .await
        .unwrap()
        .is_none());
    let in_room: Vec<_> = s
        .devices_in_classroom(room)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id.unwrap())
        .collect();
    assert_eq!(in_room, [a, b]);
    assert_eq!(s.devices().await.unwrap().len(), 3);

    let err = s
        .insert_device(&device("Copy", "a4:cf:12:b3:c4:d5", Some(room)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "a device with MAC A4:CF:12:B3:C4:D5 already exists"
    );
    assert!(!format!("{err:?}").contains("00ff"));
    assert_eq!(s.devices().await.unwrap().len(), 3);
}

#[tokio::test]
async fn ledger_inserts_count_duplicates_and_refuse_invalid_rows() {
    let s = store("ledger_insert").await;
    let rows: Vec<_> = (0..5)
        .map(|i| row("d1", "CS-101", "sw1", t0() + Duration::hours(i)))
        .collect();
    let first = s.insert_ledger_rows(&rows).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (5, 0));

    let mut again = rows[2..].to_vec();
    again.push(row("d1", "CS-101", "sw2", t0()));
    let second = s.insert_ledger_rows(&again).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (1, 3));

    let mut bad = row("d1", "CS-101", "sw3", t0());
    bad.delta_wh = 400.0;
    let err = s
        .insert_ledger_rows(&[row("d1", "CS-101", "sw3", t0() + Duration::hours(1)), bad])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("delta_wh"), "{err}");

    let all = s
        .ledger_page(&LedgerQuery::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        all.rows.len(),
        6,
        "nothing of the refused batch was written"
    );
    assert!(all.next.is_none());
    assert!(all
        .rows
        .iter()
        .all(|r| r.created_at.is_some() && r.updated_at.is_some()));
    assert_eq!(s.insert_ledger_rows(&[]).await.unwrap(), Default::default());
}

#[tokio::test]
async fn ledger_pages_newest_first_without_gaps_or_repeats() {
    let s = store("ledger_pages").await;
    let mut rows = Vec::new();
    // Three switches share every start instant, so pages must break ties by _id.
    for h in 0..30 {
        for sw in ["sw1", "sw2", "sw3"] {
            rows.push(row("d1", "CS-101", sw, t0() + Duration::minutes(20 * h)));
        }
    }
    rows.push(row("d2", "CS-102", "sw1", t0()));
    s.insert_ledger_rows(&rows).await.unwrap();

    let q = LedgerQuery {
        device_id: Some("d1".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.ledger_page(&q, cursor, 7).await.unwrap();
        assert!(page.rows.len() <= 7);
        seen.extend(page.rows.iter().map(|r| (r.start_ts, r.id.unwrap())));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 90);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "strictly newest first, no repeats");

    let day = LedgerQuery {
        classroom: Some("CS-101".into()),
        from: Some(t0() + Duration::hours(2)),
        to: Some(t0() + Duration::hours(4)),
        ..Default::default()
    };
    let page = s.ledger_page(&day, None, 1000).await.unwrap();
    assert_eq!(page.rows.len(), 18);
    assert!(
        page.rows
            .iter()
            .all(|r| r.start_ts >= t0() + Duration::hours(2)
                && r.start_ts < t0() + Duration::hours(4))
    );
    let other = LedgerQuery {
        classroom: Some("CS-102".into()),
        ..Default::default()
    };
    assert_eq!(s.ledger_page(&other, None, 10).await.unwrap().rows.len(), 1);
}

#[tokio::test]
async fn activity_is_logged_and_read_newest_first() {
    let s = store("activity").await;
    let dev = Id::new();
    for i in 0..12 {
        let mut e = ActivityLog::new(
            if i % 2 == 0 { action::ON } else { action::OFF },
            TriggeredBy::User,
            t0() + Duration::minutes(i / 2),
        );
        e.device_id = Some(dev);
        e.classroom = Some("CS-101".into());
        e.context = Some(serde_json::json!({"i": i}));
        s.log_activity(&e).await.unwrap();
    }
    s.log_activity(&ActivityLog::new(
        action::AGGREGATION_RUN,
        TriggeredBy::System,
        t0() + Duration::hours(1),
    ))
    .await
    .unwrap();

    let all = ActivityFilter::default();
    let first = s.recent_activity(5, None, &all).await.unwrap();
    assert_eq!(first.rows[0].action, action::AGGREGATION_RUN);
    assert!(first.rows[0].created_at.is_some());
    let mut seen: Vec<_> = first.rows.iter().map(|r| (r.timestamp, r.id)).collect();
    let mut next = first.next;
    while let Some(c) = next {
        let page = s.recent_activity(5, Some(c), &all).await.unwrap();
        seen.extend(page.rows.iter().map(|r| (r.timestamp, r.id)));
        next = page.next;
    }
    assert_eq!(seen.len(), 13);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);

    let ons = ActivityFilter {
        device_id: Some(dev),
        action: Some(action::ON.into()),
        ..Default::default()
    };
    let page = s.recent_activity(100, None, &ons).await.unwrap();
    assert_eq!(page.rows.len(), 6);
    assert!(page.next.is_none());
}
