//! Automation schedules (`schedules`).

use super::{dates, Id, Instant, ValidationError};
use serde::{Deserialize, Serialize};

crate::string_enum! {
    pub enum ScheduleType {
        Daily => "daily",
        Weekly => "weekly",
        Once => "once",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledSwitch {
    #[serde(rename = "deviceId")]
    pub device_id: Id,
    #[serde(rename = "switchId")]
    pub switch_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    pub name: String,
    #[serde(rename = "type")]
    pub schedule_type: ScheduleType,
    /// `HH:MM`.
    pub time: String,
    /// 0–6, 0 = Sunday.
    #[serde(default)]
    pub days: Vec<i32>,
    /// `on` or `off`.
    pub action: String,
    #[serde(default)]
    pub switches: Vec<ScheduledSwitch>,
    #[serde(default)]
    pub enabled: bool,
    #[serde(rename = "createdBy", default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Id>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

impl Schedule {
    pub fn validate(&self) -> Result<(), ValidationError> {
        super::validation::time_of_day("time", &self.time)?;
        if let Some(d) = self.days.iter().find(|d| !(0..=6).contains(*d)) {
            return Err(ValidationError::new(
                "days",
                d,
                "each day must be 0 (Sunday) to 6 (Saturday)",
            ));
        }
        if self.action != "on" && self.action != "off" {
            return Err(ValidationError::new(
                "action",
                &self.action,
                "must be \"on\" or \"off\"",
            ));
        }
        Ok(())
    }
}
