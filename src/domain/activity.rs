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
    /// **Ours:** a schedule added, enabled, disabled or removed (`context.change` says which).
    pub const SCHEDULE_CHANGE: &str = "schedule_change";
    /// **Ours:** a schedule's run, made or missed (`context.outcome`); each relay it switched has
    /// its own `on`/`off` entry triggered by `schedule`.
    pub const SCHEDULE_RUN: &str = "schedule_run";

    /// Account administration (`autovolt user …`): `context.account` names the account.
    pub const USER_CREATED: &str = "user_created";
    pub const USER_PASSWORD_CHANGED: &str = "user_password_changed";
    pub const USER_ROLE_CHANGED: &str = "user_role_changed";
    pub const USER_DISABLED: &str = "user_disabled";
    pub const USER_ENABLED: &str = "user_enabled";
    pub const USER_UNLOCKED: &str = "user_unlocked";
    /// A firmware update done in the field, recorded in `firmwareupdates`.
    pub const FIRMWARE_UPDATE: &str = "firmware_update";

    /// Every action this project writes: SCHEMA.md's list, and the schedule, account and
    /// firmware records of ours (docs/schema.md).
    pub const ALL: &[&str] = &[
        ON,
        OFF,
        MANUAL_ON,
        MANUAL_OFF,
        DEVICE_ONLINE,
        DEVICE_OFFLINE,
        TARIFF_CHANGE,
        AGGREGATION_RUN,
        SCHEDULE_CHANGE,
        SCHEDULE_RUN,
        USER_CREATED,
        USER_PASSWORD_CHANGED,
        USER_ROLE_CHANGED,
        USER_DISABLED,
        USER_ENABLED,
        USER_UNLOCKED,
        FIRMWARE_UPDATE,
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLog {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    #[serde(
        rename = "deviceId",
        default,
        deserialize_with = "super::lenient::optional_id",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_id: Option<Id>,
    #[serde(rename = "switchId", default, skip_serializing_if = "Option::is_none")]
    pub switch_id: Option<String>,
    #[serde(
        rename = "switchName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub switch_name: Option<String>,
    /// The classroom's name; never written empty (SCHEMA.md: omitted when unknown).
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_text",
        skip_serializing_if = "blank"
    )]
    pub classroom: Option<String>,
    pub action: String,
    #[serde(rename = "triggeredBy", default)]
    pub triggered_by: TriggeredBy,
    #[serde(
        rename = "userId",
        default,
        deserialize_with = "super::lenient::optional_id",
        skip_serializing_if = "Option::is_none"
    )]
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

/// Absent or empty: not written.
fn blank(text: &Option<String>) -> bool {
    text.as_deref().is_none_or(|t| t.trim().is_empty())
}

impl ActivityLog {
    /// Checks what the Node back end's enums accept: an action of [`action::ALL`] and a known
    /// `triggeredBy`.
    pub fn validate(&self) -> Result<(), super::ValidationError> {
        if !action::ALL.contains(&self.action.as_str()) {
            return Err(super::ValidationError::new(
                "action",
                &self.action,
                format!("must be one of {}", action::ALL.join(", ")),
            ));
        }
        if !self.triggered_by.is_known() {
            return Err(super::ValidationError::new(
                "triggeredBy",
                self.triggered_by.as_str(),
                "must be user, schedule, pir, manual_switch, system or monitoring",
            ));
        }
        Ok(())
    }

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
