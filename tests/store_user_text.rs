//! What people type is data, never a query operator: names, e-mail addresses, filters and notes that
//! look like MongoDB operators (`$gt`, `{"$ne": ""}`) match only themselves.

mod support;

use autovolt::domain::activity::action;
use autovolt::domain::tariff::{TariffChange, TariffTarget};
use autovolt::domain::{ActivityLog, Actor, Classroom, Role, TriggeredBy};
use autovolt::store::{ActivityFilter, AuthError, NewUser, StoreError};
use chrono::Utc;

const LOOKS_LIKE_QUERIES: &[&str] = &[
    "$gt",
    "$ne",
    "{\"$gt\": \"\"}",
    "{\"$ne\": null}",
    "{$where: '1 == 1'}",
    ".*",
    "$",
];

#[tokio::test]
async fn operators_typed_by_people_match_only_themselves() {
    let store = support::store("user_text").await;
    store.ensure_indexes().await.unwrap();
    store
        .insert_user(&NewUser {
            name: "Asha Rao".into(),
            email: "asha@campus.edu".into(),
            password: "correct horse".into(),
            role: Role::Admin,
        })
        .await
        .unwrap();
    let room = |name: &str| Classroom {
        id: None,
        name: name.into(),
        building: None,
        floor: None,
        created_at: None,
        updated_at: None,
    };
    store.insert_classroom(&room("CS-101")).await.unwrap();
    // A classroom really called "$ne" is a name like any other.
    store.insert_classroom(&room("$ne")).await.unwrap();
    let mut entry = ActivityLog::new(action::ON, TriggeredBy::User, Utc::now());
    entry.classroom = Some("CS-101".into());
    store.log_activity(&entry).await.unwrap();

    for text in LOOKS_LIKE_QUERIES {
        // Sign-in: no account matches, and the real one's failure count is untouched.
        let err = store
            .authenticate(text, "correct horse", Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::WrongCredentials), "{text}: {err}");

        let found = store.classroom_named(text).await;
        if *text == "$ne" {
            assert_eq!(found.unwrap().name, "$ne");
        } else {
            assert!(
                matches!(found, Err(StoreError::NotFound(_))),
                "{text}: {found:?}"
            );
        }
        let device = store.device_named(text).await;
        assert!(
            matches!(device, Err(StoreError::NotFound(_))),
            "{text}: {device:?}"
        );
        let filter = ActivityFilter {
            classroom: Some(text.to_string()),
            action: Some(text.to_string()),
            ..Default::default()
        };
        let page = store.recent_activity(10, None, &filter).await.unwrap();
        assert!(page.rows.is_empty(), "{text}: {:?}", page.rows);
    }
    let asha = store
        .user_by_email("asha@campus.edu")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(asha.login_attempts, 0);

    // Notes and names are stored as typed.
    let note = "{\"$set\": {\"cost_per_kwh\": 0}}";
    let version = store
        .set_tariff(&TariffChange {
            price: 8.0,
            target: TariffTarget::Classroom("$ne".into()),
            from: None,
            note: Some(note.into()),
            by: Actor::at_database("$where"),
        })
        .await
        .unwrap();
    assert_eq!(version.notes.as_deref(), Some(note));
    assert_eq!(version.classroom.as_deref(), Some("$ne"));
    let stored = store.cost_versions(None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].notes.as_deref(), Some(note));
    assert_eq!(stored[0].created_by.as_ref().unwrap().username, "$where");
}
