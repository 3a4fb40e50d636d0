//! History read on demand for trends, exports and reports: each classroom's total of a range of
//! days (the campus summaries, a lookup by date each, and the daily rollups of days without one),
//! the daily rollups themselves for exports, and the ledger rows of a range of instants (an index
//! range on `start_ts`), streamed, so that what a read costs grows with the days asked for, never
//! with the ledger.

use super::aggregation::date_string;
use super::collections::{DAILY, LEDGER};
use super::{Store, StoreError};
use crate::domain::totals::Amount;
use crate::domain::trends::DailyBook;
use crate::domain::{DailyAggregate, Instant};
use bson::doc;
use chrono::NaiveDate;
use futures::TryStreamExt;
use std::collections::HashMap;

/// What trends need of a daily rollup.
#[derive(Debug, serde::Deserialize)]
struct RollupSums {
    date_string: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    classroom: String,
    #[serde(default)]
    total_kwh: f64,
    #[serde(default)]
    cost_at_calc_time: f64,
}

/// What trends need of a ledger row.
#[derive(Debug, serde::Deserialize)]
struct IntervalSums {
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    classroom: String,
    start_ts: bson::DateTime,
    end_ts: bson::DateTime,
    #[serde(default)]
    delta_wh: f64,
    #[serde(default)]
    cost_calculation: Option<crate::domain::CostCalculation>,
}

/// One ledger row as trends see it.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerInterval {
    pub classroom: String,
    pub start: Instant,
    pub end: Instant,
    pub amount: Amount,
}

/// Classroom references (ObjectIds read as hex) resolved once each.
#[derive(Default)]
struct Names(HashMap<String, String>);

impl Names {
    async fn resolve(&mut self, store: &Store, name: &mut String) -> Result<(), StoreError> {
        if name.len() != 24 || crate::domain::Id::parse_str(name.as_str()).is_err() {
            return Ok(());
        }
        if let Some(n) = self.0.get(name.as_str()) {
            *name = n.clone();
            return Ok(());
        }
        let key = name.clone();
        store.resolve_classroom_refs(vec![&mut *name]).await?;
        self.0.insert(key, name.clone());
        Ok(())
    }
}

fn day_filter(from: NaiveDate, to: NaiveDate) -> bson::Document {
    doc! {"date_string": {
        "$gte": date_string(from),
        "$lte": date_string(to),
    }}
}

impl Store {
    /// The campus's total of each day of `from..=to`, for a first look: the campus summaries of
    /// those days (a small document each, looked up by date), and the rollups of the days that
    /// have none (aggregated by another program), classrooms included. The classrooms of the
    /// summarized days follow with [`Store::add_classrooms`].
    pub async fn campus_book(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<DailyBook, StoreError> {
        let wanted = super::aggregation::dates_between(from, to);
        let found = self.campus_days(from, to).await?;
        let mut book = DailyBook::default();
        for (date, day) in &found.days {
            book.add_campus(*date, day.rollups, day.amount);
        }
        let unsummarized = found.unsummarized(&wanted);
        if !unsummarized.is_empty() {
            tracing::info!(
                days = unsummarized.len(),
                "days without a campus summary read from their daily rollups (`autovolt \
                 aggregate` over those days writes their summaries)"
            );
            self.each_rollup_sum(Some(&unsummarized), |date, classroom, amount| {
                book.add(date, classroom, amount)
            })
            .await?;
        }
        Ok(book)
    }

    /// Adds the classrooms of the days `book` has only the campus total of: their classrooms
    /// documents, or their rollups where that document is missing or of another write.
    pub async fn add_classrooms(&self, book: &mut DailyBook) -> Result<(), StoreError> {
        let pending: Vec<NaiveDate> = book.rooms_pending().collect();
        let (Some(first), Some(last)) = (pending.first(), pending.last()) else {
            return Ok(());
        };
        let found = self.campus_days(*first, *last).await?;
        let mut rooms = self.campus_day_classrooms(&found).await?;
        let mut names = Names::default();
        let mut from_rollups = Vec::new();
        for date in pending {
            match rooms.remove(&date) {
                Some(list) => {
                    for (mut classroom, amount) in list {
                        names.resolve(self, &mut classroom).await?;
                        book.add_room(date, &classroom, amount);
                    }
                    book.rooms_in(date);
                }
                None => from_rollups.push(date),
            }
        }
        if !from_rollups.is_empty() {
            self.each_rollup_sum(Some(&from_rollups), |date, classroom, amount| {
                book.add_room(date, classroom, amount)
            })
            .await?;
            for date in from_rollups {
                book.rooms_in(date);
            }
        }
        Ok(())
    }

    /// Each classroom's total of each day of `from..=to`: [`Store::campus_book`], then
    /// [`Store::add_classrooms`].
    pub async fn daily_book(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<DailyBook, StoreError> {
        let mut book = self.campus_book(from, to).await?;
        self.add_classrooms(&mut book).await?;
        Ok(book)
    }

    /// Calls `each` with the date, classroom (references resolved to names) and amount of every
    /// rollup of `days` (of every day with `None`): one read of only the four fields needed.
    pub(super) async fn each_rollup_sum(
        &self,
        days: Option<&[NaiveDate]>,
        mut each: impl FnMut(NaiveDate, &str, Amount),
    ) -> Result<(), StoreError> {
        let filter = match days {
            Some(days) => {
                let days: Vec<String> = days.iter().map(|d| date_string(*d)).collect();
                doc! {"date_string": {"$in": days}}
            }
            None => doc! {},
        };
        let mut names = Names::default();
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(DAILY)
            .find(filter)
            .projection(doc! {"_id": 0, "date_string": 1, "classroom": 1, "total_kwh": 1, "cost_at_calc_time": 1})
            .await?;
        while let Some(raw) = cursor.try_next().await? {
            let Some(mut r) = self.decode_raw::<RollupSums>(DAILY, &raw) else {
                continue;
            };
            let Ok(date) = NaiveDate::parse_from_str(&r.date_string, "%Y-%m-%d") else {
                continue;
            };
            names.resolve(self, &mut r.classroom).await?;
            each(
                date,
                &r.classroom,
                Amount {
                    kwh: r.total_kwh,
                    cost: r.cost_at_calc_time,
                },
            );
        }
        Ok(())
    }

    /// Calls `each` with every daily rollup of `from..=to` (optionally of one classroom), by date,
    /// classroom and device, one at a time (an export of years holds one row in memory).
    pub async fn each_daily_aggregate<E: From<StoreError>>(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        classroom: Option<&str>,
        mut each: impl FnMut(DailyAggregate) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut filter = day_filter(from, to);
        if let Some(c) = classroom {
            filter.insert("classroom", c);
        }
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(DAILY)
            .find(filter)
            .sort(doc! {"date_string": 1, "classroom": 1, "device_id": 1})
            .await
            .map_err(StoreError::from)?;
        let mut names = Names::default();
        while let Some(raw) = cursor.try_next().await.map_err(StoreError::from)? {
            let Some(mut a) = self.decode_raw::<DailyAggregate>(DAILY, &raw) else {
                continue;
            };
            names.resolve(self, &mut a.classroom).await?;
            each(a)?;
        }
        Ok(())
    }

    /// Calls `each` with every ledger row starting in `[from, to)`: one index range on
    /// `start_ts`, only the fields needed.
    pub async fn each_ledger_interval(
        &self,
        from: Instant,
        to: Instant,
        mut each: impl FnMut(LedgerInterval),
    ) -> Result<(), StoreError> {
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(LEDGER)
            .find(doc! {"start_ts": {
                "$gte": bson::DateTime::from_chrono(from),
                "$lt": bson::DateTime::from_chrono(to),
            }})
            .projection(doc! {
                "_id": 0, "classroom": 1, "start_ts": 1, "end_ts": 1, "delta_wh": 1,
                "cost_calculation": 1,
            })
            .await?;
        let mut names = Names::default();
        while let Some(raw) = cursor.try_next().await? {
            let Some(mut r) = self.decode_raw::<IntervalSums>(LEDGER, &raw) else {
                continue;
            };
            names.resolve(self, &mut r.classroom).await?;
            each(LedgerInterval {
                classroom: r.classroom,
                start: r.start_ts.to_chrono(),
                end: r.end_ts.to_chrono(),
                amount: Amount {
                    kwh: r.delta_wh / 1000.0,
                    cost: r.cost_calculation.map_or(0.0, |c| c.cost_inr),
                },
            });
        }
        Ok(())
    }
}
