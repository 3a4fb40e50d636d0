//! Account administration (`users`): who may change accounts, the changes themselves, an activity
//! entry for each, and the rule that the last active super-admin stays.
//!
//! Who acts is an [`Admin`]: an account that signed in with the dashboard's own check
//! ([`Store::authenticate`], lockout included) and holds the admin or super-admin role, or a
//! person with the database's own credentials who says so ([`Admin::database`]). The role rules
//! are [`crate::domain::user::may_change`].
//!
//! The last active super-admin: a change that would leave an account no longer an active
//! super-admin runs under a lease (`accountlocks`, `_id: "super-admins"`, taken by a primary-key
//! insert, which is atomic on every server), counts the other active super-admins, and writes
//! with a filter on the state it read (still an active super-admin). Two such changes from
//! `autovolt` processes are serialised, so two admins demoting each other at once leave one
//! super-admin: the second finds it is the last. The guarantee holds while the change finishes
//! within the lease (three quick round trips against a lease of a minute by default). A writer
//! that does not take the lease (the Node back end) is not covered.

use super::lease::LockHolder;
use super::users::{AuthError, NewUser, BCRYPT_COST};
use super::{collections, Store, StoreError};
use crate::domain::activity::action;
use crate::domain::user::{may_change, AccountChange, AccountRefusal, Acting};
use crate::domain::{dates, validation, ActivityLog, Id, Instant, Role, TriggeredBy, User};
use bson::{doc, Document};

/// Where the lease over super-admin removals lives (**Ours**).
pub const ACCOUNT_LOCKS: &str = "accountlocks";
const SUPER_ADMINS_LOCK: &str = "super-admins";
/// How long a removal waits for another one to finish before saying it is busy.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Who changes accounts. Made only by [`Store::sign_in_admin`] (an admin account that signed in)
/// or [`Admin::database`] (someone using the database's own credentials, explicitly).
#[derive(Debug, Clone)]
pub struct Admin {
    kind: AdminKind,
}

#[derive(Debug, Clone)]
enum AdminKind {
    Account(Box<User>),
    Database { name: String },
}

impl Admin {
    /// A person who administers the database itself and says so (`--as-database-admin`): with
    /// the database's credentials they could write `users` directly, so the role rules do not
    /// bind them, but their changes are logged under `name` all the same.
    pub fn database(name: &str) -> Admin {
        Admin {
            kind: AdminKind::Database {
                name: name.to_string(),
            },
        }
    }

    /// The role the rules judge by.
    pub fn acting(&self) -> Acting {
        match &self.kind {
            AdminKind::Account(u) => Acting::Account(u.role.clone()),
            AdminKind::Database { .. } => Acting::Database,
        }
    }

    /// The name written in the activity log.
    pub fn name(&self) -> &str {
        match &self.kind {
            AdminKind::Account(u) => &u.name,
            AdminKind::Database { name } => name,
        }
    }

    /// "Asha Rao <asha@campus.edu> (super-admin)", "priya (database administrator)".
    pub fn describe(&self) -> String {
        match &self.kind {
            AdminKind::Account(u) => format!("{} <{}> ({})", u.name, u.email, u.role),
            AdminKind::Database { name } => format!("{name} (database administrator)"),
        }
    }

    fn user_id(&self) -> Option<Id> {
        match &self.kind {
            AdminKind::Account(u) => u.id,
            AdminKind::Database { .. } => None,
        }
    }
}

/// Why an account change did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The sign-in was refused (wrong password, locked, disabled).
    #[error(transparent)]
    SignIn(AuthError),
    #[error(transparent)]
    Refused(#[from] AccountRefusal),
    #[error("{0} is the last active super-admin: make another account super-admin first (`autovolt user role EMAIL super-admin`)")]
    LastSuperAdmin(String),
    #[error("no account with e-mail {0}; `autovolt user list` shows them")]
    NoSuchAccount(String),
    #[error("another change to the super-admins is under way ({0}); try again in a moment")]
    Busy(String),
    #[error("account {0} changed while this change was made; look at it again (`autovolt user list`) and retry")]
    Changed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<AuthError> for AccountError {
    fn from(e: AuthError) -> AccountError {
        match e {
            AuthError::Store(s) => AccountError::Store(s),
            other => AccountError::SignIn(other),
        }
    }
}

/// Whether a change was made or the account already was so (no activity entry then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOutcome {
    Applied,
    AlreadySo,
}

impl Store {
    /// Signs `email` in with the dashboard's own check (a wrong password counts towards the
    /// lockout, a locked or disabled account is refused) and accepts it as an [`Admin`] only if it
    /// is an admin or super-admin.
    pub async fn sign_in_admin(
        &self,
        email: &str,
        password: &str,
        now: Instant,
    ) -> Result<Admin, AccountError> {
        let user = self.authenticate(email, password, now).await?;
        may_change(
            &Acting::Account(user.role.clone()),
            None,
            &AccountChange::List,
        )?;
        Ok(Admin {
            kind: AdminKind::Account(Box::new(user)),
        })
    }

    /// Every account, by e-mail (unreadable ones are skipped and counted, as everywhere).
    pub async fn accounts(&self, by: &Admin) -> Result<Vec<User>, AccountError> {
        may_change(&by.acting(), None, &AccountChange::List)?;
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::USERS)
            .find(doc! {})
            .await
            .map_err(StoreError::from)?;
        let mut users: Vec<User> = self.read_all(collections::USERS, cursor).await?;
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    /// Creates an account (the rules of [`Store::insert_user`]) and logs `user_created`.
    pub async fn create_account(&self, by: &Admin, new: &NewUser) -> Result<Id, AccountError> {
        may_change(
            &by.acting(),
            None,
            &AccountChange::Create {
                role: new.role.clone(),
            },
        )?;
        let id = self.insert_user(new).await?;
        let email = validation::email(&new.email).map_err(StoreError::from)?;
        self.log_account(
            by,
            action::USER_CREATED,
            serde_json::json!({"account": email, "role": new.role.as_str()}),
        )
        .await?;
        Ok(id)
    }

    /// Sets a new password (at least 8 characters, bcrypt) and logs `user_password_changed`.
    pub async fn set_password(
        &self,
        by: &Admin,
        email: &str,
        password: &str,
    ) -> Result<AccountOutcome, AccountError> {
        validation::password(password).map_err(StoreError::from)?;
        let target = self.account(email).await?;
        may_change(&by.acting(), Some(&target.role), &AccountChange::Password)?;
        let plain = password.to_string();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(plain, BCRYPT_COST))
            .await
            .map_err(|e| StoreError::Conflict(format!("cannot hash the password: {e}")))?
            .map_err(|e| StoreError::Conflict(format!("cannot hash the password: {e}")))?;
        self.update_account(&target, doc! {}, doc! {"$set": {"password": hash}})
            .await?;
        self.log_account(
            by,
            action::USER_PASSWORD_CHANGED,
            serde_json::json!({"account": target.email}),
        )
        .await?;
        Ok(AccountOutcome::Applied)
    }

    /// Gives an account another role; the last active super-admin keeps its role.
    pub async fn set_role(
        &self,
        by: &Admin,
        email: &str,
        role: Role,
    ) -> Result<AccountOutcome, AccountError> {
        let target = self.account(email).await?;
        let change = AccountChange::Role { to: role.clone() };
        may_change(&by.acting(), Some(&target.role), &change)?;
        if target.role == role {
            return Ok(AccountOutcome::AlreadySo);
        }
        let update = doc! {"$set": {"role": role.as_str()}};
        if change.removes_super_admin(&target) {
            self.remove_super_admin(&target, update).await?;
        } else {
            self.update_account(&target, doc! {"role": target.role.as_str()}, update)
                .await?;
        }
        self.log_account(
            by,
            action::USER_ROLE_CHANGED,
            serde_json::json!({"account": target.email, "from": target.role.as_str(), "to": role.as_str()}),
        )
        .await?;
        Ok(AccountOutcome::Applied)
    }

    /// Enables or disables an account (`isActive`); the last active super-admin stays enabled.
    pub async fn set_active(
        &self,
        by: &Admin,
        email: &str,
        active: bool,
    ) -> Result<AccountOutcome, AccountError> {
        let target = self.account(email).await?;
        let change = if active {
            AccountChange::Enable
        } else {
            AccountChange::Disable
        };
        may_change(&by.acting(), Some(&target.role), &change)?;
        if target.is_active == active {
            return Ok(AccountOutcome::AlreadySo);
        }
        let update = doc! {"$set": {"isActive": active}};
        if change.removes_super_admin(&target) {
            self.remove_super_admin(&target, update).await?;
        } else {
            self.update_account(&target, doc! {}, update).await?;
        }
        let what = if active {
            action::USER_ENABLED
        } else {
            action::USER_DISABLED
        };
        self.log_account(by, what, serde_json::json!({"account": target.email}))
            .await?;
        Ok(AccountOutcome::Applied)
    }

    /// Clears the failed sign-ins and the lock of an account.
    pub async fn unlock_account(
        &self,
        by: &Admin,
        email: &str,
    ) -> Result<AccountOutcome, AccountError> {
        let target = self.account(email).await?;
        may_change(&by.acting(), Some(&target.role), &AccountChange::Unlock)?;
        if target.login_attempts == 0 && target.lock_until.is_none() {
            return Ok(AccountOutcome::AlreadySo);
        }
        self.update_account(
            &target,
            doc! {},
            doc! {"$set": {"loginAttempts": 0}, "$unset": {"lockUntil": ""}},
        )
        .await?;
        self.log_account(
            by,
            action::USER_UNLOCKED,
            serde_json::json!({"account": target.email, "failed_sign_ins": target.login_attempts}),
        )
        .await?;
        Ok(AccountOutcome::Applied)
    }

    /// The account with this e-mail, or [`AccountError::NoSuchAccount`].
    async fn account(&self, email: &str) -> Result<User, AccountError> {
        let email = validation::email(email).map_err(StoreError::from)?;
        self.user_by_email(&email)
            .await?
            .filter(|u| u.id.is_some())
            .ok_or(AccountError::NoSuchAccount(email))
    }

    /// Applies `update` (plus `updatedAt`) to `target` if it still matches `guard`.
    async fn update_account(
        &self,
        target: &User,
        guard: Document,
        mut update: Document,
    ) -> Result<(), AccountError> {
        let mut filter = doc! {"_id": target.id};
        filter.extend(guard);
        let now = bson::DateTime::from_chrono(dates::now_millis());
        if !update.contains_key("$set") {
            update.insert("$set", doc! {});
        }
        if let Ok(set) = update.get_document_mut("$set") {
            set.insert("updatedAt", now);
        }
        let r = self
            .collection::<Document>(collections::USERS)
            .update_one(filter, update)
            .await
            .map_err(StoreError::from)?;
        if r.matched_count == 0 {
            return Err(AccountError::Changed(target.email.clone()));
        }
        Ok(())
    }

    /// Applies a change that leaves `target` no longer an active super-admin, under the lease,
    /// if another active super-admin remains.
    async fn remove_super_admin(
        &self,
        target: &User,
        update: Document,
    ) -> Result<(), AccountError> {
        let owner = lease_owner();
        let lease =
            chrono::Duration::from_std(self.lock_lease()).unwrap_or(chrono::Duration::seconds(60));
        // Another removal holds the lease for a few round trips: wait for it (its outcome may
        // make this one the last super-admin), but not for a holder that is stuck.
        let mut wait = std::time::Duration::from_millis(20);
        let started = std::time::Instant::now();
        loop {
            match self
                .take_lease(ACCOUNT_LOCKS, SUPER_ADMINS_LOCK, &owner, doc! {}, lease)
                .await?
            {
                Ok(()) => break,
                Err(holder) if started.elapsed() >= LEASE_WAIT => return Err(busy(&holder)),
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_millis(500));
                }
            }
        }
        let result = async {
            let others = self
                .collection::<Document>(collections::USERS)
                .count_documents(doc! {
                    "role": Role::SuperAdmin.as_str(),
                    "isActive": {"$ne": false},
                    "_id": {"$ne": target.id},
                })
                .await
                .map_err(StoreError::from)?;
            if others == 0 {
                return Err(AccountError::LastSuperAdmin(target.email.clone()));
            }
            self.update_account(
                target,
                doc! {"role": Role::SuperAdmin.as_str(), "isActive": {"$ne": false}},
                update,
            )
            .await
        }
        .await;
        let released = self
            .release_lease(ACCOUNT_LOCKS, SUPER_ADMINS_LOCK, &owner)
            .await;
        result?;
        released?;
        Ok(())
    }

    async fn log_account(
        &self,
        by: &Admin,
        what: &str,
        mut context: serde_json::Value,
    ) -> Result<(), StoreError> {
        if let AdminKind::Database { .. } = by.kind {
            context["by"] = "database administrator".into();
        }
        let mut entry = ActivityLog::new(what, TriggeredBy::User, dates::now_millis());
        entry.user_id = by.user_id();
        entry.user_name = Some(by.name().to_string());
        entry.context = Some(context);
        self.log_activity(&entry).await?;
        Ok(())
    }
}

fn busy(holder: &LockHolder) -> AccountError {
    AccountError::Busy(format!("held by {}", holder.owner))
}

fn lease_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}:{}", std::process::id(), Id::new())
}
