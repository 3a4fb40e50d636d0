//! The store as the relay's [`SwitchLog`]: where the broker layer and the data layer meet for a
//! switch, here at the edge, so that neither imports the other. Every sender of relay commands (the
//! command line, the collectors' schedules) writes through it.

use crate::domain::{ActivityLog, Id};
use crate::mqtt::relay::SwitchLog;
use crate::store::{Store, StoreError};

impl SwitchLog for Store {
    type Error = StoreError;

    async fn classroom_name(&self, id: Id) -> Result<Option<String>, StoreError> {
        Ok(self.classroom_by_id(id).await?.map(|c| c.name))
    }

    async fn log_switch(&self, entry: &ActivityLog) -> Result<(), StoreError> {
        self.log_activity(entry).await.map(|_| ())
    }
}
