//! Operators (`users`).

use super::{dates, Id, Instant};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    /// What an operator may do. An unknown role read from the database is the least privileged.
    #[derive(Default)]
    pub enum Role {
        #[default]
        User => "user",
        Admin => "admin",
        SuperAdmin => "super-admin",
    }
}

impl Role {
    /// May switch relays.
    pub fn may_toggle(&self) -> bool {
        matches!(self, Role::User | Role::Admin | Role::SuperAdmin)
    }

    /// May edit tariffs and run the aggregation.
    pub fn may_administer(&self) -> bool {
        matches!(self, Role::Admin | Role::SuperAdmin)
    }
}

/// Failed sign-ins after which an account is locked.
pub const MAX_LOGIN_ATTEMPTS: i32 = 5;
/// How long a locked account stays locked.
pub const LOCK_MINUTES: i64 = 15;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    pub name: String,
    pub email: String,
    /// bcrypt hash (`$2a$`/`$2b$`); never the plain text.
    pub password: String,
    #[serde(default)]
    pub role: Role,
    #[serde(rename = "isActive", default = "yes")]
    pub is_active: bool,
    #[serde(rename = "lastLogin", with = "dates::optional", default)]
    pub last_login: Option<Instant>,
    #[serde(
        rename = "loginAttempts",
        default,
        deserialize_with = "super::lenient::int32"
    )]
    pub login_attempts: i32,
    #[serde(rename = "lockUntil", with = "dates::optional", default)]
    pub lock_until: Option<Instant>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

fn yes() -> bool {
    true
}

impl User {
    /// Whether the account is locked at `now`.
    pub fn is_locked(&self, now: Instant) -> bool {
        self.lock_until.is_some_and(|t| t > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_role_is_least_privileged_and_kept() {
        let role: Role = serde_json::from_str("\"auditor\"").unwrap();
        assert_eq!(role, Role::Other("auditor".into()));
        assert!(!role.may_toggle());
        assert!(!role.may_administer());
        assert_eq!(serde_json::to_string(&role).unwrap(), "\"auditor\"");
    }

    #[test]
    fn known_roles() {
        assert!(Role::User.may_toggle() && !Role::User.may_administer());
        assert!(Role::Admin.may_administer());
        assert_eq!(Role::parse("super-admin"), Role::SuperAdmin);
    }
}
