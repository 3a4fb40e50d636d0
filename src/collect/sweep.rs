//! What the collector does on its own clock: boards that fell silent go offline (their open
//! intervals closed at the last-heard time), and intervals still open at local midnight are closed
//! and reopened so that every day's books are complete.

use super::process::{Claimed, Processor};
use crate::domain::activity::action;
use crate::domain::interval::{local_date, local_midnight};
use crate::domain::{ActivityLog, Device, Instant, TriggeredBy};
use crate::store::StoreError;

impl Processor {
    /// Takes offline every board silent since `now − offline_after`. A board whose `lastSeen` this
    /// collector heard but has not written yet gets it written first: it is either not silent, or
    /// silent since then.
    pub async fn close_silent(
        &mut self,
        now: Instant,
        offline_after: chrono::Duration,
    ) -> Result<(), StoreError> {
        let cutoff = now - offline_after;
        let silent = self.store().silent_online_devices(cutoff).await?;
        for mut device in silent {
            let Some(id) = device.id else { continue };
            if let Some(heard) = self.unwritten_last_seen(id) {
                self.flush_board(id).await?;
                if heard >= cutoff {
                    continue;
                }
                device.last_seen = device.last_seen.max(Some(heard));
            }
            let Some(last_seen) = device.last_seen else {
                continue;
            };
            let classroom = self.classroom_of(&device).await?;
            for index in 0..device.switches.len() {
                let sw = &device.switches[index];
                if !sw.state || sw.last_state_change.is_some_and(|t| t > last_seen) {
                    continue;
                }
                let (claimed, rows) = self
                    .claim_and_complete(&device, &classroom, index, false, last_seen, None)
                    .await?;
                self.stats.ledger_rows += rows as i64;
                if claimed == Claimed::Made {
                    self.stats.transitions += 1;
                }
            }
            self.forget(device.mac_address);
            if self.store().mark_offline_if_silent(id, last_seen).await? {
                self.stats.went_offline += 1;
                let mut entry =
                    ActivityLog::new(action::DEVICE_OFFLINE, TriggeredBy::Monitoring, last_seen);
                entry.device_id = Some(id);
                entry.classroom = Some(classroom.clone());
                entry.context = Some(serde_json::json!({
                    "silentSeconds": (now - last_seen).num_seconds(),
                }));
                self.store()
                    .log_activity_once(
                        &entry,
                        &format!("offline:{id}:{}", last_seen.timestamp_millis()),
                    )
                    .await?;
                tracing::info!(device = %device.name, mac = %device.mac_address, "device offline: silent since {last_seen}");
            }
        }
        Ok(())
    }

    /// Closes every interval opened before today's local midnight at that midnight and reopens it
    /// there (same state, `lastStateChange` = midnight).
    pub async fn midnight_rollover(&mut self, now: Instant) -> Result<(), StoreError> {
        let midnight = local_midnight(local_date(now, self.tz()), self.tz());
        self.forget_all();
        let devices: Vec<Device> = self.store().devices().await?;
        for device in devices {
            let mut classroom = None;
            for (index, sw) in device.switches.iter().enumerate() {
                if !sw.state || sw.last_state_change.is_none_or(|t| t >= midnight) {
                    continue;
                }
                let name = match &classroom {
                    Some(n) => n,
                    None => classroom.insert(self.classroom_of(&device).await?),
                };
                let (_, rows) = self
                    .claim_and_complete(&device, name, index, true, midnight, None)
                    .await?;
                self.stats.ledger_rows += rows as i64;
            }
        }
        Ok(())
    }
}
