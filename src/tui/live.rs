//! Board messages for the dashboard, read with the live pipeline's parser (PROTOCOL.md). Relay
//! commands and their acknowledgement are `mqtt::relay`'s, the same as every other sender's.

use super::event::Live;
use crate::mqtt::message::{self, Event};
use crate::mqtt::topics;

pub const STATE_TOPIC: &str = topics::STATE;
pub const TELEMETRY_TOPIC: &str = topics::TELEMETRY;
pub const SWITCHES_TOPIC: &str = topics::SWITCHES;

/// `None` for messages that change nothing on screen (other topics, `esp32/status`, commands);
/// `Live::Rejected` for a malformed message. Whether a message carries its board's secret is
/// checked against the board (`Campus::apply_live`).
pub fn parse(topic: &str, payload: &[u8]) -> Option<Live> {
    if topic != STATE_TOPIC && topic != TELEMETRY_TOPIC {
        return None;
    }
    match message::parse(topic, payload) {
        Ok(p) => match p.event {
            Event::Status { .. } | Event::Command { .. } => None,
            event => Some(Live::Board(event)),
        },
        Err(_) => Some(Live::Rejected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Mac;
    use serde_json::Value;

    const FIELD_MESSAGES: &str = r#"{"topic":"esp32/status","payload":"online","note":"retained, no device id"}
{"topic":"esp32/state","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","switches":[{"gpio":16,"state":false,"manual_override":false},{"gpio":17,"state":false,"manual_override":false},{"gpio":18,"state":false,"manual_override":false},{"gpio":19,"state":false,"manual_override":false},{"gpio":21,"state":false,"manual_override":false},{"gpio":22,"state":false,"manual_override":false}]},"note":"snapshot on connect"}
{"topic":"esp32/telemetry","payload":{"mac":"A4:CF:12:B3:C4:D5","status":"heartbeat","heap":187332,"uptime":30012,"detectionAllowed":true,"scheduleEnabled":false},"note":"heartbeat: no type, no secret"}
{"topic":"esp32/switches","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","gpio":16,"relayGpio":16,"state":true,"source":"backend","userId":"64b7f0c2a1e4c3b2a1d0e9f8","userName":"Technician"},"note":"command from us"}
{"topic":"esp32/telemetry","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","type":"switch_event","gpio":16,"state":true,"source":"backend","timestamp":41877},"note":"acknowledgement of the command"}
{"topic":"esp32/state","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","switches":[{"gpio":16,"state":true,"manual_override":false},{"gpio":17,"state":false,"manual_override":false},{"gpio":18,"state":false,"manual_override":false},{"gpio":19,"state":false,"manual_override":false},{"gpio":21,"state":false,"manual_override":false},{"gpio":22,"state":false,"manual_override":false}]},"note":"snapshot after the change"}
{"topic":"esp32/telemetry","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","type":"manual_switch","gpio":17,"state":true,"physicalPin":26,"timestamp":58120},"note":"wall switch; a snapshot follows and must not count it twice"}
{"topic":"esp32/state","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","switches":[{"gpio":16,"state":true,"manual_override":false},{"gpio":17,"state":true,"manual_override":true},{"gpio":18,"state":false,"manual_override":false},{"gpio":19,"state":false,"manual_override":false},{"gpio":21,"state":false,"manual_override":false},{"gpio":22,"state":false,"manual_override":false}]},"note":"snapshot after the wall switch"}
{"topic":"esp32/telemetry","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","type":"motion","detected":true,"sensorType":"hc-sr501","timestamp":60211,"detectionAllowed":true,"scheduleEnabled":true,"timezone":"IST-5:30IST","activeWindow":"08:00-18:00","activeDaysMask":62,"localTime":"09:14","wday":2},"note":"occupancy"}
{"topic":"esp32/telemetry","payload":{"mac":"A4:CF:12:B3:C4:D5","secret":"5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887","type":"switch_event","gpio":16,"state":false,"source":"motion","timestamp":95002},"note":"motion auto-off"}
{"topic":"esp32/telemetry","payload":{"mac":"24:6F:28:AA:10:0B","secret":"c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00","type":"switch_event","gpio":21,"state":true,"source":"manual","timestamp":1204},"note":"second board, just rebooted: tiny timestamp"}
{"topic":"esp32/telemetry","payload":{"mac":"24:6F:28:AA:10:0B","secret":"c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00","type":"switch_event","gpio":21,"state":true,"source":"manual","timestamp":1204},"note":"QoS 1 redelivery of the same event"}"#;

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        // The field firmware's recorded messages (fixtures/firmware/messages.jsonl of the design).
        let text = FIELD_MESSAGES;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                let topic = v["topic"].as_str().unwrap_or_default().to_string();
                let payload = match &v["payload"] {
                    Value::String(s) => s.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                };
                (topic, payload)
            })
            .collect()
    }

    #[test]
    fn every_fixture_message_is_understood_or_ignored() {
        let all = fixtures();
        assert!(all.len() > 4);
        for (topic, payload) in &all {
            let parsed = parse(topic, payload);
            match topic.as_str() {
                STATE_TOPIC | TELEMETRY_TOPIC => assert!(
                    !matches!(parsed, Some(Live::Rejected)),
                    "{topic} {}",
                    String::from_utf8_lossy(payload)
                ),
                _ => assert_eq!(parsed, None, "{topic}"),
            }
        }
        assert!(all.iter().any(|(t, p)| matches!(
            parse(t, p),
            Some(Live::Board(Event::SwitchEvent {
                source: message::SwitchSource::Backend,
                gpio: 16,
                state: true,
                ..
            }))
        )));
    }

    #[test]
    fn malformed_messages_are_rejected_not_panicked_on() {
        for bad in [
            &b"not json"[..],
            br#"{"mac":"A4:CF:12:B3:C4:D5","type":"switch_event","gpio":"16","state":true}"#,
            br#"{"mac":"A4:CF:12:B3:C4:D5","type":"switch_event","gpio":16,"state":"on"}"#,
            br#"{"type":"motion","detected":true}"#,
            br#"{"mac":"A4:CF:12:B3:C4:D5","switches":[{"gpio":16"#,
        ] {
            assert_eq!(
                parse(TELEMETRY_TOPIC, bad),
                Some(Live::Rejected),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = vec![b' '; crate::domain::telemetry::MAX_PAYLOAD + 1];
        assert_eq!(parse(STATE_TOPIC, &huge), Some(Live::Rejected));
        assert_eq!(parse("esp32/status", b"online"), None);
    }

    #[test]
    fn lower_case_and_dashed_macs_are_normalised() {
        let p = br#"{"mac":"a4-cf-12-b3-c4-d5","status":"heartbeat","uptime":5}"#;
        assert_eq!(
            parse(TELEMETRY_TOPIC, p).and_then(|l| l.mac()),
            Some(Mac::parse("A4:CF:12:B3:C4:D5").unwrap())
        );
    }
}
