//! The power settings singleton and the tariff history on a real server.

mod support;

use autovolt::domain::tariff::{RateSource, TariffChange, TariffTarget};
use autovolt::domain::{Actor, CostVersion, PowerSettings, Role, TariffScope};
use autovolt::store::{collections, Store, StoreError};
use bson::doc;
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;

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

async fn add_classroom(store: &Store, name: &str) {
    store
        .collection::<autovolt::domain::Classroom>(collections::CLASSROOMS)
        .insert_one(autovolt::domain::Classroom {
            id: None,
            name: name.into(),
            building: None,
            floor: None,
            created_at: None,
            updated_at: None,
        })
        .await
        .unwrap();
}

async fn add_device(store: &Store, mac: &str) -> String {
    let id = bson::oid::ObjectId::new();
    store
        .collection::<bson::Document>(collections::DEVICES)
        .insert_one(doc! {"_id": id, "name": "CS-101-A", "macAddress": mac, "switches": []})
        .await
        .unwrap();
    id.to_hex()
}

fn change(
    price: f64,
    target: TariffTarget,
    from: Option<autovolt::domain::Instant>,
) -> TariffChange {
    TariffChange {
        price,
        target,
        from,
        note: Some("board decision".into()),
        by: autovolt::domain::Actor::at_database("asha"),
    }
}

#[tokio::test]
async fn a_global_change_closes_the_previous_version_syncs_the_settings_and_logs() {
    let store = support::store("set_global").await;
    store
        .save_power_settings(&PowerSettings::campus_default(7.5))
        .await
        .unwrap();
    let first = store
        .set_tariff(&change(7.5, TariffTarget::Global, Some(t(1, 0))))
        .await
        .unwrap();
    let second = store
        .set_tariff(&change(8.25, TariffTarget::Global, Some(t(15, 6))))
        .await
        .unwrap();
    assert_eq!(second.effective_from, t(15, 6));
    let history = store
        .cost_versions(Some(&TariffTarget::Global))
        .await
        .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].id, second.id);
    assert_eq!(history[0].effective_until, None);
    assert!(history[0].is_active);
    assert_eq!(history[1].id, first.id);
    assert_eq!(history[1].effective_until, Some(t(15, 6)));
    assert!(!history[1].is_active);
    assert_eq!(
        history[0].created_by.as_ref().map(|c| c.username.as_str()),
        Some("asha")
    );

    let settings = store.active_power_settings().await.unwrap().unwrap();
    assert_eq!(settings.electricity_price, 8.25);
    assert_eq!(settings.version, 3, "one bump per price change");

    let logs: Vec<autovolt::domain::ActivityLog> = store
        .collection::<autovolt::domain::ActivityLog>(collections::ACTIVITY)
        .find(doc! {"action": "tariff_change"})
        .sort(doc! {"timestamp": 1, "_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[1].user_name.as_deref(), Some("asha"));
    let ctx = logs[1].context.as_ref().unwrap();
    assert_eq!(ctx["cost_per_kwh"], 8.25);
    assert_eq!(ctx["previous_cost_per_kwh"], 7.5);
    assert_eq!(ctx["scope"], "global");

    // The rate of an instant follows the history; the day before keeps its price.
    let book = store.tariff_book(t(14, 0), t(16, 0)).await.unwrap();
    assert_eq!(book.rate_at(t(15, 5), "d", "c").cost_per_kwh, 7.5);
    assert_eq!(book.rate_at(t(15, 6), "d", "c").cost_per_kwh, 8.25);
}

#[tokio::test]
async fn scoped_changes_need_an_existing_target_and_apply_only_to_it() {
    let store = support::store("set_scoped").await;
    add_classroom(&store, "CS-101").await;
    let dev = add_device(&store, "A4:CF:12:B3:C4:D5").await;
    store
        .set_tariff(&change(7.5, TariffTarget::Global, Some(t(1, 0))))
        .await
        .unwrap();
    let err = store
        .set_tariff(&change(9.0, TariffTarget::Classroom("EE-9".into()), None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains("EE-9"), "{err}");
    let err = store
        .set_tariff(&change(
            9.0,
            TariffTarget::Device("11:22:33:44:55:66".into()),
            None,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    store
        .set_tariff(&change(
            9.0,
            TariffTarget::Classroom("CS-101".into()),
            Some(t(2, 0)),
        ))
        .await
        .unwrap();
    // By MAC, in any accepted spelling; stored under the device's id.
    let by_mac = store
        .set_tariff(&change(
            12.0,
            TariffTarget::Device("a4-cf-12-b3-c4-d5".into()),
            Some(t(3, 0)),
        ))
        .await
        .unwrap();
    assert_eq!(by_mac.device_id.as_deref(), Some(dev.as_str()));
    assert_eq!(by_mac.scope, TariffScope::Device);

    let book = store.tariff_book(t(4, 0), t(5, 0)).await.unwrap();
    assert_eq!(book.rate_at(t(4, 0), &dev, "CS-101").cost_per_kwh, 12.0);
    assert_eq!(book.rate_at(t(4, 0), "other", "CS-101").cost_per_kwh, 9.0);
    assert_eq!(book.rate_at(t(4, 0), "other", "EE-1").cost_per_kwh, 7.5);
    // Scoped changes leave the power settings' price to the global tariff.
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .electricity_price,
        7.5
    );
}

#[tokio::test]
async fn invalid_changes_are_refused_with_the_reason_and_write_nothing() {
    let store = support::store("set_invalid").await;
    store
        .set_tariff(&change(7.5, TariffTarget::Global, Some(t(10, 0))))
        .await
        .unwrap();
    for (price, from, field) in [
        (f64::NAN, None, "price"),
        (f64::INFINITY, None, "price"),
        (0.0, None, "price"),
        (-1.0, None, "price"),
        (100.01, None, "price"),
        (8.0, Some(t(9, 23)), "from"),
    ] {
        let err = store
            .set_tariff(&change(price, TariffTarget::Global, from))
            .await
            .unwrap_err();
        match err {
            StoreError::Invalid(v) => assert_eq!(v.field, field, "{price} {from:?}: {v}"),
            other => panic!("{price}: {other:?}"),
        }
    }
    let mut nobody = change(8.0, TariffTarget::Global, None);
    nobody.by.name = " ".into();
    assert!(matches!(
        store.set_tariff(&nobody).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    // The rule on who may change prices is the library's, whatever the front end: a signed-in
    // `user` is refused, and so is a cancellation, before anything is read or written.
    let mut user = change(8.0, TariffTarget::Global, None);
    user.by = Actor::signed_in("Ravi", None, Role::User);
    let refused = store.set_tariff(&user).await.unwrap_err();
    assert!(matches!(refused, StoreError::Forbidden(_)), "{refused:?}");
    assert_eq!(
        refused.to_string(),
        "Ravi (user) may not change tariffs: an admin may"
    );
    let newest = store.cost_versions(None).await.unwrap()[0].id.unwrap();
    assert!(matches!(
        store.cancel_tariff(newest, &user.by).await.unwrap_err(),
        StoreError::Forbidden(_)
    ));
    user.by = Actor::signed_in("Meera", None, Role::Admin);
    user.from = Some(t(10, 0));
    user.price = 100.0;
    // The boundary itself is accepted, and so is a start equal to the newest one's.
    store.set_tariff(&user).await.unwrap();
    let history = store.cost_versions(None).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        store
            .collection::<bson::Document>(collections::ACTIVITY)
            .count_documents(doc! {})
            .await
            .unwrap(),
        2
    );
}

#[tokio::test]
async fn an_interrupted_change_is_repaired_by_the_next_one() {
    let store = support::store("set_repair").await;
    store
        .save_power_settings(&PowerSettings::campus_default(7.5))
        .await
        .unwrap();
    // A change that stopped right after inserting its version: two open global versions.
    insert_versions(
        &store,
        &[
            version(7.5, t(1, 0), None, TariffTarget::Global),
            version(8.0, t(5, 0), None, TariffTarget::Global),
        ],
    )
    .await;
    // Already correct for billing: the newer start wins from its start on.
    let book = store.tariff_book(t(1, 0), t(9, 0)).await.unwrap();
    assert_eq!(book.rate_at(t(4, 0), "d", "c").cost_per_kwh, 7.5);
    assert_eq!(book.rate_at(t(6, 0), "d", "c").cost_per_kwh, 8.0);

    store.repair_tariffs(&TariffTarget::Global).await.unwrap();
    let history = store.cost_versions(None).await.unwrap();
    assert_eq!(history[1].effective_until, Some(t(5, 0)));
    assert_eq!(history[0].effective_until, None);
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .electricity_price,
        8.0
    );
    // Repair again: nothing left to do, no version bump.
    let before = store
        .active_power_settings()
        .await
        .unwrap()
        .unwrap()
        .version;
    store.repair_tariffs(&TariffTarget::Global).await.unwrap();
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .version,
        before
    );
}
