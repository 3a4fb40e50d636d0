//! The exit codes, decided in one place:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | all well |
//! | 1 | the command found or refused something (audit findings, a health warning, a board that did not confirm, a conflicting change, a "no" at a prompt) |
//! | 2 | a server or the input cannot be used (unreachable, refused credentials, a database without a schema, bad arguments, a name that matches nothing or several things, a damaged backup) |

use crate::config::ConfigError;
use crate::domain::ValidationError;
use crate::store::backup::BackupError;
use crate::store::StoreError;

pub const OK: i32 = 0;
pub const FOUND: i32 = 1;
pub const UNUSABLE: i32 = 2;

/// Why a command stopped: one sentence to print, the code, and the full cause for `-v`.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    pub detail: Option<String>,
    /// clap's own message (usage, help, version), printed as clap renders it.
    pub from_clap: bool,
}

impl Failure {
    /// The input or a server cannot be used (exit 2).
    pub fn unusable(message: impl Into<String>) -> Failure {
        Failure {
            code: UNUSABLE,
            message: message.into(),
            detail: None,
            from_clap: false,
        }
    }

    /// Something was found or refused (exit 1).
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: FOUND,
            ..Failure::unusable(message)
        }
    }
}

/// The code of a store error: a conflict, a duplicate or a document the server refuses is a
/// refusal (1); everything else means the database, or what was asked of it, cannot be used (2).
pub fn code_of(e: &StoreError) -> i32 {
    match e {
        StoreError::Duplicate(_)
        | StoreError::Conflict(_)
        | StoreError::Refused(_)
        | StoreError::Forbidden(_) => FOUND,
        StoreError::BadUri(_)
        | StoreError::Unreachable { .. }
        | StoreError::ConnectionRefused { .. }
        | StoreError::AuthFailed { .. }
        | StoreError::NoSchema { .. }
        | StoreError::NotFound(_)
        | StoreError::Invalid(_)
        | StoreError::Driver(_)
        | StoreError::Decode(_) => UNUSABLE,
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        let detail = match &e {
            StoreError::Driver(d) => Some(format!("{d:?}")),
            _ => None,
        };
        Failure {
            code: code_of(&e),
            message: e.to_string(),
            detail,
            from_clap: false,
        }
    }
}

/// What cannot fail (connecting to the broker writes nothing, so a relay's connection error has no
/// log error in it).
impl From<std::convert::Infallible> for Failure {
    fn from(never: std::convert::Infallible) -> Failure {
        match never {}
    }
}

impl From<ValidationError> for Failure {
    fn from(e: ValidationError) -> Failure {
        Failure::unusable(e.to_string())
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::unusable(e.to_string())
    }
}

impl From<BackupError> for Failure {
    fn from(e: BackupError) -> Failure {
        match e {
            BackupError::Store(e) => e.into(),
            BackupError::Refused(m) => Failure::refused(m),
            // The backup was made; only the clean-up of older ones failed.
            e @ BackupError::PruneFailed { .. } => Failure::refused(e.to_string()),
            other => Failure::unusable(other.to_string()),
        }
    }
}

/// Prints a failure (with its cause at `-v`) and returns the process's exit code.
pub fn finish(result: Result<i32, Failure>, verbose: bool) -> i32 {
    match result {
        Ok(code) => code,
        Err(f) if f.from_clap => {
            if f.code == 0 {
                print!("{}", f.message);
            } else {
                eprint!("{}", f.message);
            }
            f.code
        }
        Err(f) => {
            eprintln!("autovolt: {}", f.message);
            match (&f.detail, verbose) {
                (Some(d), true) => eprintln!("  cause: {d}"),
                (Some(_), false) => eprintln!("  (run with -v for the full cause)"),
                _ => {}
            }
            f.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_convention() {
        assert_eq!(code_of(&StoreError::Conflict("x".into())), FOUND);
        assert_eq!(code_of(&StoreError::NotFound("x".into())), UNUSABLE);
        assert_eq!(code_of(&StoreError::BadUri("x".into())), UNUSABLE);
        assert_eq!(
            Failure::from(ValidationError::new("price", "0", "must be more")).code,
            UNUSABLE
        );
        assert_eq!(
            Failure::from(BackupError::Refused("not empty".into())).code,
            FOUND
        );
        let damaged = BackupError::Corrupt {
            dir: "b".into(),
            reason: "campus/devices.bson has SHA-256 …".into(),
        };
        assert_eq!(Failure::from(damaged).code, UNUSABLE);
        assert_eq!(finish(Ok(1), false), 1);
        assert_eq!(finish(Err(Failure::refused("no")), false), 1);
    }
}
