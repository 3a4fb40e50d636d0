//! Commands on the data layer: health, migrations, seeding, backup and restore, devices.

use crate::config::Config;
use crate::domain::dates;
use crate::store::health::HealthLevel;
use crate::store::migrations::{Direction, Step};
use crate::store::{Store, StoreError, DEFAULT_SELECTION_TIMEOUT};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// On-call check: reachability, latency, server, capabilities, sizes, schema version, boards,
    /// collector lag. Exit 0 OK / 1 warning / 2 critical (database unreachable).
    Health {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Schema migrations: status, up, down, unlock.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Fill an empty database with a realistic demo campus (refuses a database with classrooms
    /// or devices).
    Seed {
        #[arg(long, default_value_t = 6)]
        classrooms: usize,
        #[arg(long, default_value_t = 2)]
        devices_per_classroom: usize,
        /// Random seed: the same seed gives the same campus, MACs and device secrets included
        /// (for tests and demos). Without it they are drawn at random.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Dump every collection to DIR (Extended JSON lines, a manifest with checksums). The dump
    /// holds device secrets and password hashes: keep it as safe as the database.
    Backup {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restore a dump made by `backup`, after checking its checksums and counts. Refuses a
    /// database that already holds any of its collections' data unless --drop.
    Restore {
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Drop the dumped collections in the target before restoring them.
        #[arg(long)]
        drop: bool,
    },
    /// Delete raw telemetry older than the retention (what the TTL index does on servers that
    /// have TTL indexes).
    PruneTelemetry {
        /// Keep this many days.
        #[arg(long, default_value_t = 730)]
        older_than_days: u32,
        #[arg(long)]
        dry_run: bool,
    },
    /// Devices and their relays (device secrets are never shown).
    Devices {
        #[command(subcommand)]
        action: DevicesAction,
    },
}

#[derive(Subcommand)]
pub enum MigrateAction {
    /// Applied and pending versions, and who holds the lock.
    Status,
    /// Apply pending migrations (up to --to, default all).
    Up {
        #[arg(long)]
        to: Option<i32>,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert migrations above --to, newest first (data is never dropped).
    Down {
        #[arg(long)]
        to: i32,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a lock left by a run that died (check first that it is not still running).
    Unlock,
}

#[derive(Subcommand)]
pub enum DevicesAction {
    /// List devices, optionally of one classroom.
    List {
        #[arg(long)]
        classroom: Option<String>,
    },
    /// Boards that sent messages without being registered (first and last seen, count).
    Unregistered,
}

async fn connect(config: &Config) -> Result<Store, StoreError> {
    Store::connect(&config.mongodb_uri, DEFAULT_SELECTION_TIMEOUT)
        .await
        .map(|s| s.with_lock_lease(config.lock_lease()))
}

pub async fn run(command: DataCommand, config: &Config) -> i32 {
    super::init_stderr_logging();
    let result = match command {
        DataCommand::Health { json } => return health(config, json).await,
        DataCommand::Migrate { action } => migrate(config, action).await,
        DataCommand::Seed {
            classrooms,
            devices_per_classroom,
            seed,
        } => seed_campus(config, classrooms, devices_per_classroom, seed).await,
        DataCommand::Devices {
            action: DevicesAction::List { classroom },
        } => list_devices(config, classroom).await,
        DataCommand::Devices {
            action: DevicesAction::Unregistered,
        } => return super::live::unregistered(config).await,
        DataCommand::PruneTelemetry {
            older_than_days,
            dry_run,
        } => prune(config, older_than_days, dry_run).await,
        DataCommand::Backup { out } => return backup(config, out).await,
        DataCommand::Restore { from, drop } => return restore(config, from, drop).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}

async fn health(config: &Config, json: bool) -> i32 {
    let store = match connect(config).await {
        Ok(s) => s,
        Err(e) => {
            if json {
                say!(
                    "{}",
                    serde_json::json!({"status": HealthLevel::Critical, "error": e.to_string()})
                );
            } else {
                say!(" MongoDB   {} {e}", HealthLevel::Critical.mark());
            }
            return HealthLevel::Critical.exit_code();
        }
    };
    let offline_after = Duration::from_secs(config.offline_after_secs);
    match store.health(dates::now_millis(), offline_after).await {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => say!("{text}"),
                    Err(e) => {
                        eprintln!("autovolt: cannot write the report as JSON: {e}");
                        return 2;
                    }
                }
            } else {
                let _ = write!(std::io::stdout().lock(), "{}", report.render());
            }
            report.status.exit_code()
        }
        Err(e) => {
            eprintln!("autovolt: {e}");
            HealthLevel::Critical.exit_code()
        }
    }
}

fn print_steps(steps: &[Step], dry_run: bool) {
    if steps.is_empty() {
        say!("nothing to do");
    }
    for s in steps {
        let arrow = match s.direction {
            Direction::Up => "up  ",
            Direction::Down => "down",
        };
        let prefix = if dry_run { "(dry run) " } else { "" };
        say!("{prefix}{arrow} {} {}: {}", s.version, s.name, s.detail);
    }
}

async fn migrate(config: &Config, action: MigrateAction) -> Result<i32, StoreError> {
    let store = connect(config).await?;
    match action {
        MigrateAction::Status => {
            let status = store.migration_status().await?;
            let now = dates::now_millis();
            say!("schema version {}", status.version());
            for m in &status.applied {
                say!(
                    "  applied  {} {} ({} · {} ms)",
                    m.version,
                    m.name,
                    m.applied_at.format("%Y-%m-%d %H:%M UTC"),
                    m.duration_ms
                );
            }
            for (v, n) in &status.pending {
                say!("  pending  {v} {n}");
            }
            if let Some(l) = &status.lock {
                say!("lock: {}", l.describe(now));
            }
            Ok(i32::from(
                !status.pending.is_empty() || status.lock.is_some(),
            ))
        }
        MigrateAction::Up { to, dry_run } => {
            print_steps(&store.migrate_up(to, dry_run).await?, dry_run);
            Ok(0)
        }
        MigrateAction::Down { to, dry_run } => {
            print_steps(&store.migrate_down(to, dry_run).await?, dry_run);
            Ok(0)
        }
        MigrateAction::Unlock => {
            match store.force_unlock_migrations().await? {
                Some(l) => say!(
                    "removed the migration lock {}",
                    l.describe(dates::now_millis())
                ),
                None => say!("there was no migration lock"),
            }
            Ok(0)
        }
    }
}

async fn prune(config: &Config, days: u32, dry_run: bool) -> Result<i32, StoreError> {
    let store = connect(config).await?;
    let before = dates::now_millis() - chrono::Duration::days(i64::from(days));
    let n = store.prune_telemetry(before, dry_run).await?;
    let verb = if dry_run { "would delete" } else { "deleted" };
    say!(
        "{verb} {n} telemetry events received before {}",
        before.format("%Y-%m-%d %H:%M UTC")
    );
    Ok(0)
}

async fn seed_campus(
    config: &Config,
    classrooms: usize,
    devices_per_classroom: usize,
    seed: Option<u64>,
) -> Result<i32, StoreError> {
    let store = connect(config).await?;
    let options = crate::seed::SeedOptions {
        classrooms,
        devices_per_classroom,
        seed,
    };
    let report = crate::seed::seed(&store, &options).await?;
    say!(
        "seeded {} classrooms and {} boards (6 relays each), power settings and a global tariff of ₹{}/kWh",
        report.classrooms,
        report.devices,
        crate::seed::SEED_TARIFF
    );
    Ok(0)
}

async fn list_devices(config: &Config, classroom: Option<String>) -> Result<i32, StoreError> {
    let store = connect(config).await?;
    let rooms = store.classrooms().await?;
    let devices = match &classroom {
        Some(name) => {
            let Some(room) = rooms.iter().find(|r| r.name == name.trim()) else {
                return Err(StoreError::NotFound(format!(
                    "no classroom named {name:?}; `autovolt devices list` shows them all"
                )));
            };
            match room.id {
                Some(id) => store.devices_in_classroom(id).await?,
                None => Vec::new(),
            }
        }
        None => store.devices().await?,
    };
    say!(
        "{:<20} {:<18} {:<12} {:<9} {:<20} relays",
        "device",
        "MAC",
        "classroom",
        "status",
        "last seen"
    );
    for d in &devices {
        let room = d
            .classroom
            .and_then(|id| rooms.iter().find(|r| r.id == Some(id)))
            .map_or("—", |r| r.name.as_str());
        let seen = d.last_seen.map_or("never".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M UTC").to_string()
        });
        let relays: Vec<String> = d
            .switches
            .iter()
            .map(|s| {
                format!(
                    "{}:{}",
                    s.relay_pin().map_or("?".into(), |p| p.to_string()),
                    s.switch_type
                )
            })
            .collect();
        say!(
            "{:<20} {:<18} {:<12} {:<9} {:<20} {}",
            d.name,
            d.mac_address.to_string(),
            room,
            d.status.to_string(),
            seen,
            relays.join(" ")
        );
    }
    say!("{} devices", devices.len());
    Ok(0)
}

async fn backup(config: &Config, out: PathBuf) -> i32 {
    let store = match connect(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return e.exit_code();
        }
    };
    match store.backup(&out).await {
        Ok(m) => {
            let docs: u64 = m.collections.iter().map(|c| c.documents).sum();
            say!(
                "backed up {} collections, {docs} documents (schema v{}) to {}; it holds device secrets: keep it safe",
                m.collections.len(),
                m.schema_version,
                out.display()
            );
            0
        }
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}

async fn restore(config: &Config, from: PathBuf, drop: bool) -> i32 {
    let store = match connect(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return e.exit_code();
        }
    };
    match store.restore(&from, drop).await {
        Ok(r) => {
            say!(
                "restored {} collections, {} documents (schema v{}) from {}",
                r.collections,
                r.documents,
                r.schema_version,
                from.display()
            );
            0
        }
        Err(e) => {
            eprintln!("autovolt: {e}");
            e.exit_code()
        }
    }
}
