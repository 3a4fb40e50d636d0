//! Errors of the store, typed where a user can cause them.

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
    #[error("the database refused the credentials for {address}; check the user and password in the URI")]
    AuthFailed { address: String },
    #[error("{0}")]
    Duplicate(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] crate::domain::ValidationError),
    #[error("{0}")]
    Conflict(String),
    #[error("the database failed: {0}")]
    Driver(#[from] mongodb::error::Error),
    #[error("a stored document could not be read: {0}")]
    Decode(String),
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

    /// Whether this error means the server is not reachable (as opposed to a refused operation).
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } => true,
            StoreError::Driver(e) => is_network(e),
            _ => false,
        }
    }

    /// The process exit code for this error: 2 when the server cannot be used, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            StoreError::Unreachable { .. }
            | StoreError::AuthFailed { .. }
            | StoreError::BadUri(_) => 2,
            e if e.is_unreachable() => 2,
            _ => 1,
        }
    }
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

/// The URI without its password, for messages and logs.
pub fn redacted_uri(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<the configured URI>".to_string(),
    }
}

/// A message with any occurrence of the URI's password removed.
pub fn redact(message: &str, uri: &str) -> String {
    match url::Url::parse(uri)
        .ok()
        .and_then(|u| u.password().map(str::to_string))
    {
        Some(p) if !p.is_empty() => message.replace(&p, "***"),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let uri = "mongodb://op:s3cr3t@db.example:27017/autovolt";
        assert!(!redacted_uri(uri).contains("s3cr3t"));
        assert!(redacted_uri(uri).contains("db.example"));
        assert_eq!(redact("auth failed for s3cr3t", uri), "auth failed for ***");
    }
}
