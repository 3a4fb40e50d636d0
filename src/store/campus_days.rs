//! The campus's days, summed ahead from the daily rollups (**Ours**): for each campus-local day,
//! `dailycampustotals` holds the campus total (`_id: "YYYY-MM-DD"`: rollups summed, kWh, ₹) and
//! `dailyclassroomtotals` each classroom's part (same `_id`). The aggregation writes both with
//! the rollups; migration 4 wrote them for every day the rollups already had. Trends read the
//! small campus documents of the days they show for their first frame (one `_id` range), and the
//! classroom documents after it. The two documents of a day carry the same `generation`, so that
//! a reader never mixes two writes of a day.
//!
//! One more document, `_id: "history"` in `dailycampustotals`, says from which day on the
//! summaries are complete: a day before it without one had no rollups when they were first
//! written. A later day without one (aggregated by another program) is read from its rollups.

use super::aggregation::date_string;
use super::{Store, StoreError};
use crate::domain::totals::Amount;
use crate::domain::trends::CampusDay;
use crate::domain::{dates, DailyAggregate};
use bson::doc;
use bson::oid::ObjectId;
use chrono::{Days, NaiveDate};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub const CAMPUS_DAYS: &str = "dailycampustotals";
pub const CLASSROOM_DAYS: &str = "dailyclassroomtotals";
/// The `_id` of the document that says from which day on the summaries are complete.
const HISTORY: &str = "history";
/// Days looked up at once.
const LOOKUPS_AT_ONCE: usize = 8;

#[derive(Debug, Serialize, Deserialize)]
struct RoomDoc {
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    classroom: String,
    #[serde(default)]
    total_kwh: f64,
    #[serde(default)]
    cost_at_calc_time: f64,
}

/// A day's campus document.
#[derive(Debug, Serialize, Deserialize)]
struct DayDoc {
    #[serde(rename = "_id")]
    id: String,
    date_string: String,
    generation: ObjectId,
    #[serde(default, deserialize_with = "crate::domain::lenient::int64")]
    rollups: i64,
    #[serde(default)]
    total_kwh: f64,
    #[serde(default)]
    cost_at_calc_time: f64,
}

/// A day's classrooms document.
#[derive(Debug, Serialize, Deserialize)]
struct RoomsDoc {
    #[serde(rename = "_id")]
    id: String,
    date_string: String,
    generation: ObjectId,
    #[serde(default)]
    classrooms: Vec<RoomDoc>,
}

/// One day's campus total as summed ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct DaySummary {
    pub rollups: u32,
    pub amount: Amount,
}

/// The summaries found for a set of days, and from which day on they are complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampusDays {
    pub days: BTreeMap<NaiveDate, DaySummary>,
    pub complete_from: Option<NaiveDate>,
    /// Each day's generation, to match its classrooms document.
    generations: BTreeMap<NaiveDate, ObjectId>,
    /// Days whose document could not be read.
    unreadable: BTreeSet<NaiveDate>,
}

impl CampusDays {
    /// The days of `wanted` that must be read from their rollups: those without a summary, except
    /// the days before the summaries became complete (they had no rollups).
    pub fn unsummarized(&self, wanted: &[NaiveDate]) -> Vec<NaiveDate> {
        wanted
            .iter()
            .copied()
            .filter(|d| !self.days.contains_key(d))
            .filter(|d| {
                self.unreadable.contains(d) || self.complete_from.is_none_or(|from| *d >= from)
            })
            .collect()
    }
}

impl Store {
    /// Writes (or replaces) the summary of one day: its classrooms, then its campus total, both
    /// with a new generation.
    pub async fn write_campus_day(&self, day: &CampusDay) -> Result<(), StoreError> {
        let generation = ObjectId::new();
        let now = bson::DateTime::from_chrono(dates::now_millis());
        let rooms = RoomsDoc {
            id: date_string(day.date),
            date_string: date_string(day.date),
            generation,
            classrooms: day
                .classrooms
                .iter()
                .map(|(c, a)| RoomDoc {
                    classroom: c.clone(),
                    total_kwh: a.kwh,
                    cost_at_calc_time: a.cost,
                })
                .collect(),
        };
        let total = day.total();
        let campus = DayDoc {
            id: date_string(day.date),
            date_string: date_string(day.date),
            generation,
            rollups: i64::from(day.rollups),
            total_kwh: total.kwh,
            cost_at_calc_time: total.cost,
        };
        for (collection, body) in [
            (CLASSROOM_DAYS, bson::to_document(&rooms)),
            (CAMPUS_DAYS, bson::to_document(&campus)),
        ] {
            let mut d = body.map_err(|e| StoreError::Decode(e.to_string()))?;
            d.insert("updatedAt", now);
            let coll = self.collection::<bson::Document>(collection);
            let id = doc! {"_id": date_string(day.date)};
            match coll.replace_one(id.clone(), d.clone()).upsert(true).await {
                Ok(_) => {}
                // Another run created it at the same moment (an upsert is not one step on every
                // server): it exists now, and the same figures replace it.
                Err(e) if super::error::is_duplicate_key(&e) => {
                    coll.replace_one(id, d).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The campus totals of `from..=to` (one `_id` range), and from which day on they are
    /// complete. A document that cannot be read is recorded as unreadable and left out (its day
    /// is then read from the rollups).
    pub async fn campus_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<CampusDays, StoreError> {
        let mut out = CampusDays {
            complete_from: self.summaries_complete_from().await?,
            ..CampusDays::default()
        };
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(CAMPUS_DAYS)
            .find(doc! {"_id": {"$gte": date_string(from), "$lte": date_string(to)}})
            .await?;
        while let Some(raw) = cursor.try_next().await? {
            let Some(d) = self.decode_raw::<DayDoc>(CAMPUS_DAYS, &raw) else {
                // Its day is read from the rollups, whatever `history` says.
                if let Some(date) = raw
                    .get_str("_id")
                    .ok()
                    .and_then(|id| NaiveDate::parse_from_str(id, "%Y-%m-%d").ok())
                {
                    out.unreadable.insert(date);
                }
                continue;
            };
            let Ok(date) = NaiveDate::parse_from_str(&d.date_string, "%Y-%m-%d") else {
                continue;
            };
            out.generations.insert(date, d.generation);
            out.days.insert(
                date,
                DaySummary {
                    rollups: u32::try_from(d.rollups.max(0)).unwrap_or(u32::MAX),
                    amount: Amount {
                        kwh: d.total_kwh,
                        cost: d.cost_at_calc_time,
                    },
                },
            );
        }
        Ok(out)
    }

    /// Each classroom's part of the days of `found` (a lookup each), for the days whose
    /// classrooms document is of the same write as their campus total; the others are left out.
    pub async fn campus_day_classrooms(
        &self,
        found: &CampusDays,
    ) -> Result<BTreeMap<NaiveDate, Vec<(String, Amount)>>, StoreError> {
        let ids: Vec<String> = found.generations.keys().map(|d| date_string(*d)).collect();
        let mut out = BTreeMap::new();
        for raw in self.look_up(CLASSROOM_DAYS, ids, LOOKUPS_AT_ONCE).await? {
            let Some(d) = self.decode_raw::<RoomsDoc>(CLASSROOM_DAYS, &raw) else {
                continue;
            };
            let Ok(date) = NaiveDate::parse_from_str(&d.date_string, "%Y-%m-%d") else {
                continue;
            };
            if found.generations.get(&date) != Some(&d.generation) {
                continue;
            }
            let rooms = d
                .classrooms
                .into_iter()
                .map(|r| {
                    let amount = Amount {
                        kwh: r.total_kwh,
                        cost: r.cost_at_calc_time,
                    };
                    (r.classroom, amount)
                })
                .collect();
            out.insert(date, rooms);
        }
        Ok(out)
    }

    async fn summaries_complete_from(&self) -> Result<Option<NaiveDate>, StoreError> {
        let mark = self
            .collection::<bson::Document>(CAMPUS_DAYS)
            .find_one(doc! {"_id": HISTORY})
            .await?;
        Ok(mark.and_then(|m| {
            m.get_str("complete_from")
                .ok()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        }))
    }

    /// Writes the summary of every day the daily rollups hold (one pass over them), the days in
    /// between that have none as empty, and the day from which the summaries are complete (the
    /// first day with rollups, or yesterday when there are none). Returns the days written and
    /// the rollups read.
    pub async fn summarize_all_days(&self) -> Result<(usize, usize), StoreError> {
        let mut by_day: BTreeMap<NaiveDate, Vec<(String, Amount)>> = BTreeMap::new();
        let mut read = 0;
        self.each_rollup_sum(None, |date, classroom, amount| {
            read += 1;
            by_day
                .entry(date)
                .or_default()
                .push((classroom.to_string(), amount));
        })
        .await?;
        let yesterday = dates::now_millis()
            .date_naive()
            .checked_sub_days(Days::new(1))
            .unwrap_or_default();
        let (first, last) = match (by_day.keys().next(), by_day.keys().next_back()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => (yesterday, yesterday.pred_opt().unwrap_or(yesterday)),
        };
        let mut written = 0;
        for date in first.iter_days().take_while(|d| *d <= last) {
            let rollups = by_day.remove(&date).unwrap_or_default();
            let day = CampusDay::of_rollups(date, rollups.iter().map(|(c, a)| (c.as_str(), *a)));
            self.write_campus_day(&day).await?;
            written += 1;
        }
        self.collection::<bson::Document>(CAMPUS_DAYS)
            .replace_one(
                doc! {"_id": HISTORY},
                doc! {"_id": HISTORY, "complete_from": date_string(first),
                "updatedAt": bson::DateTime::from_chrono(dates::now_millis())},
            )
            .upsert(true)
            .await?;
        Ok((written, read))
    }

    /// The summary of `date` from the rollups just written for it.
    pub(crate) async fn summarize_day(
        &self,
        date: NaiveDate,
        rollups: &[DailyAggregate],
    ) -> Result<(), StoreError> {
        let day = CampusDay::of_rollups(
            date,
            rollups.iter().map(|a| {
                (
                    a.classroom.as_str(),
                    Amount {
                        kwh: a.total_kwh,
                        cost: a.cost_at_calc_time,
                    },
                )
            }),
        );
        self.write_campus_day(&day).await
    }
}

impl Store {
    /// The documents of `ids` that exist, looked up by `_id`, `at_once` at a time (on FerretDB an
    /// `_id` lookup is the one query that does not decode every document of the collection).
    async fn look_up(
        &self,
        collection: &str,
        ids: Vec<String>,
        at_once: usize,
    ) -> Result<Vec<bson::RawDocumentBuf>, StoreError> {
        let coll = self.collection::<bson::RawDocumentBuf>(collection);
        let lookups: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let coll = coll.clone();
                async move { coll.find_one(doc! {"_id": id}).await }
            })
            .collect();
        let found: Vec<Option<bson::RawDocumentBuf>> = futures::stream::iter(lookups)
            .buffered(at_once)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
    }

    #[test]
    fn days_without_a_summary_are_read_from_the_rollups_from_the_first_complete_day_on() {
        let mut found = CampusDays::default();
        found.days.insert(
            d(10),
            DaySummary {
                rollups: 3,
                amount: Amount::default(),
            },
        );
        let wanted = [d(8), d(9), d(10), d(11)];
        // Nothing says the summaries are complete: every day without one is read.
        assert_eq!(found.unsummarized(&wanted), [d(8), d(9), d(11)]);
        found.complete_from = Some(d(9));
        assert_eq!(found.unsummarized(&wanted), [d(9), d(11)]);
        found.complete_from = Some(d(12));
        assert!(found.unsummarized(&wanted).is_empty());
        // A day whose summary could not be read is read from its rollups.
        found.unreadable.insert(d(8));
        assert_eq!(found.unsummarized(&wanted), [d(8)]);
    }
}
