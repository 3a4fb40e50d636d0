//! Users: creation rules, bcrypt compatibility, the lockout, and lost-update safety.

mod support;

use autovolt::domain::{Instant, Role};
use autovolt::store::{AuthError, NewUser, Store, StoreError};
use bson::doc;
use chrono::{Duration, TimeZone, Utc};

const PASSWORD: &str = "correct horse";

async fn store_with_user(label: &str) -> Store {
    let s = support::store(label).await;
    s.ensure_indexes().await.unwrap();
    s.insert_user(&NewUser {
        name: " Asha Rao ".into(),
        email: "Asha@Campus.EDU ".into(),
        password: PASSWORD.into(),
        role: Role::Admin,
    })
    .await
    .unwrap();
    s
}

fn t0() -> Instant {
    Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
}

#[tokio::test]
async fn users_are_validated_hashed_and_unique() {
    let s = store_with_user("users_insert").await;
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert_eq!(u.name, "Asha Rao");
    assert_eq!(u.email, "asha@campus.edu");
    assert!(u.password.starts_with("$2b$10$"), "{}", u.password);
    assert_ne!(u.password, PASSWORD);
    assert_eq!(u.login_attempts, 0);

    let dup = s
        .insert_user(&NewUser {
            name: "Other".into(),
            email: "ASHA@campus.edu".into(),
            password: "12345678".into(),
            role: Role::User,
        })
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate(_)), "{dup:?}");

    let short = NewUser {
        name: "Ravi".into(),
        email: "ravi@campus.edu".into(),
        password: "1234567".into(),
        role: Role::User,
    };
    let err = s.insert_user(&short).await.unwrap_err();
    assert!(err.to_string().contains("at least 8"), "{err}");
    assert!(!err.to_string().contains("1234567"), "{err}");
    assert!(!format!("{short:?}").contains("1234567"));
    for (name, email) in [("R", "ravi@campus.edu"), ("Ravi", "ravi@campus")] {
        let bad = NewUser {
            name: name.into(),
            email: email.into(),
            password: "12345678".into(),
            role: Role::User,
        };
        assert!(matches!(
            s.insert_user(&bad).await.unwrap_err(),
            StoreError::Invalid(_)
        ));
    }
}

#[tokio::test]
async fn sign_in_accepts_node_2a_hashes_and_records_last_login() {
    let s = support::store("users_2a").await;
    let hash = bcrypt::hash_with_result("node-made pw", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoA);
    assert!(hash.starts_with("$2a$"));
    s.collection::<bson::Document>("users")
        .insert_one(
            doc! {"name": "Node", "email": "node@campus.edu", "password": hash, "role": "user"},
        )
        .await
        .unwrap();
    let u = s
        .authenticate("NODE@campus.edu", "node-made pw", t0())
        .await
        .unwrap();
    assert_eq!(u.last_login, Some(t0()));
    assert!(u.is_active, "isActive defaults to true");
    assert!(matches!(
        s.authenticate("node@campus.edu", "wrong", t0()).await,
        Err(AuthError::WrongCredentials)
    ));
    assert!(matches!(
        s.authenticate("nobody@campus.edu", "node-made pw", t0())
            .await,
        Err(AuthError::WrongCredentials)
    ));
}

#[tokio::test]
async fn five_failures_lock_for_fifteen_minutes_then_success_resets() {
    let s = store_with_user("users_lock").await;
    for i in 1..=4 {
        let e = s
            .authenticate("asha@campus.edu", "guess-pw", t0() + Duration::seconds(i))
            .await
            .unwrap_err();
        assert!(matches!(e, AuthError::WrongCredentials), "{e:?}");
        assert!(!e.to_string().contains("guess-pw"));
    }
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert_eq!(u.login_attempts, 4);
    assert!(u.lock_until.is_none());

    let locked_at = t0() + Duration::seconds(5);
    let e = s
        .authenticate("asha@campus.edu", "guess-pw", locked_at)
        .await
        .unwrap_err();
    let AuthError::Locked { until } = e else {
        panic!("expected a lock, got {e:?}");
    };
    assert_eq!(until, locked_at + Duration::minutes(15));

    // Even the right password is refused while locked.
    let e = s
        .authenticate(
            "asha@campus.edu",
            PASSWORD,
            locked_at + Duration::minutes(14),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Locked { .. }), "{e:?}");
    assert!(!e.to_string().contains(PASSWORD));

    let later = locked_at + Duration::minutes(15) + Duration::seconds(1);
    let u = s
        .authenticate("asha@campus.edu", PASSWORD, later)
        .await
        .unwrap();
    assert_eq!(u.login_attempts, 0);
    assert_eq!(u.lock_until, None);
    assert_eq!(u.last_login, Some(later));
}

#[tokio::test]
async fn an_expired_lock_starts_a_fresh_count() {
    let s = store_with_user("users_expired").await;
    for i in 0..5 {
        let _ = s
            .authenticate("asha@campus.edu", "nope-nope", t0() + Duration::seconds(i))
            .await;
    }
    let after = t0() + Duration::minutes(30);
    let e = s
        .authenticate("asha@campus.edu", "nope-nope", after)
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::WrongCredentials), "{e:?}");
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert_eq!(u.login_attempts, 1);
    assert!(u.lock_until.is_none());
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let s = store_with_user("users_concurrent").await;
    let attempts = (0..5).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.authenticate("asha@campus.edu", "wrong-pw", t0()).await })
    });
    let results = futures::future::join_all(attempts).await;
    let locks = results
        .into_iter()
        .filter(|r| matches!(r, Ok(Err(AuthError::Locked { .. }))))
        .count();
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert_eq!(u.login_attempts, 5);
    assert!(locks >= 1);
    assert!(u.is_locked(t0() + Duration::minutes(1)));
}

#[tokio::test]
async fn inactive_users_are_refused() {
    let s = store_with_user("users_inactive").await;
    s.collection::<bson::Document>("users")
        .update_one(
            doc! {"email": "asha@campus.edu"},
            doc! {"$set": {"isActive": false}},
        )
        .await
        .unwrap();
    let e = s
        .authenticate("asha@campus.edu", PASSWORD, t0())
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::Inactive), "{e:?}");
    let e = s
        .authenticate("asha@campus.edu", "not-the-password", t0())
        .await
        .unwrap_err();
    assert!(matches!(e, AuthError::WrongCredentials), "{e:?}");
}
