//! Reading what `autovolt audit` checks: the ledger day by day, the stored aggregates.

use super::aggregation::{dates_between, day_range};
use super::collections::LEDGER;
use super::{AggregateQuery, Store, StoreError};
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
                match self.decode_reporting::<LedgerRow>(LEDGER, d) {
                    Ok(r) => rows.push(r),
                    Err(u) => report.findings.push(Finding::UnreadableRow {
                        row_id: u.id.clone(),
                        error: u.reason(),
                    }),
                }
            }
            let names: Vec<&mut String> = rows.iter_mut().map(|r| &mut r.classroom).collect();
            self.resolve_classroom_refs(names).await?;
            report.findings.extend(check_rows(&rows, tz));
            let ds = date.format("%Y-%m-%d").to_string();
            let stored: Vec<DailyAggregate> = self
                .daily_aggregates(&AggregateQuery {
                    from: Some(ds.clone()),
                    to: Some(ds.clone()),
                    ..AggregateQuery::default()
                })
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
                .daily_aggregates(&AggregateQuery {
                    from: Some(format!("{ms}-01")),
                    to: Some(format!("{ms}-31")),
                    ..AggregateQuery::default()
                })
                .await?;
            let stored: Vec<MonthlyAggregate> = self
                .monthly_aggregates(&AggregateQuery {
                    from: Some(ms.clone()),
                    to: Some(ms.clone()),
                    ..AggregateQuery::default()
                })
                .await?;
            report.monthly_checked += stored.len() as u64;
            report
                .findings
                .extend(check_monthlies(month, &dailies, &stored));
        }
        Ok(report)
    }
}
