//! Parsing what arrives on the device topics (PROTOCOL.md) into typed events, and the exact shapes
//! the firmware sends, for the simulator.
//!
//! Every rejection is a [`Rejection`] with a short reason code for counters. Nothing here panics on
//! input: the payload is untrusted bytes from the network.

use super::topics;
use crate::domain::telemetry::MAX_PAYLOAD;
use crate::domain::{Mac, Secret};
use serde::Serialize;
use serde_json::{Map, Value};

/// The firmware's `source` of a `switch_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchSource {
    Backend,
    Motion,
    Manual,
    Other(String),
}

impl SwitchSource {
    fn parse(text: &str) -> SwitchSource {
        match text {
            "backend" => SwitchSource::Backend,
            "motion" => SwitchSource::Motion,
            "manual" => SwitchSource::Manual,
            other => SwitchSource::Other(other.to_string()),
        }
    }
}

/// One relay in a state snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayState {
    /// The relay pin.
    pub gpio: i32,
    pub state: bool,
    pub manual_override: bool,
}

/// How a relay command names its relay (the firmware accepts `gpio`, else `relayGpio`, else `index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelaySelector {
    Pin(i32),
    Index(usize),
}

/// A parsed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StateSnapshot {
        mac: Mac,
        secret: Option<Secret>,
        switches: Vec<RelayState>,
    },
    SwitchEvent {
        mac: Mac,
        secret: Option<Secret>,
        gpio: i32,
        state: bool,
        source: SwitchSource,
        timestamp: Option<i64>,
    },
    ManualSwitch {
        mac: Mac,
        secret: Option<Secret>,
        gpio: i32,
        state: bool,
        physical_pin: Option<i32>,
        timestamp: Option<i64>,
    },
    Motion {
        mac: Mac,
        secret: Option<Secret>,
        detected: bool,
        timestamp: Option<i64>,
    },
    Heartbeat {
        mac: Mac,
        uptime: Option<i64>,
        heap: Option<i64>,
    },
    /// `esp32/status`: carries no device id, so it changes nothing.
    Status { online: bool },
    /// A relay command on `esp32/switches` (ours or another back end's).
    Command {
        mac: Mac,
        secret: Option<Secret>,
        relay: RelaySelector,
        state: bool,
    },
    /// A telemetry `type` this project does not know: kept as telemetry, changes nothing.
    UnknownType {
        mac: Mac,
        secret: Option<Secret>,
        type_name: String,
    },
}

impl Event {
    /// The board the message is about (`esp32/status` names none).
    pub fn mac(&self) -> Option<Mac> {
        match self {
            Event::StateSnapshot { mac, .. }
            | Event::SwitchEvent { mac, .. }
            | Event::ManualSwitch { mac, .. }
            | Event::Motion { mac, .. }
            | Event::Heartbeat { mac, .. }
            | Event::Command { mac, .. }
            | Event::UnknownType { mac, .. } => Some(*mac),
            Event::Status { .. } => None,
        }
    }

    /// The secret the message carries, if any.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Event::StateSnapshot { secret, .. }
            | Event::SwitchEvent { secret, .. }
            | Event::ManualSwitch { secret, .. }
            | Event::Motion { secret, .. }
            | Event::Command { secret, .. }
            | Event::UnknownType { secret, .. } => secret.as_ref(),
            Event::Heartbeat { .. } | Event::Status { .. } => None,
        }
    }

    /// Whether the message may act for the board whose secret is `board_secret`: a wrong secret
    /// never, a missing one only for heartbeats (the field firmware sends none with them; they only
    /// refresh presence) and unknown types (kept, never acted on). `Err` is a reason code.
    pub fn trusted_by(&self, board_secret: &Secret) -> Result<(), &'static str> {
        match self.secret() {
            Some(s) if !board_secret.matches(s.expose()) => Err("wrong_secret"),
            None if !matches!(self, Event::Heartbeat { .. } | Event::UnknownType { .. }) => {
                Err("missing_secret")
            }
            _ => Ok(()),
        }
    }

    /// The board's `millis()` when it sent the message (`timestamp`, or a heartbeat's `uptime`).
    pub fn board_millis(&self) -> Option<i64> {
        match self {
            Event::SwitchEvent { timestamp, .. }
            | Event::ManualSwitch { timestamp, .. }
            | Event::Motion { timestamp, .. } => *timestamp,
            Event::Heartbeat { uptime, .. } => *uptime,
            _ => None,
        }
    }

    /// The `type` recorded in `telemetryevents`.
    pub fn kind(&self) -> &str {
        match self {
            Event::StateSnapshot { .. } => "state",
            Event::SwitchEvent { .. } => "switch_event",
            Event::ManualSwitch { .. } => "manual_switch",
            Event::Motion { .. } => "motion",
            Event::Heartbeat { .. } => "heartbeat",
            Event::Status { .. } => "status",
            Event::Command { .. } => "command",
            Event::UnknownType { type_name, .. } => type_name,
        }
    }
}

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("payload of {size} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLarge { size: usize },
    #[error("topic {0:?} is not a device topic")]
    UnknownTopic(String),
    #[error("payload is not UTF-8 text")]
    NotText,
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    #[error("payload is JSON but not an object")]
    NotAnObject,
    #[error("no `mac` field")]
    MissingMac,
    #[error("`mac` is not a MAC address")]
    BadMac,
    #[error("no `{0}` field")]
    MissingField(&'static str),
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("status must be `online` or `offline`")]
    BadStatus,
}

impl Rejection {
    /// A short stable code for counters and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::UnknownTopic(_) => "unknown_topic",
            Rejection::NotText => "not_text",
            Rejection::NotJson(_) => "not_json",
            Rejection::NotAnObject => "not_an_object",
            Rejection::MissingMac => "missing_mac",
            Rejection::BadMac => "bad_mac",
            Rejection::MissingField(_) => "missing_field",
            Rejection::WrongType { .. } => "wrong_type",
            Rejection::BadStatus => "bad_status",
        }
    }
}

/// A parsed message and its JSON (kept, without the secret, as telemetry).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub event: Event,
    pub payload: Value,
}

/// Parses one publish. The size is checked before anything is read.
pub fn parse(topic: &str, payload: &[u8]) -> Result<Parsed, Rejection> {
    if payload.len() > MAX_PAYLOAD {
        return Err(Rejection::TooLarge {
            size: payload.len(),
        });
    }
    if !topics::COLLECTED.contains(&topic) {
        return Err(Rejection::UnknownTopic(topic.chars().take(100).collect()));
    }
    let text = std::str::from_utf8(payload).map_err(|_| Rejection::NotText)?;
    if topic == topics::STATUS {
        let online = match text.trim() {
            "online" => true,
            "offline" => false,
            _ => return Err(Rejection::BadStatus),
        };
        return Ok(Parsed {
            event: Event::Status { online },
            payload: Value::String(text.trim().to_string()),
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        // serde_json's message names a line and column, never the content.
        Rejection::NotJson(e.to_string())
    })?;
    let obj = value.as_object().ok_or(Rejection::NotAnObject)?;
    let event = match topic {
        topics::STATE => parse_state(obj)?,
        topics::SWITCHES => parse_command(obj)?,
        _ => parse_telemetry(obj)?,
    };
    Ok(Parsed {
        event,
        payload: value,
    })
}

fn mac(obj: &Map<String, Value>) -> Result<Mac, Rejection> {
    match obj.get("mac") {
        None | Some(Value::Null) => Err(Rejection::MissingMac),
        Some(Value::String(s)) => Mac::parse(s).map_err(|_| Rejection::BadMac),
        Some(_) => Err(Rejection::BadMac),
    }
}

fn secret(obj: &Map<String, Value>) -> Result<Option<Secret>, Rejection> {
    match obj.get("secret") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(Secret::new(s.clone()))),
        Some(_) => Err(Rejection::WrongType {
            field: "secret",
            expected: "a string",
        }),
    }
}

fn opt_int(obj: &Map<String, Value>, field: &'static str) -> Result<Option<i64>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(Rejection::WrongType {
            field,
            expected: "a whole number",
        }),
    }
}

/// A millisecond counter: a whole number from 0 to 2³²−1.
fn opt_millis(obj: &Map<String, Value>, field: &'static str) -> Result<Option<i64>, Rejection> {
    match opt_int(obj, field)? {
        Some(v) if !(0..=crate::domain::board_clock::MAX_MILLIS).contains(&v) => {
            Err(Rejection::WrongType {
                field,
                expected: "milliseconds from 0 to 4294967295",
            })
        }
        other => Ok(other),
    }
}

fn pin(obj: &Map<String, Value>, field: &'static str) -> Result<Option<i32>, Rejection> {
    match opt_int(obj, field)? {
        None => Ok(None),
        Some(v) => i32::try_from(v)
            .ok()
            .filter(|p| (0..=255).contains(p))
            .map(Some)
            .ok_or(Rejection::WrongType {
                field,
                expected: "a pin number from 0 to 255",
            }),
    }
}

fn req_pin(obj: &Map<String, Value>, field: &'static str) -> Result<i32, Rejection> {
    pin(obj, field)?.ok_or(Rejection::MissingField(field))
}

fn opt_bool(obj: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Rejection::WrongType {
            field,
            expected: "true or false",
        }),
    }
}

fn req_bool(obj: &Map<String, Value>, field: &'static str) -> Result<bool, Rejection> {
    opt_bool(obj, field)?.ok_or(Rejection::MissingField(field))
}

fn parse_state(obj: &Map<String, Value>) -> Result<Event, Rejection> {
    let mac = mac(obj)?;
    let secret = secret(obj)?;
    let list = match obj.get("switches") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Err(Rejection::MissingField("switches")),
        Some(_) => {
            return Err(Rejection::WrongType {
                field: "switches",
                expected: "a list",
            })
        }
    };
    let mut switches = Vec::with_capacity(list.len());
    for item in list {
        let s = item.as_object().ok_or(Rejection::WrongType {
            field: "switches",
            expected: "a list of objects",
        })?;
        switches.push(RelayState {
            gpio: req_pin(s, "gpio")?,
            state: req_bool(s, "state")?,
            manual_override: opt_bool(s, "manual_override")?.unwrap_or(false),
        });
    }
    Ok(Event::StateSnapshot {
        mac,
        secret,
        switches,
    })
}

fn parse_telemetry(obj: &Map<String, Value>) -> Result<Event, Rejection> {
    let mac = mac(obj)?;
    let type_name = match obj.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(Rejection::WrongType {
                field: "type",
                expected: "a string",
            })
        }
    };
    match type_name {
        None => {
            if obj.get("status").and_then(Value::as_str) != Some("heartbeat") {
                return Err(Rejection::MissingField("type"));
            }
            Ok(Event::Heartbeat {
                mac,
                uptime: opt_millis(obj, "uptime")?,
                heap: opt_int(obj, "heap")?,
            })
        }
        Some("switch_event") => Ok(Event::SwitchEvent {
            mac,
            secret: secret(obj)?,
            gpio: req_pin(obj, "gpio")?,
            state: req_bool(obj, "state")?,
            source: match obj.get("source") {
                Some(Value::String(s)) => SwitchSource::parse(s),
                None | Some(Value::Null) => SwitchSource::Other(String::new()),
                Some(_) => {
                    return Err(Rejection::WrongType {
                        field: "source",
                        expected: "a string",
                    })
                }
            },
            timestamp: opt_millis(obj, "timestamp")?,
        }),
        Some("manual_switch") => Ok(Event::ManualSwitch {
            mac,
            secret: secret(obj)?,
            gpio: req_pin(obj, "gpio")?,
            state: req_bool(obj, "state")?,
            physical_pin: pin(obj, "physicalPin")?,
            timestamp: opt_millis(obj, "timestamp")?,
        }),
        Some("motion") => Ok(Event::Motion {
            mac,
            secret: secret(obj)?,
            detected: req_bool(obj, "detected")?,
            timestamp: opt_millis(obj, "timestamp")?,
        }),
        Some(other) => Ok(Event::UnknownType {
            mac,
            secret: secret(obj)?,
            type_name: other.chars().take(64).collect(),
        }),
    }
}

/// A relay command as the firmware reads it: `gpio`, else `relayGpio`, else `index` (0–5); `state`,
/// else `value` (a boolean or 0/1).
fn parse_command(obj: &Map<String, Value>) -> Result<Event, Rejection> {
    let mac = mac(obj)?;
    let relay = if let Some(p) = pin(obj, "gpio")? {
        RelaySelector::Pin(p)
    } else if let Some(p) = pin(obj, "relayGpio")? {
        RelaySelector::Pin(p)
    } else {
        match opt_int(obj, "index")? {
            Some(i @ 0..=5) => RelaySelector::Index(i as usize),
            Some(_) => {
                return Err(Rejection::WrongType {
                    field: "index",
                    expected: "a relay index from 0 to 5",
                })
            }
            None => return Err(Rejection::MissingField("gpio")),
        }
    };
    let state = match opt_bool(obj, "state")? {
        Some(s) => s,
        None => match obj.get("value") {
            Some(Value::Bool(b)) => *b,
            Some(v) if v.as_i64() == Some(0) => false,
            Some(v) if v.as_i64() == Some(1) => true,
            None | Some(Value::Null) => return Err(Rejection::MissingField("state")),
            Some(_) => {
                return Err(Rejection::WrongType {
                    field: "value",
                    expected: "true, false, 0 or 1",
                })
            }
        },
    };
    Ok(Event::Command {
        mac,
        secret: secret(obj)?,
        relay,
        state,
    })
}

/// The payloads a board sends, field for field in the firmware's order.
pub mod board {
    use serde::Serialize;

    #[derive(Debug, Clone, Serialize)]
    pub struct RelayEntry {
        pub gpio: i32,
        pub state: bool,
        pub manual_override: bool,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct State<'a> {
        pub mac: &'a str,
        pub secret: &'a str,
        pub switches: Vec<RelayEntry>,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct SwitchEvent<'a> {
        pub mac: &'a str,
        pub secret: &'a str,
        #[serde(rename = "type")]
        pub kind: &'static str,
        pub gpio: i32,
        pub state: bool,
        pub source: &'static str,
        pub timestamp: u32,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct ManualSwitch<'a> {
        pub mac: &'a str,
        pub secret: &'a str,
        #[serde(rename = "type")]
        pub kind: &'static str,
        pub gpio: i32,
        pub state: bool,
        #[serde(rename = "physicalPin")]
        pub physical_pin: i32,
        pub timestamp: u32,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct Heartbeat<'a> {
        pub mac: &'a str,
        pub status: &'static str,
        pub heap: u32,
        pub uptime: u32,
        #[serde(rename = "detectionAllowed")]
        pub detection_allowed: bool,
        #[serde(rename = "scheduleEnabled")]
        pub schedule_enabled: bool,
    }

    #[derive(Debug, Clone, Serialize)]
    pub struct Motion<'a> {
        pub mac: &'a str,
        pub secret: &'a str,
        #[serde(rename = "type")]
        pub kind: &'static str,
        pub detected: bool,
        #[serde(rename = "sensorType")]
        pub sensor_type: &'static str,
        pub timestamp: u32,
        #[serde(rename = "detectionAllowed")]
        pub detection_allowed: bool,
        #[serde(rename = "scheduleEnabled")]
        pub schedule_enabled: bool,
    }
}

/// Serialises a payload to bytes; our own structs always serialise.
pub fn to_bytes(payload: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(name: &str) -> Vec<(String, Vec<u8>, String)> {
        let path = format!(
            "{}/../../shared/fixtures/firmware/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let path = if std::path::Path::new(&path).exists() {
            path
        } else {
            format!("/work/shared/fixtures/firmware/{name}")
        };
        std::fs::read_to_string(path)
            .expect("fixture")
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("fixture line");
                let topic = v["topic"].as_str().unwrap().to_string();
                let payload = match (&v["payload"], &v["payload_text"]) {
                    (Value::String(s), _) => s.as_bytes().to_vec(),
                    (Value::Null, Value::String(t)) => t.as_bytes().to_vec(),
                    (p, _) => serde_json::to_vec(p).unwrap(),
                };
                (topic, payload, v["note"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }

    #[test]
    fn every_good_fixture_parses_as_annotated() {
        let kinds: Vec<String> = fixture("messages.jsonl")
            .iter()
            .map(|(t, p, note)| {
                parse(t, p)
                    .unwrap_or_else(|e| panic!("{note}: {e}"))
                    .event
                    .kind()
                    .to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "status",
                "state",
                "heartbeat",
                "command",
                "switch_event",
                "state",
                "manual_switch",
                "state",
                "motion",
                "switch_event",
                "switch_event",
                "switch_event"
            ]
        );
        let msgs = fixture("messages.jsonl");
        let p = parse(&msgs[6].0, &msgs[6].1).unwrap();
        assert_eq!(
            p.event,
            Event::ManualSwitch {
                mac: Mac::parse("A4:CF:12:B3:C4:D5").unwrap(),
                secret: Some(Secret::new("5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887")),
                gpio: 17,
                state: true,
                physical_pin: Some(26),
                timestamp: Some(58120),
            }
        );
        let hb = parse(&msgs[2].0, &msgs[2].1).unwrap();
        assert_eq!(hb.event.board_millis(), Some(30012));
        assert!(hb.event.secret().is_none());
    }

    #[test]
    fn bad_fixtures_are_rejected_or_flagged_with_a_reason() {
        let outcomes: Vec<String> = fixture("bad.jsonl")
            .iter()
            .map(|(t, p, _)| match parse(t, p) {
                Err(e) => e.code().to_string(),
                Ok(p) => format!("parsed:{}", p.event.kind()),
            })
            .collect();
        // The parser rejects what is malformed; a wrong secret, an unregistered MAC, an unknown type
        // and an unknown relay pin parse and are refused by the collector, which knows the devices.
        assert_eq!(
            outcomes,
            [
                "not_json",
                "not_json",
                "missing_mac",
                "wrong_type",
                "parsed:switch_event",
                "bad_mac",
                "parsed:switch_event",
                "parsed:firmware_party",
                "parsed:state"
            ]
        );
    }

    #[test]
    fn macs_are_normalised_and_oversized_payloads_rejected_unread() {
        let p = parse(
            topics::TELEMETRY,
            br#"{"mac":"a4-cf-12-b3-c4-d5","status":"heartbeat","uptime":5}"#,
        )
        .unwrap();
        assert_eq!(p.event.mac().unwrap().to_string(), "A4:CF:12:B3:C4:D5");
        let huge = vec![b'{'; MAX_PAYLOAD + 1];
        assert_eq!(
            parse(topics::STATE, &huge),
            Err(Rejection::TooLarge {
                size: MAX_PAYLOAD + 1
            })
        );
    }

    #[test]
    fn commands_follow_the_firmware_fallbacks() {
        let cmd = |text: &str| parse(topics::SWITCHES, text.as_bytes()).map(|p| p.event);
        let Ok(Event::Command { relay, state, .. }) =
            cmd(r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"s","relayGpio":17,"value":1}"#)
        else {
            panic!("relayGpio + value");
        };
        assert_eq!((relay, state), (RelaySelector::Pin(17), true));
        let Ok(Event::Command { relay, state, .. }) =
            cmd(r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"s","index":5,"state":false}"#)
        else {
            panic!("index + state");
        };
        assert_eq!((relay, state), (RelaySelector::Index(5), false));
        assert!(cmd(r#"{"mac":"A4:CF:12:B3:C4:D5","index":6,"state":true}"#).is_err());
        assert!(cmd(r#"{"mac":"A4:CF:12:B3:C4:D5","gpio":16}"#).is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let msgs = fixture("messages.jsonl");
        let p = parse(&msgs[4].0, &msgs[4].1).unwrap();
        assert!(!format!("{:?}", p.event).contains("5f1c0a9e"));
    }

    #[test]
    fn board_shapes_match_the_fixtures_byte_for_byte() {
        let msgs = fixture("messages.jsonl");
        let mac = "A4:CF:12:B3:C4:D5";
        let secret = "5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887";
        let ev = board::SwitchEvent {
            mac,
            secret,
            kind: "switch_event",
            gpio: 16,
            state: true,
            source: "backend",
            timestamp: 41877,
        };
        assert_eq!(to_bytes(&ev), msgs[4].1);
        let manual = board::ManualSwitch {
            mac,
            secret,
            kind: "manual_switch",
            gpio: 17,
            state: true,
            physical_pin: 26,
            timestamp: 58120,
        };
        assert_eq!(to_bytes(&manual), msgs[6].1);
        let state = board::State {
            mac,
            secret,
            switches: [16, 17, 18, 19, 21, 22]
                .iter()
                .map(|&gpio| board::RelayEntry {
                    gpio,
                    state: gpio == 16,
                    manual_override: false,
                })
                .collect(),
        };
        assert_eq!(to_bytes(&state), msgs[5].1);
        let hb = board::Heartbeat {
            mac,
            status: "heartbeat",
            heap: 187332,
            uptime: 30012,
            detection_allowed: true,
            schedule_enabled: false,
        };
        assert_eq!(to_bytes(&hb), msgs[2].1);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null)),
            ".{0,20}".prop_map(Value::String),
            prop_oneof![
                Just("A4:CF:12:B3:C4:D5"),
                Just("switch_event"),
                Just("manual_switch"),
                Just("motion"),
                Just("heartbeat")
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(3, 32, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("mac".to_string()),
                        Just("type".to_string()),
                        Just("gpio".to_string()),
                        Just("state".to_string()),
                        Just("switches".to_string()),
                        Just("timestamp".to_string()),
                        Just("status".to_string()),
                        Just("secret".to_string()),
                        Just("index".to_string()),
                        Just("value".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner,
                    0..8
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), t in 0usize..5) {
            let topic = [topics::STATE, topics::TELEMETRY, topics::STATUS, topics::SWITCHES, "x/y"][t];
            let _ = parse(topic, &bytes);
        }

        #[test]
        fn arbitrary_json_never_panics(v in json_value(), t in 0usize..4) {
            let topic = [topics::STATE, topics::TELEMETRY, topics::STATUS, topics::SWITCHES][t];
            let bytes = serde_json::to_vec(&v).unwrap();
            let _ = parse(topic, &bytes);
        }
    }
}
