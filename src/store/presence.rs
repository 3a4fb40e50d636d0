//! Presence of the boards. What their messages say of them — `lastSeen`, `lastMotionAt`, the
//! board-clock anchor — is kept in `boardpresence`, a few documents each holding a fixed group of
//! boards, and only the transitions between online and offline are written to `devices`.
//!
//! Why apart from the devices: a talking board's presence changes with every report, and on
//! FerretDB every write to a device reads the whole `devices` collection (an update selects by
//! `_id` through a scan), so a campus of 2,000 boards writing presence per board costs the server
//! more than it has. A round of presence is one write per group touched, whatever the fleet, and
//! each reads a collection of [`PRESENCE_GROUPS`] documents. A device keeps the `lastSeen` of its
//! last status change; every reader of devices through this store sees the later of the two, and
//! a device's own `lastMotionAt` and `bootClock` (written before presence moved) where the group
//! holds none.

use super::{collections, Store, StoreError};
use crate::domain::{dates, BootClock, Device, DeviceStatus, Id, Instant};
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// The presence collection (**Ours**): `_id` `group-NN`, `boards.<device hex>` its presence.
pub const BOARD_PRESENCE: &str = "boardpresence";
/// How many groups the boards are spread over: few, so that a round writes few documents and a
/// scan of the collection reads few; enough that no document grows large (2,000 boards: ~125
/// each, ~15 KB).
pub const PRESENCE_GROUPS: u32 = 16;

/// What the messages of one board said: written coalesced, and read back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize)]
pub struct PresenceUpdate {
    #[serde(rename = "lastSeen", with = "dates::optional", default)]
    pub last_seen: Option<Instant>,
    #[serde(rename = "lastMotionAt", with = "dates::optional", default)]
    pub last_motion_at: Option<Instant>,
    #[serde(rename = "bootClock", default)]
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

    /// Shows it on a device read from `devices`: the later times, and its anchor where it has one.
    fn apply_to(&self, device: &mut Device) {
        device.last_seen = device.last_seen.max(self.last_seen);
        device.last_motion_at = device.last_motion_at.max(self.last_motion_at);
        if self.boot_clock.is_some() {
            device.boot_clock = self.boot_clock;
        }
    }
}

/// The group document that holds a board's presence. FNV-1a over the id's bytes: stable, and
/// spreads ids made one after another (their last bytes count up).
pub fn group_of(device: Id) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in device.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("group-{:02}", h % PRESENCE_GROUPS)
}

fn date(t: Instant) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

/// `bootClock` as stored (the shape [`BootClock`] reads back).
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

/// How many group documents are written at once. Each is its own command: FerretDB 1.24 keeps
/// every statement of one `update` command holding a connection of its pool (100 per database)
/// until the command ends, and one carrying more statements than that never ends.
const PRESENCE_AT_ONCE: usize = 4;

/// The update of one group for its boards' updates. Times only move forwards (`$max`).
fn group_update(updates: &[(Id, PresenceUpdate)], now: Instant) -> Document {
    let mut max = Document::new();
    let mut set = doc! {"updatedAt": date(now)};
    for (id, p) in updates {
        let key = format!("boards.{}", id.to_hex());
        if let Some(t) = p.last_seen {
            max.insert(format!("{key}.lastSeen"), date(t));
        }
        if let Some(t) = p.last_motion_at {
            max.insert(format!("{key}.lastMotionAt"), date(t));
        }
        if let Some(c) = p.boot_clock {
            set.insert(format!("{key}.bootClock"), clock_document(&c));
        }
    }
    let mut update = doc! {"$set": set};
    if !max.is_empty() {
        update.insert("$max", max);
    }
    update
}

/// Reads one group document's boards; an entry that does not read is left out (the next round
/// of its board writes it whole again).
fn read_group(group: &Document, into: &mut HashMap<Id, PresenceUpdate>) {
    let Ok(boards) = group.get_document("boards") else {
        return;
    };
    for (key, value) in boards {
        let (Ok(id), Bson::Document(entry)) = (Id::parse_str(key), value) else {
            continue;
        };
        match bson::from_document::<PresenceUpdate>(entry.clone()) {
            Ok(p) => {
                into.insert(id, p);
            }
            Err(e) => tracing::debug!(board = %key, "a presence entry does not read: {e}"),
        }
    }
}

impl Store {
    /// Writes many boards' coalesced presence: one update per group document touched.
    pub async fn write_presences(
        &self,
        updates: &[(Id, PresenceUpdate)],
    ) -> Result<(), StoreError> {
        use futures::StreamExt;
        let now = dates::now_millis();
        let mut groups: BTreeMap<String, Vec<(Id, PresenceUpdate)>> = BTreeMap::new();
        for (id, p) in updates {
            groups.entry(group_of(*id)).or_default().push((*id, *p));
        }
        let writes: Vec<_> = groups
            .into_iter()
            .map(|(group, updates)| {
                let coll = self.collection::<Document>(BOARD_PRESENCE);
                let update = group_update(&updates, now);
                async move {
                    let write = || {
                        coll.update_one(doc! {"_id": &group}, update.clone())
                            .upsert(true)
                    };
                    match write().await {
                        // Two writers made the group at once (FerretDB's upsert is not one
                        // step): it exists now.
                        Err(e) if super::error::is_duplicate_key(&e) => write().await,
                        r => r,
                    }
                }
            })
            .collect();
        let mut pending = futures::stream::iter(writes).buffer_unordered(PRESENCE_AT_ONCE);
        while let Some(written) = pending.next().await {
            written?;
        }
        Ok(())
    }

    /// The presence kept of `devices` (one lookup per group they fall in, or one read of every
    /// group).
    pub async fn presence_of(
        &self,
        devices: &[Id],
    ) -> Result<HashMap<Id, PresenceUpdate>, StoreError> {
        let mut out = HashMap::new();
        if devices.is_empty() {
            return Ok(out);
        }
        let mut groups: Vec<String> = devices.iter().map(|d| group_of(*d)).collect();
        groups.sort();
        groups.dedup();
        let filter = match groups.as_slice() {
            [one] => doc! {"_id": one},
            _ if groups.len() as u32 >= PRESENCE_GROUPS => doc! {},
            _ => doc! {"_id": {"$in": &groups}},
        };
        let docs: Vec<Document> = self
            .collection::<Document>(BOARD_PRESENCE)
            .find(filter)
            .await?
            .try_collect()
            .await?;
        for d in &docs {
            read_group(d, &mut out);
        }
        let wanted: std::collections::HashSet<&Id> = devices.iter().collect();
        out.retain(|id, _| wanted.contains(id));
        Ok(out)
    }

    /// Shows the kept presence on devices read from `devices`.
    pub(crate) async fn with_presence(&self, devices: &mut [Device]) -> Result<(), StoreError> {
        let ids: Vec<Id> = devices.iter().filter_map(|d| d.id).collect();
        let heard = self.presence_of(&ids).await?;
        for d in devices.iter_mut() {
            if let Some(p) = d.id.and_then(|id| heard.get(&id)) {
                p.apply_to(d);
            }
        }
        Ok(())
    }

    /// Marks a device online unless it already is, or is in maintenance (an administrator's status
    /// that reporting does not end); returns whether this call changed it.
    pub async fn mark_online(&self, device: Id, seen: Instant) -> Result<bool, StoreError> {
        Ok(self.mark_online_many(&[device], seen).await? == 1)
    }

    /// Marks devices online unless they already are, or are in maintenance, with `lastSeen` at
    /// least `seen`. Returns how many it changed. One update for all of them; on FerretDB one per
    /// board, selected by `_id` (an `$in` there makes the server decode every device first, about
    /// a second of its CPU at 2,000 boards, before it writes each one anyway).
    pub async fn mark_online_many(&self, devices: &[Id], seen: Instant) -> Result<u64, StoreError> {
        use futures::StreamExt;
        let not_online = doc! {"$nin": [
            DeviceStatus::Online.as_str(),
            DeviceStatus::Maintenance.as_str(),
        ]};
        let update = doc! {"$set": {"status": "online", "updatedAt": date(dates::now_millis())},
        "$max": {"lastSeen": date(seen)}};
        let coll = self.collection::<Device>(collections::DEVICES);
        if self.server().kind != super::ServerKind::FerretDb {
            if devices.is_empty() {
                return Ok(0);
            }
            let r = coll
                .update_many(doc! {"_id": {"$in": devices}, "status": not_online}, update)
                .await?;
            return Ok(r.modified_count);
        }
        let writes: Vec<_> = devices
            .iter()
            .map(|id| {
                let filter = doc! {"_id": id, "status": not_online.clone()};
                let (coll, update) = (coll.clone(), update.clone());
                async move { coll.update_one(filter, update).await }
            })
            .collect();
        let mut pending = futures::stream::iter(writes).buffer_unordered(PRESENCE_AT_ONCE);
        let mut changed = 0;
        while let Some(written) = pending.next().await {
            changed += written?.modified_count;
        }
        Ok(changed)
    }

    /// Marks a device offline, with `lastSeen` at `last_seen`, if it is still online and has not
    /// been heard of since (neither in its presence nor by a later mark); returns whether this call
    /// changed it.
    pub async fn mark_offline_if_silent(
        &self,
        device: Id,
        last_seen: Instant,
    ) -> Result<bool, StoreError> {
        let heard = self.presence_of(&[device]).await?;
        if heard
            .get(&device)
            .and_then(|p| p.last_seen)
            .is_some_and(|t| t > last_seen)
        {
            return Ok(false);
        }
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_one(
                doc! {"_id": device, "status": "online", "$or": [
                    {"lastSeen": {"$lte": date(last_seen)}},
                    {"lastSeen": Bson::Null},
                ]},
                doc! {"$set": {"status": "offline", "updatedAt": date(dates::now_millis())},
                "$max": {"lastSeen": date(last_seen)}},
            )
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Devices marked online that have not been heard of since `before`, and devices in
    /// maintenance with a switch on that have not either (their intervals close like an offline
    /// board's, while their status stays as the administrator set it). Judged by their presence:
    /// a device's own `lastSeen` is as of its last status change (a board in maintenance may have
    /// none).
    pub async fn silent_online_devices(&self, before: Instant) -> Result<Vec<Device>, StoreError> {
        let mut devices = self
            .find_devices(
                doc! {
                    "$or": [
                        {"status": DeviceStatus::Online.as_str()},
                        {"status": DeviceStatus::Maintenance.as_str(), "switches.state": true},
                    ],
                },
                None,
            )
            .await?;
        devices.retain(|d| d.last_seen.is_some_and(|t| t < before));
        Ok(devices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Instant {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    #[test]
    fn merging_keeps_the_latest_times_and_clock() {
        let mut a = PresenceUpdate {
            last_seen: Some(t(5)),
            last_motion_at: None,
            boot_clock: Some(BootClock::new(t(0), 1)),
        };
        a.merge(PresenceUpdate {
            last_seen: Some(t(0)),
            last_motion_at: Some(t(0)),
            boot_clock: None,
        });
        assert_eq!(a.last_seen, Some(t(5)));
        assert_eq!(a.last_motion_at, Some(t(0)));
        assert_eq!(a.boot_clock.unwrap().last_millis, 1);
    }

    #[test]
    fn boards_fall_in_every_group_and_always_the_same_one() {
        let ids: Vec<Id> = (0..2_000).map(|_| Id::new()).collect();
        let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
        for id in &ids {
            *per_group.entry(group_of(*id)).or_default() += 1;
            assert_eq!(group_of(*id), group_of(*id));
        }
        assert_eq!(per_group.len() as u32, PRESENCE_GROUPS);
        // Ids made one after another spread evenly: no group holds twice its share.
        assert!(per_group
            .values()
            .all(|n| *n < 2 * 2_000 / PRESENCE_GROUPS as usize));
        let fixed = Id::parse_str("65a1b2c3d4e5f60718293a4b").unwrap();
        assert_eq!(group_of(fixed), group_of(fixed));
    }

    #[test]
    fn a_group_update_moves_times_forward_and_sets_anchors_per_board() {
        let (a, b) = (Id::new(), Id::new());
        let u = group_update(
            &[
                (
                    a,
                    PresenceUpdate {
                        last_seen: Some(t(3)),
                        ..Default::default()
                    },
                ),
                (
                    b,
                    PresenceUpdate {
                        last_motion_at: Some(t(4)),
                        boot_clock: Some(BootClock::new(t(0), 4_000)),
                        ..Default::default()
                    },
                ),
            ],
            t(5),
        );
        let max = u.get_document("$max").unwrap();
        assert!(max.contains_key(format!("boards.{}.lastSeen", a.to_hex())));
        assert!(max.contains_key(format!("boards.{}.lastMotionAt", b.to_hex())));
        let set = u.get_document("$set").unwrap();
        assert!(set.contains_key(format!("boards.{}.bootClock", b.to_hex())));
        assert!(!set.contains_key(format!("boards.{}.bootClock", a.to_hex())));
    }

    #[test]
    fn a_group_reads_back_what_was_written_and_skips_what_does_not_read() {
        let (a, b) = (Id::new(), Id::new());
        let clock = BootClock::new(t(0), 4_000);
        let group = doc! {"_id": "group-00", "boards": {
            a.to_hex(): {"lastSeen": date(t(3)), "bootClock": clock_document(&clock)},
            b.to_hex(): {"lastSeen": "not a date"},
            "not an id": {"lastSeen": date(t(3))},
        }};
        let mut out = HashMap::new();
        read_group(&group, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[&a].last_seen, Some(t(3)));
        assert_eq!(out[&a].boot_clock, Some(clock));
    }
}
