//! What the dashboard asks the runtime to do: `App::update` and the components return effects,
//! the runtime runs them and feeds their results back as events.

use crate::domain::waste::WasteRule;
use crate::domain::{ActivityLog, Actor, Instant};
use crate::mqtt::relay::Command;
use chrono::NaiveDate;

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Publish a relay command; `device_id` and `switch_id` say which switch waits for it.
    Publish {
        device_id: String,
        switch_id: String,
        command: Command,
    },
    /// Record an operator's action in `activitylogs`.
    Record(Box<ActivityLog>),
    SaveTariff {
        price: f64,
        from: Option<Instant>,
        note: String,
        by: Actor,
    },
    Aggregate {
        date: NaiveDate,
        by: Actor,
    },
    /// Stop the running aggregation after the classroom it is on (what it finished stays).
    CancelAggregation,
    SignIn {
        email: String,
        password: String,
    },
    /// Load a theme; it comes back as [`super::event::Event::Theme`].
    ChangeTheme(String),
    /// Read the history the trends view shows (a read: allowed in read-only sessions).
    LoadTrends {
        now: Instant,
        rule: WasteRule,
    },
    /// Measure the largest collections for the health view (a read of every collection's
    /// statistics, which on FerretDB costs with the data: only while the view is open).
    LoadSizes,
    Quit,
}
