//! The power settings singleton and the tariff history on a real server.

mod support;

use autovolt::domain::tariff::{RateSource, TariffTarget};
use autovolt::domain::{CostVersion, PowerSettings, TariffScope};
use autovolt::store::{collections, Store, StoreError};
use bson::doc;
use chrono::{TimeZone, Utc};

fn t(d: u32, h: u32) -> autovolt::domain::Instant {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn version(
    price: f64,
    from: autovolt::domain::Instant,
    until: Option<autovolt::domain::Instant>,
    target: TariffTarget,
) -> CostVersion {
    let (classroom, device_id) = match &target {
        TariffTarget::Global => (None, None),
        TariffTarget::Classroom(c) => (Some(c.clone()), None),
        TariffTarget::Device(d) => (None, Some(d.clone())),
    };
    CostVersion {
        id: None,
        cost_per_kwh: price,
        effective_from: from,
        effective_until: until,
        scope: target.scope(),
        classroom,
        device_id,
        created_by: None,
        notes: None,
        is_active: until.is_none(),
        created_at: None,
        updated_at: None,
    }
}

async fn insert_versions(store: &Store, versions: &[CostVersion]) {
    store
        .collection::<CostVersion>(collections::COST_VERSIONS)
        .insert_many(versions)
        .await
        .unwrap();
}

async fn active_count(store: &Store) -> u64 {
    store
        .collection::<bson::Document>(collections::POWER_SETTINGS)
        .count_documents(doc! {"isActive": true})
        .await
        .unwrap()
}

#[tokio::test]
async fn saving_starts_at_version_one_and_bumps_on_every_change() {
    let store = support::store("ps_versions").await;
    assert_eq!(store.active_power_settings().await.unwrap(), None);
    let first = store
        .save_power_settings(&PowerSettings::campus_default(7.5))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    assert!(first.id.is_some());
    let mut edited = first.clone();
    edited.electricity_price = 8.0;
    let second = store.save_power_settings(&edited).await.unwrap();
    assert_eq!(second.version, 2);
    assert_ne!(second.id, first.id, "every save is a new document");
    assert_eq!(store.active_power_settings().await.unwrap(), Some(second));
    assert_eq!(active_count(&store).await, 1);

    let third = store
        .save_power_settings(&PowerSettings::campus_default(9.0))
        .await
        .unwrap();
    assert_eq!(third.version, 3);
    assert_eq!(active_count(&store).await, 1);
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .electricity_price,
        9.0
    );
}

#[tokio::test]
async fn a_stale_save_is_refused_and_an_invalid_one_rejected() {
    let store = support::store("ps_stale").await;
    let first = store
        .save_power_settings(&PowerSettings::campus_default(7.5))
        .await
        .unwrap();
    let mut a = first.clone();
    a.electricity_price = 8.0;
    store.save_power_settings(&a).await.unwrap();
    let mut stale = first.clone();
    stale.electricity_price = 6.0;
    let err = store.save_power_settings(&stale).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("version 2"), "{err}");

    let mut bad = first;
    bad.electricity_price = 100.01;
    let err = store.save_power_settings(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .electricity_price,
        8.0
    );
}

#[tokio::test]
async fn concurrent_saves_leave_one_active_document_and_distinct_versions() {
    let store = support::store("ps_race").await;
    for round in 0..3 {
        let saves = (0..4).map(|i| {
            let store = store.clone();
            async move {
                store
                    .save_power_settings(&PowerSettings::campus_default(5.0 + i as f64))
                    .await
            }
        });
        let saved: Vec<PowerSettings> = futures::future::join_all(saves)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(active_count(&store).await, 1, "round {round}");
        let mut versions: Vec<i64> = saved.iter().map(|s| s.version).collect();
        versions.sort();
        versions.dedup();
        assert_eq!(
            versions.len(),
            4,
            "versions shared: {:?}",
            saved.iter().map(|s| (s.id, s.version)).collect::<Vec<_>>()
        );
        let active = store.active_power_settings().await.unwrap().unwrap();
        let newest = store
            .collection::<bson::Document>(collections::POWER_SETTINGS)
            .find_one(doc! {})
            .sort(doc! {"version": -1})
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(active.id.unwrap()), newest.get_object_id("_id").ok());
    }

    // Concurrent price changes of the same document both land, one after the other.
    let (a, b) = tokio::join!(
        store.set_power_settings_price(11.0),
        store.set_power_settings_price(12.0)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.version, b.version);
    let active = store.active_power_settings().await.unwrap().unwrap();
    let last = if a.version > b.version { a } else { b };
    assert_eq!(active.electricity_price, last.electricity_price);
    assert_eq!(active_count(&store).await, 1);
}

#[tokio::test]
async fn history_is_newest_first_and_filtered_by_target() {
    let store = support::store("cv_history").await;
    insert_versions(
        &store,
        &[
            version(7.0, t(1, 0), Some(t(10, 0)), TariffTarget::Global),
            version(7.5, t(10, 0), None, TariffTarget::Global),
            version(9.0, t(5, 0), None, TariffTarget::Classroom("CS-101".into())),
            version(12.0, t(6, 0), None, TariffTarget::Device("dev1".into())),
        ],
    )
    .await;
    let all = store.cost_versions(None).await.unwrap();
    let prices: Vec<f64> = all.iter().map(|v| v.cost_per_kwh).collect();
    assert_eq!(prices, vec![7.5, 12.0, 9.0, 7.0]);
    let global = store
        .cost_versions(Some(&TariffTarget::Global))
        .await
        .unwrap();
    assert_eq!(global.len(), 2);
    assert!(global.iter().all(|v| v.scope == TariffScope::Global));
    let room = store
        .cost_versions(Some(&TariffTarget::Classroom("CS-101".into())))
        .await
        .unwrap();
    assert_eq!(room.len(), 1);
    assert!(store
        .cost_versions(Some(&TariffTarget::Classroom("EE-1".into())))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_version_in_force_is_the_most_specific_one() {
    let store = support::store("cv_in_force").await;
    insert_versions(
        &store,
        &[
            version(7.0, t(1, 0), Some(t(10, 0)), TariffTarget::Global),
            version(7.5, t(10, 0), None, TariffTarget::Global),
            version(9.0, t(5, 0), None, TariffTarget::Classroom("CS-101".into())),
            version(
                12.0,
                t(6, 0),
                Some(t(8, 0)),
                TariffTarget::Device("dev1".into()),
            ),
        ],
    )
    .await;
    let at = |d, h, dev: &'static str, room: &'static str| {
        let store = store.clone();
        async move {
            store
                .cost_version_in_force(t(d, h), dev, room)
                .await
                .unwrap()
                .map(|v| v.cost_per_kwh)
        }
    };
    assert_eq!(at(1, 0, "dev1", "EE-1").await, Some(7.0));
    assert_eq!(at(4, 0, "dev1", "CS-101").await, Some(7.0));
    assert_eq!(at(5, 0, "dev1", "CS-101").await, Some(9.0));
    assert_eq!(at(7, 0, "dev1", "CS-101").await, Some(12.0));
    assert_eq!(at(8, 0, "dev1", "CS-101").await, Some(9.0));
    assert_eq!(at(8, 0, "dev2", "EE-1").await, Some(7.0));
    assert_eq!(at(10, 0, "dev2", "EE-1").await, Some(7.5));
    assert_eq!(at(20, 0, "dev2", "CS-101").await, Some(9.0));
    // Before all history: only the power settings' price applies.
    assert_eq!(
        store
            .cost_version_in_force(
                Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap(),
                "dev1",
                "CS-101"
            )
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_tariff_book_holds_the_overlapping_versions_and_the_fallback() {
    let store = support::store("cv_book").await;
    store
        .save_power_settings(&PowerSettings::campus_default(6.5))
        .await
        .unwrap();
    insert_versions(
        &store,
        &[
            version(7.0, t(1, 0), Some(t(10, 0)), TariffTarget::Global),
            version(7.5, t(10, 0), None, TariffTarget::Global),
            version(
                9.0,
                t(12, 0),
                None,
                TariffTarget::Classroom("CS-101".into()),
            ),
        ],
    )
    .await;
    let book = store.tariff_book(t(11, 0), t(11, 23)).await.unwrap();
    assert_eq!(book.fallback_price, 6.5);
    assert_eq!(book.versions.len(), 1);
    assert_eq!(book.rate_at(t(11, 5), "d", "CS-101").cost_per_kwh, 7.5);

    let book = store.tariff_book(t(9, 0), t(12, 0)).await.unwrap();
    assert_eq!(book.versions.len(), 3);
    assert_eq!(book.rate_at(t(9, 5), "d", "CS-101").cost_per_kwh, 7.0);
    assert_eq!(book.rate_at(t(12, 0), "d", "CS-101").cost_per_kwh, 9.0);

    let early = Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
    let book = store
        .tariff_book(early, early + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert!(book.versions.is_empty());
    assert_eq!(
        book.rate_at(early, "d", "c").source,
        RateSource::PowerSettings
    );
    assert_eq!(book.rate_at(early, "d", "c").cost_per_kwh, 6.5);
}
