//! Who did what (`activitylogs`), newest first.

use super::ledger::{older_than, Page};
use super::{collections, stamp_new, Store, StoreError};
use crate::domain::{ActivityLog, Id, Instant};
use bson::doc;

/// Which entries: all filters optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivityFilter {
    pub device_id: Option<Id>,
    /// The classroom's name.
    pub classroom: Option<String>,
    pub action: Option<String>,
}

/// The last entry of a page: the next page holds the entries strictly older in `(timestamp, _id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCursor {
    pub timestamp: Instant,
    pub id: Id,
}

impl Store {
    /// Records an entry (sets `createdAt`/`updatedAt`); an action or trigger the shared schema does
    /// not know is refused.
    pub async fn log_activity(&self, entry: &ActivityLog) -> Result<Id, StoreError> {
        entry.validate()?;
        let mut e = entry.clone();
        let id = *e.id.get_or_insert_with(Id::new);
        stamp_new(&mut e.created_at, &mut e.updated_at);
        self.collection::<ActivityLog>(collections::ACTIVITY)
            .insert_one(&e)
            .await?;
        self.journal_activity(std::slice::from_ref(&e)).await?;
        Ok(id)
    }

    /// A newest-first page of entries by `(timestamp, _id)`; `before` is the previous page's `next`.
    pub async fn recent_activity(
        &self,
        limit: usize,
        before: Option<ActivityCursor>,
        filter: &ActivityFilter,
    ) -> Result<Page<ActivityLog, ActivityCursor>, StoreError> {
        let mut and = Vec::new();
        if let Some(d) = filter.device_id {
            and.push(doc! {"deviceId": d});
        }
        if let Some(c) = &filter.classroom {
            and.push(doc! {"classroom": c});
        }
        if let Some(a) = &filter.action {
            and.push(doc! {"action": a});
        }
        if let Some(c) = before {
            and.push(older_than("timestamp", c.timestamp, c.id));
        }
        let (mut rows, next) = self
            .newest_first::<ActivityLog>(collections::ACTIVITY, and, "timestamp", limit)
            .await?;
        let names: Vec<&mut String> = rows
            .iter_mut()
            .filter_map(|r: &mut ActivityLog| r.classroom.as_mut())
            .collect();
        self.resolve_classroom_refs(names).await?;
        let next = next.map(|(timestamp, id)| ActivityCursor { timestamp, id });
        Ok(Page { rows, next })
    }
}
