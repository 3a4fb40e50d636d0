//! The command line as an operator meets it: every command's exit code (0 all well, 1 found or
//! refused something, 2 a server or the input cannot be used), its `--json`, and what it says when
//! the database has no schema, the input is out of range or a name matches several things.

mod support;

use autovolt::seed::{seed, SeedOptions};
use autovolt::store::Store;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    fn expect(&self, code: i32, args: &[&str]) -> &Run {
        assert_eq!(
            self.code, code,
            "autovolt {args:?}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `autovolt ARGS` against `uri` with no configuration file and the test broker.
fn cli(uri: &str, args: &[&str]) -> Run {
    cli_env(uri, args, &[])
}

fn cli_env(uri: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_autovolt"));
    cmd.args(args)
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env("AUTOVOLT_MQTT_URL", support::mqtt_url())
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("autovolt-cli-no-config"),
        )
        .env_remove("AUTOVOLT_CONFIG")
        .env_remove("AUTOVOLT_OPERATOR")
        .env_remove("AUTOVOLT_TIMEZONE")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the autovolt binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

async fn campus(label: &str) -> (String, Store) {
    let uri = support::fresh_database_uri(label);
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    store.migrate_up(None, false).await.unwrap();
    seed(
        &store,
        &SeedOptions {
            classrooms: 2,
            devices_per_classroom: 2,
            seed: Some(16),
        },
    )
    .await
    .unwrap();
    (uri, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_a_schema_is_named_by_every_command_but_migrate() {
    let uri = support::fresh_database_uri("cli_no_schema");
    let backup = tempfile::tempdir().unwrap();
    let out = backup.path().join("b");
    let out = out.to_str().unwrap();
    for args in [
        &["devices", "list"][..],
        &["devices", "unregistered"],
        &["tariff", "show"],
        &["tariff", "set", "8", "--as", "ops"],
        &["aggregate", "--yesterday", "--as", "ops"],
        &["audit"],
        &["rejected", "list"],
        &["seed"],
        &["prune-telemetry", "--yes"],
        &["backup", "--out", out],
        &[
            "toggle",
            "--device",
            "A4:CF:12:B3:C4:D5",
            "--switch",
            "1",
            "--on",
            "--as",
            "ops",
        ],
    ] {
        let r = cli(&uri, args);
        r.expect(2, args);
        assert!(
            r.stderr.contains("no schema (version 0)") && r.stderr.contains("autovolt migrate up"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("AUTOVOLT_MONGODB_URI"),
            "the URI's source is named: {}",
            r.stderr
        );
    }
    let r = cli(&uri, &["migrate", "status", "--json"]);
    r.expect(1, &["migrate", "status"]);
    assert_eq!(r.json()["version"], 0);
    // Nothing above wrote: the database was never created.
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    let names = store.client().list_database_names().await.unwrap();
    assert!(
        !names.contains(&store.database().name().to_string()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_rejected_letters_answer_in_text_and_json() {
    let (uri, store) = campus("cli_devices").await;
    let devices = store.devices().await.unwrap();
    let rooms = store.classrooms().await.unwrap();

    let r = cli(&uri, &["devices", "list", "--json"]);
    r.expect(0, &["devices", "list"]);
    assert_eq!(r.json().as_array().unwrap().len(), devices.len());
    assert!(!r.stdout.contains(devices[0].device_secret.expose()));
    // A classroom by name in any case; campus times name their zone.
    let lower = rooms[0].name.to_lowercase();
    let r = cli(&uri, &["devices", "list", "--classroom", &lower]);
    r.expect(0, &["devices", "list", "--classroom"]);
    assert!(r.stdout.contains("2 devices"), "{}", r.stdout);
    let r = cli(&uri, &["devices", "list", "--classroom", "Nowhere"]);
    r.expect(2, &["devices", "list", "--classroom", "Nowhere"]);
    assert!(
        r.stderr.contains("\"Nowhere\""),
        "echoes what was typed: {}",
        r.stderr
    );

    cli(&uri, &["devices", "unregistered", "--json"]).expect(0, &["devices", "unregistered"]);
    let r = cli(&uri, &["rejected", "list", "--json"]);
    r.expect(0, &["rejected", "list"]);
    assert!(r.json().as_array().unwrap().is_empty());
    cli(&uri, &["rejected", "list", "--limit", "0"]).expect(2, &["rejected", "list", "--limit 0"]);
    let r = cli(&uri, &["rejected", "replay", "000000000000000000000000"]);
    r.expect(2, &["rejected", "replay"]);
    let r = cli(&uri, &["rejected", "replay", "\u{1b}[2J"]);
    r.expect(2, &["rejected", "replay", "escape"]);
    assert!(!r.stderr.contains('\u{1b}'), "{:?}", r.stderr);
    // One-shot commands do not log at info level.
    assert!(
        !r.stderr.contains("connected to the database"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tariffs_are_bounded_and_a_future_one_can_be_cancelled() {
    let (uri, store) = campus("cli_tariffs").await;
    let r = cli(&uri, &["tariff", "set", "8.25", "--as", "ops", "--json"]);
    r.expect(0, &["tariff", "set", "8.25"]);
    assert_eq!(r.json()["cost_per_kwh"], 8.25);
    let current = r.json()["id"].as_str().unwrap().to_string();
    for bad in [
        &["tariff", "set", "1e-300"][..],
        &["tariff", "set", "0"],
        &["tariff", "set", "7.125"],
    ] {
        cli(&uri, bad).expect(2, bad);
    }
    let r = cli(
        &uri,
        &["tariff", "set", "9", "--from", "9999-12-31", "--as", "ops"],
    );
    r.expect(2, &["tariff", "set", "--from 9999-12-31"]);
    assert!(r.stderr.contains("9999-12-31"), "{}", r.stderr);

    // A price starting next week, cancelled: the current one stays in force, with no end.
    let next_week = (chrono::Utc::now() + chrono::Duration::days(7))
        .format("%Y-%m-%d")
        .to_string();
    let r = cli(
        &uri,
        &[
            "tariff", "set", "9.50", "--from", &next_week, "--note", "new slab", "--json",
        ],
    );
    r.expect(0, &["tariff", "set", "9.50", "--from"]);
    let future = r.json()["id"].as_str().unwrap().to_string();
    let r = cli(&uri, &["tariff", "history", "--json"]);
    r.expect(0, &["tariff", "history"]);
    let history = r.json();
    let now_current = history
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == current.as_str())
        .unwrap();
    assert!(now_current["effective_until"].is_string(), "{history}");

    let r = cli(&uri, &["tariff", "cancel", &future, "--as", "ops"]);
    r.expect(0, &["tariff", "cancel"]);
    assert!(r.stdout.contains("cancelled"), "{}", r.stdout);
    let versions = store.cost_versions(None).await.unwrap();
    assert!(versions
        .iter()
        .all(|v| v.id.map(|i| i.to_hex()) != Some(future.clone())));
    let reopened = versions
        .iter()
        .find(|v| v.id.map(|i| i.to_hex()) == Some(current.clone()))
        .unwrap();
    assert_eq!(reopened.effective_until, None);
    assert_eq!(
        store
            .active_power_settings()
            .await
            .unwrap()
            .unwrap()
            .electricity_price,
        8.25
    );
    cli(&uri, &["tariff", "cancel", &future]).expect(2, &["tariff", "cancel", "again"]);
    // A price in force is history: refused.
    cli(&uri, &["tariff", "cancel", &current]).expect(1, &["tariff", "cancel", "current"]);
    cli(&uri, &["tariff", "cancel", "nonsense"]).expect(2, &["tariff", "cancel", "nonsense"]);

    // Who acts, with no $USER or $LOGNAME (containers, services): the system account.
    let r = cli_env(
        &uri,
        &["tariff", "set", "8.50", "--json"],
        &[("USER", ""), ("LOGNAME", "")],
    );
    r.expect(0, &["tariff", "set", "without $USER"]);
    assert!(r.json()["by"].as_str().is_some_and(|b| !b.is_empty()));
    let r = cli(&uri, &["tariff", "set", "8.50", "--as", " "]);
    r.expect(2, &["tariff", "set", "--as ' '"]);
    cli(&uri, &["tariff", "show", "--json"]).expect(0, &["tariff", "show"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregation_and_audit_take_bounded_ranges() {
    let (uri, _store) = campus("cli_books").await;
    let r = cli(&uri, &["aggregate", "--yesterday", "--as", "ops", "--json"]);
    r.expect(0, &["aggregate", "--yesterday"]);
    assert_eq!(r.json()["days"], 1);
    let r = cli(
        &uri,
        &["aggregate", "--from", "0001-01-01", "--to", "9999-12-31"],
    );
    r.expect(2, &["aggregate", "0001 to 9999"]);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    cli(&uri, &["aggregate", "--date", &tomorrow, "--as", "ops"])
        .expect(2, &["aggregate", "the future"]);
    // A long range asks first; not on a terminal, --yes is needed.
    let r = cli(
        &uri,
        &[
            "aggregate",
            "--from",
            "2026-01-01",
            "--to",
            "2026-03-31",
            "--as",
            "ops",
        ],
    );
    r.expect(2, &["aggregate", "90 days without --yes"]);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    let r = cli(&uri, &["audit", "--json"]);
    r.expect(0, &["audit"]);
    assert!(r.json()["findings"].as_array().unwrap().is_empty());
    cli(
        &uri,
        &["audit", "--from", "2026-12-02", "--to", "2026-12-01"],
    )
    .expect(2, &["audit", "reversed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_commands_ask_and_backups_go_to_empty_directories() {
    let (uri, _store) = campus("cli_destructive").await;
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let r = cli(&uri, &["backup", "--out", busy.to_str().unwrap()]);
    r.expect(1, &["backup", "into a busy directory"]);
    assert!(r.stderr.contains("not empty"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_dir(&busy).unwrap().count(),
        1,
        "nothing was written"
    );

    let fresh = dir.path().join("fresh");
    let r = cli(
        &uri,
        &["backup", "--out", fresh.to_str().unwrap(), "--json"],
    );
    r.expect(0, &["backup"]);
    assert!(r.json()["documents"].as_u64().unwrap() > 0);
    let r = cli(
        &uri,
        &["restore", "--from", fresh.to_str().unwrap(), "--drop"],
    );
    r.expect(2, &["restore", "--drop without --yes"]);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    let r = cli(
        &uri,
        &[
            "restore",
            "--from",
            fresh.to_str().unwrap(),
            "--drop",
            "--yes",
            "--json",
        ],
    );
    r.expect(0, &["restore", "--drop", "--yes"]);

    cli(&uri, &["prune-telemetry", "--older-than-days", "0"])
        .expect(2, &["prune-telemetry", "0 days"]);
    cli(
        &uri,
        &["prune-telemetry", "--older-than-days", "4294967295"],
    )
    .expect(2, &["prune-telemetry", "u32::MAX"]);
    let r = cli(&uri, &["prune-telemetry", "--dry-run", "--json"]);
    r.expect(0, &["prune-telemetry", "--dry-run"]);
    assert_eq!(r.json()["dry_run"], true);
    cli(&uri, &["seed"]).expect(1, &["seed", "a campus that has one"]);
    cli(&uri, &["seed", "--classrooms", "100000"]).expect(2, &["seed", "100000 classrooms"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_names_boards_and_switches_and_health_checks_the_broker() {
    let (uri, store) = campus("cli_toggle").await;
    let board = &store.devices().await.unwrap()[0];
    let r = cli(
        &uri,
        &[
            "toggle",
            "--device",
            "no such board",
            "--switch",
            "1",
            "--on",
            "--as",
            "ops",
        ],
    );
    r.expect(2, &["toggle", "an unknown board"]);
    assert!(r.stderr.contains("no such board"), "{}", r.stderr);
    // The seeded boards have never been heard: offline, so the command is refused.
    let r = cli(
        &uri,
        &[
            "toggle",
            "--device",
            &board.name.to_uppercase(),
            "--switch",
            &board.switches[0].name,
            "--on",
            "--as",
            "ops",
        ],
    );
    r.expect(1, &["toggle", "an offline board by name"]);
    assert!(r.stderr.contains("offline"), "{}", r.stderr);
    cli(
        &uri,
        &[
            "toggle",
            "--device",
            &board.name,
            "--switch",
            "1",
            "--on",
            "--json",
            "--as",
            "\u{7}",
        ],
    )
    .expect(2, &["toggle", "--as BEL"]);
    // Two boards whose names differ only in case: a name in neither's case fits both, and is refused.
    let mut twin = board.clone();
    twin.id = None;
    twin.name = board.name.to_uppercase();
    twin.mac_address = autovolt::domain::Mac::parse("02:C4:00:00:00:77").unwrap();
    store.insert_device(&twin).await.unwrap();
    let mixed: String = board
        .name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let r = cli(
        &uri,
        &[
            "toggle", "--device", &mixed, "--switch", "1", "--on", "--as", "ops",
        ],
    );
    r.expect(2, &["toggle", "a name two boards share"]);
    assert!(
        r.stderr.contains("02:C4:00:00:00:77") && r.stderr.contains(&board.mac_address.to_string()),
        "{}",
        r.stderr
    );

    let r = cli(&uri, &["health", "--json"]);
    assert!(r.code <= 1, "{}", r.stderr);
    assert_eq!(r.json()["broker"]["reachable"], true, "{}", r.stdout);
    let r = cli_env(
        &uri,
        &["health", "--json"],
        &[("AUTOVOLT_MQTT_URL", "mqtt://127.0.0.1:1")],
    );
    assert!(r.code >= 1);
    assert_eq!(r.json()["broker"]["reachable"], false, "{}", r.stdout);
    let r = cli(&uri, &["health"]);
    assert!(r.stdout.contains("Broker"), "{}", r.stdout);
    cli(&uri, &["tui", "--json"]).expect(2, &["tui", "--json"]);
}

#[test]
fn servers_and_files_that_cannot_be_used_are_named_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "campus = \"North\"\nmongodb_uri = \"mongodb://ops:hunter2@db:27017/x\n",
    )
    .unwrap();
    let r = cli(
        "mongodb://127.0.0.1:1/x",
        &["--config", config.to_str().unwrap(), "devices", "list"],
    );
    r.expect(2, &["--config", "broken"]);
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);

    let unreachable = "mongodb://ops:hunter2@127.0.0.1:1/x?serverSelectionTimeoutMS=500";
    let r = cli(unreachable, &["devices", "list"]);
    r.expect(2, &["devices", "list", "unreachable"]);
    assert!(r.stderr.contains("AUTOVOLT_MONGODB_URI"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    let r = cli(
        "mongodb://127.0.0.1:2/x",
        &["devices", "list", "--mongodb-uri", unreachable],
    );
    r.expect(2, &["--mongodb-uri", "unreachable"]);
    assert!(r.stderr.contains("--mongodb-uri"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_added_listed_disabled_and_removed_and_each_change_is_logged() {
    let (uri, store) = campus("cli-schedule").await;
    let room = store.classrooms().await.unwrap()[0].clone();
    let fans = store
        .devices_in_classroom(room.id.unwrap())
        .await
        .unwrap()
        .iter()
        .flat_map(|d| d.switches.iter())
        .filter(|s| s.switch_type == autovolt::domain::SwitchType::Fan)
        .count();
    assert!(fans > 0, "the seeded classroom has fans");
    let add = |extra: &[&str]| -> Vec<String> {
        ["schedule", "add", "--at", "18:00", "--action", "off"]
            .iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = cli(&uri, &a);
        (r, args)
    };
    let (r, a) = run(add(&["--classroom", "No-such-room"]));
    r.expect(2, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.stderr.contains("no classroom named"), "{}", r.stderr);
    let (r, a) = run(add(&["--classroom", &room.name, "--switch-type", "heater"]));
    r.expect(2, &a.iter().map(String::as_str).collect::<Vec<_>>());

    let (r, a) = run(add(&[
        "--classroom",
        &room.name,
        "--switch-type",
        "fan",
        "--days",
        "mon,fri",
        "--json",
        "--as",
        "priya",
    ]));
    r.expect(0, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let added = r.json();
    assert_eq!(added["type"], "weekly");
    assert_eq!(added["days"], serde_json::json!([1, 5]));
    assert_eq!(added["switches"], fans);
    assert_eq!(added["classrooms"], serde_json::json!([room.name]));
    assert!(
        added["nextRunLocal"]
            .as_str()
            .unwrap()
            .ends_with(" 18:00 IST"),
        "{added}"
    );
    let id = added["id"].as_str().unwrap().to_string();
    let name = added["name"].as_str().unwrap().to_string();

    let list = cli(&uri, &["schedule", "list", "--json"]).json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["enabled"], true);
    let text = cli(&uri, &["schedule", "list"]);
    assert!(
        text.stdout.contains(&name) && text.stdout.contains("next"),
        "{}",
        text.stdout
    );

    cli(&uri, &["schedule", "disable", &id, "--as", "priya"]).expect(0, &["disable"]);
    let list = cli(&uri, &["schedule", "list", "--json"]).json();
    assert_eq!(
        (&list[0]["enabled"], &list[0]["nextRun"]),
        (&Value::Bool(false), &Value::Null)
    );
    cli(&uri, &["schedule", "enable", &name, "--as", "priya"]).expect(0, &["enable"]);
    cli(&uri, &["schedule", "rm", &id, "--as", "priya"]).expect(2, &["rm without --yes"]);
    cli(&uri, &["schedule", "rm", &id, "--yes", "--as", "priya"]).expect(0, &["rm"]);
    assert_eq!(
        cli(&uri, &["schedule", "list", "--json"]).json(),
        serde_json::json!([])
    );
    let gone = cli(&uri, &["schedule", "disable", &id]);
    gone.expect(2, &["disable a removed schedule"]);
    assert!(gone.stderr.contains("schedule list"), "{}", gone.stderr);

    let changes: Vec<String> = store
        .recent_activity(100, None, &Default::default())
        .await
        .unwrap()
        .rows
        .into_iter()
        .filter(|a| a.action == "schedule_change")
        .map(|a| {
            assert_eq!(a.user_name.as_deref(), Some("priya"));
            a.context.unwrap()["change"].as_str().unwrap().to_string()
        })
        .collect();
    let mut changes = changes;
    changes.sort();
    assert_eq!(changes, ["added", "disabled", "enabled", "removed"]);
}

/// Every collection of the database with its number of documents.
async fn contents(store: &Store) -> Vec<(String, u64)> {
    let db = store.database();
    let mut names = db.list_collection_names().await.unwrap();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let count = db
            .collection::<bson::Document>(&n)
            .count_documents(bson::doc! {})
            .await
            .unwrap();
        out.push((n, count));
    }
    out
}

/// Runs `autovolt ARGS` on a pseudo-terminal (util-linux `script`), typing `input`; what the
/// terminal showed comes back as stdout.
fn on_a_terminal(uri: &str, args: &str, input: &str, state_home: &str) -> Run {
    use std::io::Write;
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_autovolt")))
        .arg("/dev/null")
        .env("AUTOVOLT_MONGODB_URI", uri)
        .env("AUTOVOLT_MQTT_URL", support::mqtt_url())
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("autovolt-cli-no-config"),
        )
        .env("XDG_STATE_HOME", state_home)
        .env("TERM", "xterm")
        .env_remove("AUTOVOLT_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    // Typed ahead: the terminal keeps it until the prompt reads it.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes());
    let out = child.wait_with_output().expect("script ends");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// One line on stderr, without a panic or a backtrace.
fn one_line(r: &Run) -> &str {
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("backtrace"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}", r.stderr);
    r.stderr.trim_end()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_writes_into_a_database_it_did_not_create_only_when_told() {
    let (uri, store) = campus("cli_demo_existing").await;
    let before = contents(&store).await;
    let state = tempfile::tempdir().unwrap();
    let state_home = state.path().to_str().unwrap();
    // Off a terminal nobody can answer (and no dashboard can run): refused before anything
    // starts, naming the database it would have asked about.
    let r = cli_env(&uri, &["demo"], &[("XDG_STATE_HOME", state_home)]);
    r.expect(2, &["demo", "AUTOVOLT_MONGODB_URI set, without --yes"]);
    let line = one_line(&r);
    assert!(
        line.contains("needs a terminal")
            && line.contains("AUTOVOLT_MONGODB_URI")
            && line.contains(store.database().name())
            && line.contains("--yes"),
        "{line}"
    );
    let r = cli_env(&uri, &["demo", "--yes"], &[("XDG_STATE_HOME", state_home)]);
    r.expect(2, &["demo", "--yes", "off a terminal"]);
    assert!(one_line(&r).contains("needs a terminal"), "{}", r.stderr);
    // On a terminal it asks; "n" is a refusal (exit 1).
    let r = on_a_terminal(&uri, "demo", "n\n", state_home);
    r.expect(1, &["demo", "answered n on a terminal"]);
    assert!(
        r.stdout.contains(store.database().name()) && r.stdout.contains("[y/N]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("nothing was done"), "{}", r.stdout);
    assert_eq!(contents(&store).await, before, "nothing was written");
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "nothing was started (no log, no private FerretDB)"
    );
}

#[test]
fn the_dashboard_without_a_terminal_says_so_in_one_line() {
    // `Command::output` gives the child no stdin and pipes for stdout and stderr, as
    // `ssh host autovolt` (no -t) or `autovolt </dev/null | cat` does.
    let uri = support::fresh_database_uri("cli_no_terminal");
    let state = tempfile::tempdir().unwrap();
    let state_home = state.path().to_str().unwrap();
    for args in [&[][..], &["tui"], &["tui", "--read-only"], &["demo"]] {
        let mut env = vec![("XDG_STATE_HOME", state_home)];
        if args == ["demo"] {
            // The demo's own database: nothing to ask, only the terminal is missing.
            env.push(("AUTOVOLT_MONGODB_URI", ""));
        }
        let r = cli_env(&uri, args, &env);
        r.expect(2, args);
        let line = one_line(&r);
        assert!(
            line.contains("needs a terminal") && line.contains("ssh -t"),
            "{args:?}: {line}"
        );
    }
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "nothing was started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_stops_at_once_when_the_broker_refuses_or_cannot_be_reached() {
    let (uri, store) = campus("cli_toggle_refused").await;
    let board = &store.devices().await.unwrap()[0];
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args(["tech", "correct-horse-7"])
        .status()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(status.success());
    let guarded = autovolt::servers::start_mosquitto_with(
        &dir.path().join("broker"),
        true,
        &format!(
            "allow_anonymous false\npassword_file {}\n",
            passwd.display()
        ),
    )
    .unwrap();
    let guarded_url = format!("mqtt://127.0.0.1:{}", guarded.port());
    let args = [
        "toggle",
        "--device",
        &board.name,
        "--switch",
        "1",
        "--on",
        "--as",
        "ops",
    ];
    for (case, env, says) in [
        (
            "a closed port",
            vec![("AUTOVOLT_MQTT_URL", format!("mqtt://127.0.0.1:{closed}"))],
            "cannot be reached",
        ),
        (
            "a wrong password",
            vec![
                ("AUTOVOLT_MQTT_URL", guarded_url.clone()),
                ("AUTOVOLT_MQTT_USERNAME", "tech".to_string()),
                ("AUTOVOLT_MQTT_PASSWORD", "battery-staple-9".to_string()),
            ],
            "refused the user \"tech\"",
        ),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let started = std::time::Instant::now();
        let r = cli_env(&uri, &args, &env);
        let took = started.elapsed();
        r.expect(2, &["toggle", case]);
        let line = one_line(&r);
        assert!(line.contains(says), "{case}: {line}");
        assert!(!line.contains("battery-staple-9"), "{line}");
        // The command waits up to 10 s for a board's answer, never for a broker that said no.
        assert!(
            took < Duration::from_secs(3),
            "{case}: answered after {took:?}"
        );
    }
}
