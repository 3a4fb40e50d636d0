//! The live pipeline's commands: `collect`, `simulate`, `toggle`, `rejected`, and
//! `devices unregistered`.

use crate::clock::{Clock, SystemClock};
use crate::collect::{self, CollectorOptions};
use crate::config::Config;
use crate::domain::Mac;
use crate::mqtt::connection::Credentials;
use crate::mqtt::relay::{Confirmation, Operator, Relay};
use crate::simulate::{self, SimulateOptions};
use crate::store::{Store, DEFAULT_SELECTION_TIMEOUT};
use clap::Subcommand;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum LiveCommand {
    /// Daemon: device messages from the broker into the database (presence, relay states, the
    /// energy ledger, telemetry, activity). Several may share the load with --group.
    Collect {
        /// Shared-subscription group: collectors in one group split the messages.
        #[arg(long, env = "AUTOVOLT_COLLECT_GROUP")]
        group: Option<String>,
        /// MQTT client id; keep it stable so the broker keeps what it queued across restarts
        /// (default: autovolt-collector-HOSTNAME).
        #[arg(long, env = "AUTOVOLT_COLLECT_CLIENT_ID")]
        client_id: Option<String>,
    },
    /// Virtual boards speaking the field firmware's protocol: the devices in the database, or N
    /// generated ones. Runs until Ctrl-C, then prints what it sent.
    Simulate {
        /// Generate this many boards instead of using the registered devices.
        #[arg(long)]
        devices: Option<usize>,
        /// Switching frequency multiplier (1 = a classroom's day; 100 = a load test).
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds between heartbeats and forced snapshots (30 in the firmware).
        #[arg(long, default_value_t = 30)]
        report_secs: u64,
        /// Random seed for generated boards and their behaviour.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Messages the collector could not take (dead letters): list them, or replay one after
    /// fixing what refused it.
    Rejected {
        #[command(subcommand)]
        action: RejectedAction,
    },
    /// Switch one relay and wait for the board to confirm it.
    Toggle {
        /// The board's MAC address.
        #[arg(long)]
        mac: String,
        /// The switch: its id, its name or its relay pin.
        #[arg(long = "switch")]
        switch: String,
        /// Switch it on.
        #[arg(long, conflicts_with = "off", required_unless_present = "off")]
        on: bool,
        /// Switch it off.
        #[arg(long)]
        off: bool,
        /// Who is switching, for the activity log (default: $USER).
        #[arg(long, env = "AUTOVOLT_OPERATOR")]
        operator: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum RejectedAction {
    /// The newest dead letters: id, when, kind, reason, topic and the start of the payload.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Process one dead letter again, as the collector would have; removed when that succeeds.
    /// Exit 0 done, 1 refused again (the reason is updated), 2 not found or not replayable.
    Replay {
        /// Its id, as `rejected list` shows it.
        id: String,
    },
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

fn ctrl_c() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

async fn connect(config: &Config) -> Result<Store, i32> {
    Store::connect(&config.mongodb_uri, DEFAULT_SELECTION_TIMEOUT)
        .await
        .map(|s| s.with_lock_lease(config.lock_lease()))
        .map_err(|e| {
            eprintln!("autovolt: {e}");
            e.exit_code()
        })
}

pub async fn run(command: LiveCommand, config: &Config) -> i32 {
    super::init_stderr_logging();
    let tz = match config.tz() {
        Ok(tz) => tz,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return 2;
        }
    };
    match command {
        LiveCommand::Collect { group, client_id } => {
            let store = match connect(config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            if let Err(e) = store.ensure_indexes().await {
                eprintln!("autovolt: cannot create the indexes the collector relies on: {e}");
                return e.exit_code();
            }
            let mut options = CollectorOptions::new(
                client_id.unwrap_or_else(|| format!("autovolt-collector-{}", hostname())),
                tz,
            );
            options.group = group;
            options.credentials = Credentials::from_env();
            options.offline_after = Duration::from_secs(config.offline_after_secs);
            // Yesterday's rollups at `aggregate_at`, claimed once across every collector.
            let daily = match crate::store::aggregation::spawn_daily_aggregation(
                store.clone(),
                config.clone(),
                Arc::new(SystemClock),
            ) {
                Ok(handle) => handle,
                Err(e) => {
                    eprintln!("autovolt: cannot schedule the daily aggregation: {e}");
                    return 2;
                }
            };
            let result = collect::run(
                store,
                config.mqtt_url.clone(),
                options,
                Arc::new(SystemClock),
                ctrl_c(),
                None,
            )
            .await;
            daily.abort();
            match result {
                Ok(stats) => {
                    println!("{}", stats.summary());
                    0
                }
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    2
                }
            }
        }
        LiveCommand::Simulate {
            devices,
            rate,
            report_secs,
            seed,
        } => {
            let seed = seed.unwrap_or_else(rand::random);
            let boards = match devices {
                Some(n) => simulate::generated(n, seed),
                None => {
                    let store = match connect(config).await {
                        Ok(s) => s,
                        Err(code) => return code,
                    };
                    match simulate::from_store(&store).await {
                        Ok(b) => b,
                        Err(e) => {
                            eprintln!("autovolt: {e}");
                            return e.exit_code();
                        }
                    }
                }
            };
            if !(rate.is_finite() && rate > 0.0) {
                eprintln!("autovolt: --rate must be a positive number");
                return 2;
            }
            let n = boards.len();
            let mut options = SimulateOptions::new(boards, tz);
            options.rate = rate;
            options.report_every = Duration::from_secs(report_secs.max(1));
            options.credentials = Credentials::from_env();
            options.seed = seed;
            eprintln!(
                "simulating {n} boards against {} (Ctrl-C to stop)",
                crate::mqtt::connection::redact(&config.mqtt_url)
            );
            match simulate::run(config.mqtt_url.clone(), options, ctrl_c()).await {
                Ok(counters) => {
                    println!("{}", counters.summary(n));
                    0
                }
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    2
                }
            }
        }
        LiveCommand::Rejected { action } => {
            let store = match connect(config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            match action {
                RejectedAction::List { limit, json } => rejected_list(&store, limit, json).await,
                RejectedAction::Replay { id } => rejected_replay(&store, tz, &id).await,
            }
        }
        LiveCommand::Toggle {
            mac,
            switch,
            on,
            off,
            operator,
        } => {
            let state = on && !off;
            let mac = match Mac::parse(&mac) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    return 2;
                }
            };
            let store = match connect(config).await {
                Ok(s) => s,
                Err(code) => return code,
            };
            let device = match store.device_by_mac(mac).await {
                Ok(Some(d)) => d,
                Ok(None) => {
                    eprintln!("autovolt: no device with MAC {mac} is registered; see `autovolt devices list`");
                    return 1;
                }
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    return e.exit_code();
                }
            };
            let relay = match Relay::connect(
                &config.mqtt_url,
                &format!("autovolt-toggle-{}-{}", hostname(), std::process::id()),
                &Credentials::from_env(),
            )
            .await
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    return 2;
                }
            };
            let operator = Operator {
                user_id: None,
                name: operator
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "operator".into()),
            };
            let outcome = relay
                .toggle(
                    &store,
                    &device,
                    &switch,
                    state,
                    &operator,
                    Duration::from_secs(config.toggle_timeout_secs),
                    SystemClock.now(),
                )
                .await;
            relay.disconnect().await;
            let word = if state { "on" } else { "off" };
            match outcome {
                Ok(Confirmation::AlreadyInState) => {
                    println!("{} {switch}: already {word}", device.name);
                    0
                }
                Ok(c) => {
                    println!(
                        "{} {switch}: {word} (confirmed by {})",
                        device.name,
                        match c {
                            Confirmation::SwitchEvent => "the board's switch event",
                            _ => "the board's state report",
                        }
                    );
                    0
                }
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    1
                }
            }
        }
    }
}

/// `autovolt devices unregistered`: boards that spoke without being registered.
pub async fn unregistered(config: &Config) -> i32 {
    let store = match connect(config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.unregistered_devices().await {
        Ok(list) if list.is_empty() => {
            println!("no unregistered boards seen");
            0
        }
        Ok(list) => {
            println!(
                "{:<17}  {:<20}  {:<20}  {:>8}",
                "MAC", "first seen", "last seen", "messages"
            );
            for d in list {
                println!(
                    "{:<17}  {:<20}  {:<20}  {:>8}",
                    d.mac,
                    d.first_seen.format("%Y-%m-%d %H:%M:%S"),
                    d.last_seen.format("%Y-%m-%d %H:%M:%S"),
                    d.count
                );
            }
            0
        }
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}

async fn rejected_list(store: &Store, limit: usize, json: bool) -> i32 {
    let letters = match store.dead_letters(limit).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return e.exit_code();
        }
    };
    if json {
        for d in &letters {
            let line = serde_json::json!({
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
            });
            println!("{line}");
        }
        return 0;
    }
    if letters.is_empty() {
        println!("no dead letters");
        return 0;
    }
    println!(
        "{:<24}  {:<19}  {:<9}  {:<22}  {:<15}  payload",
        "id", "received (UTC)", "kind", "reason", "topic"
    );
    for d in &letters {
        println!(
            "{:<24}  {:<19}  {:<9}  {:<22}  {:<15}  {}",
            d.id.to_hex(),
            d.received_at.format("%Y-%m-%d %H:%M:%S"),
            d.kind.as_str(),
            d.reason,
            d.topic,
            d.payload_preview(60)
        );
        println!("{:<24}  {}", "", d.detail);
    }
    0
}

async fn rejected_replay(store: &Store, tz: chrono_tz::Tz, id: &str) -> i32 {
    let Ok(id) = crate::domain::Id::parse_str(id.trim()) else {
        eprintln!(
            "autovolt: {id:?} is not a dead letter id: use one that `autovolt rejected list` shows"
        );
        return 2;
    };
    match collect::replay(store, tz, id).await {
        Ok(collect::Replayed::Done) => {
            println!("replayed {id}: processed and removed");
            0
        }
        Ok(collect::Replayed::RefusedAgain(reason)) => {
            println!(
                "{id} was refused again ({reason}); it stays: fix the cause and replay it again"
            );
            1
        }
        Ok(collect::Replayed::Truncated) => {
            eprintln!("autovolt: {id} was too large to keep whole and cannot be replayed");
            2
        }
        Ok(collect::Replayed::NotFound) => {
            eprintln!("autovolt: no dead letter {id}");
            2
        }
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}
