//! Reading what `autovolt audit` checks: the ledger day by day, the stored aggregates.

use super::aggregation::{dates_between, day_range};
use super::collections::{DAILY, LEDGER, MONTHLY};
use super::{Store, StoreError};
use crate::domain::audit::{check_dailies, check_monthlies, check_rows, AuditReport, Finding};
use crate::domain::rollup::month_string;
use crate::domain::{DailyAggregate, LedgerRow, MonthlyAggregate};
use bson::{doc, Document};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use futures::TryStreamExt;
use std::collections::BTreeSet;

impl Store {
    /// Audits the campus-local days `from..=to` and the months they touch. Reads only.
    pub async fn audit(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        tz: Tz,
    ) -> Result<AuditReport, StoreError> {
        let mut report = AuditReport {
            from: from.to_string(),
            to: to.to_string(),
            timezone: tz.name().to_string(),
            ..AuditReport::default()
        };
        let mut months = BTreeSet::new();
        for date in dates_between(from, to) {
            months.insert(date.with_day(1).unwrap_or(date));
            let (start, end) = day_range(date, tz);
            let docs: Vec<Document> = self
                .collection::<Document>(LEDGER)
                .find(doc! {"start_ts": {
                    "$gte": bson::DateTime::from_chrono(start),
                    "$lt": bson::DateTime::from_chrono(end),
                }})
                .await?
                .try_collect()
                .await?;
            report.rows_checked += docs.len() as u64;
            let mut rows = Vec::with_capacity(docs.len());
            for d in docs {
                let id = d
                    .get_object_id("_id")
                    .map(|i| i.to_hex())
                    .unwrap_or_else(|_| "?".into());
                match bson::from_document::<LedgerRow>(d) {
                    Ok(r) => rows.push(r),
                    Err(e) => report.findings.push(Finding::UnreadableRow {
                        row_id: id,
                        error: e.to_string(),
                    }),
                }
            }
            report.findings.extend(check_rows(&rows, tz));
            let ds = date.format("%Y-%m-%d").to_string();
            let stored: Vec<DailyAggregate> = self
                .collection::<DailyAggregate>(DAILY)
                .find(doc! {"date_string": &ds})
                .await?
                .try_collect()
                .await?;
            report.daily_checked += stored.len() as u64;
            if stored.is_empty() && !rows.is_empty() {
                report.days_not_aggregated.push(ds.clone());
            }
            report.findings.extend(check_dailies(&ds, &rows, &stored));
        }
        for month in months {
            let ms = month_string(month);
            let dailies: Vec<DailyAggregate> = self
                .collection::<DailyAggregate>(DAILY)
                .find(
                    doc! {"date_string": {"$gte": format!("{ms}-01"), "$lte": format!("{ms}-31")}},
                )
                .await?
                .try_collect()
                .await?;
            let stored: Vec<MonthlyAggregate> = self
                .collection::<MonthlyAggregate>(MONTHLY)
                .find(doc! {"month_string": &ms})
                .await?
                .try_collect()
                .await?;
            report.monthly_checked += stored.len() as u64;
            report
                .findings
                .extend(check_monthlies(month, &dailies, &stored));
        }
        Ok(report)
    }
}
