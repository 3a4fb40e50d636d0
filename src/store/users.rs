//! Operators (`users`): bcrypt passwords compatible with the Node back end, and a lockout after
//! repeated failed sign-ins kept with single-document atomic updates.

use super::{collections, Store, StoreError};
use crate::domain::user::{LOCK_MINUTES, MAX_LOGIN_ATTEMPTS};
use crate::domain::{dates, validation, Id, Instant, Role, User};
use bson::{doc, Document};
use mongodb::options::ReturnDocument;

impl Store {
    /// Whether any operator account exists (from the collection's metadata).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        let n = self
            .collection::<Document>(collections::USERS)
            .estimated_document_count()
            .await?;
        Ok(n > 0)
    }
}

/// Serialises sign-ins within this process. The counting itself is an atomic `$inc` on MongoDB;
/// FerretDB 1.24.2 (SQLite) does not isolate concurrent updates of one document (concurrent `$inc`s
/// are lost), so sign-ins from one process must not overlap there.
static SIGN_IN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// bcrypt work factor for new passwords (the Node back end's default).
pub const BCRYPT_COST: u32 = 10;

/// A user to create, with the password in plain text (hashed before it is stored).
#[derive(Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub password: String,
    pub role: Role,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("name", &self.name)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in was refused. No variant carries the password.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the e-mail address or the password is wrong")]
    WrongCredentials,
    #[error("this account is locked after {MAX_LOGIN_ATTEMPTS} failed sign-ins until {until} (UTC); try again then or ask an administrator")]
    Locked { until: Instant },
    #[error("this account is disabled; ask an administrator to enable it")]
    Inactive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Creates a user: name 2–50 characters, e-mail lower-cased and unique, password ≥ 8
    /// characters stored as a bcrypt hash.
    pub async fn insert_user(&self, new: &NewUser) -> Result<Id, StoreError> {
        let name = validation::name("name", &new.name)?;
        let email = validation::email(&new.email)?;
        validation::password(&new.password)?;
        if !new.role.is_known() {
            return Err(crate::domain::ValidationError::new(
                "role",
                new.role.as_str(),
                "must be user, admin or super-admin",
            )
            .into());
        }
        // bcrypt is deliberately slow: keep it off the async workers.
        let plain = new.password.clone();
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(plain, BCRYPT_COST))
            .await
            .map_err(|e| StoreError::Conflict(format!("cannot hash the password: {e}")))?
            .map_err(|e| StoreError::Conflict(format!("cannot hash the password: {e}")))?;
        let now = dates::now_millis();
        let id = Id::new();
        let user = User {
            id: Some(id),
            name,
            email: email.clone(),
            password: hash,
            role: new.role.clone(),
            is_active: true,
            last_login: None,
            login_attempts: 0,
            lock_until: None,
            created_at: Some(now),
            updated_at: Some(now),
        };
        match self
            .collection::<User>(collections::USERS)
            .insert_one(&user)
            .await
        {
            Ok(_) => Ok(id),
            Err(e) if super::error::is_duplicate_key(&e) => Err(StoreError::Duplicate(format!(
                "a user with e-mail {email} already exists"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this e-mail; an account that cannot be read (counted in `health`) is
    /// treated as absent, so it cannot sign in.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let found = self
            .collection::<Document>(collections::USERS)
            .find_one(doc! {"email": email.trim().to_lowercase()})
            .await?;
        Ok(found.and_then(|d| self.decode(collections::USERS, d)))
    }

    /// Checks an e-mail and password at `now`. A wrong password counts a failed attempt (an
    /// atomic `$inc`, so concurrent sign-ins cannot lose one); the attempt that reaches
    /// [`MAX_LOGIN_ATTEMPTS`] locks the account for [`LOCK_MINUTES`]. Success resets the count and
    /// records `lastLogin`; a disabled account is refused even with the right password.
    pub async fn authenticate(
        &self,
        email: &str,
        password: &str,
        now: Instant,
    ) -> Result<User, AuthError> {
        let _one_at_a_time = SIGN_IN.lock().await;
        let users = self.collection::<Document>(collections::USERS);
        let Some(user) = self.user_by_email(email).await? else {
            return Err(AuthError::WrongCredentials);
        };
        let id = user.id.ok_or(AuthError::WrongCredentials)?;
        if let Some(until) = user.lock_until.filter(|&u| u > now) {
            return Err(AuthError::Locked { until });
        }
        let now_b = bson::DateTime::from_chrono(now);
        if let Some(expired) = user.lock_until {
            // The lock has run out: start counting afresh, once, whoever gets here first.
            users
                .update_one(
                    doc! {"_id": id, "lockUntil": bson::DateTime::from_chrono(expired)},
                    doc! {"$set": {"loginAttempts": 0, "updatedAt": now_b}, "$unset": {"lockUntil": ""}},
                )
                .await
                .map_err(StoreError::from)?;
        }
        let (plain, hash) = (password.to_string(), user.password.clone());
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(plain, &hash))
            .await
            .map_err(|e| StoreError::Conflict(format!("cannot check the password: {e}")))?;
        let matches = match verified {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(user = %user.email, error = %e, "stored password hash is not a bcrypt hash");
                false
            }
        };
        // Only someone who knows the password learns that the account is disabled.
        if matches && !user.is_active {
            return Err(AuthError::Inactive);
        }
        if matches {
            let updated = users
                .find_one_and_update(
                    doc! {"_id": id},
                    doc! {
                        "$set": {"loginAttempts": 0, "lastLogin": now_b, "updatedAt": now_b},
                        "$unset": {"lockUntil": ""},
                    },
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(StoreError::from)?;
            return updated
                .and_then(|d| self.decode(collections::USERS, d))
                .ok_or(AuthError::WrongCredentials);
        }
        let counted = users
            .find_one_and_update(
                doc! {"_id": id},
                doc! {"$inc": {"loginAttempts": 1}, "$set": {"updatedAt": now_b}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(StoreError::from)?;
        let attempts = counted
            .and_then(|d| self.decode::<User>(collections::USERS, d))
            .map(|u| u.login_attempts);
        match attempts {
            Some(n) if n >= MAX_LOGIN_ATTEMPTS => {
                let until = now + chrono::Duration::minutes(LOCK_MINUTES);
                users
                    .update_one(
                        doc! {"_id": id},
                        doc! {"$set": {"lockUntil": bson::DateTime::from_chrono(until)}},
                    )
                    .await
                    .map_err(StoreError::from)?;
                Err(AuthError::Locked {
                    until: dates::truncate_millis(until),
                })
            }
            _ => Err(AuthError::WrongCredentials),
        }
    }
}
