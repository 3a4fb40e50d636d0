//! The rules and records of AutoVolt, with no I/O.
//!
//! Every collection of the database has a record type here, serde-mapped to the exact field names and
//! BSON types the Node back end uses, and every rule (validation, energy, cost, intervals, aggregation
//! arithmetic) is a pure function tested exhaustively.

pub mod activity;
pub mod actor;
pub mod aggregate;
pub mod audit;
pub mod classroom;
pub mod dates;
pub mod day_books;
pub mod device;
pub mod energy;
pub mod firmware;
pub mod health;
pub mod interval;
pub mod lenient;
pub mod mac;
pub mod migration;
pub mod power;
pub mod rollup;
pub mod schedule;
pub mod secret;
pub mod string_enum;
pub mod tariff;
pub mod telemetry;
pub mod totals;
pub mod trends;
pub mod typed_time;
pub mod uri;
pub mod user;
pub mod validation;
pub mod waste;

/// Identifier of a stored document (a MongoDB ObjectId).
pub type Id = bson::oid::ObjectId;

/// A UTC instant, stored as a BSON date.
pub type Instant = chrono::DateTime<chrono::Utc>;

pub use activity::{ActivityLog, TriggeredBy};
pub use actor::{Actor, Authority, Permission};
pub use aggregate::{DailyAggregate, MonthlyAggregate, SwitchBreakdown};
pub use classroom::Classroom;
pub use device::{
    BootClock, Device, DeviceConfig, DeviceStatus, DeviceType, EarlierBoot, Switch, SwitchType,
};
pub use energy::{Confidence, CostCalculation, DataSource, LedgerRow, Quality};
pub use firmware::{FirmwareUpdate, FirmwareUpdateStatus};
pub use mac::Mac;
pub use migration::MigrationRecord;
pub use power::{DeviceTypePower, PowerSettings, PowerUnit};
pub use schedule::{Schedule, ScheduleType, ScheduledSwitch};
pub use secret::Secret;
pub use tariff::{CostVersion, CreatedBy, TariffScope};
pub use telemetry::TelemetryEvent;
pub use user::{Role, User};
pub use validation::ValidationError;
pub mod board_clock;
