//! Firmware records (`firmwareupdates`): updates done in the field, recorded by people (this
//! project never pushes firmware), and each board's history.

use super::{collections, Store, StoreError};
use crate::domain::activity::action;
use crate::domain::{
    dates, ActivityLog, Device, FirmwareUpdate, FirmwareUpdateStatus, Id, TriggeredBy,
};
use bson::{doc, Bson};

/// The most records a history read returns.
pub const MAX_HISTORY: i64 = 1000;

impl Store {
    /// Records an update done on `device` in the field: from the version the board had (its
    /// `firmwareVersion`) to `to_version`. A successful update becomes the board's
    /// `firmwareVersion`. Logs `firmware_update` under `operator`.
    pub async fn record_firmware_update(
        &self,
        device: &Device,
        to_version: &str,
        status: FirmwareUpdateStatus,
        notes: Option<&str>,
        operator: &str,
    ) -> Result<FirmwareUpdate, StoreError> {
        let device_id = device
            .id
            .ok_or_else(|| StoreError::NotFound(format!("device {} has no _id", device.name)))?;
        let now = dates::now_millis();
        let mut update = FirmwareUpdate::recorded(
            device_id.to_hex(),
            device
                .firmware_version
                .clone()
                .filter(|v| !v.trim().is_empty()),
            to_version,
            status,
            notes,
            now,
        )?;
        let id = *update.id.get_or_insert_with(Id::new);
        self.collection::<FirmwareUpdate>(collections::FIRMWARE_UPDATES)
            .insert_one(&update)
            .await?;
        if update.status == FirmwareUpdateStatus::Success {
            self.collection::<bson::Document>(collections::DEVICES)
                .update_one(
                    doc! {"_id": device_id},
                    doc! {"$set": {
                        "firmwareVersion": update.to_version.clone(),
                        "updatedAt": bson::DateTime::from_chrono(now),
                    }},
                )
                .await?;
        }
        let mut entry = ActivityLog::new(action::FIRMWARE_UPDATE, TriggeredBy::User, now);
        entry.device_id = Some(device_id);
        entry.user_name = Some(operator.to_string());
        entry.context = Some(serde_json::json!({
            "firmware_update_id": id.to_hex(),
            "from_version": update.from_version,
            "to_version": update.to_version,
            "status": update.status.as_str(),
        }));
        if let Some(room) = device.classroom {
            entry.classroom = self.classroom_by_id(room).await?.map(|c| c.name);
        }
        self.log_activity(&entry).await?;
        Ok(update)
    }

    /// A board's firmware records, newest first (at most `limit`, up to [`MAX_HISTORY`]).
    /// `device_id` is matched as hex text (as this project writes it) or as an ObjectId (as
    /// another writer may).
    pub async fn firmware_history(
        &self,
        device_id: Id,
        limit: i64,
    ) -> Result<Vec<FirmwareUpdate>, StoreError> {
        let filter = doc! {"device_id": {"$in": [Bson::String(device_id.to_hex()), Bson::ObjectId(device_id)]}};
        self.firmware_records(filter, limit).await
    }

    /// The newest firmware records of every board, newest first (at most `limit`, up to
    /// [`MAX_HISTORY`]): what the dashboard shows on the board view.
    pub async fn recent_firmware_updates(
        &self,
        limit: i64,
    ) -> Result<Vec<FirmwareUpdate>, StoreError> {
        self.firmware_records(doc! {}, limit).await
    }

    async fn firmware_records(
        &self,
        filter: bson::Document,
        limit: i64,
    ) -> Result<Vec<FirmwareUpdate>, StoreError> {
        let limit = limit.clamp(1, MAX_HISTORY);
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::FIRMWARE_UPDATES)
            .find(filter)
            .sort(doc! {"started_at": -1, "createdAt": -1, "_id": -1})
            .limit(limit)
            .await?;
        let mut rows: Vec<FirmwareUpdate> =
            self.read_all(collections::FIRMWARE_UPDATES, cursor).await?;
        // Another writer may leave `started_at` out: order by what the record says happened.
        rows.sort_by(|a, b| b.when().cmp(&a.when()).then(b.id.cmp(&a.id)));
        Ok(rows)
    }
}
