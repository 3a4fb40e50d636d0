//! Applied schema versions (`migrations`).

use super::{dates, Instant};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// The version number.
    #[serde(rename = "_id", deserialize_with = "super::lenient::int32")]
    pub version: i32,
    pub name: String,
    #[serde(with = "dates::required")]
    pub applied_at: Instant,
    #[serde(default, deserialize_with = "super::lenient::int64")]
    pub duration_ms: i64,
}
