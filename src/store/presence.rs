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

impl Store {
    /// Writes one board's coalesced presence. Times only move forwards (`$max`).
    pub async fn write_presence(&self, device: Id, p: &PresenceUpdate) -> Result<(), StoreError> {
        let mut max = Document::new();
        if let Some(t) = p.last_seen {
            max.insert("lastSeen", date(t));
        }
        if let Some(t) = p.last_motion_at {
            max.insert("lastMotionAt", date(t));
        }
        let mut set = doc! {"updatedAt": date(dates::now_millis())};
        if let Some(c) = p.boot_clock {
            set.insert("bootClock", clock_document(&c));
        }
        let mut update = doc! {"$set": set};
        if !max.is_empty() {
            update.insert("$max", max);
        }
        self.collection::<Device>(collections::DEVICES)
            .update_one(doc! {"_id": device}, update)
            .await?;
        Ok(())
    }

    /// Moves `lastSeen` of many devices forwards to `seen` in one update (coalesced presence).
    pub async fn touch_many(&self, devices: &[Id], seen: Instant) -> Result<(), StoreError> {
        if devices.is_empty() {
            return Ok(());
        }
        self.collection::<Device>(collections::DEVICES)
            .update_many(
                doc! {"_id": {"$in": devices}},
                doc! {"$max": {"lastSeen": date(seen)},
                "$set": {"updatedAt": date(dates::now_millis())}},
            )
            .await?;
        Ok(())
    }

    /// Marks a device online unless it already is, or is in maintenance (an administrator's status
    /// that reporting does not end); returns whether this call changed it.
    pub async fn mark_online(&self, device: Id, seen: Instant) -> Result<bool, StoreError> {
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_one(
                doc! {"_id": device, "status": {"$nin": [
                    DeviceStatus::Online.as_str(),
                    DeviceStatus::Maintenance.as_str(),
                ]}},
                doc! {"$set": {"status": "online", "updatedAt": date(dates::now_millis())},
                "$max": {"lastSeen": date(seen)}},
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Marks a device online if its status is still `from` (as read); returns whether this call
    /// changed it, and then also stores `boot_clock` (one write for a board's first contact). An
    /// exact match on the status keeps the update on the `_id` index where a negated one
    /// (FerretDB) scans the collection. A board in maintenance stays there: nothing is written.
    pub async fn mark_online_from(
        &self,
        device: Id,
        from: &DeviceStatus,
        seen: Instant,
        boot_clock: Option<BootClock>,
    ) -> Result<bool, StoreError> {
        if *from == DeviceStatus::Maintenance {
            return Ok(false);
        }
        let mut set = doc! {"status": "online", "updatedAt": date(dates::now_millis())};
        if let Some(c) = boot_clock {
            set.insert("bootClock", clock_document(&c));
        }
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_one(
                doc! {"_id": device, "status": from.as_str()},
                doc! {"$set": set, "$max": {"lastSeen": date(seen)}},
            )
            .await?;
        Ok(r.modified_count == 1)
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
