//! Applied schema versions (`migrations`).

use super::{dates, Instant};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationRecord {
    /// The version number.
    #[serde(rename = "_id")]
    pub version: i32,
    pub name: String,
    #[serde(with = "dates::required")]
    pub applied_at: Instant,
    pub duration_ms: i64,
}
