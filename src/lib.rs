//! AutoVolt control: the data layer, the live MQTT pipeline and the terminal dashboard of a campus
//! whose ESP32 relay boards switch classroom loads.
//!
//! # Layout
//!
//! Each folder has one job. From the bottom up:
//!
//! - `domain`: the records and rules of the campus (devices, energy, cost, intervals, schedules,
//!   validation, aggregation arithmetic) as pure functions. No I/O, and it imports nothing else of
//!   the crate.
//! - `format`: figures and times as people read them; pure, on top of `domain` only.
//! - `clock`, `retry`: the time, injectable, and the one wait-before-retrying rule.
//! - `store`: MongoDB (or FerretDB): the connection and one module per collection family; its raw
//!   collections stay inside it. It takes plain values (a URI, a lease, a time zone), never the
//!   configuration.
//! - `mqtt`: the broker: device topics, payload parsing, the connection and relay commands. It
//!   takes a URL and credentials; a switch is written down through [`mqtt::relay::SwitchLog`]
//!   rather than the store.
//! - `config`: the effective configuration (flags, variables, the config file, defaults).
//! - `collect`, `simulate`, `seed`, `servers`, `metrics_http`: the collector daemon, virtual
//!   boards, a generated campus, private test servers and the metrics endpoint.
//! - `tui`: the dashboard: its screens and keys, and the loop that feeds them from the store and
//!   the broker it is given. It starts no servers, collectors or simulated boards.
//! - `cli`: the edge. It reads the configuration and wires everything: the commands, the demo
//!   (broker, database, seeded campus, simulated fleet and collector around the dashboard), and
//!   the store as the relay's switch log.
//!
//! Who may call whom (`tests/architecture.rs` fails on a forbidden import, naming file and line):
//!
//! - `domain` imports only itself and uses no I/O (`tokio`, `mongodb`, `rumqttc`, `std::fs`,
//!   `std::net`, …); `format` imports only `domain`.
//! - `store`, `mqtt` and `domain` import none of `config`, `tui`, `collect` or `cli`.
//! - `store` and `mqtt` do not import each other; `cli` (or a caller that may see both) joins them.
//! - `tui` imports none of `collect`, `simulate`, `seed` or `servers`.
//! - Only `store` opens a raw collection; everything else asks it by a named method.

pub mod cli;
pub mod clock;
pub mod collect;
pub mod config;
pub mod domain;
pub mod format;
pub mod metrics_http;
pub mod mqtt;
pub mod retry;
pub mod seed;
pub mod servers;
pub mod simulate;
pub mod store;
pub mod tui;
