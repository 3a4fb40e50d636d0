//! The integration-test harness: one private FerretDB and one private Mosquitto per test binary, on
//! free loopback ports, each test with its own database. `AUTOVOLT_TEST_MONGODB_URI` and
//! `AUTOVOLT_TEST_MQTT_URL` point the same tests at other servers (a real MongoDB, say).
//! A server that cannot start fails the test with the reason; nothing is skipped.
#![allow(dead_code)]

use autovolt::servers::{self, ServerProcess};
use autovolt::store::Store;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

static FERRET: OnceLock<Result<String, String>> = OnceLock::new();
static MOSQUITTO: OnceLock<Result<String, String>> = OnceLock::new();
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Starts a server on a thread that lives until the process ends, so the server lives as long
/// as the test binary and is killed with it.
fn start_forever(
    start: impl FnOnce() -> Result<ServerProcess, String> + Send + 'static,
) -> Result<u16, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || match start() {
        Ok(server) => {
            let _ = tx.send(Ok(server.port()));
            let _keep = server;
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("autovolt-test-") else {
            continue;
        };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// The MongoDB URI of this test binary's server (without a database).
pub fn mongodb_base_uri() -> String {
    let r = FERRET.get_or_init(|| {
        if let Ok(uri) = std::env::var("AUTOVOLT_TEST_MONGODB_URI") {
            eprintln!("test harness: using the MongoDB server at AUTOVOLT_TEST_MONGODB_URI");
            return Ok(uri);
        }
        remove_stale_dirs();
        start_forever(|| {
            let dir = servers::temp_dir("autovolt-test-ferretdb").map_err(|e| e.to_string())?;
            servers::start_ferretdb(&dir, true).map_err(|e| e.to_string())
        })
        .map(|port| format!("mongodb://127.0.0.1:{port}/"))
    });
    match r {
        Ok(u) => u.clone(),
        Err(e) => panic!("the test FerretDB could not start: {e}"),
    }
}

/// The MQTT URL of this test binary's broker.
pub fn mqtt_url() -> String {
    let r = MOSQUITTO.get_or_init(|| {
        if let Ok(url) = std::env::var("AUTOVOLT_TEST_MQTT_URL") {
            eprintln!("test harness: using the broker at AUTOVOLT_TEST_MQTT_URL");
            return Ok(url);
        }
        remove_stale_dirs();
        start_forever(|| {
            let dir = servers::temp_dir("autovolt-test-mosquitto").map_err(|e| e.to_string())?;
            servers::start_mosquitto(&dir, true).map_err(|e| e.to_string())
        })
        .map(|port| format!("mqtt://127.0.0.1:{port}"))
    });
    match r {
        Ok(u) => u.clone(),
        Err(e) => panic!("the test Mosquitto could not start: {e}"),
    }
}

/// A URI for a database of its own, for one test.
pub fn fresh_database_uri(label: &str) -> String {
    let base = mongodb_base_uri();
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let name: String = format!("t{}_{}_{}", std::process::id(), n, label)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    with_database(&base, &name)
}

/// Replaces the database (path) of a MongoDB URI.
pub fn with_database(uri: &str, db: &str) -> String {
    let (scheme_host, query) = match uri.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (uri, None),
    };
    let after_scheme = scheme_host.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = scheme_host[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(scheme_host.len());
    let mut out = format!("{}/{}", &scheme_host[..host_end], db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A store on a fresh database of its own.
pub async fn store(label: &str) -> Store {
    let uri = fresh_database_uri(label);
    Store::connect(&uri, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"))
}

/// A private FerretDB for one test that stops and restarts its server. The server is killed when
/// the thread that started it (or restarted it) ends: use it from the test's own thread.
pub fn own_ferretdb() -> (ServerProcess, String) {
    let dir = servers::temp_dir("autovolt-test-ferretdb-own").expect("temp dir");
    let server = servers::start_ferretdb(&dir, true)
        .unwrap_or_else(|e| panic!("a private FerretDB could not start: {e}"));
    let uri = format!("mongodb://127.0.0.1:{}/", server.port());
    (server, uri)
}

/// A private Mosquitto for one test that stops and restarts its broker (same rule as `own_ferretdb`).
pub fn own_mosquitto() -> (ServerProcess, String) {
    let dir = servers::temp_dir("autovolt-test-mosquitto-own").expect("temp dir");
    let server = servers::start_mosquitto(&dir, true)
        .unwrap_or_else(|e| panic!("a private Mosquitto could not start: {e}"));
    let url = format!("mqtt://127.0.0.1:{}", server.port());
    (server, url)
}

/// Runs Prometheus' `promtool` in `dir` with `args`, `input` on its stdin: whether it succeeded,
/// and what it said. Fails the test when promtool is not installed: `scripts/setup-servers.sh`
/// installs it (Debian's `prometheus` package).
pub fn promtool(args: &[&str], dir: &std::path::Path, input: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): run scripts/setup-servers.sh, which installs it")
        });
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes()).expect("promtool's stdin");
    }
    let out = child.wait_with_output().expect("promtool's answer");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// `contrib/prometheus/`, where the alert rules and the dashboard are.
pub fn prometheus_contrib() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("contrib/prometheus")
}

/// The autovolt metric names `text` (rules, a dashboard, PromQL) uses. `autovolt_collector`
/// alone is the scrape job's name, not a metric.
pub fn autovolt_metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("autovolt_") && *w != "autovolt_collector")
        .map(str::to_string)
        .collect()
}

/// Writes the status record of a collector `client_id` that renewed it at `at`, running and
/// connected to the broker: what `autovolt health` reads to know that something hears the boards.
pub async fn collector_heard_at(store: &Store, client_id: &str, at: autovolt::domain::Instant) {
    use autovolt::store::telemetry::CollectorStatus;
    store
        .write_collector_status(&CollectorStatus {
            client_id: client_id.into(),
            group: None,
            started_at: at - chrono::Duration::hours(1),
            updated_at: at,
            renew_every_ms: 5_000,
            stopped_at: None,
            broker_connected: true,
            broker_lost_at: None,
            database_down_since: None,
            last_database_error: None,
            database_outages: 0,
            received: 0,
            committed: 0,
            transitions: 0,
            ledger_rows: 0,
            rejected: Default::default(),
            dead_letters: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("cannot write a collector's status: {e}"));
}
