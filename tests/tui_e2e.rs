//! End to end in a pseudo-terminal (tmux): the dashboard binary against the harness's FerretDB and
//! Mosquitto and the simulated fleet. Start, navigate, toggle a switch, see it confirmed by the
//! board, quit cleanly with the terminal restored.

mod support;

use autovolt::seed::{self, SeedOptions};
use autovolt::simulate::{self, SimulateOptions};
use autovolt::store::Store;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Tmux {
    session: String,
}

impl Tmux {
    /// A detached 120×40 session running `cmd`, kept on screen after it exits.
    fn start(session: &str, cmd: &str) -> Tmux {
        Tmux::run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "40",
            cmd,
        ]);
        Tmux::run(&["set-option", "-t", session, "remain-on-exit", "on"]);
        Tmux {
            session: session.to_string(),
        }
    }

    /// Waits until the command wrote its exit status into `exit_file`; returns it.
    async fn exit_status(&self, exit_file: &std::path::Path, what: &str) -> String {
        let until = Instant::now() + Duration::from_secs(15);
        while !exit_file.exists() {
            assert!(
                Instant::now() < until,
                "{what}; the screen:\n{}",
                self.screen()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::read_to_string(exit_file)
            .unwrap()
            .trim()
            .to_string()
    }

    fn run(args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        Tmux::run(&["capture-pane", "-p", "-t", &self.session])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        Tmux::run(&args);
    }

    /// Waits until the screen satisfies `ok`, else fails showing the screen.
    async fn wait(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if Instant::now() > until {
                panic!("timed out waiting for {what}; the screen:\n{s}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Tmux::run(&["kill-session", "-t", &self.session]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_navigate_toggle_confirmed_and_quit_cleanly() {
    let uri = support::fresh_database_uri("tui_e2e");
    let mqtt = support::mqtt_url();
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    store.migrate_up(None, false).await.unwrap();
    seed::seed(
        &store,
        &SeedOptions {
            classrooms: 2,
            devices_per_classroom: 1,
            seed: Some(7),
        },
    )
    .await
    .unwrap();

    // The fleet: no random switching, frequent snapshots so the boards show online at once.
    let stop = CancellationToken::new();
    let mut sim = SimulateOptions::new(
        simulate::from_store(&store).await.unwrap(),
        chrono_tz::Asia::Kolkata,
    );
    sim.rate = 0.0;
    sim.report_every = Duration::from_secs(1);
    let (url, shutdown) = (mqtt.clone(), stop.clone());
    let fleet = tokio::spawn(async move { simulate::run(url, sim, shutdown).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "campus = \"E2E Campus\"\n").unwrap();
    let exit_file = dir.path().join("exit");
    let session = format!("autovolt-e2e-{}", std::process::id());
    let cmd = format!(
        "env LANG=C.UTF-8 RUST_LOG=autovolt=trace,info AUTOVOLT_CONFIG={} AUTOVOLT_MONGODB_URI='{}' AUTOVOLT_MQTT_URL='{}' AUTOVOLT_LOG_FILE={} {} tui; echo $? > {}",
        config.display(),
        uri,
        mqtt,
        dir.path().join("dashboard.log").display(),
        env!("CARGO_BIN_EXE_autovolt"),
        exit_file.display()
    );
    let t = Tmux::start(&session, &cmd);

    t.wait(
        "the classrooms from the database and a live broker",
        Duration::from_secs(30),
        |s| {
            s.contains("E2E Campus")
                && s.contains("Classrooms (2)")
                && s.contains("MQTT ● live")
                && s.contains("1/1")
        },
    )
    .await;
    // Sort by name, open the first classroom.
    t.keys(&["s", "s", "s"]);
    t.keys(&["Enter"]);
    let screen = t
        .wait(
            "the classroom grid with its board online",
            Duration::from_secs(15),
            |s| s.contains("Board ") && s.contains("● online") && s.contains("▶ "),
        )
        .await;
    let selected = screen
        .lines()
        .find(|l| l.contains("▶ "))
        .unwrap()
        .to_string();
    assert!(
        selected.contains("□ off"),
        "the simulator starts with every relay off: {selected}"
    );

    t.keys(&["Space"]);
    let screen = t
        .wait(
            "the command confirmed by the board",
            Duration::from_secs(10),
            |s| s.lines().any(|l| l.contains("▶ ") && l.contains("■ ON ✓")),
        )
        .await;
    assert!(!screen.contains("failed"), "{screen}");

    t.keys(&["q"]);
    let code = t
        .exit_status(&exit_file, "the dashboard did not quit")
        .await;
    assert_eq!(code, "0", "exit status");
    let alternate = Tmux::run(&["display-message", "-p", "-t", &session, "#{alternate_on}"]);
    assert_eq!(alternate.trim(), "0", "the alternate screen was left");
    assert!(
        !t.screen().contains("Classrooms"),
        "the dashboard's screen is gone:\n{}",
        t.screen()
    );
    let log = std::fs::read_to_string(dir.path().join("dashboard.log")).unwrap();
    assert!(
        log.contains("relay command"),
        "actions are logged to the file:\n{log}"
    );
    // With every log line of ours on, no board's secret is in the file.
    for d in store.devices().await.unwrap() {
        let secret = d.device_secret.expose();
        assert!(!secret.is_empty());
        assert!(
            !log.contains(secret),
            "{}'s secret is in the log:\n{log}",
            d.name
        );
    }

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), fleet).await;
}

/// Today's ledger for a big campus, written straight in: enough that aggregating the day takes
/// a while, so that it can be stopped and quit in the middle.
async fn busy_day(store: &Store, rows: usize) {
    use autovolt::domain::{CostCalculation, LedgerRow, Quality, SwitchType};
    let devices = store.devices().await.unwrap();
    let rooms: std::collections::HashMap<_, _> = store
        .classrooms()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| Some((c.id?, c.name)))
        .collect();
    let midnight = autovolt::domain::interval::local_midnight(
        autovolt::domain::interval::local_date(chrono::Utc::now(), chrono_tz::Asia::Kolkata),
        chrono_tz::Asia::Kolkata,
    );
    let mut batch = Vec::new();
    for i in 0..rows {
        let d = &devices[i % devices.len()];
        let start = midnight + chrono::Duration::milliseconds(i as i64 * 997);
        batch.push(LedgerRow {
            id: None,
            device_id: d.id.unwrap().to_hex(),
            esp32_name: d.name.clone(),
            classroom: d
                .classroom
                .and_then(|c| rooms.get(&c).cloned())
                .unwrap_or_default(),
            switch_id: "sw1".into(),
            switch_name: "Light".into(),
            switch_type: SwitchType::Light,
            start_ts: start,
            end_ts: start + chrono::Duration::seconds(1),
            switch_on_duration_seconds: 1.0,
            delta_wh: 40.0 / 3600.0,
            power_w: 40.0,
            cost_calculation: Some(CostCalculation {
                cost_per_kwh: 8.0,
                cost_inr: 40.0 / 3600.0 / 1000.0 * 8.0,
            }),
            quality: Quality::default(),
            created_at: Some(start),
            updated_at: Some(start),
        });
        if batch.len() == 1000 || i + 1 == rows {
            store
                .collection::<LedgerRow>("deviceconsumptionledgers")
                .insert_many(std::mem::take(&mut batch))
                .await
                .unwrap();
        }
    }
}

/// Opens the aggregation prompt, accepts "today" and waits until the run shows.
async fn start_aggregating_today(t: &Tmux) {
    t.keys(&["a"]);
    t.wait("the aggregation prompt", Duration::from_secs(10), |s| {
        s.contains("today")
    })
    .await;
    t.keys(&["Enter"]);
    t.wait("the aggregation running", Duration::from_secs(10), |s| {
        s.contains("Aggregating")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esc_stops_an_aggregation_and_quitting_during_one_exits_promptly() {
    let uri = support::fresh_database_uri("tui_e2e_agg");
    let mqtt = support::mqtt_url();
    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    store.migrate_up(None, false).await.unwrap();
    seed::seed(
        &store,
        &SeedOptions {
            classrooms: 40,
            devices_per_classroom: 2,
            seed: Some(8),
        },
    )
    .await
    .unwrap();
    busy_day(&store, 30_000).await;

    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let session = format!("autovolt-e2e-agg-{}", std::process::id());
    let cmd = format!(
        "env LANG=C.UTF-8 AUTOVOLT_CONFIG=/dev/null AUTOVOLT_MONGODB_URI='{}' AUTOVOLT_MQTT_URL='{}' AUTOVOLT_LOG_FILE={} {} tui; echo $? > {}",
        uri,
        mqtt,
        dir.path().join("dashboard.log").display(),
        env!("CARGO_BIN_EXE_autovolt"),
        exit_file.display()
    );
    let t = Tmux::start(&session, &cmd);
    t.wait("the classrooms", Duration::from_secs(60), |s| {
        s.contains("Classrooms (40)")
    })
    .await;

    // Aggregate today, then Esc while it runs: it stops, saying what it kept.
    start_aggregating_today(&t).await;
    t.keys(&["Escape"]);
    t.wait("the aggregation stopped", Duration::from_secs(60), |s| {
        s.contains("aggregation stopped")
    })
    .await;

    // Again, and quit while it runs: the dashboard leaves at once with the terminal restored.
    t.keys(&["Escape"]);
    start_aggregating_today(&t).await;
    t.keys(&["q"]);
    let code = t
        .exit_status(
            &exit_file,
            "the dashboard did not quit during an aggregation",
        )
        .await;
    assert_eq!(code, "0");
    let alternate = Tmux::run(&["display-message", "-p", "-t", &session, "#{alternate_on}"]);
    assert_eq!(alternate.trim(), "0", "the alternate screen was left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_a_schema_is_named_until_it_has_one() {
    // A typo in the database's name: a database nobody migrated. The dashboard says so instead
    // of showing an empty campus as connected, and shows the campus once it has a schema.
    let uri = support::fresh_database_uri("tui_e2e_no_schema");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "campus = \"E2E Campus\"\n").unwrap();
    let exit_file = dir.path().join("exit");
    let session = format!("autovolt-e2e-schema-{}", std::process::id());
    let cmd = format!(
        "env LANG=C.UTF-8 AUTOVOLT_CONFIG={} AUTOVOLT_MONGODB_URI='{}' AUTOVOLT_MQTT_URL='{}' AUTOVOLT_LOG_FILE={} {} tui --read-only; echo $? > {}",
        config.display(),
        uri,
        support::mqtt_url(),
        dir.path().join("dashboard.log").display(),
        env!("CARGO_BIN_EXE_autovolt"),
        exit_file.display()
    );
    let t = Tmux::start(&session, &cmd);
    let screen = t
        .wait(
            "the database named as unusable",
            Duration::from_secs(30),
            |s| s.contains("has no schema (version 0)"),
        )
        .await;
    let database = uri
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap();
    assert!(screen.contains(database), "{screen}");
    assert!(screen.contains("DB ✕ unusable"), "{screen}");
    assert!(!screen.contains("DB ●"), "{screen}");

    let store = Store::connect(&uri, Duration::from_secs(10)).await.unwrap();
    store.migrate_up(None, false).await.unwrap();
    seed::seed(
        &store,
        &SeedOptions {
            classrooms: 2,
            devices_per_classroom: 1,
            seed: Some(8),
        },
    )
    .await
    .unwrap();
    let screen = t
        .wait("the campus once migrated", Duration::from_secs(30), |s| {
            s.contains("Classrooms (2)") && s.contains("DB ●")
        })
        .await;
    assert!(!screen.contains("no schema"), "{screen}");
    t.keys(&["q"]);
    let code = t
        .exit_status(&exit_file, "the dashboard did not quit")
        .await;
    assert_eq!(code, "0", "exit status");
}
