//! Migrations: up → down → up, the cost back-fill and its exact reversal, dry runs, the lock.

mod support;

use autovolt::domain::PowerSettings;
use autovolt::store::indexes::index_specs;
use autovolt::store::migrations::{latest_version, Direction};
use autovolt::store::Store;
use bson::{doc, Document};
use chrono::{Duration, TimeZone, Utc};

fn raw_row(switch: &str, hour: i64, wh: f64, cost: Option<Document>) -> Document {
    let start = Utc.with_ymd_and_hms(2026, 11, 24, 4, 0, 0).unwrap() + Duration::hours(hour);
    let mut d = doc! {
        "device_id": "d1", "classroom": "CS-101", "switch_id": switch, "switch_type": "light",
        "start_ts": bson::DateTime::from_chrono(start),
        "end_ts": bson::DateTime::from_chrono(start + Duration::hours(1)),
        "switch_on_duration_seconds": 3600.0, "delta_wh": wh, "power_w": wh,
    };
    if let Some(c) = cost {
        d.insert("cost_calculation", c);
    }
    d
}

async fn ledger(s: &Store) -> Vec<Document> {
    use futures::TryStreamExt;
    s.collection::<Document>("deviceconsumptionledgers")
        .find(doc! {})
        .sort(doc! {"switch_id": 1})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn up_down_up_keeps_data_and_restores_indexes() {
    let s = support::store("mig_cycle").await;
    assert_eq!(s.schema_version().await.unwrap(), 0);
    let steps = s.migrate_up(None, false).await.unwrap();
    assert_eq!(steps.len(), latest_version() as usize);
    assert!(steps.iter().all(|st| st.direction == Direction::Up));
    let status = s.migration_status().await.unwrap();
    assert_eq!(status.version(), latest_version());
    assert!(status.pending.is_empty());
    assert!(status.lock.is_none(), "the lock is released");
    let names = s.collection_names().await.unwrap();
    for c in autovolt::store::collections::ALL {
        assert!(names.iter().any(|n| n == c), "{c} not created");
    }
    s.collection::<Document>("classrooms")
        .insert_one(doc! {"name": "CS-101"})
        .await
        .unwrap();

    assert!(
        s.migrate_up(None, false).await.unwrap().is_empty(),
        "nothing left to do"
    );

    let down = s.migrate_down(0, false).await.unwrap();
    assert_eq!(
        down.iter().map(|st| st.version).collect::<Vec<_>>(),
        (1..=latest_version()).rev().collect::<Vec<_>>()
    );
    assert_eq!(s.schema_version().await.unwrap(), 0);
    assert_eq!(s.index_names("devices").await.unwrap(), ["_id_"]);
    assert_eq!(
        s.collection::<Document>("classrooms")
            .count_documents(doc! {})
            .await
            .unwrap(),
        1,
        "down never drops data"
    );

    s.migrate_up(Some(1), false).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), 1);
    s.migrate_up(None, false).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), latest_version());
    for spec in index_specs(s.capabilities()) {
        assert!(s
            .index_names(spec.collection)
            .await
            .unwrap()
            .contains(&spec.name));
    }
}

#[tokio::test]
async fn cost_backfill_fills_only_missing_costs_and_down_removes_only_those() {
    let s = support::store("mig_costs").await;
    s.migrate_up(Some(1), false).await.unwrap();
    let written = doc! {"cost_per_kwh": 6.0, "cost_inr": 0.24};
    s.collection::<Document>("deviceconsumptionledgers")
        .insert_many([
            raw_row("a", 0, 40.0, None),
            raw_row("b", 1, 1500.0, None),
            raw_row("c", 2, 40.0, Some(written.clone())),
        ])
        .await
        .unwrap();
    s.collection::<PowerSettings>("powersettings")
        .insert_one(PowerSettings::campus_default(8.0))
        .await
        .unwrap();

    let dry = s.migrate_up(None, true).await.unwrap();
    assert!(
        dry[0].detail.contains("would fill the cost of 2"),
        "{dry:?}"
    );
    assert_eq!(
        s.schema_version().await.unwrap(),
        1,
        "a dry run changes nothing"
    );

    s.migrate_up(None, false).await.unwrap();
    let rows = ledger(&s).await;
    let cost = |d: &Document| d.get_document("cost_calculation").unwrap().clone();
    assert_eq!(cost(&rows[0]).get_f64("cost_per_kwh").unwrap(), 8.0);
    assert!((cost(&rows[0]).get_f64("cost_inr").unwrap() - 0.32).abs() < 1e-9);
    assert!((cost(&rows[1]).get_f64("cost_inr").unwrap() - 12.0).abs() < 1e-9);
    assert_eq!(cost(&rows[2]), written, "a collector's cost is kept");

    let dry = s.migrate_down(1, true).await.unwrap();
    let costs = dry.iter().find(|st| st.version == 2).unwrap();
    assert!(costs.detail.contains("on 2 ledger rows"), "{dry:?}");
    s.migrate_down(1, false).await.unwrap();
    let rows = ledger(&s).await;
    assert!(rows[0].get("cost_calculation").is_none());
    assert!(rows[1].get("cost_calculation").is_none());
    assert!(rows[0].get("cost_filled_by_migration").is_none());
    assert_eq!(cost(&rows[2]), written, "down strips only what it filled");
}

#[tokio::test]
async fn without_active_settings_the_global_cost_version_in_force_is_used() {
    let s = support::store("mig_global").await;
    s.migrate_up(Some(1), false).await.unwrap();
    s.collection::<Document>("deviceconsumptionledgers")
        .insert_many([
            raw_row("a", 0, 1000.0, None),
            raw_row("b", 30, 1000.0, None),
        ])
        .await
        .unwrap();
    let change = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    let versions = s.collection::<Document>("costversions");
    versions
        .insert_many([
            doc! {"cost_per_kwh": 7.0, "scope": "global", "is_active": false,
            "effective_from": bson::DateTime::from_chrono(change - Duration::days(30)),
            "effective_until": bson::DateTime::from_chrono(change)},
            doc! {"cost_per_kwh": 9.0, "scope": "global", "is_active": true,
            "effective_from": bson::DateTime::from_chrono(change), "effective_until": null},
            doc! {"cost_per_kwh": 50.0, "scope": "classroom", "classroom": "CS-101", "is_active": true,
            "effective_from": bson::DateTime::from_chrono(change - Duration::days(60)), "effective_until": null},
        ])
        .await
        .unwrap();
    s.migrate_up(None, false).await.unwrap();
    let rows = ledger(&s).await;
    let rate = |d: &Document| {
        d.get_document("cost_calculation")
            .unwrap()
            .get_f64("cost_per_kwh")
            .unwrap()
    };
    assert_eq!(rate(&rows[0]), 7.0);
    assert_eq!(rate(&rows[1]), 9.0);
}

#[tokio::test]
async fn a_held_lock_refuses_with_its_owner_and_age_until_unlocked() {
    let s = support::store("mig_lock").await;
    let at = Utc::now() - Duration::minutes(42);
    s.collection::<Document>("migrations")
        .insert_one(doc! {"_id": "lock", "owner": "ops-box:4242", "acquired_at": bson::DateTime::from_chrono(at),
            "expires_at": bson::DateTime::from_chrono(Utc::now() + Duration::minutes(5))})
        .await
        .unwrap();
    let err = s.migrate_up(None, false).await.unwrap_err().to_string();
    assert!(err.contains("ops-box:4242"), "{err}");
    assert!(err.contains("42 min"), "{err}");
    assert!(err.contains("lease expires in"), "{err}");
    assert!(err.contains("autovolt migrate unlock"), "{err}");
    assert_eq!(s.schema_version().await.unwrap(), 0);
    assert_eq!(
        s.migration_status().await.unwrap().lock.unwrap().owner,
        "ops-box:4242"
    );

    let was = s.force_unlock_migrations().await.unwrap().unwrap();
    assert_eq!(was.owner, "ops-box:4242");
    s.migrate_up(None, false).await.unwrap();
    assert_eq!(s.schema_version().await.unwrap(), latest_version());
}

#[tokio::test]
async fn concurrent_runs_never_interleave() {
    let s = support::store("mig_race").await;
    let runs = (0..3).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.migrate_up(None, false).await })
    });
    let results = futures::future::join_all(runs).await;
    let mut applied_steps = 0;
    for r in results {
        match r.unwrap() {
            Ok(steps) => applied_steps += steps.len(),
            Err(e) => assert!(e.to_string().contains("migrations are locked"), "{e}"),
        }
    }
    assert_eq!(
        applied_steps,
        latest_version() as usize,
        "each migration ran exactly once"
    );
    let status = s.migration_status().await.unwrap();
    assert_eq!(
        status.applied.iter().map(|m| m.version).collect::<Vec<_>>(),
        (1..=latest_version()).collect::<Vec<_>>()
    );
    assert!(status.lock.is_none());
}
