//! Raw device messages kept for audit and replay (`telemetryevents`).

use super::{dates, Instant};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryEvent {
    /// The device's `_id` in hex, when the MAC is registered.
    #[serde(
        default,
        deserialize_with = "super::lenient::optional_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_id: Option<String>,
    pub mac: String,
    /// The classroom's name; "" when unknown, and then not written.
    #[serde(
        default,
        deserialize_with = "super::lenient::text",
        skip_serializing_if = "String::is_empty"
    )]
    pub classroom: String,
    pub topic: String,
    /// The telemetry `type`, `heartbeat`, `state` or `status`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "dates::required")]
    pub received_at: Instant,
    /// The message as the board sent it, without its `secret`.
    pub payload: serde_json::Value,
    pub event_hash: String,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

/// Removes `secret` from a payload (at the top level, where the firmware puts it).
pub fn without_secret(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = payload.as_object_mut() {
        obj.remove("secret");
    }
    payload
}

/// SHA-256 (hex) of topic + payload + receive second: the same message delivered twice within a
/// second hashes the same.
pub fn event_hash(topic: &str, payload: &serde_json::Value, received_at: Instant) -> String {
    let mut h = Sha256::new();
    h.update(topic.as_bytes());
    h.update(b"\n");
    h.update(payload.to_string().as_bytes());
    h.update(b"\n");
    h.update(received_at.timestamp().to_string().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn secret_is_removed_and_hash_is_per_second() {
        let p = serde_json::json!({"mac": "A4:CF:12:B3:C4:D5", "secret": "abc", "type": "motion"});
        let clean = without_secret(p);
        assert!(clean.get("secret").is_none());
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 10, 0, 0)
            .unwrap();
        let same_second = t + chrono::Duration::milliseconds(900);
        let next_second = t + chrono::Duration::milliseconds(1000);
        assert_eq!(
            event_hash("esp32/telemetry", &clean, t),
            event_hash("esp32/telemetry", &clean, same_second)
        );
        assert_ne!(
            event_hash("esp32/telemetry", &clean, t),
            event_hash("esp32/telemetry", &clean, next_second)
        );
        assert_ne!(
            event_hash("esp32/state", &clean, t),
            event_hash("esp32/telemetry", &clean, t)
        );
    }
}
