//! Account administration against a real server: who may change accounts, every change logged,
//! and the last active super-admin kept, also when two admins demote each other at once.

mod support;

use autovolt::domain::user::AccountRefusal;
use autovolt::domain::{ActivityLog, Instant, Role};
use autovolt::store::{
    AccountError, AccountOutcome, ActivityFilter, Admin, AuthError, NewUser, Store, StoreError,
};
use bson::doc;

const PW: &str = "correct horse";

fn new(name: &str, email: &str, role: Role) -> NewUser {
    NewUser {
        name: name.into(),
        email: email.into(),
        password: PW.into(),
        role,
    }
}

async fn store(label: &str) -> Store {
    let s = support::store(label).await;
    s.migrate_up(None, false).await.unwrap();
    s
}

fn now() -> Instant {
    autovolt::domain::dates::now_millis()
}

async fn entries(s: &Store, action: &str) -> Vec<ActivityLog> {
    let filter = ActivityFilter {
        action: Some(action.into()),
        ..ActivityFilter::default()
    };
    s.recent_activity(100, None, &filter).await.unwrap().rows
}

async fn active_super_admins(s: &Store) -> u64 {
    s.collection::<bson::Document>("users")
        .count_documents(doc! {"role": "super-admin", "isActive": {"$ne": false}})
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_admin_creates_the_first_super_admin_and_each_change_is_logged() {
    let s = store("admin_first").await;
    let db = Admin::database("priya");
    s.create_account(&db, &new("Asha Rao", " Asha@Campus.EDU ", Role::SuperAdmin))
        .await
        .unwrap();
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert_eq!(u.role, Role::SuperAdmin);
    assert!(
        u.password.starts_with("$2b$"),
        "bcrypt, as the sign-in reads"
    );

    let dup = s
        .create_account(&db, &new("Other", "ASHA@campus.edu", Role::User))
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, AccountError::Store(StoreError::Duplicate(m)) if m.contains("asha@campus.edu")),
        "{dup:?}"
    );

    let logged = entries(&s, "user_created").await;
    assert_eq!(logged.len(), 1, "the refused duplicate is not logged");
    let e = &logged[0];
    assert_eq!(e.user_name.as_deref(), Some("priya"));
    assert_eq!(e.user_id, None);
    let ctx = e.context.clone().unwrap();
    assert_eq!(ctx["account"], "asha@campus.edu");
    assert_eq!(ctx["role"], "super-admin");
    assert_eq!(ctx["by"], "database administrator");
    assert!(!ctx.to_string().contains(PW), "no password in the log");

    // The account just made signs in as an admin, and its changes carry its id.
    let asha = s.sign_in_admin("asha@campus.edu", PW, now()).await.unwrap();
    s.create_account(&asha, &new("Ravi Kumar", "ravi@campus.edu", Role::User))
        .await
        .unwrap();
    let logged = entries(&s, "user_created").await;
    assert_eq!(logged[0].user_id, u.id);
    assert_eq!(logged[0].user_name.as_deref(), Some("Asha Rao"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_who_sign_in_may_manage_accounts_and_admins_leave_super_admins_alone() {
    let s = store("admin_rules").await;
    let db = Admin::database("priya");
    for (name, email, role) in [
        ("Asha Rao", "asha@campus.edu", Role::SuperAdmin),
        ("Meera Iyer", "meera@campus.edu", Role::Admin),
        ("Ravi Kumar", "ravi@campus.edu", Role::User),
    ] {
        s.create_account(&db, &new(name, email, role))
            .await
            .unwrap();
    }

    // A user signs in fine but is not an admin.
    let e = s
        .sign_in_admin("ravi@campus.edu", PW, now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::Refused(AccountRefusal::NotAnAdmin(ref r)) if r == "user"),
        "{e:?}"
    );
    // A wrong password is the sign-in's refusal, and counts towards the lockout.
    let e = s
        .sign_in_admin("meera@campus.edu", "not her password", now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::SignIn(AuthError::WrongCredentials)),
        "{e:?}"
    );
    assert!(!e.to_string().contains("not her password"));
    let meera = s.user_by_email("meera@campus.edu").await.unwrap().unwrap();
    assert_eq!(meera.login_attempts, 1);

    let admin = s
        .sign_in_admin("meera@campus.edu", PW, now())
        .await
        .unwrap();
    assert_eq!(s.accounts(&admin).await.unwrap().len(), 3);
    s.create_account(&admin, &new("Kiran Das", "kiran@campus.edu", Role::Admin))
        .await
        .unwrap();
    for e in [
        s.create_account(&admin, &new("Sam Roy", "sam@campus.edu", Role::SuperAdmin))
            .await
            .unwrap_err(),
        s.set_role(&admin, "ravi@campus.edu", Role::SuperAdmin)
            .await
            .unwrap_err(),
        s.set_password(&admin, "asha@campus.edu", "a new password")
            .await
            .unwrap_err(),
        s.set_active(&admin, "asha@campus.edu", false)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(e, AccountError::Refused(AccountRefusal::SuperAdminOnly)),
            "{e:?}"
        );
    }
    assert!(s.user_by_email("sam@campus.edu").await.unwrap().is_none());
    let asha = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert!(asha.is_active && asha.role == Role::SuperAdmin);
    assert!(s.authenticate("asha@campus.edu", PW, now()).await.is_ok());

    let e = s
        .set_role(&admin, "nobody@campus.edu", Role::User)
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::NoSuchAccount(ref m) if m == "nobody@campus.edu"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_or_disabled_admin_cannot_act() {
    let s = store("admin_locked").await;
    let db = Admin::database("priya");
    s.create_account(&db, &new("Meera Iyer", "meera@campus.edu", Role::Admin))
        .await
        .unwrap();
    for _ in 0..5 {
        let _ = s
            .sign_in_admin("meera@campus.edu", "guessing!", now())
            .await;
    }
    let e = s
        .sign_in_admin("meera@campus.edu", PW, now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::SignIn(AuthError::Locked { .. })),
        "{e:?}"
    );

    assert_eq!(
        s.unlock_account(&db, "meera@campus.edu").await.unwrap(),
        AccountOutcome::Applied
    );
    let u = s.user_by_email("meera@campus.edu").await.unwrap().unwrap();
    assert_eq!((u.login_attempts, u.lock_until), (0, None));
    assert_eq!(
        s.unlock_account(&db, "meera@campus.edu").await.unwrap(),
        AccountOutcome::AlreadySo
    );
    assert_eq!(entries(&s, "user_unlocked").await.len(), 1);
    assert!(s.sign_in_admin("meera@campus.edu", PW, now()).await.is_ok());

    s.set_active(&db, "meera@campus.edu", false).await.unwrap();
    let e = s
        .sign_in_admin("meera@campus.edu", PW, now())
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::SignIn(AuthError::Inactive)),
        "{e:?}"
    );
    s.set_active(&db, "meera@campus.edu", true).await.unwrap();
    assert!(s.sign_in_admin("meera@campus.edu", PW, now()).await.is_ok());
    assert_eq!(entries(&s, "user_disabled").await.len(), 1);
    assert_eq!(entries(&s, "user_enabled").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_roles_change_and_are_logged_without_the_password() {
    let s = store("admin_passwd").await;
    let db = Admin::database("priya");
    s.create_account(&db, &new("Ravi Kumar", "ravi@campus.edu", Role::User))
        .await
        .unwrap();
    let e = s
        .set_password(&db, "ravi@campus.edu", "short")
        .await
        .unwrap_err();
    assert!(
        matches!(e, AccountError::Store(StoreError::Invalid(_))),
        "{e:?}"
    );
    assert!(!e.to_string().contains("short\""));
    s.set_password(&db, "RAVI@campus.edu", "battery staple")
        .await
        .unwrap();
    assert!(s
        .authenticate("ravi@campus.edu", "battery staple", now())
        .await
        .is_ok());
    assert!(s.authenticate("ravi@campus.edu", PW, now()).await.is_err());
    let logged = entries(&s, "user_password_changed").await;
    assert_eq!(logged.len(), 1);
    assert!(!serde_json::to_string(&logged[0])
        .unwrap()
        .contains("battery staple"));

    assert_eq!(
        s.set_role(&db, "ravi@campus.edu", Role::Admin)
            .await
            .unwrap(),
        AccountOutcome::Applied
    );
    assert_eq!(
        s.set_role(&db, "ravi@campus.edu", Role::Admin)
            .await
            .unwrap(),
        AccountOutcome::AlreadySo
    );
    let logged = entries(&s, "user_role_changed").await;
    assert_eq!(
        logged.len(),
        1,
        "a change that changes nothing is not logged"
    );
    let ctx = logged[0].context.clone().unwrap();
    assert_eq!(
        (ctx["from"].as_str(), ctx["to"].as_str()),
        (Some("user"), Some("admin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_active_super_admin_is_neither_disabled_nor_demoted() {
    let s = store("admin_last").await;
    let db = Admin::database("priya");
    s.create_account(&db, &new("Asha Rao", "asha@campus.edu", Role::SuperAdmin))
        .await
        .unwrap();
    // A disabled super-admin does not count.
    s.create_account(&db, &new("Old Boss", "old@campus.edu", Role::SuperAdmin))
        .await
        .unwrap();
    s.set_active(&db, "old@campus.edu", false).await.unwrap();

    let asha = s.sign_in_admin("asha@campus.edu", PW, now()).await.unwrap();
    for e in [
        s.set_active(&asha, "asha@campus.edu", false)
            .await
            .unwrap_err(),
        s.set_role(&db, "asha@campus.edu", Role::Admin)
            .await
            .unwrap_err(),
        s.set_role(&db, "asha@campus.edu", Role::User)
            .await
            .unwrap_err(),
    ] {
        assert!(
            matches!(e, AccountError::LastSuperAdmin(ref m) if m == "asha@campus.edu"),
            "{e:?}"
        );
        assert!(e
            .to_string()
            .contains("make another account super-admin first"));
    }
    let u = s.user_by_email("asha@campus.edu").await.unwrap().unwrap();
    assert!(u.is_active && u.role == Role::SuperAdmin);
    assert!(entries(&s, "user_role_changed").await.is_empty());

    // With a second active one, either may go, and then the other is the last.
    s.set_active(&db, "old@campus.edu", true).await.unwrap();
    s.set_role(&asha, "asha@campus.edu", Role::Admin)
        .await
        .unwrap();
    let e = s
        .set_active(&db, "old@campus.edu", false)
        .await
        .unwrap_err();
    assert!(matches!(e, AccountError::LastSuperAdmin(_)), "{e:?}");
    assert_eq!(active_super_admins(&s).await, 1);
    // The lease is given back after each change.
    let locks = s
        .collection::<bson::Document>("accountlocks")
        .count_documents(doc! {})
        .await
        .unwrap();
    assert_eq!(locks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_super_admins_demoting_each_other_at_once_leave_one() {
    // Two connections, as two processes would have: nothing in one client serialises them.
    let uri = support::fresh_database_uri("admin_race");
    let connect = || Store::connect(&uri, std::time::Duration::from_secs(10));
    let s = connect().await.unwrap();
    s.migrate_up(None, false).await.unwrap();
    let s_other = connect().await.unwrap();
    let db = Admin::database("priya");
    for (name, email) in [
        ("Asha Rao", "asha@campus.edu"),
        ("Meera Iyer", "meera@campus.edu"),
    ] {
        s.create_account(&db, &new(name, email, Role::SuperAdmin))
            .await
            .unwrap();
    }
    let asha = s.sign_in_admin("asha@campus.edu", PW, now()).await.unwrap();
    let meera = s
        .sign_in_admin("meera@campus.edu", PW, now())
        .await
        .unwrap();
    for round in 0..6 {
        let (s1, s2) = (s.clone(), s_other.clone());
        let (a, m) = (asha.clone(), meera.clone());
        let one = tokio::spawn(async move {
            if round % 2 == 0 {
                s1.set_role(&a, "meera@campus.edu", Role::Admin).await
            } else {
                s1.set_active(&a, "meera@campus.edu", false).await
            }
        });
        let two = tokio::spawn(async move {
            if round % 2 == 0 {
                s2.set_role(&m, "asha@campus.edu", Role::Admin).await
            } else {
                s2.set_active(&m, "asha@campus.edu", false).await
            }
        });
        let results = [one.await.unwrap(), two.await.unwrap()];
        let applied = results.iter().filter(|r| r.is_ok()).count();
        let last = results
            .iter()
            .filter(|r| matches!(r, Err(AccountError::LastSuperAdmin(_))))
            .count();
        assert_eq!((applied, last), (1, 1), "round {round}: {results:?}");
        assert_eq!(active_super_admins(&s).await, 1, "round {round}");
        // Back to two for the next round.
        for email in ["asha@campus.edu", "meera@campus.edu"] {
            s.set_role(&db, email, Role::SuperAdmin).await.unwrap();
            s.set_active(&db, email, true).await.unwrap();
        }
        assert_eq!(active_super_admins(&s).await, 2);
    }
}
