//! Who acts, and what they may do. The checks live here, below every front end: the dashboard, the
//! command line and the collector's scheduler all ask the same question before writing.

use super::{Id, Role};

/// On what authority someone acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// An operator signed in with a `users` account.
    Role(Role),
    /// Someone at the command line with the database's own credentials: whoever can write the
    /// database directly can do anything these checks guard, so refusing them would protect nothing.
    Database,
    /// A program acting on a rule a person set up (a schedule).
    Automation,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Switch a relay.
    Toggle,
    /// Set or cancel a price.
    ChangeTariff,
    /// Run the daily aggregation by hand.
    RunAggregation,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Toggle => "switch relays",
            Permission::ChangeTariff => "change tariffs",
            Permission::RunAggregation => "run the aggregation",
        }
    }
}

/// Someone who acts: the name recorded in the activity log, the account if any, and the authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub user_id: Option<Id>,
    pub authority: Authority,
}

/// An action refused for lack of a permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} ({role}) may not {what}: an admin may")]
pub struct Forbidden {
    pub name: String,
    pub role: String,
    pub what: &'static str,
}

impl Actor {
    /// Someone at the command line, acting with the database's credentials.
    pub fn at_database(name: impl Into<String>) -> Actor {
        Actor {
            name: name.into(),
            user_id: None,
            authority: Authority::Database,
        }
    }

    /// A signed-in operator.
    pub fn signed_in(name: impl Into<String>, user_id: Option<Id>, role: Role) -> Actor {
        Actor {
            name: name.into(),
            user_id,
            authority: Authority::Role(role),
        }
    }

    /// The role shown and checked; the database's own and automation's authority are not roles.
    pub fn role(&self) -> Option<&Role> {
        match &self.authority {
            Authority::Role(r) => Some(r),
            Authority::Database | Authority::Automation => None,
        }
    }

    /// The role as shown next to the name: a `users` role, `database` or `automation`.
    pub fn label(&self) -> &str {
        match &self.authority {
            Authority::Role(r) => r.as_str(),
            Authority::Database => "database",
            Authority::Automation => "automation",
        }
    }

    /// Whether this actor may do `what`.
    pub fn may(&self, what: Permission) -> Result<(), Forbidden> {
        let allowed = match (&self.authority, what) {
            (Authority::Database, _) => true,
            (Authority::Automation, Permission::Toggle) => true,
            (Authority::Automation, _) => false,
            (Authority::Role(r), Permission::Toggle) => r.may_toggle(),
            (Authority::Role(r), Permission::ChangeTariff | Permission::RunAggregation) => {
                r.may_administer()
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Forbidden {
                name: self.name.clone(),
                role: self.label().to_string(),
                what: what.describe(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Permission; 3] = [
        Permission::Toggle,
        Permission::ChangeTariff,
        Permission::RunAggregation,
    ];

    #[test]
    fn a_user_switches_relays_and_nothing_more() {
        let u = Actor::signed_in("Asha", None, Role::User);
        assert!(u.may(Permission::Toggle).is_ok());
        let e = u.may(Permission::ChangeTariff).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Asha (user) may not change tariffs: an admin may"
        );
        assert!(u.may(Permission::RunAggregation).is_err());
    }

    #[test]
    fn admins_and_the_database_may_do_everything() {
        for a in [
            Actor::signed_in("a", None, Role::Admin),
            Actor::signed_in("s", None, Role::SuperAdmin),
            Actor::at_database("root"),
        ] {
            for p in ALL {
                assert!(a.may(p).is_ok(), "{a:?} {p:?}");
            }
        }
    }

    #[test]
    fn an_unknown_role_may_do_nothing() {
        let a = Actor::signed_in("x", None, Role::Other("auditor".into()));
        for p in ALL {
            assert!(a.may(p).is_err());
        }
    }

    #[test]
    fn automation_only_switches() {
        let a = Actor {
            name: "schedule".into(),
            user_id: None,
            authority: Authority::Automation,
        };
        assert!(a.may(Permission::Toggle).is_ok());
        assert!(a.may(Permission::ChangeTariff).is_err());
        assert!(a.may(Permission::RunAggregation).is_err());
    }
}
