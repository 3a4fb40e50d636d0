//! The live pipeline's commands: `collect`, `simulate`, `toggle` and `rejected`.

use super::exit::{Failure, FOUND, OK};
use super::{input, Ctx};
use crate::clock::{Clock, SystemClock};
use crate::collect::{self, CollectorOptions};
use crate::domain::Actor;
use crate::mqtt::relay::{Confirmation, Relay, ToggleError};
use crate::simulate::{self, SimulateOptions};
use crate::store::{Store, StoreError};
use clap::Subcommand;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand, Debug)]
pub enum LiveCommand {
    /// Daemon: device messages from the broker into the database (presence, relay states, the
    /// energy ledger, telemetry, activity). Several may share the load with --group.
    Collect {
        /// Shared-subscription group: collectors in one group split the messages.
        #[arg(long, env = "AUTOVOLT_COLLECT_GROUP")]
        group: Option<String>,
        /// MQTT client id; keep it stable so the broker keeps what it queued across restarts
        /// (default: autovolt-collector-HOSTNAME).
        #[arg(long, env = "AUTOVOLT_COLLECT_CLIENT_ID", value_parser = input::name)]
        client_id: Option<String>,
        /// Serve Prometheus metrics at http://IP:PORT/metrics (off unless given). There is no
        /// authentication: keep it on loopback or a network only the monitoring can reach.
        #[arg(long, value_name = "IP:PORT", env = "AUTOVOLT_COLLECT_METRICS", value_parser = input::listen_address)]
        metrics: Option<SocketAddr>,
    },
    /// Virtual boards speaking the field firmware's protocol: the devices in the database, or N
    /// generated ones. Runs until Ctrl-C, then prints what it sent.
    Simulate {
        /// Generate this many boards (1 to 10,000) instead of using the registered devices.
        #[arg(long, value_parser = input::simulated_boards)]
        devices: Option<usize>,
        /// Switching frequency multiplier, more than 0 and at most 10,000 (1 = a classroom's day;
        /// 100 = a load test).
        #[arg(long, default_value_t = 1.0, value_parser = input::rate)]
        rate: f64,
        /// Seconds between heartbeats and forced snapshots, 1 to 3600 (30 in the firmware).
        #[arg(long, default_value_t = 30, value_parser = input::report_secs)]
        report_secs: u64,
        /// Random seed for generated boards and their behaviour.
        #[arg(long)]
        seed: Option<u64>,
        /// Each board reboots at random, on average this often (`90s`, `10m`, `2h`): its connection
        /// drops without a goodbye, its loads go off for 2 s, and it boots with its clock from zero.
        #[arg(long, value_parser = input::duration)]
        reboot_every: Option<Duration>,
    },
    /// Messages the collector could not take (dead letters): list them, or replay one after
    /// fixing what refused it.
    Rejected {
        #[command(subcommand)]
        action: RejectedAction,
    },
    /// Switch one relay and wait for the board to confirm it. Exit 1 when the board is offline
    /// or does not confirm.
    Toggle {
        /// The board: its MAC, its name or its id.
        #[arg(long, visible_alias = "mac")]
        device: String,
        /// The switch: its id, its name or its relay pin.
        #[arg(long = "switch")]
        switch: String,
        /// Switch it on.
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        on: bool,
        /// Switch it off.
        #[arg(long)]
        off: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum RejectedAction {
    /// The newest dead letters: id, when, kind, reason, topic and the start of the payload.
    List {
        /// At most this many, 1 to 10,000.
        #[arg(long, default_value_t = 50, value_parser = input::list_limit)]
        limit: usize,
    },
    /// Process one dead letter again, as the collector would have; removed when that succeeds.
    /// Exit 0 done, 1 refused again (the reason is updated), 2 not found or not replayable.
    Replay {
        /// Its id, as `rejected list` shows it.
        id: String,
    },
}

impl LiveCommand {
    pub fn is_daemon(&self) -> bool {
        matches!(
            self,
            LiveCommand::Collect { .. } | LiveCommand::Simulate { .. }
        )
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Cancelled on Ctrl-C (SIGINT) or SIGTERM (what systemd, Docker and Kubernetes send to stop a
/// service), so that a daemon stops cleanly either way.
fn stop_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
        t.cancel();
    });
    token
}

impl<E: Into<Failure> + std::error::Error> From<ToggleError<E>> for Failure {
    fn from(e: ToggleError<E>) -> Failure {
        match e {
            ToggleError::Log(s) => s.into(),
            ToggleError::Forbidden(f) => StoreError::from(f).into(),
            // The board said no, or said nothing: refused.
            ToggleError::Offline { .. } | ToggleError::Timeout { .. } => {
                Failure::refused(e.to_string())
            }
            // What was typed, the device document or the broker cannot be used.
            _ => Failure::unusable(e.to_string()),
        }
    }
}

pub async fn run(command: LiveCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let tz = ctx.tz()?;
    match command {
        LiveCommand::Collect {
            group,
            client_id,
            metrics,
        } => {
            // Bound before anything else, so that a port in use stops the collector at once.
            let metrics = match metrics {
                Some(addr) => Some(
                    tokio::net::TcpListener::bind(addr)
                        .await
                        .and_then(|l| Ok((l.local_addr()?, l)))
                        .map_err(|e| {
                            Failure::unusable(format!(
                                "cannot serve metrics on {addr}: {e}; choose another --metrics address"
                            ))
                        })?,
                ),
                None => None,
            };
            let store = ctx.open().await?;
            if let Err(e) = store.ensure_indexes().await {
                store.close().await;
                return Err(Failure {
                    message: format!("cannot create the indexes the collector relies on: {}", e),
                    ..Failure::from(e)
                });
            }
            let mut options = CollectorOptions::new(
                client_id.unwrap_or_else(|| format!("autovolt-collector-{}", hostname())),
                tz,
            );
            options.group = group;
            options.access = ctx.broker_access();
            options.offline_after = Duration::from_secs(ctx.config.offline_after_secs);
            let shutdown = stop_signal();
            let mut endpoint = Vec::new();
            if let Some((addr, listener)) = metrics {
                let recorded = options.metrics.clone();
                let scrape = crate::metrics_http::Scrape {
                    render: Arc::new(move || recorded.render()),
                    content_type: collect::metrics::CONTENT_TYPE,
                };
                endpoint.push(tokio::spawn(crate::metrics_http::serve(
                    listener,
                    scrape,
                    shutdown.clone(),
                )));
                let waste = crate::domain::waste::WasteRule::new(
                    ctx.config.waste_no_motion_minutes,
                    &ctx.config.campus_hours,
                    &ctx.config.campus_days,
                    tz,
                )
                .map_err(Failure::unusable)?;
                let recorded = options.metrics.clone();
                let (store, shutdown) = (store.clone(), shutdown.clone());
                endpoint.push(tokio::spawn(async move {
                    recorded
                        .keep_campus_gauges(
                            store,
                            waste,
                            collect::metrics::CAMPUS_GAUGES_EVERY,
                            shutdown,
                        )
                        .await
                }));
                tracing::info!(address = %addr, "serving Prometheus metrics at http://{addr}/metrics");
            }
            // Yesterday's rollups at `aggregate_at`, claimed once across every collector.
            let daily = crate::store::aggregation::spawn_daily_aggregation(
                store.clone(),
                tz,
                &ctx.config.aggregate_at,
                Arc::new(SystemClock),
            )
            .map_err(|e| {
                Failure::unusable(format!("cannot schedule the daily aggregation: {e}"))
            })?;
            let result = collect::run(
                store.clone(),
                ctx.config.mqtt_url.clone(),
                options,
                Arc::new(SystemClock),
                shutdown.clone(),
                None,
            )
            .await;
            daily.abort();
            // Stopped with the collector, even when it stopped on an error.
            shutdown.cancel();
            for task in endpoint {
                let _ = task.await;
            }
            store.close().await;
            let stats = result.map_err(|e| Failure::unusable(e.to_string()))?;
            ctx.show(serde_json::to_value(&stats).unwrap_or_default(), || {
                stats.summary()
            });
            Ok(OK)
        }
        LiveCommand::Simulate {
            devices,
            rate,
            report_secs,
            seed,
            reboot_every,
        } => {
            let seed = seed.unwrap_or_else(rand::random);
            let boards = match devices {
                Some(n) => simulate::generated(n, seed),
                None => {
                    let store = ctx.open().await?;
                    let boards = simulate::from_store(&store).await;
                    store.close().await;
                    boards?
                }
            };
            let n = boards.len();
            let mut options = SimulateOptions::new(boards, tz);
            options.rate = rate;
            options.report_every = Duration::from_secs(report_secs);
            options.access = ctx.broker_access();
            options.seed = seed;
            options.reboot_every = reboot_every;
            eprintln!(
                "simulating {n} boards against {} (Ctrl-C to stop)",
                crate::domain::uri::redacted_uri(&ctx.config.mqtt_url)
            );
            let counters = simulate::run(ctx.config.mqtt_url.clone(), options, stop_signal())
                .await
                .map_err(|e| Failure::unusable(e.to_string()))?;
            let count =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
            ctx.show(
                json!({
                    "boards": n,
                    "sent": counters.sent(),
                    "snapshots": count(&counters.snapshots),
                    "heartbeats": count(&counters.heartbeats),
                    "switch_events": count(&counters.switch_events),
                    "manual_switches": count(&counters.manual_switches),
                    "motions": count(&counters.motions),
                    "commands_applied": count(&counters.commands_applied),
                    "commands_unchanged": count(&counters.commands_unchanged),
                    "reboots": count(&counters.reboots),
                    "connections": count(&counters.connections),
                    "dropped": count(&counters.dropped),
                }),
                || counters.summary(n),
            );
            Ok(OK)
        }
        LiveCommand::Rejected { action } => {
            let store = ctx.open().await?;
            let result = match action {
                RejectedAction::List { limit } => rejected_list(ctx, &store, limit).await,
                RejectedAction::Replay { id } => rejected_replay(ctx, &store, tz, &id).await,
            };
            store.close().await;
            result
        }
        LiveCommand::Toggle {
            device,
            switch,
            on,
            off,
        } => {
            let state = on && !off;
            let device = input::printable("device", &device, 100)?;
            let switch = input::printable("switch", &switch, 100)?;
            let name = ctx.operator()?;
            let store = ctx.open().await?;
            let result = toggle(ctx, &store, &device, &switch, state, name).await;
            store.close().await;
            result
        }
    }
}

async fn toggle(
    ctx: &Ctx,
    store: &Store,
    device: &str,
    switch: &str,
    state: bool,
    name: String,
) -> Result<i32, Failure> {
    let device = store.device_named(device).await?;
    let relay = Relay::connect_once(
        &ctx.config.mqtt_url,
        &format!("autovolt-toggle-{}-{}", hostname(), std::process::id()),
        &ctx.broker_access(),
    )
    .await?;
    let by = Actor::at_database(name);
    let outcome = relay
        .toggle(
            store,
            &device,
            switch,
            state,
            &by,
            Duration::from_secs(ctx.config.toggle_timeout_secs),
            SystemClock.now(),
        )
        .await;
    relay.disconnect().await;
    let word = if state { "on" } else { "off" };
    let how = match outcome? {
        Confirmation::AlreadyInState => "already",
        Confirmation::SwitchEvent => "switch_event",
        _ => "state_report",
    };
    ctx.show(
        json!({"device": device.name, "mac": device.mac_address.to_string(), "switch": switch, "state": state, "confirmed_by": how}),
        || match how {
            "already" => format!("{} {switch}: already {word}", device.name),
            "switch_event" => format!("{} {switch}: {word} (confirmed by the board's switch event)", device.name),
            _ => format!("{} {switch}: {word} (confirmed by the board's state report)", device.name),
        },
    );
    Ok(OK)
}

async fn rejected_list(ctx: &Ctx, store: &Store, limit: usize) -> Result<i32, Failure> {
    let letters = store.dead_letters(limit).await?;
    ctx.show(
        json!(letters
            .iter()
            .map(|d| json!({
                "id": d.id.to_hex(),
                "receivedAt": d.received_at.to_rfc3339(),
                "keptAt": d.created_at.to_rfc3339(),
                "kind": d.kind.as_str(),
                "reason": d.reason,
                "detail": d.detail,
                "topic": d.topic,
                "mac": d.mac,
                "size": d.size,
                "truncated": d.truncated,
                "replays": d.replays,
                "payload": d.payload_preview(4096),
            }))
            .collect::<Vec<_>>()),
        || {
            if letters.is_empty() {
                return "no dead letters".into();
            }
            let mut lines = vec![format!(
                "{:<24}  {:<21}  {:<9}  {:<22}  {:<15}  payload",
                "id", "received", "kind", "reason", "topic"
            )];
            for d in &letters {
                lines.push(format!(
                    "{:<24}  {:<21}  {:<9}  {:<22}  {:<15}  {}",
                    d.id.to_hex(),
                    ctx.time(d.received_at),
                    d.kind.as_str(),
                    d.reason,
                    d.topic,
                    d.payload_preview(60)
                ));
                lines.push(format!("{:<24}  {}", "", d.detail));
            }
            lines.join("\n")
        },
    );
    Ok(OK)
}

async fn rejected_replay(
    ctx: &Ctx,
    store: &Store,
    tz: chrono_tz::Tz,
    id: &str,
) -> Result<i32, Failure> {
    let Ok(id) = crate::domain::Id::parse_str(id.trim()) else {
        return Err(Failure::unusable(format!(
            "{:?} is not a dead letter id: use one that `autovolt rejected list` shows",
            id.escape_default().to_string()
        )));
    };
    let (outcome, text, code) = match collect::replay(store, tz, id).await? {
        collect::Replayed::Done => ("done", format!("replayed {id}: processed and removed"), OK),
        collect::Replayed::RefusedAgain(reason) => (
            "refused_again",
            format!(
                "{id} was refused again ({reason}); it stays: fix the cause and replay it again"
            ),
            FOUND,
        ),
        collect::Replayed::Truncated => {
            return Err(Failure::unusable(format!(
                "{id} was too large to keep whole and cannot be replayed"
            )))
        }
        collect::Replayed::NotFound => {
            return Err(Failure::unusable(format!("no dead letter {id}")))
        }
    };
    ctx.show(json!({"id": id.to_hex(), "outcome": outcome}), || text);
    Ok(code)
}
