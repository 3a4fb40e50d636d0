//! The live commands as an operator runs them: `autovolt collect`, `simulate` and `toggle` as child
//! processes against the test FerretDB and Mosquitto, stopped with Ctrl-C (SIGINT), and judged by
//! their exit codes, their output and what they leave in the database. Every test has its own
//! database, MQTT client ids and board MACs, so that they share the broker and run in parallel.

mod live;
mod support;

use autovolt::domain::{Device, DeviceStatus, Id};
use autovolt::store::{collections, Store};
use bson::{doc, Document};
use live::*;
use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// How long anything a test waits for may take before the test fails: a bound, not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);

/// An id of this test process: client ids stay unique even on a broker shared with other runs.
fn unique(label: &str) -> String {
    format!("{label}-{}", std::process::id())
}

/// A running `autovolt`; killed when dropped, so that a failing test leaves no process behind.
struct Autovolt {
    what: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// How an `autovolt` process ended.
struct Exit {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Autovolt {
    /// Starts `autovolt ARGS` with only `env` (no config file, no other `AUTOVOLT_*` variable),
    /// its output going to files.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Autovolt {
        let dir = tempfile::tempdir().expect("temp dir");
        let output =
            |name: &str| std::fs::File::create(dir.path().join(name)).expect("output file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_autovolt"));
        cmd.args(args)
            .env_clear()
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(output("stdout"))
            .stderr(output("stderr"));
        for inherited in ["PATH", "RUST_LOG"] {
            if let Some(v) = std::env::var_os(inherited) {
                cmd.env(inherited, v);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let what = format!("autovolt {}", args.join(" "));
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Autovolt { what, child, dir }
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Fails the test if the process has ended.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "{} ended early ({status}); stdout:\n{}\nstderr:\n{}",
                self.what,
                self.read("stdout"),
                self.read("stderr")
            );
        }
    }

    /// Ctrl-C.
    fn interrupt(&mut self) {
        self.assert_running();
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) has no memory effects; the pid is our unreaped child's.
        let r = unsafe { libc::kill(pid, libc::SIGINT) };
        assert_eq!(
            r,
            0,
            "cannot interrupt {}: {}",
            self.what,
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the process to end by itself.
    async fn exit(mut self) -> Exit {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Exit {
                    what: self.what.clone(),
                    status,
                    stdout: self.read("stdout"),
                    stderr: self.read("stderr"),
                };
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {PATIENCE:?}; stderr:\n{}",
                self.what,
                self.read("stderr")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ctrl-C, then waits for the process to end.
    async fn stop(mut self) -> Exit {
        self.interrupt();
        self.exit().await
    }
}

impl Drop for Autovolt {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Exit {
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "{} ended with {}; stdout:\n{}\nstderr:\n{}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The one line the command printed on stdout.
    fn line(&self) -> &str {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "{} printed {:?} on stdout, not one line; stderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        lines[0]
    }

    fn assert_stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "{}: {text:?} is not in its stderr:\n{}",
            self.what,
            self.stderr
        );
        self
    }

    fn assert_never_shows(&self, secret: &str) -> &Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "{} showed a secret; stdout:\n{}\nstderr:\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The number just before `label` in a summary line: `count("3 relay transitions, …", " relay
/// transitions")` is 3.
fn count(line: &str, label: &str) -> i64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} is not in the summary {line:?}"));
    let before = &line[..at];
    let digits = before.len()
        - before
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .count();
    before[digits..]
        .parse()
        .unwrap_or_else(|_| panic!("no number before {label:?} in the summary {line:?}"))
}

/// Polls `check` until it holds, failing the test when `PATIENCE` runs out or one of `running`
/// ends on its way.
async fn wait_for<F, Fut>(what: &str, running: &mut [&mut Autovolt], mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        for p in running.iter_mut() {
            p.assert_running();
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = running
                .iter()
                .map(|p| format!("{} stderr:\n{}", p.what, p.read("stderr")))
                .collect();
            panic!(
                "{what} did not happen within {PATIENCE:?}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database of its own: a classroom, the default power table, and boards `(name, mac, secret)`.
struct Campus {
    store: Store,
    uri: String,
    room: Id,
    devices: Vec<Device>,
}

impl Campus {
    async fn new(label: &str, boards: &[(&str, &str, &str)]) -> Campus {
        let uri = support::fresh_database_uri(label);
        let store = Store::connect(&uri, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
        store.migrate_up(None, false).await.expect("migrations");
        let room = classroom(&store, "CLI-101").await;
        let mut campus = Campus {
            store,
            uri,
            room,
            devices: vec![],
        };
        for (name, mac, secret) in boards {
            campus.register(name, mac, secret).await;
        }
        campus
    }

    async fn register(&mut self, name: &str, mac: &str, secret: &str) -> Id {
        let mut d = device(name, mac, secret, self.room);
        let id = self.store.insert_device(&d).await.expect("device");
        d.id = Some(id);
        self.devices.push(d);
        id
    }

    /// The environment of a command working on this campus through `mqtt_url`.
    fn env<'a>(&'a self, mqtt_url: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AUTOVOLT_MONGODB_URI", self.uri.as_str()),
            ("AUTOVOLT_MQTT_URL", mqtt_url),
        ]
    }

    async fn device(&self, id: Id) -> Device {
        self.store
            .device_by_id(id)
            .await
            .expect("device read")
            .expect("device")
    }

    async fn telemetry(&self, filter: Document) -> u64 {
        self.store
            .collection::<Document>(collections::TELEMETRY)
            .count_documents(filter)
            .await
            .expect("telemetry count")
    }

    async fn subscribed(&self, client_id: &str) -> bool {
        self.store
            .collector_statuses()
            .await
            .expect("collector status")
            .iter()
            .any(|s| s.client_id == client_id && s.broker_connected)
    }
}

/// Starts `autovolt collect --client-id ID [--group G]` and waits until its status record says it
/// is subscribed.
async fn collector(campus: &Campus, url: &str, client_id: &str, group: Option<&str>) -> Autovolt {
    let mut args = vec!["collect", "--client-id", client_id];
    if let Some(g) = group {
        args.extend(["--group", g]);
    }
    let mut c = Autovolt::start(&args, &campus.env(url));
    wait_for(
        &format!("collector {client_id} subscribing"),
        &mut [&mut c],
        || campus.subscribed(client_id),
    )
    .await;
    c
}

/// A board's `millis()`: it booted a second before the test began, and every reading is later
/// than the one before, so that each message a test sends is different.
struct BoardTime {
    booted: Instant,
    last: std::cell::Cell<u32>,
}

impl BoardTime {
    fn new() -> BoardTime {
        BoardTime {
            booted: Instant::now() - Duration::from_secs(1),
            last: Default::default(),
        }
    }

    fn millis(&self) -> u32 {
        let now = u32::try_from(self.booted.elapsed().as_millis()).expect("millis");
        let t = now.max(self.last.get() + 1);
        self.last.set(t);
        t
    }
}

/// A plain MQTT client watching topics, as an operator's `mosquitto_sub` would.
struct Watcher {
    messages: mpsc::UnboundedReceiver<(String, serde_json::Value)>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    /// Connects and returns once subscribed.
    async fn connect(url: &str, id: &str, topics: &[&str]) -> Watcher {
        let addr = autovolt::mqtt::connection::BrokerAddress::parse(url).unwrap();
        let (client, mut eventloop) =
            AsyncClient::new(MqttOptions::new(id, addr.host, addr.port), 1000);
        let filters: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let (tx, messages) = mpsc::unbounded_channel();
        let (ready_tx, mut ready) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                        for f in &filters {
                            let _ = client.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(true);
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(v) = serde_json::from_slice(&p.payload) {
                            let _ = tx.send((p.topic.clone(), v));
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(PATIENCE, ready.wait_for(|r| *r))
            .await
            .expect("the watcher did not subscribe in time")
            .expect("watcher task");
        Watcher { messages, task }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A firmware fixture message by (the start of) its note.
fn firmware(file: &str, note: &str) -> (String, Vec<u8>) {
    fixture(file)
        .into_iter()
        .find(|(_, _, n)| n.starts_with(note))
        .map(|(topic, payload, _)| (topic, payload))
        .unwrap_or_else(|| panic!("no fixture {note:?} in {file}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_books_a_boards_messages_and_stops_on_ctrl_c() {
    let campus = Campus::new("cli_collect", &[("CLI-A", MAC_A, SECRET_A)]).await;
    let id = campus.devices[0].id.unwrap();
    let url = support::mqtt_url();
    let client_id = unique("cli-collect");
    let mut c = collector(&campus, &url, &client_id, None).await;
    let board = Publisher::connect(&url, &unique("cli-collect-board")).await;
    let publish = |(topic, payload): (String, Vec<u8>)| {
        let board = &board;
        async move { board.publish(&topic, &payload).await }
    };
    let mine = doc! {"mac": MAC_A};

    // The board connects: its snapshot (all off) and a heartbeat.
    publish(firmware("messages.jsonl", "snapshot on connect")).await;
    publish(firmware("messages.jsonl", "heartbeat")).await;
    wait_for(
        "the board online with 2 messages kept",
        &mut [&mut c],
        || async {
            campus.device(id).await.status == DeviceStatus::Online
                && campus.telemetry(mine.clone()).await == 2
        },
    )
    .await;

    // A relay goes on; a message with a wrong secret changes nothing; the relay goes off.
    publish(firmware("messages.jsonl", "acknowledgement of the command")).await;
    publish(firmware("messages.jsonl", "snapshot after the change")).await;
    wait_for("the light on", &mut [&mut c], || async {
        campus.device(id).await.switches[0].state
    })
    .await;
    board
        .publish(
            "esp32/telemetry",
            &switch_event(MAC_A, "wrong", 18, true, "manual", 50_000),
        )
        .await;
    publish(firmware("messages.jsonl", "motion auto-off")).await;
    wait_for("the light off, billed, and kept", &mut [&mut c], || async {
        !campus.device(id).await.switches[0].state
            && ledger(&campus.store).await.len() == 1
            && campus.telemetry(mine.clone()).await == 5
    })
    .await;
    let device = campus.device(id).await;
    assert!(
        device.switches.iter().all(|s| !s.state),
        "{:?}",
        device.switches
    );
    let rows = ledger(&campus.store).await;
    assert_eq!(rows[0].switch_id, "sw1", "{rows:?}");
    assert!(rows[0].switch_on_duration_seconds >= 0.0, "{rows:?}");

    let exit = c.stop().await;
    exit.assert_code(0).assert_never_shows(SECRET_A);
    let line = exit.line();
    assert!(
        line.contains(" messages received, "),
        "not the collector's summary: {line:?}"
    );
    // Other tests' boards share the broker: unregistered here, they only add to what was received.
    assert!(count(line, " messages received") >= 6, "{line}");
    assert!(count(line, " committed") >= 5, "{line}");
    assert_eq!(count(line, " relay transitions"), 2, "{line}");
    assert_eq!(count(line, " ledger rows"), 1, "{line}");
    assert_eq!(count(line, " devices went offline"), 0, "{line}");
    assert!(line.contains("wrong_secret 1"), "{line}");
    // Its last status record says it is gone from the broker.
    let status = campus.store.collector_statuses().await.unwrap();
    let mine = status.iter().find(|s| s.client_id == client_id).unwrap();
    assert!(!mine.broker_connected, "{mine:?}");
    assert_eq!(mine.transitions, 2, "{mine:?}");
    assert_eq!(campus.telemetry(doc! {"mac": MAC_A}).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collectors_in_one_group_store_every_message_once() {
    const MAC: &str = "02:C2:00:00:00:01";
    const SECRET: &str = "9c2b7e1d4a6f8e0c3b5d7f9a1c3e5b7d9f1a3c5e";
    const HEARTBEATS: usize = 40;
    const CYCLES: usize = 6;
    let campus = Campus::new("cli_group", &[("CLI-G", MAC, SECRET)]).await;
    let id = campus.devices[0].id.unwrap();
    let url = support::mqtt_url();
    let group = unique("cli-group");
    let ids = [unique("cli-group-1"), unique("cli-group-2")];
    let mut c1 = collector(&campus, &url, &ids[0], Some(&group)).await;
    let mut c2 = collector(&campus, &url, &ids[1], Some(&group)).await;
    let board = Publisher::connect(&url, &unique("cli-group-board")).await;
    let time = BoardTime::new();

    // First contact, alone: when both collectors mark the board online at the same instant, both
    // may log it coming online (seen on FerretDB), which is not what this test is about.
    board
        .publish("esp32/telemetry", &heartbeat(MAC, time.millis()))
        .await;
    wait_for("the board online", &mut [&mut c1, &mut c2], || async {
        campus.device(id).await.status == DeviceStatus::Online
    })
    .await;
    for _ in 1..HEARTBEATS {
        board
            .publish("esp32/telemetry", &heartbeat(MAC, time.millis()))
            .await;
    }
    // Each relay on and off, a change at a time: the next one waits until the last is recorded.
    for (k, pin) in PINS.iter().copied().enumerate().take(CYCLES) {
        for state in [true, false] {
            board
                .publish(
                    "esp32/telemetry",
                    &switch_event(MAC, SECRET, pin, state, "manual", time.millis()),
                )
                .await;
            wait_for(
                &format!("relay {pin} {}", if state { "on" } else { "off" }),
                &mut [&mut c1, &mut c2],
                || async { campus.device(id).await.switches[k].state == state },
            )
            .await;
        }
    }
    let sent = (HEARTBEATS + 2 * CYCLES) as u64;
    wait_for("every message kept", &mut [&mut c1, &mut c2], || async {
        campus.telemetry(doc! {"mac": MAC}).await >= sent
            && ledger(&campus.store).await.len() >= CYCLES
    })
    .await;

    let (e1, e2) = (c1.stop().await, c2.stop().await);
    let (l1, l2) = (e1.assert_code(0).line(), e2.assert_code(0).line());
    assert!(
        count(l1, " messages received") > 0 && count(l2, " messages received") > 0,
        "the load was not shared:\n{l1}\n{l2}"
    );
    assert_eq!(
        count(l1, " relay transitions") + count(l2, " relay transitions"),
        2 * CYCLES as i64,
        "\n{l1}\n{l2}"
    );
    assert_eq!(campus.telemetry(doc! {"mac": MAC}).await, sent);
    assert_eq!(
        campus
            .telemetry(doc! {"mac": MAC, "type": "heartbeat"})
            .await,
        HEARTBEATS as u64
    );
    let rows = ledger(&campus.store).await;
    assert_eq!(rows.len(), CYCLES, "{rows:#?}");
    let switches: BTreeSet<&str> = rows.iter().map(|r| r.switch_id.as_str()).collect();
    assert_eq!(switches.len(), CYCLES, "{rows:#?}");
    let acts = actions(&campus.store).await;
    let n = |a: &str| acts.iter().filter(|(x, _)| x == a).count();
    assert_eq!(
        (n("manual_on"), n("manual_off"), n("device_online")),
        (CYCLES, CYCLES, 1),
        "{acts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_refuses_a_bad_group_name() {
    let campus = Campus::new("cli_badgroup", &[]).await;
    let url = support::mqtt_url();
    let client_id = unique("cli-badgroup");
    let exit = Autovolt::start(
        &["collect", "--client-id", &client_id, "--group", "a/b"],
        &campus.env(&url),
    )
    .exit()
    .await;
    assert_ne!(exit.status.code(), Some(0), "{}", exit.stderr);
    assert!(exit.status.code().is_some(), "killed: {}", exit.status);
    exit.assert_stderr_has(
        "the shared-subscription group \"a/b\" is not valid: use one topic level without '/', '+' or '#'",
    );
    assert_eq!(exit.stdout, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_speaks_for_every_board_and_stops_on_ctrl_c() {
    const N: usize = 3;
    let boards = autovolt::simulate::generated(N, 1);
    let url = support::mqtt_url();
    let mut watcher = Watcher::connect(
        &url,
        &unique("cli-simulate-watch"),
        &["esp32/telemetry", "esp32/state"],
    )
    .await;
    let mut sim = Autovolt::start(
        &[
            "simulate",
            "--devices",
            &N.to_string(),
            "--report-secs",
            "1",
            "--seed",
            "1",
        ],
        &[("AUTOVOLT_MQTT_URL", url.as_str())],
    );
    let mut heartbeats = BTreeSet::new();
    let mut snapshots = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while heartbeats.len() < N || snapshots.len() < N {
        sim.assert_running();
        assert!(
            Instant::now() < deadline,
            "within {PATIENCE:?} heartbeats came from {heartbeats:?} and snapshots from {snapshots:?}; stderr:\n{}",
            sim.read("stderr")
        );
        let Ok(Some((topic, v))) =
            tokio::time::timeout(Duration::from_millis(500), watcher.messages.recv()).await
        else {
            continue;
        };
        // Other tests' boards share the broker: only this fleet's MACs count.
        let Some(b) = boards
            .iter()
            .find(|b| v["mac"].as_str() == Some(&b.mac.to_string()))
        else {
            continue;
        };
        match topic.as_str() {
            "esp32/telemetry" if v["status"] == "heartbeat" => {
                heartbeats.insert(b.mac);
            }
            "esp32/state" => {
                // The boards are the seed's: their secrets too.
                assert_eq!(v["secret"].as_str(), Some(b.secret.expose()), "{v}");
                assert_eq!(v["switches"].as_array().map(Vec::len), Some(6), "{v}");
                snapshots.insert(b.mac);
            }
            _ => {}
        }
    }

    let exit = sim.stop().await;
    exit.assert_code(0)
        .assert_stderr_has(&format!("simulating {N} boards against "));
    let line = exit.line();
    assert!(
        line.starts_with(&format!("simulated {N} boards: ")),
        "not the simulator's summary: {line:?}"
    );
    assert!(count(line, " heartbeats") >= N as i64, "{line}");
    assert!(count(line, " snapshots") >= N as i64, "{line}");
    assert!(count(line, " connections") >= N as i64, "{line}");
    assert!(
        count(line, " messages") >= count(line, " heartbeats") + count(line, " snapshots"),
        "{line}"
    );
}

/// Also: with every log line of ours on (`RUST_LOG=autovolt=trace`), nothing the collector, the
/// simulator or `toggle` prints shows a board's secret, a near miss of one, or the broker password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggle_switches_a_live_board_and_refuses_an_offline_one() {
    const MAC_1: &str = "02:C4:00:00:00:01";
    const SECRET_1: &str = "4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f";
    const NEAR_MISS: &str = "4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2e";
    const MAC_2: &str = "02:C4:00:00:00:02";
    const SECRET_2: &str = "7e9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a";
    const MQTT_PASSWORD: &str = "Mq77-pa55-9f2c";
    let mut campus = Campus::new("cli_toggle", &[("CLI-T1", MAC_1, SECRET_1)]).await;
    let id = campus.devices[0].id.unwrap();
    let url = support::mqtt_url();
    let uri = campus.uri.clone();
    let mut env = vec![
        ("AUTOVOLT_MONGODB_URI", uri.as_str()),
        ("AUTOVOLT_MQTT_URL", url.as_str()),
        ("RUST_LOG", "autovolt=trace,info"),
        ("AUTOVOLT_MQTT_USERNAME", "ops"),
        ("AUTOVOLT_MQTT_PASSWORD", MQTT_PASSWORD),
    ];
    let collector_id = unique("cli-toggle-collector");
    let mut c = Autovolt::start(&["collect", "--client-id", &collector_id], &env);
    wait_for("the collector subscribing", &mut [&mut c], || {
        campus.subscribed(&collector_id)
    })
    .await;
    // The registered boards, with no switching of their own: only commands change their relays.
    let mut sim = Autovolt::start(
        &[
            "simulate",
            "--rate",
            "0.000001",
            "--report-secs",
            "1",
            "--seed",
            "4",
        ],
        &env,
    );
    wait_for("the board online", &mut [&mut c, &mut sim], || async {
        campus.device(id).await.status == DeviceStatus::Online
    })
    .await;
    // Registered after the simulator read the fleet: this board never speaks.
    campus.register("CLI-T2", MAC_2, SECRET_2).await;

    env.extend([
        ("AUTOVOLT_TOGGLE_TIMEOUT_SECS", "30"),
        ("AUTOVOLT_OPERATOR", "cli-operator"),
    ]);
    let toggle = |mac: &str, switch: &str, state: &str| {
        Autovolt::start(&["toggle", "--mac", mac, "--switch", switch, state], &env).exit()
    };

    let on_exit = toggle(MAC_1, "sw1", "--on").await;
    assert_eq!(
        on_exit.assert_code(0).line(),
        "CLI-T1 sw1: on (confirmed by the board's switch event)"
    );
    wait_for(
        "the collector recording the relay on",
        &mut [&mut c, &mut sim],
        || async { campus.device(id).await.switches[0].state },
    )
    .await;

    // Already on by the board's last report: the command goes out, the board sends nothing.
    let again = toggle(MAC_1, "sw1", "--on").await;
    assert_eq!(again.assert_code(0).line(), "CLI-T1 sw1: already on");

    let offline = toggle(MAC_2, "sw1", "--on").await;
    offline
        .assert_code(1)
        .assert_stderr_has("CLI-T2 is offline (last heard never); the command was not sent")
        .assert_never_shows(SECRET_2);
    assert_eq!(offline.stdout, "");

    let unknown = toggle("02:C4:00:00:00:09", "sw1", "--on").await;
    unknown
        .assert_code(2)
        .assert_stderr_has("no device with MAC 02:C4:00:00:00:09 is registered");

    // By its relay pin.
    let second = toggle(MAC_1, "17", "--on").await;
    assert_eq!(
        second.assert_code(0).line(),
        "CLI-T1 17: on (confirmed by the board's switch event)"
    );
    wait_for(
        "the collector recording the second relay on",
        &mut [&mut c, &mut sim],
        || async { campus.device(id).await.switches[1].state },
    )
    .await;

    let acts = campus
        .store
        .recent_activity(100, None, &Default::default())
        .await
        .unwrap()
        .rows;
    let mut by_operator: Vec<(String, Option<String>, String)> = acts
        .iter()
        .filter(|a| a.user_name.as_deref() == Some("cli-operator"))
        .map(|a| {
            let confirmed = a.context.as_ref().map(|c| c["confirmedBy"].to_string());
            (
                a.action.clone(),
                a.switch_id.clone(),
                confirmed.unwrap_or_default(),
            )
        })
        .collect();
    by_operator.sort();
    assert_eq!(
        by_operator,
        vec![
            (
                "on".into(),
                Some("sw1".into()),
                "\"already_in_state\"".into()
            ),
            ("on".into(), Some("sw1".into()), "\"switch_event\"".into()),
            ("on".into(), Some("sw2".into()), "\"switch_event\"".into()),
        ]
    );

    // A message in the board's name with a near miss of its secret: refused, and never shown.
    let forger = Publisher::connect(&url, &unique("cli-toggle-forger")).await;
    let forged = switch_event(MAC_1, NEAR_MISS, 18, true, "manual", 5_000);
    forger.publish("esp32/telemetry", &forged).await;
    let log = c.stderr_path();
    wait_for(
        "the forged message refused",
        &mut [&mut c, &mut sim],
        || {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            async move { said.contains("wrong_secret") }
        },
    )
    .await;

    let sim_exit = sim.stop().await;
    let line = sim_exit.assert_code(0).line();
    assert!(line.starts_with("simulated 1 boards: "), "{line}");
    assert_eq!(count(line, " commands applied"), 2, "{line}");
    let c_exit = c.stop().await;
    assert_eq!(
        count(c_exit.assert_code(0).line(), " relay transitions"),
        2,
        "{}",
        c_exit.stdout
    );
    let device = campus.device(id).await;
    let on: Vec<bool> = device.switches.iter().map(|s| s.state).collect();
    assert_eq!(on, [true, true, false, false, false, false]);
    assert!(
        c_exit.stderr.contains("TRACE") || c_exit.stderr.contains("DEBUG"),
        "the collector logged at every level of ours:\n{}",
        c_exit.stderr
    );
    for exit in [
        &on_exit, &again, &offline, &unknown, &second, &sim_exit, &c_exit,
    ] {
        for secret in [SECRET_1, SECRET_2, NEAR_MISS, MQTT_PASSWORD] {
            exit.assert_never_shows(secret);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_broker_urls_are_refused_without_showing_their_password() {
    const MAC: &str = "02:C5:00:00:00:01";
    const PASSWORD: &str = "s3cr3tpw";
    let campus = Campus::new(
        "cli_badurl",
        &[("CLI-U", MAC, "1f3e5d7c9b0a2f4e6d8c0b1a3f5e7d9c1b3a5f7e")],
    )
    .await;
    for url in ["ftp://x", "ftp://u:s3cr3tpw@127.0.0.1:1"] {
        let env = campus.env(url);
        let commands: [&[&str]; 3] = [
            &["collect", "--client-id", &unique("cli-badurl")],
            &["simulate", "--devices", "1", "--seed", "1"],
            &["toggle", "--mac", MAC, "--switch", "sw1", "--on"],
        ];
        for args in commands {
            let exit = Autovolt::start(args, &env).exit().await;
            exit.assert_code(2)
                .assert_stderr_has("is not valid: the scheme must be mqtt or mqtts")
                .assert_stderr_has("use mqtt://host:port or mqtts://host:port")
                .assert_never_shows(PASSWORD);
            assert_eq!(exit.stdout, "", "{}", exit.what);
        }
    }

    // A password inside the URL is refused (it would show in `ps` and in logs), without being shown.
    let exit = Autovolt::start(
        &["toggle", "--mac", MAC, "--switch", "sw1", "--on"],
        &campus.env("mqtt://u:s3cr3tpw@127.0.0.1:1"),
    )
    .exit()
    .await;
    exit.assert_code(2)
        .assert_stderr_has("it holds a user or password")
        .assert_never_shows(PASSWORD);

    // A good URL where no broker listens: the collector keeps trying, and says so, until Ctrl-C;
    // toggle gives up. Neither shows the password.
    let url = "mqtt://127.0.0.1:1";
    let mut env = campus.env(url);
    env.extend([
        ("RUST_LOG", "autovolt=debug"),
        ("AUTOVOLT_MQTT_USERNAME", "u"),
        ("AUTOVOLT_MQTT_PASSWORD", PASSWORD),
    ]);
    let mut c = Autovolt::start(&["collect", "--client-id", &unique("cli-nobroker")], &env);
    let log: PathBuf = c.stderr_path();
    let said = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
    wait_for("the collector retrying", &mut [&mut c], || {
        let text = said(&log);
        async move { text.contains("cannot reach the broker") }
    })
    .await;
    let exit = c.stop().await;
    exit.assert_code(0)
        .assert_stderr_has("mqtt://127.0.0.1:1")
        .assert_never_shows(PASSWORD);
    assert_eq!(count(exit.line(), " messages received"), 0);

    let toggle = Autovolt::start(&["toggle", "--mac", MAC, "--switch", "sw1", "--on"], &env)
        .exit()
        .await;
    toggle
        .assert_code(2)
        .assert_stderr_has("the broker at mqtt://127.0.0.1:1 cannot be reached")
        .assert_never_shows(PASSWORD);
}

/// `GET path` on a metrics endpoint: (status line, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the metrics endpoint {addr}: {e}"));
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// The value of the sample that `series` (name and labels, as exposed) starts.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_serves_metrics_that_follow_what_it_does() {
    // A broker of its own: other tests' boards would add to what this collector counts.
    let (_broker, url) = support::own_mosquitto();
    let campus = Campus::new("cli_metrics", &[("CLI-M", MAC_A, SECRET_A)]).await;
    let id = campus.devices[0].id.unwrap();
    // Yesterday aggregated, so that the last aggregation's time is there to be shown.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    campus
        .store
        .aggregate(
            &autovolt::store::aggregation::AggregationRequest {
                from: yesterday,
                to: yesterday,
                tz: chrono_tz::UTC,
                triggered_by: autovolt::domain::TriggeredBy::User,
                by: None,
                break_locks: false,
            },
            None,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await
        .expect("aggregation");
    let client_id = unique("cli-metrics");
    let mut c = Autovolt::start(
        &[
            "collect",
            "--client-id",
            &client_id,
            "--metrics",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--json",
        ],
        // The campus is never open: any load on is waste, whatever the time of the run.
        &[
            campus.env(&url),
            vec![("AUTOVOLT_CAMPUS_HOURS", "00:00-00:00")],
        ]
        .concat(),
    );
    wait_for("the collector subscribing", &mut [&mut c], || {
        campus.subscribed(&client_id)
    })
    .await;

    // Its log is JSON lines; one of them says where the metrics are.
    let log = c.read("stderr");
    let mut address = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
        assert!(
            event["level"].is_string() && event["message"].is_string(),
            "{line}"
        );
        if let Some(a) = event["address"].as_str() {
            address = Some(a.parse::<std::net::SocketAddr>().expect("an address"));
        }
    }
    let addr = address.unwrap_or_else(|| panic!("no log line gives the metrics address:\n{log}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1", "bound only where told");
    assert_ne!(addr.port(), 0);

    let (status, first) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{first}");
    assert_eq!(
        sample(&first, "autovolt_collector_messages_received_total"),
        Some(0.0),
        "{first}"
    );
    assert!(first.contains("autovolt_build_info{version=\""), "{first}");
    let (status, _) = http_get(addr, "/").await;
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");

    // A board's day: its snapshot, a heartbeat, a relay on and its snapshot; and one message
    // that is not JSON.
    let board = Publisher::connect(&url, &unique("cli-metrics-board")).await;
    for note in [
        "snapshot on connect",
        "heartbeat",
        "acknowledgement of the command",
        "snapshot after the change",
    ] {
        let (topic, payload) = firmware("messages.jsonl", note);
        board.publish(&topic, &payload).await;
    }
    let (topic, payload) = firmware("bad.jsonl", "not JSON");
    board.publish(&topic, &payload).await;
    wait_for("the relay on in the database", &mut [&mut c], || async {
        campus.device(id).await.switches[0].state
    })
    .await;

    let scraped = std::cell::RefCell::new(String::new());
    let last = &scraped;
    wait_for(
        "the metrics counting the five messages and the open interval",
        &mut [&mut c],
        || async move {
            let m = http_get(addr, "/metrics").await.1;
            let done = sample(&m, "autovolt_collector_ack_lag_seconds_count") == Some(5.0)
                && sample(&m, "autovolt_open_intervals") == Some(1.0)
                && sample(&m, "autovolt_waste_classrooms") == Some(1.0);
            *last.borrow_mut() = m;
            done
        },
    )
    .await;
    let metrics = scraped.into_inner();
    for (series, value) in [
        ("autovolt_collector_messages_received_total", 5.0),
        ("autovolt_collector_messages_applied_total", 4.0),
        (
            "autovolt_collector_messages_rejected_total{reason=\"not_json\"}",
            1.0,
        ),
        (
            "autovolt_collector_relay_transitions_total{outcome=\"applied\"}",
            1.0,
        ),
        ("autovolt_collector_broker_connected", 1.0),
        ("autovolt_collector_broker_reconnects_total", 0.0),
        ("autovolt_collector_database_down", 0.0),
    ] {
        assert_eq!(
            sample(&metrics, series),
            Some(value),
            "{series}:\n{metrics}"
        );
    }
    assert!(
        sample(&metrics, "autovolt_collector_batch_write_seconds_count").unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "autovolt_open_power_watts").unwrap_or(0.0) > 0.0,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "autovolt_database_ping_seconds").is_some(),
        "{metrics}"
    );
    // The one load on, in a campus that is never open, priced at the tariff in force.
    assert!(
        sample(&metrics, "autovolt_waste_inr_per_hour").is_some(),
        "{metrics}"
    );
    for secret in [SECRET_A, MAC_A, campus.uri.as_str(), url.as_str()] {
        assert!(!metrics.contains(secret), "the metrics show {secret}");
    }
    assert_eq!(sample(&metrics, "autovolt_devices"), Some(1.0), "{metrics}");
    assert!(
        sample(&metrics, "autovolt_last_aggregation_timestamp_seconds").unwrap_or(0.0) > 0.0,
        "{metrics}"
    );

    // Prometheus' own tool reads the exposition without a complaint.
    let (ok, said) = support::promtool(&["check", "metrics"], Path::new("."), &metrics);
    assert!(ok, "promtool check metrics:\n{said}\n{metrics}");
    // The alert rules and the dashboard use only series this collector exports.
    let exported: BTreeSet<String> = metrics
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    for file in ["autovolt.rules.yml", "autovolt-grafana.json"] {
        let text = std::fs::read_to_string(support::prometheus_contrib().join(file))
            .unwrap_or_else(|e| panic!("cannot read {file}: {e}"));
        let used = support::autovolt_metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no autovolt metric");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses {unknown:?}, which the collector does not export:\n{metrics}"
        );
    }

    // With --json its summary at the end is JSON, with the same counts.
    let exit = c.stop().await;
    exit.assert_code(0).assert_never_shows(SECRET_A);
    let summary: serde_json::Value =
        serde_json::from_str(&exit.stdout).expect("a JSON summary on stdout");
    assert_eq!(summary["received"], 5, "{summary}");
    assert_eq!(summary["committed"], 4, "{summary}");
    assert_eq!(summary["rejected"]["not_json"], 1, "{summary}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the endpoint stops with the collector"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_refuses_a_metrics_address_it_cannot_bind_before_connecting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    // Nothing listens at this database: the port is refused first.
    let env = [
        ("AUTOVOLT_MONGODB_URI", "mongodb://127.0.0.1:9/autovolt"),
        ("AUTOVOLT_MQTT_URL", "mqtt://127.0.0.1:9"),
    ];
    let exit = Autovolt::start(&["collect", "--metrics", &addr], &env)
        .exit()
        .await;
    exit.assert_code(2)
        .assert_stderr_has(&format!("cannot serve metrics on {addr}"));
    let exit = Autovolt::start(&["collect", "--metrics", "localhost:9464"], &env)
        .exit()
        .await;
    exit.assert_code(2).assert_stderr_has("not a host name");
}
