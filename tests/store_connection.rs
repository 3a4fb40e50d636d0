//! Connecting, the capability probe, and clear errors when the server is not there.

mod support;

use autovolt::store::{ServerKind, Store, StoreError};
use std::time::Duration;

#[tokio::test]
async fn connects_and_probes_the_server() {
    let store = support::store("probe").await;
    let server = store.server();
    if std::env::var("AUTOVOLT_TEST_MONGODB_URI").is_err() {
        assert_eq!(server.kind, ServerKind::FerretDb);
        assert_eq!(server.version, "1.24.2");
        // FerretDB 1.24.2 has neither change streams nor transactions.
        assert!(!store.capabilities().change_streams);
        assert!(!store.capabilities().transactions);
    }
    assert!(store.ping().await.unwrap() < Duration::from_secs(5));
    // The probe leaves nothing behind.
    let names = store.database().list_collection_names().await.unwrap();
    assert!(names.is_empty(), "left behind: {names:?}");
}

#[tokio::test]
async fn a_refused_connection_is_reported_at_once() {
    let port = autovolt::servers::free_port().unwrap();
    let started = std::time::Instant::now();
    // A long timeout: a refusal must not wait for it.
    let err = match Store::connect(
        &format!("mongodb://127.0.0.1:{port}/x"),
        Duration::from_secs(30),
    )
    .await
    {
        Err(e) => e,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(err, StoreError::ConnectionRefused { .. }),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert_eq!(autovolt::cli::exit::code_of(&err), 2);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("nothing listens at mongodb://127.0.0.1:{port}/x")),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_that_does_not_answer_is_reported_within_the_timeout() {
    // Accepts connections (the kernel does, for a listening socket) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let err = match Store::connect(
        &format!("mongodb://127.0.0.1:{port}/x"),
        Duration::from_millis(500),
    )
    .await
    {
        Err(e) => e,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, StoreError::Unreachable { .. }), "{err:?}");
    assert_eq!(autovolt::cli::exit::code_of(&err), 2);
    assert!(err.to_string().contains("did not answer"), "{err}");
}

#[tokio::test]
async fn a_password_never_appears_in_the_error() {
    let port = autovolt::servers::free_port().unwrap();
    let uri = format!("mongodb://op:hunter2secret@127.0.0.1:{port}/x");
    let err = match Store::connect(&uri, Duration::from_millis(300)).await {
        Err(e) => e,
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(!err.to_string().contains("hunter2secret"), "{err}");
}
