//! Raw device messages (`telemetryevents`), boards that are not registered, and the collectors'
//! own status record.

use super::{collections, Store, StoreError};
use crate::domain::{dates, Instant, Mac, TelemetryEvent};
use bson::{doc, Document};
use mongodb::error::ErrorKind;
use serde::{Deserialize, Serialize};

/// **Ours:** one document per MAC that spoke without being registered (`_id` is the MAC).
pub const UNREGISTERED: &str = "unregistereddevices";

/// **Ours:** one document per collector (`_id` is its MQTT client id), rewritten every few seconds;
/// `autovolt health` reads it to tell whether collectors run and reach the database.
pub const COLLECTOR_STATUS: &str = "collectorstatus";

/// A board that is not registered, as `autovolt devices unregistered` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnregisteredDevice {
    #[serde(rename = "_id")]
    pub mac: String,
    #[serde(rename = "firstSeen", with = "dates::required")]
    pub first_seen: Instant,
    #[serde(rename = "lastSeen", with = "dates::required")]
    pub last_seen: Instant,
    pub count: i64,
}

/// A collector's status record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorStatus {
    /// The collector's MQTT client id.
    #[serde(rename = "_id")]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(rename = "startedAt", with = "dates::required")]
    pub started_at: Instant,
    /// When this record was last written (its lease renewed): a collector that misses a few
    /// renewals is taken for dead (`domain::health::lease`).
    #[serde(rename = "updatedAt", with = "dates::required")]
    pub updated_at: Instant,
    /// How often the collector renews this record, in milliseconds; records written before it was
    /// kept were renewed every 5 s.
    #[serde(rename = "renewEveryMs", default = "default_renew_every_ms")]
    pub renew_every_ms: i64,
    /// When the collector stopped cleanly: from then on it is not running, whatever `updatedAt`.
    #[serde(rename = "stoppedAt", with = "dates::optional", default)]
    pub stopped_at: Option<Instant>,
    #[serde(rename = "brokerConnected")]
    pub broker_connected: bool,
    /// Since when the collector has been cut off from the broker, while it is (after having been
    /// connected).
    #[serde(rename = "brokerLostAt", with = "dates::optional", default)]
    pub broker_lost_at: Option<Instant>,
    /// Since when the database has been failing, while it is (messages wait at the broker, unacknowledged).
    #[serde(rename = "databaseDownSince", with = "dates::optional", default)]
    pub database_down_since: Option<Instant>,
    /// The last database error, without secrets.
    #[serde(rename = "lastDatabaseError", default)]
    pub last_database_error: Option<String>,
    #[serde(rename = "databaseOutages")]
    pub database_outages: i64,
    pub received: i64,
    pub committed: i64,
    pub transitions: i64,
    #[serde(rename = "ledgerRows")]
    pub ledger_rows: i64,
    /// Rejected messages by reason code.
    pub rejected: std::collections::BTreeMap<String, i64>,
    /// Messages kept as dead letters.
    #[serde(rename = "deadLetters", default)]
    pub dead_letters: i64,
}

fn default_renew_every_ms() -> i64 {
    5_000
}

impl CollectorStatus {
    /// The record as the health rules read it.
    pub fn registration(&self) -> crate::domain::health::Registration {
        crate::domain::health::Registration {
            renewed_at: self.updated_at,
            renew_every: chrono::Duration::milliseconds(self.renew_every_ms),
            stopped_at: self.stopped_at,
            broker_connected: self.broker_connected,
            broker_lost_at: self.broker_lost_at,
        }
    }
}

impl Store {
    /// Inserts a batch of telemetry (unordered); messages already stored (same `event_hash`) are
    /// dropped by the unique index. Returns how many were new.
    pub async fn insert_telemetry(&self, events: &[TelemetryEvent]) -> Result<u64, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        match self
            .collection::<TelemetryEvent>(collections::TELEMETRY)
            .insert_many(events)
            .ordered(false)
            .await
        {
            Ok(r) => Ok(r.inserted_ids.len() as u64),
            Err(e) => {
                let ErrorKind::InsertMany(failure) = &*e.kind else {
                    return Err(e.into());
                };
                if failure.write_concern_error.is_some() {
                    return Err(e.into());
                }
                let errors = failure.write_errors.as_deref().unwrap_or_default();
                if errors.iter().any(|w| w.code != super::error::DUPLICATE_KEY) {
                    return Err(e.into());
                }
                Ok((events.len() - errors.len()) as u64)
            }
        }
    }

    /// Counts `count` messages from an unregistered board, heard from `first` to `last`.
    pub async fn record_unregistered(
        &self,
        mac: Mac,
        first: Instant,
        last: Instant,
        count: i64,
    ) -> Result<(), StoreError> {
        let first = bson::DateTime::from_chrono(first);
        let last = bson::DateTime::from_chrono(last);
        self.collection::<Document>(UNREGISTERED)
            .update_one(
                doc! {"_id": mac.to_string()},
                doc! {"$min": {"firstSeen": first}, "$max": {"lastSeen": last}, "$inc": {"count": count}},
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// The unregistered boards seen, most recent first.
    pub async fn unregistered_devices(&self) -> Result<Vec<UnregisteredDevice>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(UNREGISTERED)
            .find(doc! {})
            .sort(doc! {"lastSeen": -1})
            .await?;
        self.read_all(UNREGISTERED, cursor).await
    }

    /// Replaces a collector's status record.
    pub async fn write_collector_status(&self, status: &CollectorStatus) -> Result<(), StoreError> {
        self.collection::<CollectorStatus>(COLLECTOR_STATUS)
            .replace_one(doc! {"_id": &status.client_id}, status)
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Every collector's status record.
    pub async fn collector_statuses(&self) -> Result<Vec<CollectorStatus>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(COLLECTOR_STATUS)
            .find(doc! {})
            .await?;
        self.read_all(COLLECTOR_STATUS, cursor).await
    }
}
