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

/// The longest note kept with a firmware record, in characters.
pub const MAX_NOTES_CHARS: usize = 500;

impl FirmwareUpdateStatus {
    /// Whether the update is over (it has a `finished_at`).
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            FirmwareUpdateStatus::Success | FirmwareUpdateStatus::Failed
        )
    }
}

impl FirmwareUpdate {
    /// A record of an update done in the field on the board `device_id` (its `_id` in hex), at
    /// `at`: a finished one (success, failed) started and finished then, an unfinished one only
    /// started. Checked with [`FirmwareUpdate::validate`].
    pub fn recorded(
        device_id: String,
        from_version: Option<String>,
        to_version: &str,
        status: FirmwareUpdateStatus,
        notes: Option<&str>,
        at: Instant,
    ) -> Result<FirmwareUpdate, super::ValidationError> {
        let update = FirmwareUpdate {
            id: None,
            device_id,
            from_version: from_version.unwrap_or_default(),
            to_version: to_version.trim().to_string(),
            finished_at: status.is_finished().then_some(at),
            status,
            started_at: Some(at),
            notes: notes
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            created_at: Some(at),
            updated_at: Some(at),
        };
        update.validate()?;
        Ok(update)
    }

    /// SCHEMA.md's rules: a known status, a target version, a start no later than the finish,
    /// printable notes of at most [`MAX_NOTES_CHARS`] characters.
    pub fn validate(&self) -> Result<(), super::ValidationError> {
        use super::ValidationError;
        if !self.status.is_known() {
            return Err(ValidationError::new(
                "status",
                self.status.as_str(),
                "must be pending, in_progress, success or failed",
            ));
        }
        if self.device_id.trim().is_empty() {
            return Err(ValidationError::new("device_id", "", "must name the board"));
        }
        super::validation::firmware_version("to_version", &self.to_version)?;
        if !self.from_version.is_empty() {
            super::validation::firmware_version("from_version", &self.from_version)?;
        }
        if let (Some(s), Some(f)) = (self.started_at, self.finished_at) {
            if f < s {
                return Err(ValidationError::new(
                    "finished_at",
                    f.to_rfc3339(),
                    "must not be before started_at",
                ));
            }
        }
        if let Some(n) = &self.notes {
            if let Some(c) = n.chars().find(|c| c.is_control() && *c != '\n') {
                return Err(ValidationError::new(
                    "notes",
                    n.escape_default(),
                    format!("must be printable text (it holds {c:?})"),
                ));
            }
            if n.chars().count() > MAX_NOTES_CHARS {
                return Err(ValidationError::new(
                    "notes",
                    n.chars().take(20).collect::<String>() + "…",
                    format!("must be at most {MAX_NOTES_CHARS} characters"),
                ));
            }
        }
        Ok(())
    }

    /// When the update happened, for ordering a history: its start, else its finish, else when it
    /// was recorded.
    pub fn when(&self) -> Option<Instant> {
        self.started_at.or(self.finished_at).or(self.created_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> Instant {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, 10, 0, 0)
            .unwrap()
    }

    #[test]
    fn a_field_update_is_recorded_as_the_schema_says() {
        let u = FirmwareUpdate::recorded(
            "64b000000000000000000001".into(),
            Some("1.4.1".into()),
            " 1.4.2 ",
            FirmwareUpdateStatus::Success,
            Some("  flashed over USB  "),
            at(),
        )
        .unwrap();
        assert_eq!(u.to_version, "1.4.2");
        assert_eq!(u.from_version, "1.4.1");
        assert_eq!((u.started_at, u.finished_at), (Some(at()), Some(at())));
        assert_eq!(u.notes.as_deref(), Some("flashed over USB"));
        let doc = bson::to_document(&u).unwrap();
        assert_eq!(doc.get_str("status").unwrap(), "success");
        assert!(doc.get_datetime("started_at").is_ok());

        let pending = FirmwareUpdate::recorded(
            "x".into(),
            None,
            "2.0.0",
            FirmwareUpdateStatus::Pending,
            Some("   "),
            at(),
        )
        .unwrap();
        assert_eq!(pending.finished_at, None);
        assert_eq!(pending.notes, None);
        assert_eq!(pending.from_version, "");
    }

    #[test]
    fn bad_records_are_refused_with_the_field_named() {
        let rec = |to: &str, status: FirmwareUpdateStatus, notes: &str| {
            FirmwareUpdate::recorded("d".into(), None, to, status, Some(notes), at())
        };
        use FirmwareUpdateStatus as S;
        assert_eq!(rec("", S::Success, "").unwrap_err().field, "to_version");
        assert_eq!(rec("1 2", S::Success, "").unwrap_err().field, "to_version");
        assert_eq!(
            rec("1.0", S::Other("done".into()), "").unwrap_err().field,
            "status"
        );
        assert_eq!(
            rec("1.0", S::Failed, "a\u{1b}b").unwrap_err().field,
            "notes"
        );
        assert_eq!(
            rec("1.0", S::Failed, &"n".repeat(501)).unwrap_err().field,
            "notes"
        );
        assert!(rec("1.0", S::Failed, &"n".repeat(500)).is_ok());
        let mut u = rec("1.0", S::Success, "").unwrap();
        u.finished_at = Some(at() - chrono::Duration::seconds(1));
        assert_eq!(u.validate().unwrap_err().field, "finished_at");
        assert!(FirmwareUpdate::recorded(" ".into(), None, "1.0", S::Success, None, at()).is_err());
    }
}
