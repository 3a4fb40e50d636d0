//! Presence of the boards (`lastSeen`, `status`, `lastMotionAt`, the board-clock anchor) and the
//! transitions between online and offline.

use super::{collections, Store, StoreError};
use crate::domain::{dates, BootClock, Device, DeviceStatus, Id, Instant};
use bson::{doc, Document};

/// What the messages of one board said since the last write: written coalesced, once per flush.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PresenceUpdate {
    pub last_seen: Option<Instant>,
    pub last_motion_at: Option<Instant>,
    pub boot_clock: Option<BootClock>,
}

impl PresenceUpdate {
    /// Folds a later update into this one.
    pub fn merge(&mut self, other: PresenceUpdate) {
        self.last_seen = self.last_seen.max(other.last_seen);
        self.last_motion_at = self.last_motion_at.max(other.last_motion_at);
        if other.boot_clock.is_some() {
            self.boot_clock = other.boot_clock;
        }
    }
}

fn date(t: Instant) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

/// `bootClock` as stored on the device (the shape [`BootClock`] reads back).
fn clock_document(c: &BootClock) -> Document {
    let mut d = doc! {"bootAt": date(c.boot_at), "lastMillis": c.last_millis};
    if let Some(p) = c.previous {
        let mut previous = doc! {"bootAt": date(p.boot_at), "lastMillis": p.last_millis};
        if p.unsure {
            previous.insert("unsure", true);
        }
        if p.wrapped {
            previous.insert("wrapped", true);
        }
        d.insert("previous", previous);
    }
    d
}

/// How many boards' presence is written at once. Each is its own command: FerretDB 1.24 keeps
/// every statement of one `update` command holding a connection of its pool (100 per database)
/// until the command ends, and one carrying more statements than that never ends.
const PRESENCE_AT_ONCE: usize = 4;

/// The update that writes a board's coalesced presence. Times only move forwards (`$max`).
fn presence_update(p: &PresenceUpdate, now: Instant) -> Document {
    let mut max = Document::new();
    if let Some(t) = p.last_seen {
        max.insert("lastSeen", date(t));
    }
    if let Some(t) = p.last_motion_at {
        max.insert("lastMotionAt", date(t));
    }
    let mut set = doc! {"updatedAt": date(now)};
    if let Some(c) = p.boot_clock {
        set.insert("bootClock", clock_document(&c));
    }
    let mut update = doc! {"$set": set};
    if !max.is_empty() {
        update.insert("$max", max);
    }
    update
}

impl Store {
    /// Writes one board's coalesced presence.
    pub async fn write_presence(&self, device: Id, p: &PresenceUpdate) -> Result<(), StoreError> {
        self.collection::<Device>(collections::DEVICES)
            .update_one(
                doc! {"_id": device},
                presence_update(p, dates::now_millis()),
            )
            .await?;
        Ok(())
    }

    /// Writes many boards' coalesced presence, each selecting its board by `_id` alone: the one
    /// lookup FerretDB does not answer by scanning the collection (an `$in` over many boards is
    /// a scan there, per update).
    pub async fn write_presences(
        &self,
        updates: &[(Id, PresenceUpdate)],
    ) -> Result<(), StoreError> {
        use futures::StreamExt;
        let now = dates::now_millis();
        let writes: Vec<_> = updates
            .iter()
            .map(|(id, p)| {
                let devices = self.collection::<Device>(collections::DEVICES);
                let (filter, update) = (doc! {"_id": *id}, presence_update(p, now));
                async move { devices.update_one(filter, update).await }
            })
            .collect();
        let mut pending = futures::stream::iter(writes).buffer_unordered(PRESENCE_AT_ONCE);
        while let Some(written) = pending.next().await {
            written?;
        }
        Ok(())
    }

    /// Marks a device online unless it already is, or is in maintenance (an administrator's status
    /// that reporting does not end); returns whether this call changed it.
    pub async fn mark_online(&self, device: Id, seen: Instant) -> Result<bool, StoreError> {
        Ok(self.mark_online_many(&[device], seen).await? == 1)
    }

    /// Marks devices online unless they already are, or are in maintenance, with `lastSeen` at
    /// least `seen`: one update for a batch's boards (on FerretDB one scan of the devices for all
    /// of them, where a condition beside `_id` scans per board). Returns how many it changed.
    pub async fn mark_online_many(&self, devices: &[Id], seen: Instant) -> Result<u64, StoreError> {
        if devices.is_empty() {
            return Ok(0);
        }
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_many(
                doc! {"_id": {"$in": devices}, "status": {"$nin": [
                    DeviceStatus::Online.as_str(),
                    DeviceStatus::Maintenance.as_str(),
                ]}},
                doc! {"$set": {"status": "online", "updatedAt": date(dates::now_millis())},
                "$max": {"lastSeen": date(seen)}},
            )
            .await?;
        Ok(r.modified_count)
    }

    /// Marks a device offline if it is still online and has not been heard of since `last_seen`;
    /// returns whether this call changed it.
    pub async fn mark_offline_if_silent(
        &self,
        device: Id,
        last_seen: Instant,
    ) -> Result<bool, StoreError> {
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_one(
                doc! {"_id": device, "status": "online", "lastSeen": date(last_seen)},
                doc! {"$set": {"status": "offline", "updatedAt": date(dates::now_millis())}},
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Devices marked online that have not been heard of since `before`, and devices in
    /// maintenance with a switch on that have not either (their intervals close like an offline
    /// board's, while their status stays as the administrator set it).
    pub async fn silent_online_devices(&self, before: Instant) -> Result<Vec<Device>, StoreError> {
        self.find_devices(
            doc! {
                "lastSeen": {"$lt": date(before)},
                "$or": [
                    {"status": DeviceStatus::Online.as_str()},
                    {"status": DeviceStatus::Maintenance.as_str(), "switches.state": true},
                ],
            },
            None,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn merging_keeps_the_latest_times_and_clock() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let later = t + chrono::Duration::seconds(5);
        let mut a = PresenceUpdate {
            last_seen: Some(later),
            last_motion_at: None,
            boot_clock: Some(BootClock::new(t, 1)),
        };
        a.merge(PresenceUpdate {
            last_seen: Some(t),
            last_motion_at: Some(t),
            boot_clock: None,
        });
        assert_eq!(a.last_seen, Some(later));
        assert_eq!(a.last_motion_at, Some(t));
        assert_eq!(a.boot_clock.unwrap().last_millis, 1);
    }
}
