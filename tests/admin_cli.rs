//! `autovolt user …`, `firmware record`, `devices show` and the storage figures of `health` as an
//! operator meets them: exit codes (0 all well, 1 refused, 2 unusable input, credentials or
//! server), `--json`, and no password ever printed.

mod support;

use autovolt::seed::{seed, SeedOptions};
use autovolt::store::Store;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
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

    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `autovolt ARGS` against `uri`, with stdin not a terminal.
fn cli(uri: &str, args: &[&str]) -> Run {
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
        .env_remove("AUTOVOLT_ADMIN")
        .env_remove("AUTOVOLT_ADMIN_PASSWORD_FILE")
        .env_remove("AUTOVOLT_TIMEZONE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    let out = cmd.output().expect("the autovolt binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn secret_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    path.to_str().unwrap().to_string()
}

async fn campus(label: &str) -> (String, Store) {
    let uri = support::fresh_database_uri(label);
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    store.migrate_up(None, false).await.unwrap();
    seed(
        &store,
        &SeedOptions {
            classrooms: 1,
            devices_per_classroom: 2,
            seed: Some(7),
        },
    )
    .await
    .unwrap();
    (uri, store)
}

const ASHA_PW: &str = "asha's long pass";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_managed_from_the_command_line_with_the_documented_codes() {
    let (uri, store) = campus("cli_users").await;
    let dir = tempfile::tempdir().unwrap();
    let asha_pw = secret_file(&dir, "asha", &format!("{ASHA_PW}\n"));
    let ravi_pw = secret_file(&dir, "ravi", "ravi-pass-1\r\n");
    let short = secret_file(&dir, "short", "1234567\n");
    let two_lines = secret_file(&dir, "two", "first line\nsecond line\n");

    // Who acts must be said.
    let args = ["user", "list"];
    let r = cli(&uri, &args);
    r.expect(2, &args);
    assert!(
        r.stderr.contains("--admin") && r.stderr.contains("--as-database-admin"),
        "{}",
        r.stderr
    );

    // The first super-admin, by the database's administrator.
    let args = [
        "user",
        "add",
        "Asha@Campus.EDU",
        "--name",
        "Asha Rao",
        "--role",
        "super-admin",
        "--password-file",
        &asha_pw,
        "--as-database-admin",
        "--as",
        "priya",
        "--json",
    ];
    let r = cli(&uri, &args);
    r.expect(0, &args);
    assert_eq!(r.json()["account"], "asha@campus.edu");
    assert!(!r.all().contains(ASHA_PW));
    let again = cli(&uri, &args);
    again.expect(1, &args);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    // Bad input is refused before any work.
    for (args, says) in [
        (
            vec![
                "user",
                "add",
                "r@campus.edu",
                "--name",
                "Ravi",
                "--password-file",
                short.as_str(),
                "--as-database-admin",
            ],
            "at least 8",
        ),
        (
            vec![
                "user",
                "add",
                "r@campus.edu",
                "--name",
                "Ravi",
                "--password-file",
                two_lines.as_str(),
                "--as-database-admin",
            ],
            "one line",
        ),
        (
            vec![
                "user",
                "add",
                "r@campus.edu",
                "--name",
                "Ravi",
                "--as-database-admin",
            ],
            "--password-file",
        ),
        (
            vec![
                "user",
                "add",
                "not-an-email",
                "--name",
                "Ravi",
                "--password-file",
                ravi_pw.as_str(),
                "--as-database-admin",
            ],
            "name@example.org",
        ),
        (
            vec![
                "user",
                "role",
                "r@campus.edu",
                "boss",
                "--as-database-admin",
            ],
            "user, admin or super-admin",
        ),
        (
            vec!["user", "list", "--admin", "asha@campus.edu"],
            "AUTOVOLT_ADMIN_PASSWORD_FILE",
        ),
    ] {
        let r = cli(&uri, &args);
        r.expect(2, &args);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert!(!r.all().contains("1234567\n") && !r.all().contains("first line"));
    }
    assert!(store.user_by_email("r@campus.edu").await.unwrap().is_none());

    // Asha signs in and adds Ravi; the list shows both, without hashes.
    let admin = [
        "--admin",
        "asha@campus.edu",
        "--admin-password-file",
        asha_pw.as_str(),
    ];
    let mut args = vec![
        "user",
        "add",
        "ravi@campus.edu",
        "--name",
        "Ravi Kumar",
        "--password-file",
        &ravi_pw,
    ];
    args.extend(admin);
    cli(&uri, &args).expect(0, &args);
    let mut args = vec!["user", "list", "--json"];
    args.extend(admin);
    let r = cli(&uri, &args);
    r.expect(0, &args);
    let list = r.json();
    let emails: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["asha@campus.edu", "ravi@campus.edu"]);
    assert!(!r.stdout.contains("$2b$"), "no password hash is shown");
    assert!(store
        .authenticate(
            "ravi@campus.edu",
            "ravi-pass-1",
            autovolt::domain::dates::now_millis()
        )
        .await
        .is_ok());

    // Ravi is a user: refused (1). A wrong password: refused credentials (2).
    let r = cli(
        &uri,
        &[
            "user",
            "list",
            "--admin",
            "ravi@campus.edu",
            "--admin-password-file",
            &ravi_pw,
        ],
    );
    r.expect(1, &["user list as a user"]);
    assert!(
        r.stderr.contains("only an admin or a super-admin"),
        "{}",
        r.stderr
    );
    let r = cli(
        &uri,
        &[
            "user",
            "list",
            "--admin",
            "asha@campus.edu",
            "--admin-password-file",
            &ravi_pw,
        ],
    );
    r.expect(2, &["user list with a wrong password"]);
    assert!(r.stderr.contains("wrong"), "{}", r.stderr);
    assert!(!r.all().contains("ravi-pass-1"));

    // The last super-admin stays (1); a no-op says so (0); an unknown account is named (2).
    let mut args = vec!["user", "disable", "asha@campus.edu"];
    args.extend(admin);
    let r = cli(&uri, &args);
    r.expect(1, &args);
    assert!(r.stderr.contains("last active super-admin"), "{}", r.stderr);
    let mut args = vec!["user", "role", "ravi@campus.edu", "user", "--json"];
    args.extend(admin);
    let r = cli(&uri, &args);
    r.expect(0, &args);
    assert_eq!(r.json()["changed"], false);
    let mut args = vec!["user", "unlock", "ghost@campus.edu"];
    args.extend(admin);
    let r = cli(&uri, &args);
    r.expect(2, &args);
    assert!(
        r.stderr.contains("no account with e-mail ghost@campus.edu"),
        "{}",
        r.stderr
    );

    // Disable, enable, a new password: each a logged change.
    for action in [["disable"], ["enable"]] {
        let mut args = vec!["user", action[0], "ravi@campus.edu"];
        args.extend(admin);
        cli(&uri, &args).expect(0, &args);
    }
    let new_pw = secret_file(&dir, "new", "ravi-pass-2\n");
    let mut args = vec![
        "user",
        "passwd",
        "ravi@campus.edu",
        "--password-file",
        &new_pw,
    ];
    args.extend(admin);
    cli(&uri, &args).expect(0, &args);
    assert!(store
        .authenticate(
            "ravi@campus.edu",
            "ravi-pass-2",
            autovolt::domain::dates::now_millis()
        )
        .await
        .is_ok());
    let logged = store
        .recent_activity(50, None, &Default::default())
        .await
        .unwrap()
        .rows;
    let actions: Vec<&str> = logged.iter().map(|a| a.action.as_str()).collect();
    for a in [
        "user_created",
        "user_disabled",
        "user_enabled",
        "user_password_changed",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(logged.iter().all(|a| a
        .context
        .as_ref()
        .is_none_or(|c| !c.to_string().contains("ravi-pass"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firmware_records_show_in_the_boards_history() {
    let (uri, store) = campus("cli_firmware").await;
    let board = store.devices().await.unwrap().remove(0);
    let mac = board.mac_address.to_string();
    let args = [
        "firmware",
        "record",
        &mac,
        "--version",
        "1.4.3",
        "--note",
        "flashed over USB",
        "--as",
        "ops",
        "--json",
    ];
    let r = cli(&uri, &args);
    r.expect(0, &args);
    assert_eq!(r.json()["record"]["to_version"], "1.4.3");
    assert_eq!(r.json()["record"]["status"], "success");
    let args = [
        "firmware",
        "record",
        &board.name,
        "--version",
        "1.5.0",
        "--status",
        "failed",
        "--as",
        "ops",
    ];
    cli(&uri, &args).expect(0, &args);

    // Bad input: exit 2, nothing written.
    for args in [
        vec!["firmware", "record", mac.as_str(), "--version", "1.6 beta"],
        vec![
            "firmware",
            "record",
            mac.as_str(),
            "--version",
            "1.6",
            "--status",
            "done",
        ],
        vec![
            "firmware",
            "record",
            mac.as_str(),
            "--version",
            "1.6",
            "--note",
            "a\u{7}bell",
        ],
        vec![
            "firmware",
            "record",
            "AA:BB:CC:DD:EE:FF",
            "--version",
            "1.6",
        ],
    ] {
        cli(&uri, &args).expect(2, &args);
    }

    let args = ["devices", "show", &mac, "--json"];
    let r = cli(&uri, &args);
    r.expect(0, &args);
    let shown = r.json();
    assert_eq!(
        shown["firmware_version"], "1.4.3",
        "a success becomes the board's version"
    );
    let history = shown["firmware_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["to_version"], "1.5.0");
    assert_eq!(history[0]["from_version"], "1.4.3");
    assert_eq!(history[0]["status"], "failed");
    assert_eq!(history[1]["to_version"], "1.4.3");
    assert_eq!(history[1]["notes"], "flashed over USB");
    assert!(
        shown.get("deviceSecret").is_none() && !r.stdout.contains(board.device_secret.expose())
    );

    let r = cli(&uri, &["devices", "show", &board.name]);
    r.expect(0, &["devices show NAME"]);
    assert!(
        r.stdout.contains("firmware history (2, newest first)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1.4.3 → 1.5.0"), "{}", r.stdout);
    assert!(
        r.stdout.contains("IST"),
        "times in campus time: {}",
        r.stdout
    );
    cli(&uri, &["devices", "show", "no-such-board"]).expect(2, &["devices show unknown"]);

    let logged = store
        .recent_activity(10, None, &Default::default())
        .await
        .unwrap()
        .rows;
    let fw: Vec<_> = logged
        .iter()
        .filter(|a| a.action == "firmware_update")
        .collect();
    assert_eq!(fw.len(), 2);
    assert_eq!(fw[0].device_id, board.id);
    assert_eq!(fw[0].user_name.as_deref(), Some("ops"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_collections_storage_figures() {
    let (uri, _store) = campus("cli_storage").await;
    let r = cli(&uri, &["health", "--json"]);
    assert!(r.code <= 1, "{}", r.stderr);
    let report = r.json();
    let colls = report["collections"].as_array().unwrap();
    let devices = colls.iter().find(|c| c["name"] == "devices").unwrap();
    assert_eq!(devices["documents"], 2);
    let source = devices["source"].as_str().unwrap();
    assert!(
        ["$collStats", "collStats", "count"].contains(&source),
        "{source}"
    );
    if source != "count" {
        assert!(devices["storage_bytes"].as_u64().is_some(), "{devices}");
        assert!(devices["index_bytes"].as_u64().is_some(), "{devices}");
    } else {
        assert!(devices["storage_bytes"].is_null());
    }
    let r = cli(&uri, &["health"]);
    assert!(
        r.stdout.contains("index size") && r.stdout.contains("figures from"),
        "{}",
        r.stdout
    );
}
