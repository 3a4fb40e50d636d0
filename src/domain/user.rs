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

/// Who changes an account: a signed-in account of some role, or a person using the database's own
/// credentials, who could write the collection directly anyway and says so explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acting {
    Account(Role),
    Database,
}

/// What is done to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountChange {
    /// Listing the accounts.
    List,
    Create {
        role: Role,
    },
    Password,
    Role {
        to: Role,
    },
    Disable,
    Enable,
    Unlock,
}

impl AccountChange {
    /// Whether the change, applied to `target`, leaves it no longer an active super-admin.
    pub fn removes_super_admin(&self, target: &User) -> bool {
        target.role == Role::SuperAdmin
            && target.is_active
            && match self {
                AccountChange::Disable => true,
                AccountChange::Role { to } => *to != Role::SuperAdmin,
                _ => false,
            }
    }
}

/// Why a change to an account is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    #[error("only an admin or a super-admin may manage accounts (this account is a {0}); sign in as one, or use --as-database-admin with the database's own credentials")]
    NotAnAdmin(String),
    #[error(
        "only a super-admin may create, change or grant a super-admin account; sign in as one"
    )]
    SuperAdminOnly,
    #[error("role {0:?} is not one of user, admin, super-admin")]
    UnknownRole(String),
}

/// Whether `by` may make `change` to an account whose role is now `target` (`None` for a new
/// account or a listing). Admins manage users and admins; only a super-admin (or the database's
/// own administrator) touches super-admin accounts or grants the role. The last active
/// super-admin is guarded separately, against the accounts as stored
/// ([`AccountChange::removes_super_admin`]).
pub fn may_change(
    by: &Acting,
    target: Option<&Role>,
    change: &AccountChange,
) -> Result<(), AccountRefusal> {
    let granted = match change {
        AccountChange::Create { role } | AccountChange::Role { to: role } => Some(role),
        _ => None,
    };
    if let Some(role) = granted.filter(|r| !r.is_known()) {
        return Err(AccountRefusal::UnknownRole(role.as_str().to_string()));
    }
    let role = match by {
        Acting::Database => return Ok(()),
        Acting::Account(role) => role,
    };
    match role {
        Role::SuperAdmin => Ok(()),
        Role::Admin => {
            let touches_super =
                target == Some(&Role::SuperAdmin) || granted == Some(&Role::SuperAdmin);
            if touches_super && *change != AccountChange::List {
                Err(AccountRefusal::SuperAdminOnly)
            } else {
                Ok(())
            }
        }
        other => Err(AccountRefusal::NotAnAdmin(other.as_str().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles() -> Vec<Role> {
        vec![
            Role::User,
            Role::Admin,
            Role::SuperAdmin,
            Role::Other("auditor".into()),
        ]
    }

    fn changes() -> Vec<AccountChange> {
        let mut v = vec![
            AccountChange::List,
            AccountChange::Password,
            AccountChange::Disable,
            AccountChange::Enable,
            AccountChange::Unlock,
        ];
        for r in roles() {
            v.push(AccountChange::Create { role: r.clone() });
            v.push(AccountChange::Role { to: r });
        }
        v
    }

    #[test]
    fn who_may_change_which_account_every_case() {
        let targets: Vec<Option<Role>> = std::iter::once(None)
            .chain(roles().into_iter().map(Some))
            .collect();
        for change in changes() {
            for target in &targets {
                let unknown_grant = matches!(&change,
                    AccountChange::Create { role } | AccountChange::Role { to: role } if !role.is_known());
                let allowed = |by: Acting| may_change(&by, target.as_ref(), &change).is_ok();
                // The database's own administrator may do anything but grant an unknown role.
                assert_eq!(
                    allowed(Acting::Database),
                    !unknown_grant,
                    "{change:?} {target:?}"
                );
                assert_eq!(allowed(Acting::Account(Role::SuperAdmin)), !unknown_grant);
                for weak in [Role::User, Role::Other("auditor".into())] {
                    assert!(!allowed(Acting::Account(weak)), "{change:?} {target:?}");
                }
                let touches_super = target == &Some(Role::SuperAdmin)
                    || matches!(
                        &change,
                        AccountChange::Create {
                            role: Role::SuperAdmin
                        } | AccountChange::Role {
                            to: Role::SuperAdmin
                        }
                    );
                let admin_may = !unknown_grant && (change == AccountChange::List || !touches_super);
                assert_eq!(
                    allowed(Acting::Account(Role::Admin)),
                    admin_may,
                    "{change:?} {target:?}"
                );
            }
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = may_change(&Acting::Account(Role::User), None, &AccountChange::List).unwrap_err();
        assert!(e.to_string().contains("--as-database-admin"), "{e}");
        let e = may_change(
            &Acting::Account(Role::Admin),
            Some(&Role::User),
            &AccountChange::Role {
                to: Role::SuperAdmin,
            },
        )
        .unwrap_err();
        assert_eq!(e, AccountRefusal::SuperAdminOnly);
    }

    #[test]
    fn only_an_active_super_admin_leaving_the_role_removes_one() {
        let user = |role: Role, active: bool| User {
            id: None,
            name: "Asha".into(),
            email: "a@b.co".into(),
            password: String::new(),
            role,
            is_active: active,
            last_login: None,
            login_attempts: 0,
            lock_until: None,
            created_at: None,
            updated_at: None,
        };
        for change in changes() {
            for role in roles() {
                for active in [true, false] {
                    let expected = role == Role::SuperAdmin
                        && active
                        && match &change {
                            AccountChange::Disable => true,
                            AccountChange::Role { to } => *to != Role::SuperAdmin,
                            _ => false,
                        };
                    assert_eq!(
                        change.removes_super_admin(&user(role.clone(), active)),
                        expected,
                        "{change:?} {role:?} {active}"
                    );
                }
            }
        }
    }

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
