//! Reading what `autovolt audit` checks: the ledger day by day, the stored aggregates.

use super::aggregation::{dates_between, day_range};
use super::collections::{ACTIVITY, LEDGER};
use super::{AggregateQuery, Store, StoreError};
use crate::domain::audit::{
    check_campus_day, check_dailies, check_day_books, check_monthlies, check_rows, check_switch,
    AuditReport, Finding, SwitchBooks,
};
use crate::domain::rollup::month_string;
use crate::domain::Instant;
use crate::domain::{DailyAggregate, LedgerRow, MonthlyAggregate};
use bson::{doc, Document};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use futures::TryStreamExt;
use std::collections::{BTreeSet, HashMap};

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
        // Book entries written after this may belong to rows written while the audit reads.
        let settled = crate::domain::dates::now_millis() - chrono::Duration::seconds(60);
        let mut rows_end: HashMap<(String, String), Instant> = HashMap::new();
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
            for r in &rows {
                let end = rows_end
                    .entry((r.device_id.clone(), r.switch_id.clone()))
                    .or_insert(r.end_ts);
                *end = (*end).max(r.end_ts);
            }
            report.findings.extend(check_rows(&rows, tz));
            let ds = date.format("%Y-%m-%d").to_string();
            if let Some(books) = self.books_to_audit(date).await? {
                report.books_checked += books.len() as u64;
                report
                    .findings
                    .extend(check_day_books(&ds, &rows, &books, settled));
            }
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
            // The day's campus summary, what the Trends view shows.
            let summaries = self.campus_days(date, date).await?;
            if let Some(day) = summaries.days.get(&date) {
                let mut rooms = self.campus_day_classrooms(&summaries).await?.remove(&date);
                if let Some(rooms) = &mut rooms {
                    let names: Vec<&mut String> = rooms.iter_mut().map(|(c, _)| c).collect();
                    self.resolve_classroom_refs(names).await?;
                }
                report.findings.extend(check_campus_day(
                    &ds,
                    &stored,
                    day.amount,
                    rooms.as_deref(),
                ));
            }
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
        let (start, _) = day_range(from, tz);
        let (_, end) = day_range(to, tz);
        let (checked, findings) = self.check_switches(start, end, &rows_end, tz).await?;
        report.switches_checked = checked;
        report.findings.extend(findings);
        Ok(report)
    }

    /// Checks every switch whose last change falls in `[start, end)` against the collector's
    /// activity entries since `start` (see [`check_switch`]); how many, and what disagrees. Reads
    /// each entry once.
    async fn check_switches(
        &self,
        start: Instant,
        end: Instant,
        rows_end: &HashMap<(String, String), Instant>,
        tz: Tz,
    ) -> Result<(u64, Vec<Finding>), StoreError> {
        let since = bson::DateTime::from_chrono(start);
        let entries: Vec<Document> = self
            .collection::<Document>(ACTIVITY)
            .find(doc! {
                "timestamp": {"$gte": since},
                "$or": [
                    {"context.reportedBy": {"$exists": true}},
                    {"action": crate::domain::activity::action::DEVICE_OFFLINE},
                ],
            })
            .await?
            .try_collect()
            .await?;
        let mut last: HashMap<(String, String), Vec<(String, Instant)>> = HashMap::new();
        let mut offline: HashMap<String, Instant> = HashMap::new();
        for e in entries {
            // Read leniently: an entry of another shape is not this check's business.
            let (Ok(device), Ok(action), Ok(at)) = (
                e.get_object_id("deviceId"),
                e.get_str("action"),
                e.get_datetime("timestamp"),
            ) else {
                continue;
            };
            let at = at.to_chrono();
            let device = device.to_hex();
            if action == crate::domain::activity::action::DEVICE_OFFLINE {
                let o = offline.entry(device).or_insert(at);
                *o = (*o).max(at);
                continue;
            }
            let Ok(switch) = e.get_str("switchId") else {
                continue;
            };
            let list = last.entry((device, switch.to_string())).or_default();
            match list.last() {
                Some((_, t)) if *t > at => {}
                Some((_, t)) if *t == at => list.push((action.to_string(), at)),
                _ => *list = vec![(action.to_string(), at)],
            }
        }
        let mut findings = Vec::new();
        let mut checked = 0;
        for device in self.devices().await? {
            let Some(id) = device.ledger_id() else {
                continue;
            };
            for sw in &device.switches {
                let Some(lsc) = sw.last_state_change else {
                    continue;
                };
                if lsc < start || lsc >= end {
                    continue;
                }
                let key = (id.clone(), sw.switch_id.clone());
                let books = SwitchBooks {
                    device_id: id.clone(),
                    switch_id: sw.switch_id.clone(),
                    state: sw.state,
                    last_state_change: Some(lsc),
                    last_activity: last.remove(&key).unwrap_or_default(),
                    offline_at: offline.get(&id).copied(),
                    rows_end: rows_end.get(&key).copied(),
                };
                checked += 1;
                findings.extend(check_switch(&books, tz));
            }
        }
        Ok((checked, findings))
    }
}
