//! The dashboard's runtime: tokio tasks (terminal input, the MQTT subscription, the database
//! follower, a 1 s tick) feed one channel; the loop drains it, lets `App::update` change the state,
//! runs the effects in tasks whose results come back as events, and draws at most 50 times a second
//! and only when something changed.

use super::app::{App, Settings};
use super::effect::Effect;
use super::event::{AggregationUpdate, Event, Link, LinkState, TrendsUpdate};
use super::follow;
use super::keymap::Keymap;
use super::live::{self, STATE_TOPIC, SWITCHES_TOPIC, TELEMETRY_TOPIC};
use super::theme::{Symbols, Theme};
use super::{terminal, views};
use crate::config::Config;
use crate::domain::tariff::{TariffChange, TariffTarget};
use crate::domain::waste::WasteRule;
use crate::domain::Actor;
use crate::domain::Instant;
use crate::store::aggregation::{AggregationProgress, AggregationRequest};
use crate::store::Store;
use anyhow::Context;
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

/// The most events handled between two chances to draw: a steady flood still gets its frames.
const DRAIN_AT_MOST: usize = 4_096;

/// Command-line choices of a dashboard session.
#[derive(Debug, Clone)]
pub struct Options {
    pub read_only: bool,
    pub ascii: bool,
    /// Who acts when the database has no users, as the command line resolves it.
    pub operator: Actor,
}

/// Builds the app from the configuration (theme, symbols, keys, waste rule) at `now`.
pub fn build_app(config: &Config, opts: &Options, now: Instant) -> anyhow::Result<App> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let theme = Theme::load(&config.theme, no_color)?;
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
        mqtt_url: crate::domain::uri::redacted_uri(&config.mqtt_url),
        local_operator: opts.operator.clone(),
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
    app.update(Event::Resize(size.width, size.height));
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
    let mut quit = false;
    loop {
        tokio::select! {
            biased;
            _ = tokio::time::sleep_until(last_draw + FRAME), if app.dirty() => {
                term.draw(|f| views::render(f, &app))?;
                app.update(Event::Drawn);
                last_draw = tokio::time::Instant::now();
                after_draw(&app);
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                // Everything waiting is handled before the next frame; board messages in a row
                // go as one batch.
                let mut batch = Vec::new();
                let mut next = Some(ev);
                let mut taken = 0;
                while let Some(ev) = next
                    .take()
                    .or_else(|| (taken < DRAIN_AT_MOST).then(|| rx.try_recv().ok()).flatten())
                {
                    taken += 1;
                    match ev {
                        Event::Live(live) => batch.push(live),
                        other => {
                            if !batch.is_empty() {
                                quit |= handle(&mut app, Event::LiveBatch(std::mem::take(&mut batch)), services);
                            }
                            quit |= handle(&mut app, other, services);
                        }
                    }
                }
                if !batch.is_empty() {
                    quit |= handle(&mut app, Event::LiveBatch(batch), services);
                }
            }
        }
        if quit {
            break;
        }
    }
    Ok(app)
}

/// Updates the app with `ev` and runs the effects; true when the operator quits.
fn handle(app: &mut App, ev: Event, services: &Services) -> bool {
    let mut quit = false;
    let mut events = vec![ev];
    while let Some(ev) = events.pop() {
        for effect in app.update(ev) {
            match effect {
                // A theme is a file read, done here: the next frame shows it.
                Effect::ChangeTheme(name) => match Theme::load(&name, app.no_color()) {
                    Ok(t) => events.push(Event::Theme(Box::new(t))),
                    Err(e) => tracing::warn!(error = %e, "theme"),
                },
                Effect::Quit => quit = true,
                other => services.run(other),
            }
        }
    }
    quit
}

/// The connections effects need, shared with the tasks that run them.
pub struct Services {
    read_only: bool,
    mqtt: Option<AsyncClient>,
    store: Arc<RwLock<Option<Store>>>,
    tx: mpsc::Sender<Event>,
    tz: chrono_tz::Tz,
    /// The aggregation running, if any: how to stop it, and its task.
    aggregation: std::sync::Mutex<Option<(CancellationToken, tokio::task::JoinHandle<()>)>>,
}

/// How long quitting waits for a running aggregation to stop at a classroom's end.
const AGGREGATION_STOP_WAIT: Duration = Duration::from_secs(2);

impl Services {
    /// Starts the MQTT subscription and the database follower.
    pub fn start(
        config: &Config,
        read_only: bool,
        tx: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> anyhow::Result<Services> {
        Self::start_observed(config, read_only, tx, cancel, None)
    }

    /// [`Services::start`], with every command the database connection sends shown to `observer`.
    pub fn start_observed(
        config: &Config,
        read_only: bool,
        tx: mpsc::Sender<Event>,
        cancel: CancellationToken,
        observer: Option<crate::store::CommandObserver>,
    ) -> anyhow::Result<Services> {
        let access = config.broker_access();
        let mqtt = spawn_mqtt(&config.mqtt_url, &access, tx.clone(), cancel.clone())?;
        let store = Arc::new(RwLock::new(None));
        let tz = config.tz()?;
        tokio::spawn(follow::follow_database(
            config.mongodb_connection_uri(),
            tz,
            store.clone(),
            tx.clone(),
            cancel,
            follow::FollowOptions {
                reconcile_every: Duration::from_secs(config.reconcile_every_secs),
                observer,
                ..follow::FollowOptions::default()
            },
        ));
        Ok(Services {
            read_only,
            mqtt: Some(mqtt),
            store,
            tx,
            tz,
            aggregation: Default::default(),
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
            mqtt: Some(spawn_mqtt(
                mqtt_url,
                &crate::mqtt::connection::BrokerAccess::default(),
                tx.clone(),
                cancel,
            )?),
            store: Arc::new(RwLock::new(None)),
            tx,
            tz,
            aggregation: Default::default(),
        })
    }

    /// Stops a running aggregation (it ends at a classroom's end, or is abandoned after a moment:
    /// its lock then lapses) and closes the database connection now (a client dropped while the
    /// runtime stops panics in the driver).
    pub async fn shutdown(&self) {
        let running = self.aggregation.lock().ok().and_then(|mut a| a.take());
        if let Some((stop, mut task)) = running {
            stop.cancel();
            if tokio::time::timeout(AGGREGATION_STOP_WAIT, &mut task)
                .await
                .is_err()
            {
                tracing::warn!("the aggregation did not stop in time; abandoned");
                task.abort();
            }
        }
        if let Some(store) = self.store.write().await.take() {
            store.close().await;
        }
    }

    /// The database, once connected (a clone: no task keeps the slot while it works).
    async fn connected(store: &RwLock<Option<Store>>) -> Option<Store> {
        store.read().await.clone()
    }

    /// Runs one effect in a task; its result comes back as an event.
    fn run(&self, effect: Effect) {
        if let Effect::LoadTrends { now, rule } = effect {
            // A read: read-only sessions may too.
            let (tx, store, tz) = (self.tx.clone(), self.store.clone(), self.tz);
            tokio::spawn(async move {
                match Self::connected(&store).await {
                    Some(s) => super::trends::load(&s, now, tz, &rule, &tx).await,
                    None => {
                        let _ = tx
                            .send(Event::Trends(TrendsUpdate::Failed(
                                "the database is unreachable; the trends show when it is back"
                                    .into(),
                            )))
                            .await;
                    }
                }
            });
            return;
        }
        if let Effect::LoadSizes = effect {
            let (tx, store) = (self.tx.clone(), self.store.clone());
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let result = match Self::connected(&store).await {
                    Some(s) => follow::collection_sizes(&s).await,
                    None => Err("the database is unreachable".to_string()),
                };
                let took = started.elapsed();
                let _ = tx
                    .send(Event::Db(super::event::DbChange::Sizes { result, took }))
                    .await;
            });
            return;
        }
        if self.read_only {
            // The app never asks in read-only mode; this is the second lock on the door.
            tracing::warn!(?effect, "read-only session: effect dropped");
            return;
        }
        let tx = self.tx.clone();
        let store = self.store.clone();
        match effect {
            Effect::Publish {
                device_id,
                switch_id,
                command,
            } => {
                let Some(client) = self.mqtt.clone() else {
                    return;
                };
                tokio::spawn(async move {
                    tracing::info!(device = %device_id, switch = %switch_id, on = command.state, user = %command.user_name, "relay command");
                    if let Err(e) = client
                        .publish(SWITCHES_TOPIC, QoS::AtLeastOnce, false, command.payload())
                        .await
                    {
                        let _ = tx
                            .send(Event::PublishFailed {
                                device_id,
                                switch_id,
                                reason: e.to_string(),
                            })
                            .await;
                    }
                });
            }
            Effect::Record(log) => {
                tokio::spawn(async move {
                    match Self::connected(&store).await {
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
                by,
            } => {
                tokio::spawn(async move {
                    let change = TariffChange {
                        price,
                        target: TariffTarget::Global,
                        from,
                        note: (!note.is_empty()).then_some(note),
                        by,
                    };
                    let result = match Self::connected(&store).await {
                        Some(s) => s.set_tariff(&change).await.map_err(|e| e.to_string()),
                        None => {
                            Err("the database is unreachable; try again when it is back".into())
                        }
                    };
                    let _ = tx.send(Event::TariffResult(result)).await;
                });
            }
            Effect::Aggregate { date, by } => {
                let tz = self.tz;
                let stop = CancellationToken::new();
                let until = stop.clone();
                let task = tokio::spawn(async move {
                    let update = match Self::connected(&store).await {
                        Some(s) => run_aggregation(&s, date, tz, &by, &tx, &until).await,
                        None => AggregationUpdate::Failed("the database is unreachable".into()),
                    };
                    let _ = tx.send(Event::Aggregation(update)).await;
                });
                if let Ok(mut a) = self.aggregation.lock() {
                    *a = Some((stop, task));
                }
            }
            Effect::CancelAggregation => {
                if let Some((stop, _)) = self
                    .aggregation
                    .lock()
                    .ok()
                    .as_ref()
                    .and_then(|a| a.as_ref())
                {
                    stop.cancel();
                }
            }
            Effect::SignIn { email, password } => {
                tokio::spawn(async move {
                    let result = match Self::connected(&store).await {
                        Some(s) => s
                            .authenticate(&email, &password, chrono::Utc::now())
                            .await
                            .map(|u| Actor::signed_in(u.name, u.id, u.role))
                            .map_err(|e| e.to_string()),
                        None => Err(
                            "the database is unreachable; wait for it, or start with --read-only"
                                .into(),
                        ),
                    };
                    let _ = tx.send(Event::SignIn(result)).await;
                });
            }
            Effect::ChangeTheme(_)
            | Effect::Quit
            | Effect::LoadTrends { .. }
            | Effect::LoadSizes => {}
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
    access: &crate::mqtt::connection::BrokerAccess,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) -> anyhow::Result<AsyncClient> {
    let id = format!(
        "autovolt-dash-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    );
    let mut options = crate::mqtt::connection::options(url, &id, access)?;
    let (broker, access) = (url.to_string(), access.clone());
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let sub = client.clone();
    tokio::spawn(async move {
        let _ = tx
            .send(Event::Link(Link::Mqtt, LinkState::Connecting))
            .await;
        let mut dropped: u64 = 0;
        let mut backoff =
            crate::retry::Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        loop {
            let polled = tokio::select! {
                _ = cancel.cancelled() => break,
                p = events.poll() => p,
            };
            match polled {
                Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
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
                        .send(Event::Link(
                            Link::Mqtt,
                            LinkState::Down(crate::mqtt::connection::explain(&e, &broker, &access)),
                        ))
                        .await;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(backoff.next_wait()) => {}
                    }
                }
            }
        }
    });
    Ok(client)
}

/// Aggregates one day with the energy books' engine, forwarding its progress as events.
async fn run_aggregation(
    store: &Store,
    date: chrono::NaiveDate,
    tz: chrono_tz::Tz,
    by: &Actor,
    tx: &mpsc::Sender<Event>,
    cancel: &CancellationToken,
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
        by: Some(by.clone()),
        break_locks: false,
    };
    let result = store.aggregate(&request, Some(progress_tx), cancel).await;
    let _ = forward.await;
    match result {
        Ok(s) if s.cancelled => AggregationUpdate::Stopped(format!(
            "{date}: {} daily aggregates written before it stopped, the rest as they were",
            s.daily_written
        )),
        Ok(s) => AggregationUpdate::Done {
            summary: format!(
                "{date}: {} ledger rows, {} daily aggregates written, {} unchanged, {} monthly written",
                s.ledger_rows, s.daily_written, s.daily_unchanged, s.monthly_written
            ),
        },
        Err(e) => AggregationUpdate::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_shows_the_broker_without_its_password_and_acts_as_the_command_line_says() {
        let mut config = Config::default();
        config.mqtt_url = "mqtt://tech:s3cr3t@broker.campus:1883".into();
        let opts = Options {
            read_only: false,
            ascii: true,
            operator: Actor::at_database("priya"),
        };
        let app = build_app(&config, &opts, chrono::Utc::now()).unwrap();
        // Redacted by the one rule for every server address: the user stays, the password never shows.
        assert_eq!(
            app.settings().mqtt_url,
            "mqtt://tech:<redacted>@broker.campus:1883"
        );
        assert_eq!(app.settings().local_operator, Actor::at_database("priya"));
    }
}
