//! Daily and monthly rollups of the ledger (`dailyaggregates`, `monthlyaggregates`).

use super::{dates, Id, Instant};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchBreakdown {
    pub switch_id: String,
    #[serde(default)]
    pub switch_name: String,
    pub energy_kwh: f64,
    pub on_time_sec: f64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyAggregate {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    /// `YYYY-MM-DD` in the campus time zone.
    pub date_string: String,
    /// The classroom's name; "" when unknown, and then not written.
    #[serde(
        default,
        deserialize_with = "super::lenient::text",
        skip_serializing_if = "String::is_empty"
    )]
    pub classroom: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub device_id: String,
    #[serde(default, deserialize_with = "super::lenient::text")]
    pub esp32_name: String,
    pub total_kwh: f64,
    pub on_time_sec: f64,
    pub cost_at_calc_time: f64,
    /// Energy-weighted ₹/kWh (0 when there was no energy).
    pub cost_per_kwh_used: f64,
    #[serde(deserialize_with = "super::lenient::int32")]
    pub switch_count: i32,
    #[serde(default)]
    pub switch_breakdown: Vec<SwitchBreakdown>,
    /// Share of the day's energy from high-confidence rows, 0–100.
    #[serde(default = "full_quality")]
    pub quality_score: f64,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

fn full_quality() -> f64 {
    100.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyTotal {
    pub date_string: String,
    pub total_kwh: f64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyAggregate {
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none", default)]
    pub id: Option<Id>,
    /// `YYYY-MM`.
    pub month_string: String,
    #[serde(deserialize_with = "super::lenient::int32")]
    pub year: i32,
    #[serde(deserialize_with = "super::lenient::int32")]
    pub month: i32,
    /// The classroom's name; "" when unknown, and then not written.
    #[serde(
        default,
        deserialize_with = "super::lenient::text",
        skip_serializing_if = "String::is_empty"
    )]
    pub classroom: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub device_id: String,
    #[serde(default, deserialize_with = "super::lenient::text")]
    pub esp32_name: String,
    pub total_kwh: f64,
    pub on_time_sec: f64,
    pub cost_at_calc_time: f64,
    #[serde(default)]
    pub daily_totals: Vec<DailyTotal>,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}
