//! The dashboard's runtime: tokio tasks (terminal input, the MQTT subscription, the database
//! follower, a 1 s tick) feed one channel; the loop drains it, lets `App::update` change the state,
//! runs the effects in tasks whose results come back as events, and draws at most 50 times a second
//! and only when something changed.

use super::app::{App, Effect, Settings};
use super::event::{
    AggregationUpdate, DbChange, DbHealth, Event, Link, LinkState, Operator, Snapshot, SwitchTotal,
};
use super::keymap::Keymap;
use super::live::{self, STATE_TOPIC, SWITCHES_TOPIC, TELEMETRY_TOPIC};
use super::theme::{Symbols, Theme};
use super::waste::WasteRule;
use super::{terminal, views};
use crate::config::Config;
use crate::domain::activity::action;
use crate::domain::tariff::{TariffChange, TariffTarget};
use crate::domain::{ActivityLog, Device, Instant};
use crate::store::activity::ActivityFilter;
use crate::store::aggregates::AggregateQuery;
use crate::store::aggregation::{AggregationProgress, AggregationRequest};
use crate::store::changefeed::{Change, ChangeFeed, FeedEvent, FeedMode, FeedOptions};
use crate::store::{collections, Store, DEFAULT_SELECTION_TIMEOUT};
use anyhow::Context;
use chrono::{Datelike, TimeZone};
use futures::StreamExt;
use ratatui::backend::Backend;
use ratatui::Terminal;
use rumqttc::{AsyncClient, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

/// Shortest time between two frames (50 frames/s).
pub const FRAME: Duration = Duration::from_millis(20);
/// Events queued before live messages are dropped (counted) rather than blocking the broker.
const QUEUE: usize = 16_384;
/// How often today's totals and health are re-read even without ledger changes.
const SLOW_POLL: Duration = Duration::from_secs(10);
/// At most this often are today's totals re-read after ledger changes.
const TOTALS_EVERY: Duration = Duration::from_secs(5);
/// Activity entries loaded at start.
const ACTIVITY_LOADED: usize = 200;

/// Command-line choices of a dashboard session.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub read_only: bool,
    pub theme: Option<String>,
    pub ascii: bool,
}

/// Builds the app from the configuration (theme, symbols, keys, waste rule) at `now`.
pub fn build_app(config: &Config, opts: &Options, now: Instant) -> anyhow::Result<App> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::load(opts.theme.as_deref().unwrap_or(&config.theme), no_color)?;
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    let symbols = Symbols::detect(opts.ascii, locale.as_deref());
    let mut keymap = Keymap::with_overrides(&config.keys).map_err(anyhow::Error::msg)?;
    keymap.ascii = symbols == super::theme::ASCII;
    let tz = config.tz()?;
    let waste = WasteRule::new(
        config.waste_no_motion_minutes,
        &config.campus_hours,
        &config.campus_days,
        tz,
    )
    .map_err(anyhow::Error::msg)?;
    let settings = Settings {
        campus: config.campus.clone(),
        read_only: opts.read_only,
        toggle_timeout_secs: config.toggle_timeout_secs as i64,
        stale_after_secs: config.stale_after_secs as i64,
        offline_after_secs: config.offline_after_secs as i64,
        tz,
        waste,
        mqtt_url: crate::store::error::redacted_uri(&config.mqtt_url),
    };
    Ok(App::new(settings, theme, symbols, keymap, now))
}

/// Logs go to a file (a TUI must not print): `log_file`, else `$XDG_STATE_HOME/autovolt/dashboard.log`.
pub fn init_file_logging(
    config: &Config,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let path = match &config.log_file {
        Some(p) => p.clone(),
        None => dirs::state_dir()
            .or_else(dirs::cache_dir)
            .unwrap_or_else(std::env::temp_dir)
            .join("autovolt")
            .join("dashboard.log"),
    };
    let dir = path
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into());
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rumqttc=warn,mongodb=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Ok(guard)
}

/// Runs the dashboard in this terminal until the operator quits.
pub async fn run(config: &Config, opts: Options) -> anyhow::Result<()> {
    let _log = init_file_logging(config)?;
    run_dashboard(config, opts).await
}

/// Runs the dashboard with logging already set up.
pub async fn run_dashboard(config: &Config, opts: Options) -> anyhow::Result<()> {
    let app = build_app(config, &opts, chrono::Utc::now())?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let cancel = CancellationToken::new();
    let services = Services::start(config, opts.read_only, tx.clone(), cancel.clone())?;
    spawn_input(tx.clone(), cancel.clone());
    spawn_tick(tx, cancel.clone());
    let mut term = terminal::enter().context("cannot set up the terminal")?;
    let size = term.size().unwrap_or_default();
    let mut app = app;
    app.width = size.width;
    app.height = size.height;
    let result = event_loop(&mut term, app, rx, &services, |_| {}).await;
    cancel.cancel();
    terminal::restore();
    services.shutdown().await;
    tracing::info!("dashboard closed");
    result.map(|_| ())
}

/// The loop: wait for an event, drain the queue, update; draw when dirty and a frame is due.
/// `after_draw` sees the state each frame showed (the benchmark times frames with it).
pub async fn event_loop<B: Backend>(
    term: &mut Terminal<B>,
    mut app: App,
    mut rx: mpsc::Receiver<Event>,
    services: &Services,
    mut after_draw: impl FnMut(&App),
) -> anyhow::Result<App>
where
    B::Error: Send + Sync + 'static,
{
    let mut last_draw = tokio::time::Instant::now() - FRAME;
    loop {
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(last_draw + FRAME), if app.dirty => {
                term.draw(|f| views::render(f, &app))?;
                app.dirty = false;
                last_draw = tokio::time::Instant::now();
                after_draw(&app);
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                handle(&mut app, ev, services);
                while let Ok(ev) = rx.try_recv() {
                    handle(&mut app, ev, services);
                }
            }
        }
        if app.quit {
            break;
        }
    }
    Ok(app)
}

fn handle(app: &mut App, ev: Event, services: &Services) {
    for effect in app.update(ev) {
        match effect {
            Effect::ChangeTheme(name) => match Theme::load(&name, app.no_color) {
                Ok(t) => {
                    app.theme = t;
                    app.dirty = true;
                }
                Err(e) => tracing::warn!(error = %e, "theme"),
            },
            Effect::Quit => app.quit = true,
            other => services.run(other),
        }
    }
}

/// The connections effects need, shared with the tasks that run them.
pub struct Services {
    read_only: bool,
    mqtt: Option<AsyncClient>,
    store: Arc<RwLock<Option<Store>>>,
    tx: mpsc::Sender<Event>,
    tz: chrono_tz::Tz,
}

impl Services {
    /// Starts the MQTT subscription and the database follower.
    pub fn start(
        config: &Config,
        read_only: bool,
        tx: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Services> {
        let mqtt = spawn_mqtt(&config.mqtt_url, tx.clone(), cancel.clone())?;
        let store = Arc::new(RwLock::new(None));
        let tz = config.tz()?;
        tokio::spawn(follow_database(
            config.mongodb_uri.clone(),
            tz,
            store.clone(),
            tx.clone(),
            cancel,
        ));
        Ok(Services {
            read_only,
            mqtt: Some(mqtt),
            store,
            tx,
            tz,
        })
    }

    /// The live part only: the MQTT subscription and relay commands, no database (benchmarks).
    pub fn start_live(
        mqtt_url: &str,
        read_only: bool,
        tz: chrono_tz::Tz,
        tx: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Services> {
        Ok(Services {
            read_only,
            mqtt: Some(spawn_mqtt(mqtt_url, tx.clone(), cancel)?),
            store: Arc::new(RwLock::new(None)),
            tx,
            tz,
        })
    }

    /// Closes the database connection now (a client dropped while the runtime stops panics in
    /// the driver).
    pub async fn shutdown(&self) {
        if let Some(store) = self.store.write().await.take() {
            store.client().clone().shutdown().immediate(true).await;
        }
    }

    /// Runs one effect in a task; its result comes back as an event.
    fn run(&self, effect: Effect) {
        if self.read_only {
            // The app never asks in read-only mode; this is the second lock on the door.
            tracing::warn!(?effect, "read-only session: effect dropped");
            return;
        }
        let tx = self.tx.clone();
        let store = self.store.clone();
        match effect {
            Effect::Publish(cmd) => {
                let Some(client) = self.mqtt.clone() else {
                    return;
                };
                tokio::spawn(async move {
                    let payload = live::command_payload(&cmd);
                    tracing::info!(device = %cmd.device_id, switch = %cmd.switch_id, on = cmd.on, user = %cmd.user_name, "relay command");
                    if let Err(e) = client
                        .publish(SWITCHES_TOPIC, QoS::AtLeastOnce, false, payload)
                        .await
                    {
                        let _ = tx
                            .send(Event::PublishFailed {
                                device_id: cmd.device_id,
                                switch_id: cmd.switch_id,
                                reason: e.to_string(),
                            })
                            .await;
                    }
                });
            }
            Effect::Record(log) => {
                tokio::spawn(async move {
                    let guard = store.read().await;
                    match guard.as_ref() {
                        Some(s) => {
                            if let Err(e) = s.log_activity(&log).await {
                                tracing::warn!(error = %e, "activity not recorded");
                            }
                        }
                        None => {
                            tracing::warn!(action = %log.action, "activity not recorded: no database")
                        }
                    }
                });
            }
            Effect::SaveTariff {
                price,
                from,
                note,
                operator,
            } => {
                tokio::spawn(async move {
                    let change = TariffChange {
                        price,
                        target: TariffTarget::Global,
                        from,
                        note: (!note.is_empty()).then_some(note),
                        operator: operator.name,
                    };
                    let result = match store.read().await.as_ref() {
                        Some(s) => s.set_tariff(&change).await.map_err(|e| e.to_string()),
                        None => {
                            Err("the database is unreachable; try again when it is back".into())
                        }
                    };
                    let _ = tx.send(Event::TariffResult(result)).await;
                });
            }
            Effect::Aggregate { date, operator } => {
                let tz = self.tz;
                tokio::spawn(async move {
                    let guard = store.read().await;
                    let update = match guard.as_ref() {
                        Some(s) => run_aggregation(s, date, tz, &operator, &tx).await,
                        None => AggregationUpdate::Failed("the database is unreachable".into()),
                    };
                    let _ = tx.send(Event::Aggregation(update)).await;
                });
            }
            Effect::SignIn { email, password } => {
                tokio::spawn(async move {
                    let result = match store.read().await.as_ref() {
                        Some(s) => s
                            .authenticate(&email, &password, chrono::Utc::now())
                            .await
                            .map(|u| Operator {
                                id: u.id.map(|i| i.to_hex()),
                                name: u.name,
                                role: u.role,
                            })
                            .map_err(|e| e.to_string()),
                        None => Err(
                            "the database is unreachable; wait for it, or start with --read-only"
                                .into(),
                        ),
                    };
                    let _ = tx.send(Event::SignIn(result)).await;
                });
            }
            Effect::ChangeTheme(_) | Effect::Quit => {}
        }
    }
}

fn spawn_input(tx: mpsc::Sender<Event>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut reader = crossterm::event::EventStream::new();
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => break,
                n = reader.next() => n,
            };
            let ev = match next {
                Some(Ok(crossterm::event::Event::Key(k))) => Event::Key(k),
                Some(Ok(crossterm::event::Event::Mouse(m))) => Event::Mouse(m),
                Some(Ok(crossterm::event::Event::Resize(w, h))) => Event::Resize(w, h),
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "terminal input");
                    break;
                }
                None => break,
            };
            if tx.send(ev).await.is_err() {
                break;
            }
        }
    });
}

/// The 1 s clock, also sent once at start.
pub fn spawn_tick(tx: mpsc::Sender<Event>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = every.tick() => {
                    if tx.send(Event::Tick(chrono::Utc::now())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// Subscribes to the device topics and turns messages into `Live` events, reconnecting in the
/// background; returns the client that publishes relay commands.
pub fn spawn_mqtt(
    url: &str,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) -> anyhow::Result<AsyncClient> {
    let id = format!(
        "autovolt-dash-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    );
    let mut options = crate::mqtt::connection::options(
        url,
        &id,
        &crate::mqtt::connection::Credentials::from_env(),
    )?;
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let sub = client.clone();
    tokio::spawn(async move {
        let _ = tx
            .send(Event::Link(Link::Mqtt, LinkState::Connecting))
            .await;
        let mut dropped: u64 = 0;
        let mut backoff = Duration::from_millis(500);
        loop {
            let polled = tokio::select! {
                _ = cancel.cancelled() => break,
                p = events.poll() => p,
            };
            match polled {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    backoff = Duration::from_millis(500);
                    // A clean session forgets subscriptions: ask again on every connection.
                    for topic in [STATE_TOPIC, TELEMETRY_TOPIC] {
                        if let Err(e) = sub.try_subscribe(topic, QoS::AtLeastOnce) {
                            tracing::warn!(error = %e, topic, "subscribe");
                        }
                    }
                    let _ = tx
                        .send(Event::Link(Link::Mqtt, LinkState::Up("live".into())))
                        .await;
                }
                Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                    if let Some(live) = live::parse(&p.topic, &p.payload) {
                        if tx.try_send(Event::Live(live)).is_err() {
                            dropped += 1;
                            if dropped.is_power_of_two() {
                                tracing::warn!(
                                    dropped,
                                    "dashboard queue full: live messages dropped"
                                );
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx
                        .send(Event::Link(Link::Mqtt, LinkState::Down(e.to_string())))
                        .await;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
    Ok(client)
}

/// What the follower last sent, to send only what is new.
#[derive(Default)]
struct Seen {
    newest_activity: Option<(Instant, Option<crate::domain::Id>)>,
}

/// Collections whose changes the dashboard shows.
const FOLLOWED: &[&str] = &[
    collections::DEVICES,
    collections::CLASSROOMS,
    collections::COST_VERSIONS,
    collections::POWER_SETTINGS,
    collections::ACTIVITY,
    collections::LEDGER,
    collections::DAILY,
];

/// Connects, loads a snapshot, then follows the change feed (a change stream where the server has
/// one, else polling on `updatedAt`), reloading after an outage.
async fn follow_database(
    uri: String,
    tz: chrono_tz::Tz,
    slot: Arc<RwLock<Option<Store>>>,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let _ = tx.send(Event::Link(Link::Db, LinkState::Connecting)).await;
    let mut backoff = Duration::from_secs(1);
    let store = loop {
        match Store::connect(&uri, DEFAULT_SELECTION_TIMEOUT).await {
            Ok(s) => break s,
            Err(e) => {
                let _ = tx
                    .send(Event::Link(Link::Db, LinkState::Down(e.to_string())))
                    .await;
                let _ = tx
                    .send(Event::Link(
                        Link::Feed,
                        LinkState::Down("no database".into()),
                    ))
                    .await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    *slot.write().await = Some(store.clone());
    let mut seen = Seen::default();
    loop {
        // Follow from before the snapshot, so that nothing written while it loads is missed.
        let mut feed = store.follow(FOLLOWED, FeedOptions::default());
        let mode = match feed.mode() {
            FeedMode::Stream => "stream".to_string(),
            FeedMode::Polling => "polling".to_string(),
        };
        match load_snapshot(&store, tz, &mut seen).await {
            Ok(snap) => {
                let users = has_users(&store).await.unwrap_or(false);
                for e in [
                    Event::Db(DbChange::Snapshot(Box::new(snap))),
                    Event::Db(DbChange::UsersExist(users)),
                    Event::Link(Link::Db, LinkState::Up(store.server().to_string())),
                    Event::Link(Link::Feed, LinkState::Up(mode)),
                ] {
                    let _ = tx.send(e).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "database snapshot");
                let _ = tx
                    .send(Event::Link(Link::Db, LinkState::Down(e.to_string())))
                    .await;
                let _ = tx
                    .send(Event::Link(
                        Link::Feed,
                        LinkState::Down("waiting for the database".into()),
                    ))
                    .await;
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        }
        if !follow_feed(&store, tz, &mut feed, &mut seen, &tx, &cancel).await {
            return;
        }
    }
}

/// Turns feed events into dashboard events until an outage ends (then a fresh snapshot is due:
/// returns true) or the dashboard closes (false).
async fn follow_feed(
    store: &Store,
    tz: chrono_tz::Tz,
    feed: &mut ChangeFeed,
    seen: &mut Seen,
    tx: &mpsc::Sender<Event>,
    cancel: &CancellationToken,
) -> bool {
    let mut refresh = tokio::time::interval(SLOW_POLL);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;
    let mut totals_due = false;
    let mut totals_timer = tokio::time::interval(TOTALS_EVERY);
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => return false,
            ev = feed.next() => match ev {
                Some(ev) => ev,
                None => return true,
            },
            _ = refresh.tick() => {
                totals_due = true;
                continue;
            }
            _ = totals_timer.tick(), if totals_due => {
                totals_due = false;
                match slow_poll(store, tz).await {
                    Ok(events) => {
                        for e in events {
                            if tx.send(e).await.is_err() {
                                return false;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "today's totals"),
                }
                continue;
            }
        };
        let out = match event {
            FeedEvent::Change(c) => match change_events(store, &c, seen).await {
                Ok((events, totals)) => {
                    totals_due |= totals;
                    events
                }
                Err(e) => {
                    tracing::warn!(error = %e, collection = %c.collection, "reading a change");
                    Vec::new()
                }
            },
            FeedEvent::Error(msg) => vec![
                Event::Link(Link::Db, LinkState::Down(msg)),
                Event::Link(
                    Link::Feed,
                    LinkState::Down("waiting for the database".into()),
                ),
            ],
            FeedEvent::Recovered => return true,
        };
        for e in out {
            if tx.send(e).await.is_err() {
                return false;
            }
        }
    }
}

/// The dashboard events of one change, and whether today's totals need a re-read.
async fn change_events(
    store: &Store,
    c: &Change,
    seen: &mut Seen,
) -> anyhow::Result<(Vec<Event>, bool)> {
    let oid = crate::domain::Id::parse_str(&c.id).ok();
    Ok(match c.collection.as_str() {
        collections::DEVICES => match oid {
            Some(id) => {
                let d = store.device_by_id(id).await?;
                (
                    d.into_iter()
                        .map(|d| Event::Db(DbChange::Device(Box::new(d))))
                        .collect(),
                    false,
                )
            }
            None => (Vec::new(), false),
        },
        collections::CLASSROOMS => match oid {
            Some(id) => {
                let r = store.classroom_by_id(id).await?;
                (
                    r.into_iter()
                        .map(|r| Event::Db(DbChange::Classroom(r)))
                        .collect(),
                    false,
                )
            }
            None => (Vec::new(), false),
        },
        collections::COST_VERSIONS | collections::POWER_SETTINGS => {
            let settings = store.active_power_settings().await?;
            let cost_versions = store.cost_versions(None).await?;
            (
                vec![Event::Db(DbChange::Tariff {
                    settings,
                    cost_versions,
                })],
                false,
            )
        }
        collections::ACTIVITY => (new_activity(store, seen).await?, false),
        // Ledger rows and rollups change the day's and the month's totals.
        _ => (Vec::new(), true),
    })
}

/// Activity entries newer than the newest already sent, oldest first.
async fn new_activity(store: &Store, seen: &mut Seen) -> anyhow::Result<Vec<Event>> {
    let recent = store
        .recent_activity(50, None, &ActivityFilter::default())
        .await?
        .rows;
    let newer: Vec<ActivityLog> = recent
        .into_iter()
        .take_while(|a| {
            Some((a.timestamp, a.id)) != seen.newest_activity
                && seen.newest_activity.is_none_or(|(t, _)| a.timestamp >= t)
        })
        .collect();
    if let Some(first) = newer.first() {
        seen.newest_activity = Some((first.timestamp, first.id));
    }
    Ok(newer
        .into_iter()
        .rev()
        .map(|a| Event::Db(DbChange::Activity(Box::new(a))))
        .collect())
}

async fn load_snapshot(
    store: &Store,
    tz: chrono_tz::Tz,
    seen: &mut Seen,
) -> anyhow::Result<Snapshot> {
    let classrooms = store.classrooms().await?;
    let devices = store.devices().await?;
    let settings = store.active_power_settings().await?;
    let cost_versions = store.cost_versions(None).await?;
    let mut activity = store
        .recent_activity(ACTIVITY_LOADED, None, &ActivityFilter::default())
        .await?
        .rows;
    activity.reverse();
    let now = chrono::Utc::now();
    let today = today_totals(store, now, tz).await?;
    let month_before_today_inr = month_before_today(store, now, tz).await?;
    let health = health(store, &devices, &activity).await;
    seen.newest_activity = activity.last().map(|a| (a.timestamp, a.id));
    Ok(Snapshot {
        classrooms,
        devices,
        settings,
        cost_versions,
        today,
        activity,
        month_before_today_inr,
        health: Some(health),
    })
}

/// Today's totals and health, which change slowly.
async fn slow_poll(store: &Store, tz: chrono_tz::Tz) -> anyhow::Result<Vec<Event>> {
    let now = chrono::Utc::now();
    let today = today_totals(store, now, tz).await?;
    let devices = store.devices().await?;
    let activity = store
        .recent_activity(ACTIVITY_LOADED, None, &ActivityFilter::default())
        .await?
        .rows;
    let h = health(store, &devices, &activity).await;
    Ok(vec![
        Event::Db(DbChange::Today(today)),
        Event::Db(DbChange::Health(h)),
    ])
}

/// Today's closed energy per switch (the ledger summed by the energy books' pipeline).
async fn today_totals(
    store: &Store,
    now: Instant,
    tz: chrono_tz::Tz,
) -> anyhow::Result<Vec<SwitchTotal>> {
    let today = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    Ok(store
        .today_closed_totals(today, tz)
        .await?
        .into_iter()
        .map(|c| SwitchTotal {
            device_id: c.device_id,
            switch_id: c.switch_id,
            wh: c.amount.kwh * 1000.0,
            cost_inr: c.amount.cost,
        })
        .collect())
}

/// This month's cost before today, from the daily aggregates.
async fn month_before_today(store: &Store, now: Instant, tz: chrono_tz::Tz) -> anyhow::Result<f64> {
    let today = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    if today.day() == 1 {
        return Ok(0.0);
    }
    let query = AggregateQuery {
        from: Some(
            today
                .with_day(1)
                .unwrap_or(today)
                .format("%Y-%m-%d")
                .to_string(),
        ),
        to: Some(
            (today - chrono::Duration::days(1))
                .format("%Y-%m-%d")
                .to_string(),
        ),
        ..AggregateQuery::default()
    };
    Ok(store
        .daily_aggregates(&query)
        .await?
        .iter()
        .map(|d| d.cost_at_calc_time)
        .sum())
}

async fn health(store: &Store, devices: &[Device], activity: &[ActivityLog]) -> DbHealth {
    DbHealth {
        server: store.server().to_string(),
        capabilities: store.capabilities().to_string(),
        latency_ms: store.ping().await.ok().map(|d| d.as_secs_f64() * 1000.0),
        schema_version: store.schema_version().await.ok().map(i64::from),
        // The collector stamps `lastSeen` on every message: the newest one says how far behind it is.
        newest_telemetry: devices.iter().filter_map(|d| d.last_seen).max(),
        last_aggregation: activity
            .iter()
            .rev()
            .find(|a| a.action == action::AGGREGATION_RUN)
            .map(|a| a.timestamp.format("%Y-%m-%d %H:%M UTC").to_string()),
    }
}

/// Whether any operator account exists (then acting needs a sign-in).
async fn has_users(store: &Store) -> anyhow::Result<bool> {
    let n = store
        .collection::<crate::domain::User>(collections::USERS)
        .estimated_document_count()
        .await?;
    Ok(n > 0)
}

/// Aggregates one day with the energy books' engine, forwarding its progress as events.
async fn run_aggregation(
    store: &Store,
    date: chrono::NaiveDate,
    tz: chrono_tz::Tz,
    operator: &Operator,
    tx: &mpsc::Sender<Event>,
) -> AggregationUpdate {
    let (progress_tx, mut progress_rx) =
        tokio::sync::mpsc::unbounded_channel::<AggregationProgress>();
    let events = tx.clone();
    let forward = tokio::spawn(async move {
        while let Some(p) = progress_rx.recv().await {
            let update = AggregationUpdate::Progress {
                done: p.done as u64,
                total: p.total as u64,
            };
            let _ = events.send(Event::Aggregation(update)).await;
        }
    });
    let request = AggregationRequest {
        from: date,
        to: date,
        tz,
        triggered_by: crate::domain::TriggeredBy::User,
        operator: Some(operator.name.clone()),
        break_locks: false,
    };
    let result = store
        .aggregate(&request, Some(progress_tx), &CancellationToken::new())
        .await;
    let _ = forward.await;
    match result {
        Ok(s) => AggregationUpdate::Done {
            summary: format!(
                "{date}: {} ledger rows, {} daily aggregates written, {} unchanged, {} monthly written",
                s.ledger_rows, s.daily_written, s.daily_unchanged, s.monthly_written
            ),
        },
        Err(e) => AggregationUpdate::Failed(e.to_string()),
    }
}
