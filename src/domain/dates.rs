//! Serde helpers that store chrono instants as BSON dates (millisecond precision, like JavaScript).

use super::Instant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// For `Instant` fields: `#[serde(with = "crate::domain::dates::required")]`.
pub mod required {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Instant, s: S) -> Result<S::Ok, S::Error> {
        bson::DateTime::from_chrono(*value).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        Ok(bson::DateTime::deserialize(d)?.to_chrono())
    }
}

/// For `Option<Instant>` fields; `None` is stored as null, and a missing field reads as `None`
/// (pair with `#[serde(default)]`).
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
        value.map(bson::DateTime::from_chrono).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
        Ok(Option::<bson::DateTime>::deserialize(d)?.map(|t| t.to_chrono()))
    }
}

/// The current instant truncated to milliseconds, so that what is written equals what is read back.
pub fn now_millis() -> Instant {
    truncate_millis(chrono::Utc::now())
}

/// Truncates an instant to whole milliseconds (BSON dates hold no more).
pub fn truncate_millis(t: Instant) -> Instant {
    bson::DateTime::from_chrono(t).to_chrono()
}
