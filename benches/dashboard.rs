//! Dashboard benchmarks, each figure next to its baseline measured in the same run:
//! 1. frame render time of the classrooms and classroom views, 200 classrooms × 5 boards × 6
//!    switches at 200×60, against an empty frame;
//! 2. idle CPU of the dashboard's runtime with a quiet fleet (heartbeats and snapshots every 30 s
//!    through Mosquitto), against a runtime that only ticks once a second;
//! 3. event → screen: messages published to Mosquitto at a fixed rate, p50/p99 from publish to the
//!    end of the frame that shows them, against the broker round trip alone (publish → received
//!    by a plain subscriber); RSS before and after.
//!
//! Sizes and durations: AUTOVOLT_BENCH_FRAMES (default 300), AUTOVOLT_BENCH_IDLE_SECS (20; the
//! target is stated for 60), AUTOVOLT_BENCH_LOAD_SECS (20; 600 for the ten-minute run),
//! AUTOVOLT_BENCH_RATE (1000 messages/s). Run: `cargo bench --bench dashboard`.

use autovolt::domain::Role;
use autovolt::servers;
use autovolt::simulate::{self, board::BoardSpec, SimulateOptions};
use autovolt::tui::app::App;
use autovolt::tui::event::Event;
use autovolt::tui::runtime::{event_loop, spawn_tick, Services};
use autovolt::tui::sample;
use autovolt::tui::theme::UNICODE;
use autovolt::tui::views;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod common;
use common::{broker_round_trip, env_num, percentile};

const ROOMS: usize = 200;
const BOARDS: usize = 5;
const SWITCHES: usize = 6;

fn big_app() -> App {
    let mut app = sample::app(ROOMS, BOARDS, SWITCHES, Role::User, UNICODE);
    app.update(Event::Resize(200, 60));
    app
}

/// Mean and p99 of drawing `app` `n` times (ms).
fn time_frames(
    term: &mut Terminal<TestBackend>,
    n: u64,
    draw: impl Fn(&mut ratatui::Frame),
) -> (f64, f64) {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let start = Instant::now();
            term.draw(|f| draw(f)).unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    let mean = t.iter().sum::<f64>() / t.len() as f64;
    t.sort_by(f64::total_cmp);
    (mean, percentile(&t, 0.99))
}

fn frames() {
    let n = env_num("AUTOVOLT_BENCH_FRAMES", 300);
    println!("== frame render, {ROOMS} classrooms × {BOARDS} boards × {SWITCHES} switches at 200×60, {n} frames each");
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let (base, base99) = time_frames(&mut term, n, |_| {});
    println!("baseline empty frame      mean {base:.3} ms  p99 {base99:.3} ms");
    let app = big_app();
    let (m, p) = time_frames(&mut term, n, |f| views::render(f, &app));
    println!("classrooms view           mean {m:.3} ms  p99 {p:.3} ms   (target ≤ 1 ms)");
    let mut app = big_app();
    app.update(Event::Key(KeyEvent::new(
        KeyCode::Enter,
        KeyModifiers::NONE,
    )));
    let (m, p) = time_frames(&mut term, n, |f| views::render(f, &app));
    println!("classroom view            mean {m:.3} ms  p99 {p:.3} ms   (target ≤ 1 ms)");
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu(prefix: &str) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for t in dir.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" that closes the name: utime is the 12th, stime the 13th.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
            total += (ut + st) / tick;
        }
    }
    total
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    let name = name.to_string();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// The sample campus's boards as simulator specs.
fn fleet_specs() -> Vec<BoardSpec> {
    sample::snapshot(ROOMS, BOARDS, SWITCHES)
        .devices
        .iter()
        .map(|d| BoardSpec {
            mac: d.mac_address,
            secret: d.device_secret.clone(),
            pins: d.switches.iter().filter_map(|s| s.relay_pin()).collect(),
        })
        .collect()
}

/// Runs the dashboard loop (test backend 200×60) on runtime `dash` until `stop`; returns the app.
fn start_dashboard(
    dash: &tokio::runtime::Runtime,
    mqtt: &str,
    stop: CancellationToken,
    after_draw: impl FnMut(&App) + Send + 'static,
) -> tokio::task::JoinHandle<App> {
    let mqtt = mqtt.to_string();
    dash.spawn(async move {
        let (tx, rx) = mpsc::channel(16_384);
        let services = Services::start_live(
            &mqtt,
            true,
            chrono_tz::Asia::Kolkata,
            tx.clone(),
            stop.clone(),
        )
        .unwrap();
        spawn_tick(tx.clone(), stop.clone());
        let quit = tx.clone();
        let s2 = stop.clone();
        tokio::spawn(async move {
            s2.cancelled().await;
            let _ = quit
                .send(Event::Key(KeyEvent::new(
                    KeyCode::Char('q'),
                    KeyModifiers::NONE,
                )))
                .await;
        });
        let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
        event_loop(&mut term, big_app(), rx, &services, after_draw)
            .await
            .unwrap()
    })
}

fn idle(mqtt: &str) {
    let secs = env_num("AUTOVOLT_BENCH_IDLE_SECS", 20);
    println!("== idle CPU over {secs} s: {} quiet boards (heartbeat + snapshot every 30 s) through Mosquitto", ROOMS * BOARDS);
    // Baseline: a runtime that only ticks once a second.
    let base = runtime("base");
    let stop = CancellationToken::new();
    let s = stop.clone();
    base.spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! { _ = s.cancelled() => break, _ = every.tick() => {} }
        }
    });
    let fleet_rt = runtime("fleet");
    let fleet_stop = CancellationToken::new();
    let mut o = SimulateOptions::new(fleet_specs(), chrono_tz::Asia::Kolkata);
    o.rate = 0.0;
    let (url, fs) = (mqtt.to_string(), fleet_stop.clone());
    fleet_rt.spawn(async move { simulate::run(url, o, fs).await });
    std::thread::sleep(Duration::from_secs(3));

    let dash = runtime("dash");
    let dstop = CancellationToken::new();
    let frames = Arc::new(Mutex::new((0u64, 0u64)));
    let f2 = frames.clone();
    let handle = start_dashboard(&dash, mqtt, dstop.clone(), move |app| {
        let mut f = f2.lock().unwrap();
        f.0 += 1;
        f.1 = app.live_messages();
    });
    // Warm-up: every board reports once (its first snapshot replaces the sample's states), then
    // the fleet is quiet: heartbeats and unchanged snapshots.
    std::thread::sleep(Duration::from_secs(33));
    let (d0, b0, f0) = (
        thread_cpu("dash"),
        thread_cpu("base"),
        *frames.lock().unwrap(),
    );
    std::thread::sleep(Duration::from_secs(secs));
    let (d1, b1, f1) = (
        thread_cpu("dash"),
        thread_cpu("base"),
        *frames.lock().unwrap(),
    );
    let pct = |c: f64| c / secs as f64 * 100.0;
    println!("baseline 1 s ticker        {:.3} % of a core", pct(b1 - b0));
    println!(
        "dashboard (1000 boards)    {:.3} % of a core, {} frames drawn, {} messages received   (target < 0.5 %)",
        pct(d1 - d0),
        f1.0 - f0.0,
        f1.1 - f0.1
    );
    stop.cancel();
    dstop.cancel();
    fleet_stop.cancel();
    let _ = dash.block_on(handle);
    dash.shutdown_timeout(Duration::from_secs(2));
    fleet_rt.shutdown_timeout(Duration::from_secs(2));
    base.shutdown_timeout(Duration::from_secs(1));
}

fn load(mqtt: &str) {
    let secs = env_num("AUTOVOLT_BENCH_LOAD_SECS", 20);
    let rate = env_num("AUTOVOLT_BENCH_RATE", 1000);
    println!(
        "== event → screen: {rate} msg/s for {secs} s through Mosquitto, {} boards",
        ROOMS * BOARDS
    );
    let specs = fleet_specs();
    let port: u16 = mqtt
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    let rt = runtime("pub");

    // Baseline: publish → received by a plain subscriber, same broker, same rate.
    let base = rt.block_on(broker_round_trip(port, rate, secs.min(5), 17));
    println!(
        "baseline broker round trip p50 {:.2} ms  p99 {:.2} ms",
        base.0, base.1
    );

    let rss_before = rss_mb();
    let published: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let (p2, l2) = (published.clone(), latencies.clone());
    let mut stamped = 0usize;
    let dash = runtime("dash");
    let stop = CancellationToken::new();
    let handle = start_dashboard(&dash, mqtt, stop.clone(), move |app| {
        let now = Instant::now();
        let p = p2.lock().unwrap();
        let seen = (app.live_messages() as usize).min(p.len());
        let mut l = l2.lock().unwrap();
        for t in &p[stamped..seen] {
            l.push((now - *t).as_secs_f64() * 1000.0);
        }
        stamped = stamped.max(seen);
    });
    std::thread::sleep(Duration::from_secs(2));
    let mut rss_mid = f64::NAN;
    rt.block_on(async {
        let (client, mut el) = AsyncClient::new(MqttOptions::new("bench-pub", "127.0.0.1", port), 10_000);
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        let total = rate * secs;
        let start = tokio::time::Instant::now();
        for i in 0..total {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate as f64)).await;
            let b = &specs[i as usize % specs.len()];
            // Each message flips one relay, so every one changes what the screen shows.
            let on = (i / specs.len() as u64).is_multiple_of(2);
            let relays: Vec<_> = b.pins.iter().enumerate().map(|(k, p)| serde_json::json!({"gpio": p, "state": k == 0 && on, "manual_override": false})).collect();
            let payload = serde_json::json!({"mac": b.mac.to_string(), "secret": b.secret.expose(), "switches": relays}).to_string();
            published.lock().unwrap().push(Instant::now());
            client.publish("esp32/state", QoS::AtLeastOnce, false, payload).await.unwrap();
            if i == total / 2 {
                rss_mid = rss_mb();
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    stop.cancel();
    let app = dash.block_on(handle).unwrap();
    let rss_after = rss_mb();
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let sent = published.lock().unwrap().len();
    println!(
        "dashboard publish → frame  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms   (target p99 ≤ 30 ms); {} of {sent} messages reached a frame",
        percentile(&l, 0.5),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN),
        l.len()
    );
    println!(
        "RSS before {rss_before:.1} MB, halfway {rss_mid:.1} MB, after {rss_after:.1} MB   (target flat, < 64 MB); {} live messages applied",
        app.live_messages()
    );
    dash.shutdown_timeout(Duration::from_secs(2));
}

fn main() {
    frames();
    let dir = servers::temp_dir("autovolt-bench-mosquitto").unwrap();
    let mut broker =
        servers::start_mosquitto(&dir, true).expect("Mosquitto (Debian package mosquitto)");
    let mqtt = format!("mqtt://127.0.0.1:{}", broker.port());
    idle(&mqtt);
    load(&mqtt);
    broker.stop();
}
