//! Trends: the last days as bars, today's load curve, the costliest rooms of the month. History
//! is read when the view opens, at a cost that grows with the days shown: first the campus total
//! of each day shown (a small document a day, looked up by its date), which is all the first
//! frame needs; then each day's classrooms (for a classroom's bars); then, in one pass over the
//! month's ledger rows, today's load curves and the month's waste. Today's figures come from the
//! running totals.

use super::event::{Event, TrendsUpdate};
use crate::domain::interval::{local_date, local_midnight};
use crate::domain::totals::Amount;
use crate::domain::trends::{month_start, outside_hours, DailyBook, LoadCurve};
use crate::domain::waste::WasteRule;
use crate::domain::Instant;
use crate::store::Store;
use chrono::{Days, Months, NaiveDate};
use chrono_tz::Tz;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// Days of bars the view shows at most.
pub const DAYS_SHOWN: u64 = 30;
/// Rooms in each top list.
pub const TOP: usize = 10;

/// The history the view reads first: each classroom's total of the days shown.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendsData {
    /// The campus-local day it was read on.
    pub day: NaiveDate,
    /// The first and last day read (the bars, and the month before for comparison).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub book: DailyBook,
}

/// What one pass over the month's ledger rows gives, after the first frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LedgerFigures {
    /// The ₹ and kWh used outside campus hours per classroom (the ledger's name; "" for none).
    pub waste: BTreeMap<String, Amount>,
    /// The last day's closed ledger rows per classroom, as load curves.
    pub curves: BTreeMap<String, LoadCurve>,
}

/// The view's state: what is loaded, and which scope the charts show.
#[derive(Debug, Clone, Default)]
pub struct TrendsState {
    pub loading: bool,
    pub data: Option<TrendsData>,
    /// This month's waste and today's load curves, once the month's ledger is read.
    pub ledger: Option<LedgerFigures>,
    pub error: Option<String>,
    /// The classroom the charts show (its ledger name), or the campus.
    pub scope: Option<String>,
}

impl TrendsState {
    pub fn apply(&mut self, update: TrendsUpdate) {
        match update {
            TrendsUpdate::Loaded(data) => {
                self.data = Some(*data);
                self.error = None;
            }
            TrendsUpdate::Classrooms(book) => {
                if let Some(data) = &mut self.data {
                    data.book = *book;
                }
            }
            TrendsUpdate::Ledger(figures) => {
                self.ledger = Some(*figures);
                self.loading = false;
            }
            TrendsUpdate::Failed(e) => {
                self.error = Some(e);
                self.loading = false;
            }
        }
    }

    /// Whether the loaded history is for `today` (else it is read again).
    pub fn is_current(&self, today: NaiveDate) -> bool {
        self.data.as_ref().is_some_and(|d| d.day == today)
    }
}

/// The days of rollups the view needs on `today`: the bars' days before today and the month
/// before this one from its first day (for the comparison).
pub fn days_needed(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let bars = today
        .checked_sub_days(Days::new(DAYS_SHOWN - 1))
        .unwrap_or(today);
    let last_month = month_start(today)
        .checked_sub_months(Months::new(1))
        .unwrap_or(today);
    (bars.min(last_month), today.pred_opt().unwrap_or(today))
}

/// Reads the days shown and sends them, then the month's ledger figures; a failure is sent as
/// such (the view says it and keeps what it had).
pub async fn load(store: &Store, now: Instant, tz: Tz, rule: &WasteRule, tx: &mpsc::Sender<Event>) {
    let day = local_date(now, tz);
    let started = std::time::Instant::now();
    let data = match read(store, day).await {
        Ok(d) => d,
        Err(e) => {
            let _ = tx
                .send(Event::Trends(TrendsUpdate::Failed(e.to_string())))
                .await;
            return;
        }
    };
    tracing::info!(
        took_ms = started.elapsed().as_millis() as u64,
        "trends history read"
    );
    let mut book = data.book.clone();
    let _ = tx
        .send(Event::Trends(TrendsUpdate::Loaded(Box::new(data))))
        .await;
    let update = match store.add_classrooms(&mut book).await {
        Ok(()) => TrendsUpdate::Classrooms(Box::new(book)),
        Err(e) => TrendsUpdate::Failed(format!("the classrooms' days not read: {e}")),
    };
    let _ = tx.send(Event::Trends(update)).await;
    let update = match ledger_figures(store, month_start(day), day, tz, rule).await {
        Ok(f) => TrendsUpdate::Ledger(Box::new(f)),
        Err(e) => TrendsUpdate::Failed(format!("this month's ledger not read: {e}")),
    };
    let _ = tx.send(Event::Trends(update)).await;
}

/// The campus's total of the days the view needs on `day` (their classrooms follow).
pub async fn read(store: &Store, day: NaiveDate) -> Result<TrendsData, crate::store::StoreError> {
    let (from, to) = days_needed(day);
    let book = store.campus_book(from, to).await?;
    Ok(TrendsData {
        day,
        from,
        to,
        book,
    })
}

/// One pass over the ledger rows of `first..=last`: the energy and ₹ used outside campus hours
/// per classroom, and `last`'s rows as load curves per classroom.
pub async fn ledger_figures(
    store: &Store,
    first: NaiveDate,
    last: NaiveDate,
    tz: Tz,
    rule: &WasteRule,
) -> Result<LedgerFigures, crate::store::StoreError> {
    let from = local_midnight(first, tz);
    let (last_start, to) = crate::store::aggregation::day_range(last, tz);
    let mut figures = LedgerFigures::default();
    store
        .each_ledger_interval(from, to, |r| {
            let part = outside_hours(r.start, r.end, r.amount, tz, |t| rule.open_at(t));
            if r.start >= last_start {
                figures
                    .curves
                    .entry(r.classroom.clone())
                    .or_insert_with(|| LoadCurve::new(last, tz))
                    .add(r.start, r.end, r.amount.kwh);
            }
            figures.waste.entry(r.classroom).or_default().add(part);
        })
        .await?;
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_days_needed_cover_the_bars_and_the_month_before() {
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        assert_eq!(days_needed(d(11, 24)), (d(10, 1), d(11, 23)));
        // Late in a month the bars reach back less far than the month before starts.
        assert_eq!(days_needed(d(12, 31)), (d(11, 1), d(12, 30)));
        assert_eq!(days_needed(d(3, 2)), (d(2, 1), d(3, 1)));
    }
}
