//! Errors of the store, typed where a user can cause them.

use crate::domain::secret::REDACTED;
use crate::domain::uri::uri_userinfo;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the MongoDB URI is not valid: {0}")]
    BadUri(String),
    #[error("the database at {address} did not answer within {} s ({reason}); check that it is running and reachable, and the URI in AUTOVOLT_MONGODB_URI", timeout.as_secs_f64())]
    Unreachable {
        address: String,
        timeout: Duration,
        reason: String,
    },
    #[error("nothing listens at {address}: the connection was refused; check that the database is running there, and the host and port in the URI")]
    ConnectionRefused { address: String },
    #[error("the database refused the credentials for {address}; check the user and password in the URI")]
    AuthFailed { address: String },
    /// No migration was ever applied (schema version 0): a new database, or a typo in its name.
    #[error("the database {database:?} has no schema (version 0): run `autovolt migrate up`, or check the database name in the URI")]
    NoSchema { database: String },
    #[error("{0}")]
    Duplicate(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] crate::domain::ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("the database failed: {}", brief(.0))]
    Driver(#[from] mongodb::error::Error),
    #[error("a stored document could not be read: {0}")]
    Decode(String),
    /// The server refused a document for what it holds (not for its own state): writing it again
    /// fails again.
    #[error("the database refused a document: {0}")]
    Refused(String),
    /// The actor may not do what was asked; nothing was written.
    #[error(transparent)]
    Forbidden(#[from] crate::domain::actor::Forbidden),
}

/// Whether an error is worth retrying as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server, or the way to it, failed (unreachable, timed out, busy, not primary, a write
    /// conflict): the same work succeeds later.
    Transient,
    /// What was asked is at fault (a document breaking a rule, one that does not decode, one the
    /// server refuses): the same work fails again, however often it is tried.
    Permanent,
}

/// Server error codes that say "not now" rather than "not this": network, elections, shutdown,
/// time limits, locks and write conflicts (MongoDB's retryable codes and a few more).
const TRANSIENT_CODES: &[i32] = &[
    6, 7, 24, 46, 50, 64, 89, 91, 112, 134, 189, 262, 9001, 10058, 10107, 11600, 11601, 11602,
    13435, 13436,
];

/// Labels the driver or the server put on errors worth retrying.
const TRANSIENT_LABELS: &[&str] = &[
    "RetryableWriteError",
    "TransientTransactionError",
    "RetryableError",
    "SystemOverloadedError",
    "ResumableChangeStreamError",
];

/// Whether a server message says a lock or a busy backend (FerretDB's SQLite: `database is locked`,
/// `SQLITE_BUSY`), which clears by itself.
fn says_busy(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("database is locked")
        || m.contains("database table is locked")
        || m.contains("sqlite_busy")
        || m.contains("sqlite_locked")
}

/// Sorts a driver error where it is born: the driver's kinds and labels, the server's codes.
pub fn driver_fault(e: &mongodb::error::Error) -> Fault {
    use mongodb::error::{ErrorKind, WriteFailure};
    if TRANSIENT_LABELS.iter().any(|l| e.contains_label(l)) || is_network(e) {
        return Fault::Transient;
    }
    let by_code = |code: i32, message: &str| {
        if TRANSIENT_CODES.contains(&code) || says_busy(message) {
            Fault::Transient
        } else {
            Fault::Permanent
        }
    };
    match &*e.kind {
        ErrorKind::BsonDeserialization(_)
        | ErrorKind::BsonSerialization(_)
        | ErrorKind::InvalidArgument { .. } => Fault::Permanent,
        ErrorKind::Command(c) => by_code(c.code, &c.message),
        ErrorKind::Write(WriteFailure::WriteError(w)) => by_code(w.code, &w.message),
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => Fault::Transient,
        ErrorKind::InsertMany(m) => {
            if m.write_concern_error.is_some() {
                return Fault::Transient;
            }
            let errors = m.write_errors.as_deref().unwrap_or_default();
            if errors
                .iter()
                .all(|w| by_code(w.code, &w.message) == Fault::Transient)
            {
                Fault::Transient
            } else {
                Fault::Permanent
            }
        }
        // Network, selection, pool, authentication, shutdown, a response cut short: the server or
        // the way to it.
        _ => Fault::Transient,
    }
}

/// MongoDB's duplicate-key error code.
pub const DUPLICATE_KEY: i32 = 11000;

impl StoreError {
    pub(crate) fn from_connect(
        e: mongodb::error::Error,
        address: &str,
        timeout: Duration,
    ) -> StoreError {
        use mongodb::error::ErrorKind;
        match *e.kind {
            ErrorKind::Authentication { .. } => StoreError::AuthFailed {
                address: address.to_string(),
            },
            ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) => StoreError::Unreachable {
                address: address.to_string(),
                timeout,
                reason: first_line(&e.to_string()),
            },
            _ => StoreError::Driver(e),
        }
    }

    /// Whether retrying the same work can succeed ([`Fault::Transient`]) or never will.
    pub fn fault(&self) -> Fault {
        match self {
            StoreError::Invalid(_)
            | StoreError::Decode(_)
            | StoreError::Refused(_)
            | StoreError::Forbidden(_) => Fault::Permanent,
            StoreError::Driver(e) => driver_fault(e),
            // A missing or already present document, a lost race, credentials, the URI: not the
            // work's fault; it waits for the database or a person.
            StoreError::BadUri(_)
            | StoreError::Unreachable { .. }
            | StoreError::ConnectionRefused { .. }
            | StoreError::AuthFailed { .. }
            | StoreError::NoSchema { .. }
            | StoreError::Duplicate(_)
            | StoreError::NotFound(_)
            | StoreError::Conflict(_) => Fault::Transient,
        }
    }

    pub fn is_permanent(&self) -> bool {
        self.fault() == Fault::Permanent
    }

    /// A short stable code for counters and dead letters.
    pub fn reason_code(&self) -> &'static str {
        match self {
            StoreError::Invalid(_) => "invalid_document",
            StoreError::Decode(_) => "undecodable_document",
            StoreError::Refused(_) => "refused_by_database",
            StoreError::Driver(e) => match &*e.kind {
                mongodb::error::ErrorKind::BsonDeserialization(_) => "undecodable_document",
                mongodb::error::ErrorKind::BsonSerialization(_) => "unencodable_document",
                _ => "refused_by_database",
            },
            _ => "database_error",
        }
    }

    /// Whether this error means the server is not reachable (as opposed to a refused operation).
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } | StoreError::ConnectionRefused { .. } => true,
            StoreError::Driver(e) => is_network(e),
            _ => false,
        }
    }
}

/// A driver error in one sentence: the server's own message and code, not the driver's dump (which
/// `{:?}` still gives in full).
pub fn brief(e: &mongodb::error::Error) -> String {
    use mongodb::error::{ErrorKind, WriteFailure};
    let text = match &*e.kind {
        ErrorKind::Command(c) if c.code_name.is_empty() => {
            format!("{} (code {})", c.message, c.code)
        }
        ErrorKind::Command(c) => format!("{} ({}, code {})", c.message, c.code_name, c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => format!("{} (code {})", w.message, w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => {
            format!("{} (code {})", w.message, w.code)
        }
        ErrorKind::InsertMany(m) => match m.write_errors.as_ref().and_then(|w| w.first()) {
            Some(w) => format!("{} (code {})", w.message, w.code),
            None => "an insert failed".into(),
        },
        ErrorKind::Authentication { message, .. } => format!("authentication failed: {message}"),
        ErrorKind::ServerSelection { message, .. } => format!("no server answered: {message}"),
        ErrorKind::Io(io) => format!("the connection failed: {io}"),
        ErrorKind::BsonDeserialization(d) => format!("a stored document does not decode: {d}"),
        ErrorKind::BsonSerialization(d) => format!("a document cannot be encoded: {d}"),
        other => other.to_string(),
    };
    first_line(&text)
}

/// Whether a driver error is a connection the host refused (nothing listens on that port).
pub fn is_refusal(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Whether a driver error is a network or selection failure (the server went away).
pub fn is_network(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        *e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || e.contains_label("RetryableWriteError")
        || e.contains_label("TransientTransactionError")
}

/// The server error code of a command or write error, if any.
pub fn error_code(e: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

/// The outcome of an unordered `insert_many` where documents already there (duplicate key) are
/// what idempotency intends: `Ok` when every refusal was a duplicate.
pub(crate) fn only_duplicates(
    result: Result<mongodb::results::InsertManyResult, mongodb::error::Error>,
) -> Result<(), StoreError> {
    let Err(e) = result else { return Ok(()) };
    let mongodb::error::ErrorKind::InsertMany(failure) = &*e.kind else {
        return Err(e.into());
    };
    let all_duplicates = failure.write_concern_error.is_none()
        && failure
            .write_errors
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|w| w.code == DUPLICATE_KEY);
    if all_duplicates {
        Ok(())
    } else {
        Err(e.into())
    }
}

/// Whether a driver error is a duplicate key (code 11000), including FerretDB's way of reporting a
/// plain update that breaks a unique index.
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    if error_code(e) == Some(DUPLICATE_KEY) {
        return true;
    }
    let text = e.to_string();
    text.contains("E11000") || text.contains("duplicate key")
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// `%XX` sequences decoded (as the driver decodes a URI's password).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A message with any occurrence of the URI's password (as written, or decoded) removed.
pub fn redact(message: &str, uri: &str) -> String {
    match uri_userinfo(uri).and_then(|(_, p)| p) {
        Some(p) if !p.is_empty() => {
            let decoded = percent_decoded(p);
            message.replace(p, REDACTED).replace(&decoded, REDACTED)
        }
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::uri::uri_with_password;

    #[test]
    fn errors_are_sorted_where_they_are_born() {
        let invalid = StoreError::Invalid(crate::domain::ValidationError::new("delta_wh", 1, "x"));
        assert_eq!(invalid.fault(), Fault::Permanent);
        assert_eq!(invalid.reason_code(), "invalid_document");
        assert_eq!(
            StoreError::Decode("classroom".into()).fault(),
            Fault::Permanent
        );
        let io = mongodb::error::Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert_eq!(StoreError::Driver(io).fault(), Fault::Transient);
        assert_eq!(
            StoreError::Conflict("claim cannot be read".into()).fault(),
            Fault::Transient
        );
        assert!(says_busy("database is locked (5) (SQLITE_BUSY)"));
        assert!(!says_busy("invalid key: $where"));
    }

    #[test]
    fn passwords_never_show() {
        let uri = "mongodb://op:s3cr3t@db.example:27017/autovolt";
        assert_eq!(
            redact("auth failed for s3cr3t", uri),
            "auth failed for <redacted>"
        );
        let with = uri_with_password("mongodb://ops@h1,h2/x", "p@ss:w/rd");
        assert!(!redact("bad p@ss:w/rd and p%40ss%3Aw%2Frd", &with).contains("ss"));
    }
}
