//! The collector's writes to relay state: compare-and-set on one switch of one device, so that a
//! redelivered or reordered message, or two collectors seeing related messages, change it once.
//!
//! The switch is addressed by its array index (`switches.3.state`) with that index's `switchId` in
//! the filter as a guard: FerretDB has no positional operators. On MongoDB that filtered update is an
//! atomic compare-and-set; FerretDB 1.24 rewrites the whole document and lets two racing updates
//! both match. So every transition is first *claimed*: a document in `switchclaims` whose `_id`
//! names the state it leaves (device, switch, previous state and `lastStateChange`). A primary key
//! is unique on every server, so exactly one claim per departure exists; whoever finds a claim
//! there completes that one (it is idempotent) instead of its own.

use super::{collections, Store, StoreError};
use crate::domain::{dates, ActivityLog, Device, Id, Instant, Mac, TriggeredBy};
use bson::{doc, Bson};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// **Ours:** one document per relay transition, keyed by the state it leaves.
pub const SWITCH_CLAIMS: &str = "switchclaims";

/// A claimed transition: where the switch goes, and what to log for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchClaim {
    /// [`SwitchGuard::claim_key`] of the state left.
    #[serde(rename = "_id")]
    pub key: String,
    pub state: bool,
    #[serde(with = "dates::required")]
    pub at: Instant,
    /// The activity to record (`on`, `manual_off`, …), empty for none (midnight, going offline).
    pub action: String,
    #[serde(rename = "triggeredBy")]
    pub triggered_by: TriggeredBy,
    /// What reported it: `switch_event`, `manual_switch`, `state`, `offline`, `midnight`.
    #[serde(rename = "reportedBy")]
    pub reported_by: String,
    #[serde(rename = "createdAt", with = "dates::required")]
    pub created_at: Instant,
}

/// What the switch must still look like for a transition to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchGuard {
    pub device: Id,
    pub index: usize,
    pub switch_id: String,
    pub state: bool,
    pub last_state_change: Option<Instant>,
}

impl SwitchGuard {
    /// The identity of the state a transition leaves.
    pub fn claim_key(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.device.to_hex(),
            self.switch_id,
            self.state,
            self.last_state_change
                .map(|t| t.timestamp_millis().to_string())
                .unwrap_or_else(|| "-".into())
        )
    }
}

impl Store {
    /// Claims a transition; returns the claim that holds (`claim` itself, or the one already made
    /// for the same departure) and whether this call made it.
    pub async fn claim_transition(
        &self,
        claim: &SwitchClaim,
    ) -> Result<(SwitchClaim, bool), StoreError> {
        let coll = self.collection::<SwitchClaim>(SWITCH_CLAIMS);
        match coll.insert_one(claim).await {
            Ok(_) => Ok((claim.clone(), true)),
            Err(e) if super::error::is_duplicate_key(&e) => coll
                .find_one(doc! {"_id": &claim.key})
                .await?
                .map(|c| (c, false))
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "the transition claim {} was reported taken but cannot be read",
                        claim.key
                    ))
                }),
            Err(e) => Err(e.into()),
        }
    }

    /// The registered devices among `macs` (one query for a whole batch of messages).
    ///
    /// A board whose document does not read is not taken for an unknown one: its messages could
    /// not be billed, so this fails with [`StoreError::Decode`] naming it (a permanent error: the
    /// collector keeps those messages as dead letters until the document is mended).
    pub async fn devices_by_macs(&self, macs: &[Mac]) -> Result<Vec<Device>, StoreError> {
        let list: Vec<String> = macs.iter().map(|m| m.to_string()).collect();
        let (devices, unreadable) = self
            .find_devices_reporting(doc! {"macAddress": {"$in": list}})
            .await?;
        match unreadable.first() {
            Some((id, reason)) => Err(StoreError::Decode(format!(
                "the document of device {id} cannot be read: {reason}"
            ))),
            None => Ok(devices),
        }
    }

    /// Every device that reads, in one query (the collector reading again the boards it holds);
    /// one that does not read is left out here, and named by [`Store::devices_by_macs`] when its
    /// board speaks.
    pub async fn fleet(&self) -> Result<Vec<Device>, StoreError> {
        Ok(self.find_devices_reporting(doc! {}).await?.0)
    }

    /// Sets a switch's `state` and `lastStateChange` if it still is as `guard` says. Returns whether
    /// this call made the change (false: someone else changed the switch first).
    pub async fn set_switch_if(
        &self,
        guard: &SwitchGuard,
        state: bool,
        at: Instant,
    ) -> Result<bool, StoreError> {
        let i = guard.index;
        let lsc = match guard.last_state_change {
            Some(t) => Bson::DateTime(bson::DateTime::from_chrono(t)),
            None => Bson::Null,
        };
        let filter = doc! {
            "_id": guard.device,
            format!("switches.{i}.switchId"): &guard.switch_id,
            format!("switches.{i}.state"): guard.state,
            format!("switches.{i}.lastStateChange"): lsc,
        };
        let update = doc! {"$set": {
            format!("switches.{i}.state"): state,
            format!("switches.{i}.lastStateChange"): bson::DateTime::from_chrono(at),
            "updatedAt": bson::DateTime::from_chrono(dates::now_millis()),
        }};
        let r = self
            .collection::<Device>(collections::DEVICES)
            .update_one(filter, update)
            .await?;
        Ok(r.modified_count == 1)
    }

    /// Records an activity whose `_id` is derived from what happened, so that a retried message
    /// records it once. Returns whether it was new.
    pub async fn log_activity_once(
        &self,
        entry: &ActivityLog,
        key: &str,
    ) -> Result<bool, StoreError> {
        let mut e = entry.clone();
        e.id = Some(derived_id(key));
        match self.log_activity(&e).await {
            Ok(_) => Ok(true),
            Err(StoreError::Driver(d)) if super::error::is_duplicate_key(&d) => {
                // Written by an attempt that failed before journaling it.
                super::stamp_new(&mut e.created_at, &mut e.updated_at);
                self.journal_activity(&[e]).await?;
                Ok(false)
            }
            Err(other) => Err(other),
        }
    }
}

impl Store {
    /// Logs many entries, each at most once (ids derived from their keys), in one insert.
    pub async fn log_activities_once(
        &self,
        entries: &[(ActivityLog, String)],
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        for (entry, _) in entries {
            entry.validate()?;
        }
        let docs: Vec<ActivityLog> = entries
            .iter()
            .map(|(entry, key)| {
                let mut e = entry.clone();
                e.id = Some(derived_id(key));
                super::stamp_new(&mut e.created_at, &mut e.updated_at);
                e
            })
            .collect();
        super::error::only_duplicates(
            self.collection::<ActivityLog>(collections::ACTIVITY)
                .insert_many(&docs)
                .ordered(false)
                .await,
        )?;
        self.journal_activity(&docs).await
    }
}

/// A stable ObjectId from a text key: the first 12 bytes of its SHA-256.
pub fn derived_id(key: &str) -> Id {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    Id::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        assert_eq!(derived_id("a"), derived_id("a"));
        assert_ne!(derived_id("a"), derived_id("b"));
    }
}
