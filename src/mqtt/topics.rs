//! The fixed topics of the field firmware (PROTOCOL.md): every board uses the same ones, and the
//! device is named by the `mac` inside the payload.

pub const STATE: &str = "esp32/state";
pub const TELEMETRY: &str = "esp32/telemetry";
pub const STATUS: &str = "esp32/status";
pub const SWITCHES: &str = "esp32/switches";
/// Pin/motion configuration for the boards: never published by this project.
pub const CONFIG: &str = "esp32/config";

/// What the collector subscribes to: what boards send, and the relay commands others send (seen,
/// kept as telemetry, never acted on).
pub const COLLECTED: &[&str] = &[STATE, TELEMETRY, STATUS, SWITCHES];

/// The topic filter to subscribe with: plain, or in the shared subscription `group` so that several
/// collectors split the messages between them.
pub fn subscription(topic: &str, group: Option<&str>) -> String {
    match group {
        Some(g) => format!("$share/{g}/{topic}"),
        None => topic.to_string(),
    }
}

/// A shared-subscription group name must be one topic level without wildcards.
pub fn valid_group(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '+', '#']) && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_subscriptions_prefix_the_group() {
        assert_eq!(subscription(STATE, None), "esp32/state");
        assert_eq!(
            subscription(STATE, Some("autovolt")),
            "$share/autovolt/esp32/state"
        );
        assert!(valid_group("autovolt"));
        assert!(!valid_group("a/b"));
        assert!(!valid_group("#"));
        assert!(!valid_group(""));
    }
}
