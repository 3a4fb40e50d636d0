//! Reading the daily and monthly rollups (`dailyaggregates`, `monthlyaggregates`). They are written
//! by the aggregation in the energy books.

use super::{collections, Store, StoreError};
use crate::domain::{DailyAggregate, MonthlyAggregate};
use bson::{doc, Document};

/// Which rollups: all filters optional. `from` and `to` are inclusive date strings (`YYYY-MM-DD`
/// for days, `YYYY-MM` for months), which order as text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregateQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    /// The classroom's name.
    pub classroom: Option<String>,
    /// The device's `_id` in hex.
    pub device_id: Option<String>,
}

impl AggregateQuery {
    fn filter(&self, date_field: &str) -> Document {
        let mut f = Document::new();
        let mut range = Document::new();
        if let Some(from) = &self.from {
            range.insert("$gte", from);
        }
        if let Some(to) = &self.to {
            range.insert("$lte", to);
        }
        if !range.is_empty() {
            f.insert(date_field, range);
        }
        if let Some(c) = &self.classroom {
            f.insert("classroom", c);
        }
        if let Some(d) = &self.device_id {
            f.insert("device_id", d);
        }
        f
    }
}

impl Store {
    /// Daily rollups, by date, then classroom, then device.
    pub async fn daily_aggregates(
        &self,
        query: &AggregateQuery,
    ) -> Result<Vec<DailyAggregate>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::DAILY)
            .find(query.filter("date_string"))
            .sort(doc! {"date_string": 1, "classroom": 1, "device_id": 1})
            .await?;
        let mut rows: Vec<DailyAggregate> = self.read_all(collections::DAILY, cursor).await?;
        let names: Vec<&mut String> = rows.iter_mut().map(|r| &mut r.classroom).collect();
        self.resolve_classroom_refs(names).await?;
        Ok(rows)
    }

    /// Monthly rollups, by month, then classroom, then device.
    pub async fn monthly_aggregates(
        &self,
        query: &AggregateQuery,
    ) -> Result<Vec<MonthlyAggregate>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::MONTHLY)
            .find(query.filter("month_string"))
            .sort(doc! {"month_string": 1, "classroom": 1, "device_id": 1})
            .await?;
        let mut rows: Vec<MonthlyAggregate> = self.read_all(collections::MONTHLY, cursor).await?;
        let names: Vec<&mut String> = rows.iter_mut().map(|r| &mut r.classroom).collect();
        self.resolve_classroom_refs(names).await?;
        Ok(rows)
    }
}
