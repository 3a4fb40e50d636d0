//! AutoVolt control: the data layer, the live MQTT pipeline and the terminal dashboard of a campus
//! whose ESP32 relay boards switch classroom loads.

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
