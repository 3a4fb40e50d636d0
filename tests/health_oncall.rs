//! What on-call is told, against FerretDB and Mosquitto: a collector that stops cleanly or dies,
//! seconds and minutes later (its clock moved, not waited for); a broker that is down or refuses
//! the password. One verdict each time: the text's last line, the exit code and `--json`'s
//! `status`, with every problem listed.

mod live;
mod support;

use autovolt::clock::{Clock, ManualClock};
use autovolt::domain::{dates, DeviceStatus, Instant};
use autovolt::store::health::{since_text, HealthLevel, HealthReport};
use autovolt::store::Store;
use chrono::Duration;
use live::*;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const TZ: chrono_tz::Tz = chrono_tz::Asia::Kolkata;
const OFFLINE_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// `autovolt health` (with `--json` if asked) as on-call runs it, with a clean environment but for
/// `vars`: its exit code, stdout and stderr.
fn health_cli(json: bool, vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_autovolt"));
    command.arg("health");
    if json {
        command.arg("--json");
    }
    command.env("XDG_CONFIG_HOME", "/nonexistent");
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTOVOLT_") {
            command.env_remove(k);
        }
    }
    command
        .env("AUTOVOLT_TIMEZONE", TZ.name())
        .env(
            "AUTOVOLT_OFFLINE_AFTER_SECS",
            OFFLINE_AFTER.as_secs().to_string(),
        )
        .envs(vars.iter().copied());
    let out = command.output().expect("autovolt health runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON `autovolt health --json` printed.
fn parsed(out: &str, err: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

/// The verdict the text ends with.
fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or_default()
}

/// The report checked at `now`, with the verdict the same in its text, its exit code and its JSON.
async fn checked(store: &Store, now: Instant) -> HealthReport {
    let r = store.health(now, OFFLINE_AFTER).await.expect("health");
    let text = r.render_in(TZ);
    let expected = match (r.criticals.len(), r.warnings.len()) {
        (0, 0) => " ● OK".to_string(),
        (0, 1) => " ▲ WARNING (1 warning)".to_string(),
        (1, 0) => " ✕ CRITICAL (1 critical)".to_string(),
        (c, w) => panic!("{c} criticals and {w} warnings: {text}"),
    };
    assert_eq!(last_line(&text), expected, "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["status"], serde_json::to_value(r.status).unwrap());
    assert_eq!(r.status.exit_code(), expected_code(&expected));
    r
}

fn expected_code(verdict: &str) -> i32 {
    if verdict.contains("CRITICAL") {
        2
    } else if verdict.contains("WARNING") {
        1
    } else {
        0
    }
}

/// Waits until the collector's record says it runs and hears both boards.
async fn heard(store: &Store, clock: &ManualClock) {
    eventually(20, "the collector hears both boards", || async {
        let r = store
            .health(clock.now(), OFFLINE_AFTER)
            .await
            .expect("health");
        r.boards.online == Some(2) && r.status == HealthLevel::Ok
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_stops_or_dies_is_said_at_once_and_its_boards_become_unknown() {
    let uri = support::fresh_database_uri("oncall_stop");
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .expect("database")
        .with_timezone(TZ);
    store.migrate_up(None, false).await.expect("migrations");
    campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    // The clean stop is put 125 s before the wall clock, so that the binary, run at wall time,
    // finds it 125 s old.
    let clock = ManualClock::new(dates::now_millis() - Duration::minutes(10));
    let p = Publisher::connect(&url, "oncall-pub").await;

    // A collector that dies: nothing says it stopped, its record just ages.
    let c = start(&store, &url, options("oncall"), Arc::new(clock.clone())).await;
    anchor_boards(&p).await;
    heard(&store, &clock).await;
    c.kill().await;
    let record = store.collector_statuses().await.unwrap().remove(0);
    assert_eq!(record.renew_every_ms, 500);
    let renewed = record.updated_at;
    // Its own renewal period decides: three missed renewals (counted as a second at least) and
    // 10 s.
    let lease = Duration::seconds(3) + Duration::seconds(10);
    let alive = checked(&store, renewed + lease).await;
    assert_eq!(alive.boards.online, Some(2), "{:?}", alive.warnings);
    assert!(alive.collectors[0].running);
    let dead = checked(&store, renewed + lease + Duration::seconds(1)).await;
    assert_eq!(
        dead.warnings,
        [format!(
            "no collector running since {}: oncall stopped renewing its status (it died, or cannot reach the database); start `autovolt collect`",
            since_text(renewed, renewed, TZ)
        )]
    );
    assert_eq!(dead.boards.online, None);
    assert_eq!(dead.boards.unknown_since, Some(renewed));
    assert_eq!(dead.collectors[0].state, "silent");
    assert!(!dead.collectors[0].running);

    // The same collector back: its registration is renewed, the boards are heard again.
    clock.advance(Duration::seconds(30));
    let c = start(&store, &url, options("oncall"), Arc::new(clock.clone())).await;
    p.publish("esp32/telemetry", &heartbeat(MAC_A, 30_000))
        .await;
    p.publish("esp32/telemetry", &heartbeat(MAC_B, 30_000))
        .await;
    heard(&store, &clock).await;
    let running = checked(&store, clock.now()).await;
    assert!(
        running.render_in(TZ).contains("1/1 collector(s) connected"),
        "{}",
        running.render_in(TZ)
    );

    // A clean stop, said in the database at once.
    let stopped_at = dates::now_millis() - Duration::seconds(125);
    clock.set(stopped_at);
    c.stop().await;
    let since = since_text(stopped_at, stopped_at, TZ);
    let cause =
        format!("no collector running since {since}: oncall stopped; start `autovolt collect`");
    for (after, level) in [
        (5, HealthLevel::Warning),
        (65, HealthLevel::Warning),
        (125, HealthLevel::Critical),
    ] {
        let r = checked(&store, stopped_at + Duration::seconds(after)).await;
        let context = format!("{after} s after the stop: {}", r.render_in(TZ));
        assert_eq!(r.status, level, "{context}");
        // That cause and no other: not the broker, not a lag, not boards offline.
        let (expected_warnings, expected_criticals) = match level {
            HealthLevel::Critical => (vec![], vec![cause.clone()]),
            _ => (vec![cause.clone()], vec![]),
        };
        assert_eq!(r.warnings, expected_warnings, "{context}");
        assert_eq!(r.criticals, expected_criticals, "{context}");
        assert_eq!(r.boards.online, None, "{context}");
        assert_eq!(r.boards.unknown_since, Some(stopped_at), "{context}");
        assert_eq!(r.collectors[0].state, "stopped", "{context}");
        assert_eq!(r.collectors[0].ended_at, Some(stopped_at), "{context}");
        let text = r.render_in(TZ);
        assert!(
            text.contains(&format!(
                " Boards    ▲ unknown since {since} (nothing hears them) · 2 registered"
            )),
            "{context}"
        );
        assert!(!text.contains("2/2 online"), "{context}");
        assert!(!text.contains(" lag "), "{context}");
        assert!(
            text.contains(&format!(
                "no collector running since {since} (oncall stopped)"
            )),
            "{context}"
        );
    }
    // The boards' records still say what was last heard: online.
    assert!(store
        .devices()
        .await
        .unwrap()
        .iter()
        .all(|d| d.status == DeviceStatus::Online));

    // The binary, at wall time: 125 s and more after the stop.
    let vars = [
        ("AUTOVOLT_MONGODB_URI", uri.as_str()),
        ("AUTOVOLT_MQTT_URL", url.as_str()),
    ];
    let (code, out, err) = health_cli(true, &vars);
    assert_eq!(code, 2, "{out}\n{err}");
    let report = parsed(&out, &err);
    assert_eq!(report["status"], "critical", "{report}");
    assert_eq!(report["criticals"], serde_json::json!([cause]), "{report}");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    assert!(report["boards"]["online"].is_null(), "{report}");
    let unknown_since = report["boards"]["unknown_since"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(unknown_since).ok(),
        Some(stopped_at.fixed_offset()),
        "{report}"
    );
    assert_eq!(report["broker"]["reachable"], true, "{report}");
    let (code, out, err) = health_cli(false, &vars);
    assert_eq!(code, 2, "{out}\n{err}");
    assert_eq!(last_line(&out), " ✕ CRITICAL (1 critical)", "{out}");
    assert!(out.contains(&format!("unknown since {since}")), "{out}");
}

/// A migrated database whose collector runs and hears the broker: only the broker can be wrong.
async fn database_with_a_running_collector(label: &str) -> String {
    let uri = support::fresh_database_uri(label);
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .expect("database");
    store.migrate_up(None, false).await.expect("migrations");
    support::collector_heard_at(&store, "collector-1", dates::now_millis()).await;
    store.close().await;
    uri
}

/// Checks that `health` finds the broker alone wrong, says `problem` about it, in the warnings,
/// the text and the exit code alike; returns the warning.
fn broker_alone_is_wrong(vars: &[(&str, &str)], problem: &str) -> String {
    let (code, out, err) = health_cli(true, vars);
    assert_eq!(code, 1, "{out}\n{err}");
    let report = parsed(&out, &err);
    assert_eq!(report["status"], "warning", "{report}");
    assert_eq!(report["criticals"], serde_json::json!([]), "{report}");
    let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{report}");
    let warning = warnings[0].as_str().unwrap_or_default().to_string();
    assert!(warning.contains(problem), "{warning}");
    assert!(!warning.contains('\n'), "one sentence: {warning}");
    assert_eq!(report["broker"]["reachable"], false, "{report}");
    assert_eq!(report["broker"]["error"], warnings[0], "{report}");

    let (code, out, err) = health_cli(false, vars);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(last_line(&out), " ▲ WARNING (1 warning)", "{out}");
    assert!(out.contains(&format!(" ▲ {warning}\n")), "{out}");
    assert!(!out.contains("● OK"), "{out}");
    warning
}

#[tokio::test]
async fn a_broker_that_is_down_is_a_warning_listed_with_the_rest() {
    let uri = database_with_a_running_collector("oncall_broker_down").await;
    let port = autovolt::servers::free_port().unwrap();
    let url = format!("mqtt://127.0.0.1:{port}");
    let warning = broker_alone_is_wrong(
        &[("AUTOVOLT_MONGODB_URI", &uri), ("AUTOVOLT_MQTT_URL", &url)],
        "cannot be reached",
    );
    assert!(warning.contains(&format!("127.0.0.1:{port}")), "{warning}");
}

/// `vars` as the pairs `health_cli` takes.
fn refs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

const USER: &str = "tech";
const PASSWORD: &str = "correct-horse-7";
const WRONG_PASSWORD: &str = "battery-staple-9";

/// A Mosquitto that admits only `USER` with `PASSWORD` (a password file made by its own tool).
fn broker_with_a_password(dir: &Path) -> autovolt::servers::ServerProcess {
    let file = dir.join("passwd");
    let made = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&file)
        .args([USER, PASSWORD])
        .status()
        .unwrap_or_else(|e| panic!("mosquitto_passwd (Debian package mosquitto): {e}"));
    assert!(made.success());
    autovolt::servers::start_mosquitto_with(
        &dir.join("broker"),
        true,
        &format!("allow_anonymous false\npassword_file {}\n", file.display()),
    )
    .unwrap_or_else(|e| panic!("Mosquitto with a password file could not start: {e}"))
}

#[tokio::test]
async fn a_wrong_broker_password_is_a_warning_that_names_the_user_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_a_password(dir.path());
    let url = format!("mqtt://127.0.0.1:{}", broker.port());
    let uri = database_with_a_running_collector("oncall_broker_password").await;
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&wrong, format!("{WRONG_PASSWORD}\n")).unwrap();
    let vars = |file: &Path| -> Vec<(&'static str, String)> {
        vec![
            ("AUTOVOLT_MONGODB_URI", uri.clone()),
            ("AUTOVOLT_MQTT_URL", url.clone()),
            ("AUTOVOLT_MQTT_USERNAME", USER.to_string()),
            ("AUTOVOLT_MQTT_PASSWORD_FILE", file.display().to_string()),
        ]
    };

    // The right password: all well.
    let with_right = vars(&right);
    let (code, out, err) = health_cli(false, &refs(&with_right));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(last_line(&out), " ● OK", "{out}");

    let with_wrong = vars(&wrong);
    let v = refs(&with_wrong);
    let warning = broker_alone_is_wrong(&v, "refused the user \"tech\"");
    assert!(warning.contains("AUTOVOLT_MQTT_PASSWORD_FILE"), "{warning}");
    for json in [true, false] {
        let (_, out, err) = health_cli(json, &v);
        for p in [PASSWORD, WRONG_PASSWORD] {
            assert!(!out.contains(p) && !err.contains(p), "a password is shown");
        }
    }
}
