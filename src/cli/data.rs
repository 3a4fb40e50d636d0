//! Commands on the data layer: health, migrations, seeding, backup and restore, devices.

use super::exit::{Failure, FOUND, OK};
use super::{confirm, input, Ctx};
use crate::domain::health::Problems;
use crate::domain::{dates, Device};
use crate::store::backup::BackupOptions;
use crate::store::health::{BrokerHealth, HealthLevel};
use crate::store::migrations::{Direction, Step};
use crate::store::Store;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// On-call check: the database (reachability, latency, server, capabilities, sizes, schema
    /// version, boards, collector lag) and the broker. Exit 0 OK / 1 warning / 2 critical.
    Health,
    /// Schema migrations: status, up, down, unlock.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Fill an empty database with a realistic demo campus (refuses a database with classrooms
    /// or devices).
    Seed {
        /// Classrooms, 1 to 500.
        #[arg(long, default_value_t = 6, value_parser = input::seed_classrooms)]
        classrooms: usize,
        /// Boards per classroom, 1 to 20.
        #[arg(long, default_value_t = 2, value_parser = input::seed_boards)]
        devices_per_classroom: usize,
        /// Random seed: the same seed gives the same campus, MACs and device secrets included
        /// (for tests and demos). Without it they are drawn at random.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Back up every collection in mongodump's layout (DB/COLL.bson, DB/COLL.metadata.json with
    /// options and indexes), with a manifest of counts and SHA-256 checksums. The backup holds
    /// device secrets and password hashes: keep it as safe as the database.
    Backup {
        /// A new or empty directory; with --keep, the directory that holds the time-named backups.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Compress every file as `mongodump --gzip` does (COLL.bson.gz, COLL.metadata.json.gz).
        #[arg(long)]
        gzip: bool,
        /// Write into a new subdirectory of DIR named for the UTC time (2026-12-01T173400.123Z),
        /// and once it is complete and verified delete the oldest beyond N (1 to 1000).
        #[arg(long, value_name = "N", value_parser = input::keep_backups)]
        keep: Option<usize>,
    },
    /// Restore a backup made by `backup`, or a plain mongodump directory, after reading all of
    /// it through and checking every checksum and count (a plain mongodump has none: every
    /// document is checked). Refuses a database that already holds any of its collections'
    /// data unless --drop.
    Restore {
        /// The backup's directory (with --keep: one of its time-named subdirectories), or a
        /// mongodump output directory or one database directory inside it.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Drop the backup's collections in the target before restoring them (asks first).
        #[arg(long)]
        drop: bool,
        /// Do not ask (for scripts): --drop goes ahead.
        #[arg(long)]
        yes: bool,
    },
    /// Delete raw telemetry older than the retention (what the TTL index does on servers that
    /// have TTL indexes). Asks first.
    PruneTelemetry {
        /// Keep this many days, 1 to 36500.
        #[arg(long, default_value_t = 730, value_parser = input::retention_days)]
        older_than_days: u32,
        /// Count what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// Devices and their relays (device secrets are never shown).
    Devices {
        #[command(subcommand)]
        action: DevicesAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum MigrateAction {
    /// Applied and pending versions, and who holds the lock. Exit 1 when some are pending.
    Status,
    /// Apply pending migrations (up to --to, default all).
    Up {
        #[arg(long, value_parser = input::schema_version)]
        to: Option<i32>,
        /// Say what would be done, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert migrations above --to, newest first (data is never dropped).
    Down {
        #[arg(long, value_parser = input::schema_version)]
        to: i32,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a lock left by a run that died (check first that it is not still running).
    Unlock,
}

#[derive(Subcommand, Debug)]
pub enum DevicesAction {
    /// List devices, optionally of one classroom (by name, any case).
    List {
        #[arg(long)]
        classroom: Option<String>,
    },
    /// Boards that sent messages without being registered (first and last seen, count).
    Unregistered,
    /// One board: where it is, its relays, and its firmware history (newest first).
    Show {
        /// MAC, name or id.
        device: String,
    },
}

impl DataCommand {
    /// What can be checked before connecting.
    pub fn check(&self) -> Result<(), Failure> {
        if let DataCommand::Devices {
            action: DevicesAction::List { classroom: Some(c) },
        } = self
        {
            input::printable("classroom", c, 100)?;
        }
        if let DataCommand::Devices {
            action: DevicesAction::Show { device },
        } = self
        {
            input::printable("device", device, 100)?;
        }
        Ok(())
    }
}

pub async fn run(command: DataCommand, ctx: &Ctx) -> Result<i32, Failure> {
    if let DataCommand::Health = command {
        return health(ctx).await;
    }
    // Migrations make a schema, and a restore brings one: neither needs one first.
    if let DataCommand::Migrate { action } = command {
        let store = ctx.connect().await?;
        let result = migrate(ctx, &store, action).await;
        store.close().await;
        return result;
    }
    if let DataCommand::Restore { from, drop, yes } = command {
        let store = ctx.connect().await?;
        let result = restore(ctx, &store, from, drop, yes).await;
        store.close().await;
        return result;
    }
    let store = ctx.open().await?;
    let result = match command {
        DataCommand::Seed {
            classrooms,
            devices_per_classroom,
            seed,
        } => seed_campus(ctx, &store, classrooms, devices_per_classroom, seed).await,
        DataCommand::Devices {
            action: DevicesAction::List { classroom },
        } => list_devices(ctx, &store, classroom).await,
        DataCommand::Devices {
            action: DevicesAction::Unregistered,
        } => unregistered(ctx, &store).await,
        DataCommand::Devices {
            action: DevicesAction::Show { device },
        } => show_device(ctx, &store, &device).await,
        DataCommand::PruneTelemetry {
            older_than_days,
            dry_run,
            yes,
        } => prune(ctx, &store, older_than_days, dry_run, yes).await,
        DataCommand::Backup { out, gzip, keep } => backup(ctx, &store, out, gzip, keep).await,
        DataCommand::Health | DataCommand::Migrate { .. } | DataCommand::Restore { .. } => Ok(OK),
    };
    store.close().await;
    result
}

async fn health(ctx: &Ctx) -> Result<i32, Failure> {
    let url = crate::domain::uri::redacted_uri(&ctx.config.mqtt_url);
    let access = ctx.broker_access();
    // Both at once: an on-call check waits for the slower of the two, not their sum.
    let (reached, connected) = tokio::join!(
        crate::mqtt::connection::reachable(&ctx.config.mqtt_url, &access, Duration::from_secs(3)),
        ctx.connect()
    );
    let broker = match reached {
        Ok(ms) => BrokerHealth {
            url,
            reachable: true,
            latency_ms: Some(ms),
            error: None,
        },
        Err(e) => BrokerHealth {
            url,
            reachable: false,
            latency_ms: None,
            error: Some(e),
        },
    };
    let offline_after = Duration::from_secs(ctx.config.offline_after_secs);
    let report = match connected {
        Ok(store) => {
            let result = store.health(dates::now_millis(), offline_after).await;
            store.close().await;
            result.map_err(Failure::from)
        }
        Err(f) => Err(f),
    };
    let report = match report {
        Ok(r) => r.with_broker(broker),
        Err(f) => return Ok(database_unusable(ctx, &f, &broker)),
    };
    let value = serde_json::to_value(&report).unwrap_or_default();
    let tz = ctx.tz()?;
    ctx.show(value, || report.render_in(tz).trim_end().to_string());
    Ok(report.status.exit_code())
}

/// Health when the database cannot be used: nothing more can be known. Its failure is critical,
/// the broker's is listed beside it, and the verdict is made by the same rule as a full report's.
fn database_unusable(ctx: &Ctx, f: &Failure, broker: &BrokerHealth) -> i32 {
    let mut problems = Problems::default();
    problems.raise(HealthLevel::Critical, f.message.clone());
    if let Some(e) = &broker.error {
        problems.raise(HealthLevel::Warning, e.clone());
    }
    let level = problems.level();
    ctx.show(
        json!({
            "status": level,
            "error": f.message,
            "criticals": problems.criticals,
            "warnings": problems.warnings,
            "broker": broker,
        }),
        || {
            let broker_line = match &broker.error {
                Some(_) => format!(" Broker    {} cannot be used", HealthLevel::Warning.mark()),
                None => format!(
                    " Broker    {} {} answers in {:.1} ms",
                    HealthLevel::Ok.mark(),
                    broker.url,
                    broker.latency_ms.unwrap_or_default()
                ),
            };
            format!(
                " MongoDB   {} cannot be used\n{broker_line}\n\n{}",
                HealthLevel::Critical.mark(),
                problems.render().trim_end()
            )
        },
    );
    level.exit_code()
}

fn steps_json(steps: &[Step], dry_run: bool) -> serde_json::Value {
    json!({
        "dry_run": dry_run,
        "steps": steps.iter().map(|s| json!({
            "direction": match s.direction { Direction::Up => "up", Direction::Down => "down" },
            "version": s.version,
            "name": s.name,
            "detail": s.detail,
        })).collect::<Vec<_>>(),
    })
}

fn steps_text(steps: &[Step], dry_run: bool) -> String {
    if steps.is_empty() {
        return "nothing to do".into();
    }
    let prefix = if dry_run { "(dry run) " } else { "" };
    steps
        .iter()
        .map(|s| {
            let arrow = match s.direction {
                Direction::Up => "up  ",
                Direction::Down => "down",
            };
            format!("{prefix}{arrow} {} {}: {}", s.version, s.name, s.detail)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn migrate(ctx: &Ctx, store: &Store, action: MigrateAction) -> Result<i32, Failure> {
    match action {
        MigrateAction::Status => {
            let status = store.migration_status().await?;
            let now = dates::now_millis();
            ctx.show(
                json!({
                    "version": status.version(),
                    "applied": status.applied.iter().map(|m| json!({
                        "version": m.version, "name": m.name,
                        "applied_at": m.applied_at.to_rfc3339(), "duration_ms": m.duration_ms,
                    })).collect::<Vec<_>>(),
                    "pending": status.pending.iter().map(|(v, n)| json!({"version": v, "name": n})).collect::<Vec<_>>(),
                    "lock": status.lock.as_ref().map(|l| l.describe(now)),
                }),
                || {
                    let mut lines = vec![format!("schema version {}", status.version())];
                    for m in &status.applied {
                        lines.push(format!(
                            "  applied  {} {} ({} · {} ms)",
                            m.version,
                            m.name,
                            ctx.time(m.applied_at),
                            m.duration_ms
                        ));
                    }
                    for (v, n) in &status.pending {
                        lines.push(format!("  pending  {v} {n}"));
                    }
                    if let Some(l) = &status.lock {
                        lines.push(format!("lock: {}", l.describe(now)));
                    }
                    lines.join("\n")
                },
            );
            Ok(if !status.pending.is_empty() || status.lock.is_some() {
                FOUND
            } else {
                OK
            })
        }
        MigrateAction::Up { to, dry_run } => {
            let steps = store.migrate_up(to, dry_run).await?;
            ctx.show(steps_json(&steps, dry_run), || steps_text(&steps, dry_run));
            Ok(OK)
        }
        MigrateAction::Down { to, dry_run } => {
            let steps = store.migrate_down(to, dry_run).await?;
            ctx.show(steps_json(&steps, dry_run), || steps_text(&steps, dry_run));
            Ok(OK)
        }
        MigrateAction::Unlock => {
            let removed = store.force_unlock_migrations().await?;
            let now = dates::now_millis();
            ctx.show(
                json!({"removed": removed.as_ref().map(|l| l.describe(now))}),
                || match &removed {
                    Some(l) => format!("removed the migration lock {}", l.describe(now)),
                    None => "there was no migration lock".into(),
                },
            );
            Ok(OK)
        }
    }
}

async fn prune(
    ctx: &Ctx,
    store: &Store,
    days: u32,
    dry_run: bool,
    yes: bool,
) -> Result<i32, Failure> {
    let before = dates::now_millis() - chrono::Duration::days(i64::from(days));
    let n = store.prune_telemetry(before, true).await?;
    if !dry_run && n > 0 {
        confirm(
            &format!(
                "delete {n} telemetry events received before {}",
                ctx.time(before)
            ),
            yes,
        )?;
    }
    let n = if dry_run || n == 0 {
        n
    } else {
        store.prune_telemetry(before, false).await?
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    ctx.show(
        json!({"dry_run": dry_run, "deleted": if dry_run { 0 } else { n }, "matching": n, "before": before.to_rfc3339()}),
        || format!("{verb} {n} telemetry events received before {}", ctx.time(before)),
    );
    Ok(OK)
}

async fn seed_campus(
    ctx: &Ctx,
    store: &Store,
    classrooms: usize,
    devices_per_classroom: usize,
    seed: Option<u64>,
) -> Result<i32, Failure> {
    let options = crate::seed::SeedOptions {
        classrooms,
        devices_per_classroom,
        seed,
    };
    let report = crate::seed::seed(store, &options).await?;
    ctx.show(
        json!({"classrooms": report.classrooms, "devices": report.devices, "tariff": crate::seed::SEED_TARIFF}),
        || format!(
            "seeded {} classrooms and {} boards (6 relays each), power settings and a global tariff of ₹{}/kWh",
            report.classrooms,
            report.devices,
            crate::seed::SEED_TARIFF
        ),
    );
    Ok(OK)
}

async fn list_devices(ctx: &Ctx, store: &Store, classroom: Option<String>) -> Result<i32, Failure> {
    let rooms = store.classrooms().await?;
    let devices = match &classroom {
        Some(name) => match store.classroom_named(name).await?.id {
            Some(id) => store.devices_in_classroom(id).await?,
            None => Vec::new(),
        },
        None => store.devices().await?,
    };
    let room_of = |d: &Device| {
        d.classroom
            .and_then(|id| rooms.iter().find(|r| r.id == Some(id)))
            .map(|r| r.name.clone())
    };
    ctx.show(
        json!(devices
            .iter()
            .map(|d| json!({
                "id": d.id.map(|i| i.to_hex()),
                "name": d.name,
                "mac": d.mac_address.to_string(),
                "classroom": room_of(d),
                "status": d.status.to_string(),
                "last_seen": d.last_seen.map(|t| t.to_rfc3339()),
                "switches": d.switches.iter().map(|s| json!({
                    "id": s.switch_id, "name": s.name, "type": s.switch_type.to_string(),
                    "relay_pin": s.relay_pin(), "state": s.state,
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()),
        || {
            let mut lines = vec![format!(
                "{:<20} {:<18} {:<12} {:<9} {:<21} relays",
                "device", "MAC", "classroom", "status", "last seen"
            )];
            for d in &devices {
                let seen = d.last_seen.map_or("never".to_string(), |t| ctx.time(t));
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
                lines.push(format!(
                    "{:<20} {:<18} {:<12} {:<9} {:<21} {}",
                    d.name,
                    d.mac_address.to_string(),
                    room_of(d).unwrap_or_else(|| "—".into()),
                    d.status.to_string(),
                    seen,
                    relays.join(" ")
                ));
            }
            lines.push(format!("{} devices", devices.len()));
            lines.join("\n")
        },
    );
    Ok(OK)
}

/// Firmware records `devices show` lists.
const FIRMWARE_SHOWN: i64 = 50;

/// `autovolt devices show BOARD`: one board, its relays and its firmware history.
async fn show_device(ctx: &Ctx, store: &Store, key: &str) -> Result<i32, Failure> {
    let d = store.device_named(key).await?;
    let room = match d.classroom {
        Some(id) => store.classroom_by_id(id).await?.map(|r| r.name),
        None => None,
    };
    let history = match d.id {
        Some(id) => store.firmware_history(id, FIRMWARE_SHOWN).await?,
        None => Vec::new(),
    };
    ctx.show(
        json!({
            "id": d.id.map(|i| i.to_hex()),
            "name": d.name,
            "mac": d.mac_address.to_string(),
            "classroom": room,
            "status": d.status.to_string(),
            "ip": d.ip_address,
            "firmware_version": d.firmware_version,
            "last_seen": d.last_seen.map(|t| t.to_rfc3339()),
            "switches": d.switches.iter().map(|s| json!({
                "id": s.switch_id, "name": s.name, "type": s.switch_type.to_string(),
                "relay_pin": s.relay_pin(), "state": s.state,
            })).collect::<Vec<_>>(),
            "firmware_history": history.iter().map(super::firmware::record_json).collect::<Vec<_>>(),
        }),
        || {
            let mut lines = vec![
                format!("{} ({})", d.name, d.mac_address),
                format!("  classroom  {}", room.clone().unwrap_or_else(|| "—".into())),
                format!("  status     {}", d.status),
                format!(
                    "  last seen  {}",
                    d.last_seen.map_or("never".to_string(), |t| ctx.time(t))
                ),
                format!("  IP         {}", d.ip_address.clone().unwrap_or_else(|| "—".into())),
                format!(
                    "  firmware   {}",
                    d.firmware_version.clone().unwrap_or_else(|| "—".into())
                ),
                "relays".to_string(),
            ];
            for s in &d.switches {
                lines.push(format!(
                    "  {:>3}  {:<20} {:<10} {}",
                    s.relay_pin().map_or("?".into(), |p| p.to_string()),
                    s.name,
                    s.switch_type.to_string(),
                    if s.state { "on" } else { "off" }
                ));
            }
            if history.is_empty() {
                lines.push("firmware history: none recorded (`autovolt firmware record`)".into());
            } else {
                lines.push(format!("firmware history ({}, newest first)", history.len()));
                lines.extend(history.iter().map(|u| super::firmware::record_line(ctx, u)));
            }
            lines
                .into_iter()
                .map(|l| l.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>())
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    Ok(OK)
}

/// `autovolt devices unregistered`: boards that spoke without being registered.
async fn unregistered(ctx: &Ctx, store: &Store) -> Result<i32, Failure> {
    let list = store.unregistered_devices().await?;
    ctx.show(
        json!(list
            .iter()
            .map(|d| json!({
                "mac": d.mac, "first_seen": d.first_seen.to_rfc3339(),
                "last_seen": d.last_seen.to_rfc3339(), "messages": d.count,
            }))
            .collect::<Vec<_>>()),
        || {
            if list.is_empty() {
                return "no unregistered boards seen".into();
            }
            let mut lines = vec![format!(
                "{:<17}  {:<21}  {:<21}  {:>8}",
                "MAC", "first seen", "last seen", "messages"
            )];
            for d in &list {
                lines.push(format!(
                    "{:<17}  {:<21}  {:<21}  {:>8}",
                    d.mac,
                    ctx.time(d.first_seen),
                    ctx.time(d.last_seen),
                    d.count
                ));
            }
            lines.join("\n")
        },
    );
    Ok(OK)
}

async fn backup(
    ctx: &Ctx,
    store: &Store,
    out: PathBuf,
    gzip: bool,
    keep: Option<usize>,
) -> Result<i32, Failure> {
    let r = store.backup(&out, &BackupOptions { gzip, keep }).await?;
    let m = &r.manifest;
    let pruned: Vec<String> = r.pruned.iter().map(|p| p.display().to_string()).collect();
    ctx.show(
        json!({
            "dir": r.dir.display().to_string(), "database": m.database,
            "collections": m.collections.len(), "documents": r.documents(),
            "schema_version": m.schema_version, "gzip": m.gzip, "pruned": pruned,
        }),
        || {
            let mut lines = vec![format!(
                "backed up {} collections, {} documents (schema v{}) of {} to {}, verified; it holds device secrets: keep it safe",
                m.collections.len(),
                r.documents(),
                m.schema_version,
                m.database,
                r.dir.display()
            )];
            lines.extend(pruned.iter().map(|p| format!("deleted the older backup {p}")));
            lines.join("\n")
        },
    );
    Ok(OK)
}

async fn restore(
    ctx: &Ctx,
    store: &Store,
    from: PathBuf,
    drop: bool,
    yes: bool,
) -> Result<i32, Failure> {
    if drop {
        confirm(
            &format!(
                "drop the collections in {} that {} holds, then restore them",
                store.database().name(),
                from.display()
            ),
            yes,
        )?;
    }
    let r = store.restore(&from, drop).await?;
    ctx.show(
        json!({
            "dir": r.dir.display().to_string(), "source_database": r.source_database,
            "database": store.database().name(), "checksums_verified": r.checksums,
            "collections": r.collections, "documents": r.documents, "indexes": r.indexes,
            "schema_version": r.schema_version, "notes": r.notes, "not_applied": r.not_applied,
        }),
        || {
            let mut lines = vec![format!(
                "restored {} collections, {} documents, {} indexes (schema v{}) of {} from {} into {}{}",
                r.collections,
                r.documents,
                r.indexes,
                r.schema_version,
                r.source_database,
                r.dir.display(),
                store.database().name(),
                if r.checksums { ", every checksum verified" } else { "" }
            )];
            lines.extend(r.notes.iter().map(|n| format!("note: {n}")));
            lines.extend(r.not_applied.iter().map(|n| format!("not restored: {n}")));
            lines.join("\n")
        },
    );
    // What the server could not take is a finding: the database differs from the backup.
    Ok(if r.not_applied.is_empty() { OK } else { FOUND })
}
