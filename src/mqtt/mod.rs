//! MQTT: the device topics, payload parsing (PROTOCOL.md), the broker connection and relay commands.

pub mod connection;
pub mod message;
pub mod relay;
pub mod topics;
