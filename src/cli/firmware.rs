//! `autovolt firmware record`: an update done on a board in the field, written to
//! `firmwareupdates` (this project never pushes firmware itself).

use super::exit::{Failure, OK};
use super::{input, Ctx};
use crate::domain::validation;
use crate::domain::{FirmwareUpdate, FirmwareUpdateStatus};
use clap::Subcommand;
use serde_json::json;

#[derive(Subcommand, Debug)]
pub enum FirmwareCommand {
    /// Firmware records of the boards (`autovolt devices show BOARD` lists a board's history).
    Firmware {
        #[command(subcommand)]
        action: FirmwareAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirmwareAction {
    /// Record an update done in the field: from the board's current version to --version. A
    /// successful one becomes the board's firmware version. Logged.
    Record {
        /// The board: MAC, name or id.
        device: String,
        /// The version now on the board (like 1.4.2; at most 32 characters, no spaces).
        #[arg(long = "version", value_name = "V", value_parser = version)]
        to_version: String,
        /// pending, in_progress, success or failed.
        #[arg(long, default_value = "success", value_parser = status)]
        status: FirmwareUpdateStatus,
        /// What was done, or what went wrong (printable, at most 500 characters).
        #[arg(long, value_parser = input::note)]
        note: Option<String>,
    },
}

fn version(raw: &str) -> Result<String, String> {
    validation::firmware_version("version", raw).map_err(|e| e.rule)
}

fn status(raw: &str) -> Result<FirmwareUpdateStatus, String> {
    match FirmwareUpdateStatus::parse(raw.trim()) {
        FirmwareUpdateStatus::Other(_) => {
            Err("must be pending, in_progress, success or failed".into())
        }
        known => Ok(known),
    }
}

impl FirmwareCommand {
    /// What can be checked before connecting.
    pub fn check(&self) -> Result<(), Failure> {
        let FirmwareCommand::Firmware {
            action: FirmwareAction::Record { device, .. },
        } = self;
        input::printable("device", device, 100)?;
        Ok(())
    }
}

pub async fn run(command: FirmwareCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let FirmwareCommand::Firmware {
        action:
            FirmwareAction::Record {
                device,
                to_version,
                status,
                note,
            },
    } = command;
    let operator = ctx.operator()?;
    let store = ctx.open().await?;
    let result = async {
        let board = store.device_named(&device).await?;
        let update = store
            .record_firmware_update(&board, &to_version, status, note.as_deref(), &operator)
            .await?;
        ctx.show(
            json!({"device": board.name, "mac": board.mac_address.to_string(), "record": record_json(&update)}),
            || {
                format!(
                    "{} ({}): {} → {} {} (by {operator}; logged)",
                    board.name,
                    board.mac_address,
                    if update.from_version.is_empty() { "unknown" } else { update.from_version.as_str() },
                    update.to_version,
                    update.status
                )
            },
        );
        Ok(OK)
    }
    .await;
    store.close().await;
    result
}

/// One record as `--json` shows it.
pub fn record_json(u: &FirmwareUpdate) -> serde_json::Value {
    json!({
        "id": u.id.map(|i| i.to_hex()),
        "from_version": u.from_version,
        "to_version": u.to_version,
        "status": u.status.as_str(),
        "started_at": u.started_at.map(|t| t.to_rfc3339()),
        "finished_at": u.finished_at.map(|t| t.to_rfc3339()),
        "notes": u.notes,
    })
}

/// One record as a line of text, times in campus time.
pub fn record_line(ctx: &Ctx, u: &FirmwareUpdate) -> String {
    let when = u.when().map_or("—".to_string(), |t| ctx.time(t));
    let from = if u.from_version.is_empty() {
        "?"
    } else {
        u.from_version.as_str()
    };
    let mut line = format!(
        "  {when:<22} {from:>10} → {:<12} {}",
        u.to_version, u.status
    );
    if let Some(n) = &u.notes {
        line.push_str(&format!("  {n}"));
    }
    // Another writer's text is shown, never acted on by the terminal.
    line.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
