//! Raw device messages kept for audit and replay (`telemetryevents`).

use super::{dates, Instant};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest device message read (and kept as a dead letter): the firmware's buffer is 1 KiB;
/// anything beyond this is not a board talking.
pub const MAX_PAYLOAD: usize = 64 * 1024;

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
    /// The message as the board sent it, without its `secret`, as JSON text: its keys are the
    /// sender's and never become field names (servers refuse `$`, `.` and NUL in them). Documents
    /// stored as an object by earlier versions read as their JSON text.
    #[serde(deserialize_with = "payload_text")]
    pub payload: String,
    pub event_hash: String,
    #[serde(rename = "createdAt", with = "dates::optional", default)]
    pub created_at: Option<Instant>,
    #[serde(rename = "updatedAt", with = "dates::optional", default)]
    pub updated_at: Option<Instant>,
}

/// A payload stored as text, or (by earlier versions) as a document: its JSON text either way.
fn payload_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match bson::Bson::deserialize(d)? {
        bson::Bson::String(s) => s,
        other => other.into_relaxed_extjson().to_string(),
    })
}

/// The payload's JSON text without `secret` (at the top level, where the firmware puts it).
pub fn without_secret(mut payload: serde_json::Value) -> String {
    if let Some(obj) = payload.as_object_mut() {
        obj.remove("secret");
    }
    payload.to_string()
}

/// SHA-256 (hex) of topic + payload + receive second: the same message delivered twice within a
/// second hashes the same.
pub fn event_hash(topic: &str, payload: &str, received_at: Instant) -> String {
    let mut h = Sha256::new();
    h.update(topic.as_bytes());
    h.update(b"\n");
    h.update(payload.as_bytes());
    h.update(b"\n");
    h.update(received_at.timestamp().to_string().as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn untrusted_keys_stay_text_and_old_documents_read() {
        let p =
            serde_json::json!({"mac": "A", "$where": 1, "a.b": 2, "n\u{0}ul": 3, "secret": "s"});
        let text = without_secret(p);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["$where"], 1);
        assert_eq!(back["a.b"], 2);
        assert_eq!(back["n\u{0}ul"], 3);
        let old = bson::doc! {
            "mac": "A", "classroom": "", "topic": "esp32/telemetry", "type": "heartbeat",
            "received_at": bson::DateTime::now(), "event_hash": "h",
            "payload": {"uptime": 12i64, "status": "heartbeat"},
        };
        let e: TelemetryEvent = bson::from_document(old).unwrap();
        let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(v["uptime"], 12);
    }

    #[test]
    fn secret_is_removed_and_hash_is_per_second() {
        let p = serde_json::json!({"mac": "A4:CF:12:B3:C4:D5", "secret": "abc", "type": "motion"});
        let clean = without_secret(p);
        assert!(!clean.contains("secret"));
        assert!(clean.contains("motion"));
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
