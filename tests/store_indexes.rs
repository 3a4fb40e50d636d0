//! Index creation: every index of the schema, and a second run that changes nothing.

mod support;

use autovolt::store::indexes::index_specs;

#[tokio::test]
async fn indexes_are_created_once_then_left_alone() {
    let s = support::store("indexes").await;
    let specs = index_specs(s.capabilities());
    let first = s.ensure_indexes().await.unwrap();
    assert_eq!(first.created.len(), specs.len());
    assert_eq!(first.existing, 0);
    for spec in &specs {
        let names = s.index_names(spec.collection).await.unwrap();
        assert!(
            names.contains(&spec.name),
            "{}.{} missing",
            spec.collection,
            spec.name
        );
    }
    let second = s.ensure_indexes().await.unwrap();
    assert!(
        second.created.is_empty(),
        "second run created {:?}",
        second.created
    );
    assert_eq!(second.existing, specs.len());

    let ttl = specs.iter().any(|x| x.expire_after.is_some());
    assert_eq!(ttl, s.capabilities().ttl_indexes);
}

#[tokio::test]
async fn unique_ledger_key_holds_and_dropping_keeps_data() {
    let s = support::store("indexes_drop").await;
    s.ensure_indexes().await.unwrap();
    let coll = s.collection::<bson::Document>("classrooms");
    coll.insert_one(bson::doc! {"name": "CS-101"})
        .await
        .unwrap();
    let dup = coll
        .insert_one(bson::doc! {"name": "CS-101"})
        .await
        .unwrap_err();
    assert!(autovolt::store::error::is_duplicate_key(&dup));

    let dropped = s.drop_schema_indexes().await.unwrap();
    assert_eq!(dropped.len(), index_specs(s.capabilities()).len());
    assert_eq!(coll.count_documents(bson::doc! {}).await.unwrap(), 1);
    assert_eq!(s.index_names("classrooms").await.unwrap(), ["_id_"]);
}

#[tokio::test]
async fn pruning_deletes_only_older_telemetry() {
    let s = support::store("prune").await;
    let t = chrono::Utc::now();
    let events = s.collection::<bson::Document>("telemetryevents");
    for (i, days) in [800i64, 731, 729, 1].iter().enumerate() {
        let at = bson::DateTime::from_chrono(t - chrono::Duration::days(*days));
        events
            .insert_one(bson::doc! {"mac": "A4:CF:12:00:00:01", "event_hash": i.to_string(), "received_at": at})
            .await
            .unwrap();
    }
    let cut = t - chrono::Duration::days(730);
    assert_eq!(s.prune_telemetry(cut, true).await.unwrap(), 2);
    assert_eq!(events.count_documents(bson::doc! {}).await.unwrap(), 4);
    assert_eq!(s.prune_telemetry(cut, false).await.unwrap(), 2);
    assert_eq!(events.count_documents(bson::doc! {}).await.unwrap(), 2);
}
