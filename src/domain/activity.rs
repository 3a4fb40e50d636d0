//! Who did what (`activitylogs`).

use super::{dates, Id, Instant};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    #[derive(Default)]
    pub enum TriggeredBy {
        User => "user",
        Schedule => "schedule",
        Pir => "pir",
        ManualSwitch => "manual_switch",
        #[default]
        System => "system",
        Monitoring => "monitoring",
    }
}

/// The actions this project writes; others read from the database are kept as text.
pub mod action {
    pub const ON: &str = "on";
    pub const OFF: &str = "off";
    pub const MANUAL_ON: &str = "manual_on";
    pub const MANUAL_OFF: &str = "manual_off";
    pub const DEVICE_ONLINE: &str = "device_online";
    pub const DEVICE_OFFLINE: &str = "device_offline";
    pub const TARIFF_CHANGE: &str = "tariff_change";
    pub const AGGREGATION_RUN: &str = "aggregation_run";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLog {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    #[serde(rename = "deviceId", default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<Id>,
    #[serde(rename = "switchId", default, skip_serializing_if = "Option::is_none")]
    pub switch_id: Option<String>,
    #[serde(
        rename = "switchName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub switch_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classroom: Option<String>,
    pub action: String,
    #[serde(rename = "triggeredBy", default)]
    pub triggered_by: TriggeredBy,
    #[serde(rename = "userId", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Id>,
    #[serde(rename = "userName", default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(with = "dates::required")]
    pub timestamp: Instant,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

impl ActivityLog {
    /// A log entry with only the action, trigger and time set.
    pub fn new(action: &str, triggered_by: TriggeredBy, timestamp: Instant) -> Self {
        ActivityLog {
            id: None,
            device_id: None,
            switch_id: None,
            switch_name: None,
            classroom: None,
            action: action.to_string(),
            triggered_by,
            user_id: None,
            user_name: None,
            timestamp,
            context: None,
            created_at: None,
            updated_at: None,
        }
    }
}
