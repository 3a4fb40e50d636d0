//! The collector's writes to relay state: compare-and-set on one switch of one device, so that a
//! redelivered or reordered message, or two collectors seeing related messages, change it once.
//!
//! The switch is addressed by its array index (`switches.3.state`) with that index's `switchId` in
//! the filter as a guard: FerretDB has no positional operators. On MongoDB a filtered single-document
//! update is atomic; FerretDB 1.24 rewrites the whole document, so there the unique ledger key is
//! what keeps a race between collectors from billing twice.

use super::{collections, Store, StoreError};
use crate::domain::{dates, ActivityLog, Device, Id, Instant, Mac};
use bson::{doc, Bson};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};

/// What the switch must still look like for a transition to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct SwitchGuard {
    pub device: Id,
    pub index: usize,
    pub switch_id: String,
    pub state: bool,
    pub last_state_change: Option<Instant>,
}

impl Store {
    /// The registered devices among `macs` (one query for a whole batch of messages).
    pub async fn devices_by_macs(&self, macs: &[Mac]) -> Result<Vec<Device>, StoreError> {
        let list: Vec<String> = macs.iter().map(|m| m.to_string()).collect();
        Ok(self
            .collection::<Device>(collections::DEVICES)
            .find(doc! {"macAddress": {"$in": list}})
            .await?
            .try_collect()
            .await?)
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
            Err(StoreError::Driver(d)) if super::error::is_duplicate_key(&d) => Ok(false),
            Err(other) => Err(other),
        }
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
