//! Over-the-air update tracking (`firmwareupdates`).

use super::{dates, Id, Instant};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    pub enum FirmwareUpdateStatus {
        Pending => "pending",
        InProgress => "in_progress",
        Success => "success",
        Failed => "failed",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmwareUpdate {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    #[serde(deserialize_with = "super::lenient::text")]
    pub device_id: String,
    #[serde(default)]
    pub from_version: String,
    pub to_version: String,
    pub status: FirmwareUpdateStatus,
    #[serde(with = "dates::optional", default)]
    pub started_at: Option<Instant>,
    #[serde(with = "dates::optional", default)]
    pub finished_at: Option<Instant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}
