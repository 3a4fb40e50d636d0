//! Locks as leases: a lock document names its owner and an expiry that the owner renews while it
//! works (every third of the lease); once the expiry has passed, anyone may take the lock over.
//!
//! Takeover is atomic on every server: the expired document is deleted with a filter on the owner
//! and expiry that were read, and the taker then inserts its own. The primary key decides between
//! two takers: only one insert succeeds, the other finds a live lease. A lock marked `finished_at`
//! (a daily claim that is done) is never taken over.
//!
//! A lock written by a version without leases has no `expires_at`: it expires `legacy_stale` after
//! its `acquired_at` (or `claimed_at`), when that version called it stale.

use super::{Store, StoreError};
use crate::domain::{dates, Instant};
use bson::{doc, Bson, Document};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Who holds a lock, as its document says.
#[derive(Debug, Clone, PartialEq)]
pub struct LockHolder {
    pub owner: String,
    pub acquired_at: Option<Instant>,
    /// `None` for a lock written without a lease.
    pub expires_at: Option<Instant>,
}

impl LockHolder {
    fn from_doc(d: &Document) -> LockHolder {
        let date = |k: &str| d.get_datetime(k).ok().map(|t| t.to_chrono());
        LockHolder {
            owner: d.get_str("owner").unwrap_or("unknown").to_string(),
            acquired_at: date("acquired_at").or_else(|| date("claimed_at")),
            expires_at: date("expires_at"),
        }
    }

    /// When the lock stops being held unless renewed.
    pub fn expiry(&self, legacy_stale: chrono::Duration) -> Option<Instant> {
        self.expires_at
            .or_else(|| self.acquired_at.map(|a| a + legacy_stale))
    }

    /// Whether anyone may take the lock over at `now`.
    pub fn expired(&self, now: Instant, legacy_stale: chrono::Duration) -> bool {
        self.expiry(legacy_stale).is_none_or(|e| now > e)
    }

    /// "held by H for 3 min (lease renewed, expires in 40 s)".
    pub fn describe(&self, now: Instant, legacy_stale: chrono::Duration) -> String {
        let age = self
            .acquired_at
            .map(|a| format!(" for {} min", (now - a).num_minutes()))
            .unwrap_or_default();
        format!(
            "held by {}{age} ({})",
            self.owner,
            self.lease_state(now, legacy_stale)
        )
    }

    /// "its lease expires in 40 s unless its owner renews it", or why it is stale.
    pub fn lease_state(&self, now: Instant, legacy_stale: chrono::Duration) -> String {
        match (self.expires_at, self.expired(now, legacy_stale)) {
            (_, true) => {
                "stale: its owner stopped renewing it; the next run takes it over".to_string()
            }
            (Some(e), false) => format!(
                "its lease expires in {} s unless its owner renews it",
                (e - now).num_seconds().max(0)
            ),
            (None, false) => "written without a lease by an older version".to_string(),
        }
    }
}

fn date(t: Instant) -> bson::DateTime {
    bson::DateTime::from_chrono(t)
}

/// The lease's length as a chrono duration.
fn chrono_lease(lease: Duration) -> chrono::Duration {
    chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60))
}

impl Store {
    /// Takes the lock `id` of `collection` for `owner` (with the extra fields `fields`), taking over
    /// a lock whose lease has expired. Returns the holder when someone else holds it.
    pub(crate) async fn take_lease(
        &self,
        collection: &str,
        id: &str,
        owner: &str,
        fields: Document,
        legacy_stale: chrono::Duration,
    ) -> Result<Result<(), LockHolder>, StoreError> {
        let coll = self.collection::<Document>(collection);
        // A few rounds: again after removing an expired lock, or after its holder released it.
        for _ in 0..3 {
            let now = dates::now_millis();
            let mut lock = doc! {
                "_id": id,
                "owner": owner,
                "acquired_at": date(now),
                "expires_at": date(now + chrono_lease(self.lock_lease())),
            };
            lock.extend(fields.clone());
            match coll.insert_one(lock).await {
                Ok(_) => return Ok(Ok(())),
                Err(e) if super::error::is_duplicate_key(&e) => {}
                Err(e) => return Err(e.into()),
            }
            let Some(held) = coll.find_one(doc! {"_id": id}).await? else {
                continue;
            };
            let holder = LockHolder::from_doc(&held);
            if held.contains_key("finished_at") || !holder.expired(now, legacy_stale) {
                return Ok(Err(holder));
            }
            // Only the document as it was read goes: a lock renewed or retaken meanwhile stays.
            let mut filter = doc! {"_id": id, "owner": &holder.owner};
            filter.insert(
                "expires_at",
                held.get("expires_at").cloned().unwrap_or(Bson::Null),
            );
            filter.insert("finished_at", doc! {"$exists": false});
            let gone = coll.delete_one(filter).await?;
            if gone.deleted_count == 1 {
                tracing::warn!(
                    collection,
                    lock = id,
                    owner = %holder.owner,
                    "took over a lock whose lease had expired (its holder stopped)"
                );
            }
        }
        let holder = coll
            .find_one(doc! {"_id": id})
            .await?
            .map(|d| LockHolder::from_doc(&d))
            .unwrap_or(LockHolder {
                owner: "unknown".into(),
                acquired_at: None,
                expires_at: None,
            });
        Ok(Err(holder))
    }

    /// Gives back a lock this `owner` holds.
    pub(crate) async fn release_lease(
        &self,
        collection: &str,
        id: &str,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.collection::<Document>(collection)
            .delete_one(doc! {"_id": id, "owner": owner})
            .await?;
        Ok(())
    }

    /// Renews, every third of the lease, the locks `ids` of `collection` that `owner` holds, until
    /// the returned keeper is dropped. Its [`LeaseKeeper::lost`] fires when a lock was taken
    /// over, or could not be renewed before it expired: the holder must then stop.
    pub(crate) fn keep_leases(
        &self,
        collection: &str,
        ids: Vec<String>,
        owner: &str,
    ) -> LeaseKeeper {
        let held = Arc::new(tokio::sync::Mutex::new(ids));
        let lost = CancellationToken::new();
        let store = self.clone();
        let (collection, owner) = (collection.to_string(), owner.to_string());
        let (held2, lost2) = (held.clone(), lost.clone());
        let lease = self.lock_lease();
        let task = tokio::spawn(async move {
            let mut valid_until = std::time::Instant::now() + lease;
            loop {
                tokio::time::sleep(lease / 3).await;
                let ids = held2.lock().await;
                if ids.is_empty() {
                    continue;
                }
                let started = std::time::Instant::now();
                let expires = dates::now_millis() + chrono_lease(lease);
                let renewed = store
                    .collection::<Document>(&collection)
                    .update_many(
                        doc! {"_id": {"$in": ids.clone()}, "owner": &owner},
                        doc! {"$set": {"expires_at": date(expires)}},
                    )
                    .await;
                match renewed {
                    Ok(r) if r.matched_count as usize == ids.len() => {
                        valid_until = started + lease;
                    }
                    Ok(r) => {
                        tracing::error!(
                            collection,
                            held = ids.len(),
                            renewed = r.matched_count,
                            "a lock was taken over after its lease expired; stopping this run"
                        );
                        lost2.cancel();
                        return;
                    }
                    Err(e) if std::time::Instant::now() >= valid_until => {
                        tracing::error!(collection, error = %e, "could not renew a lock before its lease expired; stopping this run");
                        lost2.cancel();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(collection, error = %e, "could not renew a lock; retrying");
                    }
                }
            }
        });
        LeaseKeeper { held, lost, task }
    }
}

/// Renews leases while it lives (see [`Store::keep_leases`]).
pub(crate) struct LeaseKeeper {
    held: Arc<tokio::sync::Mutex<Vec<String>>>,
    lost: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LeaseKeeper {
    /// Fires when a lease was lost.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Renews `id` too from now on.
    pub async fn add(&self, id: String) {
        self.held.lock().await.push(id);
    }

    /// Stops renewing `id` (before releasing it, so that no renewal counts it missing).
    pub async fn remove(&self, id: &str) {
        self.held.lock().await.retain(|h| h != id);
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_lease_expires_at_its_expiry_and_an_old_lock_after_the_stale_age() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let stale = chrono::Duration::minutes(15);
        let leased = LockHolder {
            owner: "h:1".into(),
            acquired_at: Some(at),
            expires_at: Some(at + chrono::Duration::seconds(60)),
        };
        assert!(!leased.expired(at + chrono::Duration::seconds(60), stale));
        assert!(leased.expired(at + chrono::Duration::seconds(61), stale));
        assert!(leased
            .describe(at + chrono::Duration::seconds(20), stale)
            .contains("expires in 40 s"));
        let old = LockHolder {
            expires_at: None,
            ..leased.clone()
        };
        assert!(!old.expired(at + chrono::Duration::minutes(15), stale));
        assert!(old.expired(at + chrono::Duration::minutes(16), stale));
        let text = old.describe(at + chrono::Duration::minutes(42), stale);
        assert!(
            text.contains("h:1") && text.contains("42 min") && text.contains("stale"),
            "{text}"
        );
        let nobody = LockHolder {
            owner: "?".into(),
            acquired_at: None,
            expires_at: None,
        };
        assert!(nobody.expired(at, stale));
    }
}
