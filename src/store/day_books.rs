//! The day books (**Ours**, [`crate::domain::day_books`]), kept in collections partitioned by
//! time so that what a reader or a writer touches is small by construction: on FerretDB every
//! query, an `_id` lookup included, reads the whole collection it asks, so a collection that grew
//! with the history would make every figure grow with it.
//!
//! - `dailydevicebooks.<YYYY-MM-DD>` holds one document per device (`_id`: the device's ledger id)
//!   for that campus-local day, `rows` keyed by each ledger row's unique key, written by the
//!   ledger's writer right after the rows. Today's figures are one read of today's collection:
//!   the fleet's books and today's entries, whatever the history.
//! - `dailydevicetotals.<YYYY-MM>` holds one document per aggregated day of that month
//!   (`_id: "YYYY-MM-DD"`) with each device's total, written with the day's rollups. The
//!   month-to-date and the projection read this month's (and, early in a month, the previous
//!   month's) collection.
//!
//! Counting is exactly once by construction: an entry's key is its row's unique key, a row just
//! inserted is `$set` (the same figures however often), and a row found already in the ledger (a
//! retry, a replayed batch, a second collector) is added only where its entry is absent. Rows
//! another program writes straight into the ledger are counted when their day is aggregated (the
//! aggregation repairs the day's books from the ledger), and the audit reports a book that
//! disagrees with the ledger.
//!
//! `_id: "history"` in `dailydevicebooks` (that collection holds nothing else) says from which day
//! on the books are complete (migration 5 built them from the ledger from that day on). Readers use
//! the books only from that day on, and the ledger before it, so that a database not migrated yet
//! still shows the right figures.

use super::aggregation::{date_string, day_range, RowSums};
use super::collections::LEDGER;
use super::{Store, StoreError};
use crate::domain::day_books::{self, BookEntry, DayBook};
use crate::domain::interval::local_date;
use crate::domain::totals::{ClosedSwitch, DayTotal};
use crate::domain::{dates, DailyAggregate, Instant, LedgerRow};
use bson::{doc, Bson, Document};
use chrono::NaiveDate;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The collection of the history mark, and the prefix of each day's books.
pub const DAY_BOOKS: &str = "dailydevicebooks";
/// The prefix of each month's device totals (and, unpartitioned, migration 5's collection).
pub const DEVICE_DAYS: &str = "dailydevicetotals";
/// The `_id` of the document that says from which day on the books are complete.
const HISTORY: &str = "history";
/// An entry without a ledger row is removed by a repair only when written this long before the
/// repair read the ledger (a later one may belong to a row being written meanwhile).
const SETTLE: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Serialize, Deserialize)]
struct EntryDoc {
    #[serde(default)]
    s: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    c: String,
    #[serde(default)]
    wh: f64,
    #[serde(default)]
    cost: f64,
    #[serde(default)]
    at: Option<bson::DateTime>,
}

impl EntryDoc {
    fn of(e: &BookEntry) -> EntryDoc {
        EntryDoc {
            s: e.switch_id.clone(),
            c: e.classroom.clone(),
            wh: e.wh,
            cost: e.cost,
            at: e.written_at.map(bson::DateTime::from_chrono),
        }
    }

    fn entry(self) -> BookEntry {
        BookEntry {
            switch_id: self.s,
            classroom: self.c,
            wh: self.wh,
            cost: self.cost,
            written_at: self.at.map(|t| t.to_chrono()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct BookDoc {
    #[serde(
        rename = "_id",
        default,
        deserialize_with = "crate::domain::lenient::text"
    )]
    id: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    device_id: String,
    #[serde(default)]
    rows: BTreeMap<String, EntryDoc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeviceTotalDoc {
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    device_id: String,
    #[serde(default, deserialize_with = "crate::domain::lenient::text")]
    classroom: String,
    #[serde(default)]
    total_kwh: f64,
    #[serde(default)]
    cost_at_calc_time: f64,
}

#[derive(Debug, Serialize, Deserialize)]
struct DeviceDaysDoc {
    #[serde(rename = "_id")]
    id: String,
    date_string: String,
    #[serde(default)]
    devices: Vec<DeviceTotalDoc>,
}

/// The collection of `date`'s books.
pub fn books_of(date: NaiveDate) -> String {
    format!("{DAY_BOOKS}.{}", date_string(date))
}

/// The collection of the device totals of `date`'s month.
pub fn device_days_of(date: NaiveDate) -> String {
    format!("{DEVICE_DAYS}.{}", date.format("%Y-%m"))
}

/// Whether `name` is one of the partitions (a day's books or a month's device totals).
pub fn is_partition(name: &str) -> bool {
    [DAY_BOOKS, DEVICE_DAYS].iter().any(|p| {
        name.strip_prefix(p)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| !rest.is_empty())
    })
}

fn entry_doc(e: &BookEntry) -> Result<Bson, StoreError> {
    bson::to_bson(&EntryDoc::of(e)).map_err(|err| StoreError::Decode(err.to_string()))
}

/// What one repair did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BooksRepaired {
    pub books: usize,
    pub entries_set: usize,
    pub entries_removed: usize,
}

impl Store {
    /// Counts `rows` (just written to the ledger: `duplicate[i]` when row `i` was there already)
    /// in their day books, each exactly once.
    pub(crate) async fn count_in_day_books(
        &self,
        rows: &[LedgerRow],
        duplicate: &[bool],
    ) -> Result<(), StoreError> {
        let mut fresh: BTreeMap<(NaiveDate, &str), Document> = BTreeMap::new();
        let mut again = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let date = local_date(r.start_ts, self.timezone());
            let key = format!("rows.{}", day_books::entry_key(&r.switch_id, r.start_ts));
            let entry = entry_doc(&BookEntry::of(r))?;
            if duplicate.get(i).copied().unwrap_or(false) {
                again.push((date, r.device_id.as_str(), key, entry));
            } else {
                fresh
                    .entry((date, &r.device_id))
                    .or_default()
                    .insert(key, entry);
            }
        }
        for ((date, device_id), mut set) in fresh {
            let coll = self.collection::<Document>(&books_of(date));
            set.insert("date_string", date_string(date));
            set.insert("device_id", device_id);
            let update = doc! {"$set": set};
            match coll
                .update_one(doc! {"_id": device_id}, update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => {}
                // Two writers created the book at once: it exists now.
                Err(e) if super::error::is_duplicate_key(&e) => {
                    coll.update_one(doc! {"_id": device_id}, update).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A row already in the ledger is added only where its book lacks it: a retry after a
        // failure between the two writes counts it, a replay or a second writer does not.
        for (date, device_id, key, entry) in again {
            let result = self
                .collection::<Document>(&books_of(date))
                .update_one(
                    doc! {"_id": device_id, &key: {"$exists": false}},
                    doc! {"$set": {&key: entry, "date_string": date_string(date), "device_id": device_id}},
                )
                .upsert(true)
                .await;
            match result {
                Ok(_) => {}
                // The book has the entry (the upsert tried to create the book again).
                Err(e) if super::error::is_duplicate_key(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// From which day on the books are complete, if they are.
    pub async fn books_complete_from(&self) -> Result<Option<NaiveDate>, StoreError> {
        let mark = self
            .collection::<Document>(DAY_BOOKS)
            .find_one(doc! {"_id": HISTORY})
            .await?;
        Ok(mark.and_then(|m| {
            m.get_str("complete_from")
                .ok()
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        }))
    }

    async fn mark_books_complete_from(&self, date: NaiveDate) -> Result<(), StoreError> {
        self.collection::<Document>(DAY_BOOKS)
            .replace_one(
                doc! {"_id": HISTORY},
                doc! {"_id": HISTORY, "complete_from": date_string(date),
                "updatedAt": bson::DateTime::from_chrono(dates::now_millis())},
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    /// The stored books of `date`, every device's: one read of that day's collection.
    async fn stored_books(&self, date: NaiveDate) -> Result<Vec<DayBook>, StoreError> {
        let name = books_of(date);
        let found: Vec<bson::RawDocumentBuf> = self
            .collection::<bson::RawDocumentBuf>(&name)
            .find(doc! {})
            .await?
            .try_collect()
            .await?;
        Ok(found
            .iter()
            .filter_map(|raw| self.decode_raw::<BookDoc>(&name, raw))
            .map(|b| DayBook {
                // The `_id` is the device's id; `device_id` repeats it for people reading the data.
                device_id: if b.id.is_empty() { b.device_id } else { b.id },
                entries: b.rows.into_iter().map(|(k, e)| (k, e.entry())).collect(),
            })
            .collect())
    }

    /// The books of `date`, when the books are complete for that day.
    async fn complete_books(&self, date: NaiveDate) -> Result<Option<Vec<DayBook>>, StoreError> {
        if self
            .books_complete_from()
            .await?
            .is_none_or(|from| date < from)
        {
            return Ok(None);
        }
        Ok(Some(self.stored_books(date).await?))
    }

    /// Today's (or any day's) closed energy and cost per switch, of the rows written before
    /// `written_before` (all when `None`): from the day's books (one read of a collection of one
    /// document per device) where they are complete, else from the ledger.
    pub async fn closed_totals(
        &self,
        date: NaiveDate,
        written_before: Option<Instant>,
    ) -> Result<Vec<ClosedSwitch>, StoreError> {
        match self.complete_books(date).await? {
            Some(books) => Ok(day_books::closed_switches(&books, written_before)),
            None => {
                self.ledger_closed_totals(date, self.timezone(), written_before)
                    .await
            }
        }
    }

    /// Writes each device's total of `date` from the rollups just written for it.
    pub(crate) async fn write_device_day(
        &self,
        date: NaiveDate,
        rollups: &[DailyAggregate],
    ) -> Result<(), StoreError> {
        let mut by_device: BTreeMap<(&str, &str), (f64, f64)> = BTreeMap::new();
        for a in rollups {
            let t = by_device
                .entry((a.device_id.as_str(), a.classroom.as_str()))
                .or_default();
            t.0 += a.total_kwh;
            t.1 += a.cost_at_calc_time;
        }
        let doc = DeviceDaysDoc {
            id: date_string(date),
            date_string: date_string(date),
            devices: by_device
                .into_iter()
                .map(|((d, c), (kwh, cost))| DeviceTotalDoc {
                    device_id: d.to_string(),
                    classroom: c.to_string(),
                    total_kwh: kwh,
                    cost_at_calc_time: cost,
                })
                .collect(),
        };
        let mut d = bson::to_document(&doc).map_err(|e| StoreError::Decode(e.to_string()))?;
        d.insert(
            "updatedAt",
            bson::DateTime::from_chrono(dates::now_millis()),
        );
        self.collection::<Document>(&device_days_of(date))
            .replace_one(doc! {"_id": date_string(date)}, d)
            .upsert(true)
            .await?;
        Ok(())
    }

    /// Each device's total of each day of `days`: from the device totals of the days' months (one
    /// read of each month's collection), else the day's books where complete. Returns the totals
    /// and the days found in neither.
    pub(crate) async fn device_days(
        &self,
        days: &[NaiveDate],
    ) -> Result<(Vec<DayTotal>, Vec<NaiveDate>), StoreError> {
        let wanted: BTreeSet<NaiveDate> = days.iter().copied().collect();
        let months: BTreeSet<String> = days.iter().map(|d| device_days_of(*d)).collect();
        let mut out = Vec::new();
        let mut found = BTreeSet::new();
        for month in &months {
            let docs: Vec<bson::RawDocumentBuf> = self
                .collection::<bson::RawDocumentBuf>(month)
                .find(doc! {})
                .await?
                .try_collect()
                .await?;
            for raw in docs {
                let Some(d) = self.decode_raw::<DeviceDaysDoc>(month, &raw) else {
                    continue;
                };
                let Ok(date) = NaiveDate::parse_from_str(&d.date_string, "%Y-%m-%d") else {
                    continue;
                };
                if !wanted.contains(&date) || !found.insert(date) {
                    continue;
                }
                out.extend(d.devices.into_iter().map(|t| DayTotal {
                    date,
                    device_id: t.device_id,
                    classroom: t.classroom,
                    amount: crate::domain::totals::Amount {
                        kwh: t.total_kwh,
                        cost: t.cost_at_calc_time,
                    },
                }));
            }
        }
        let mut unknown = Vec::new();
        let complete_from = self.books_complete_from().await?;
        for date in days.iter().copied().filter(|d| !found.contains(d)) {
            if complete_from.is_none_or(|from| date < from) {
                unknown.push(date);
                continue;
            }
            let books = self.stored_books(date).await?;
            out.extend(day_books::day_totals(date, &books));
        }
        Ok((out, unknown))
    }

    /// The books of each day of `from..=to` as the ledger gives them (one pass over the rows of the
    /// range, classroom references resolved), per day and device.
    pub(crate) async fn ledger_books(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, BTreeMap<String, DayBook>>, StoreError> {
        let tz = self.timezone();
        let (start, _) = day_range(from, tz);
        let (_, end) = day_range(to, tz);
        let mut cursor = self
            .collection::<bson::RawDocumentBuf>(LEDGER)
            .find(doc! {"start_ts": {
                "$gte": bson::DateTime::from_chrono(start),
                "$lt": bson::DateTime::from_chrono(end),
            }})
            .projection(doc! {
                "_id": 1, "device_id": 1, "switch_id": 1, "classroom": 1, "delta_wh": 1,
                "cost_calculation": 1, "start_ts": 1, "createdAt": 1,
            })
            .await?;
        let mut rows: Vec<(NaiveDate, String, String, BookEntry)> = Vec::new();
        while let Some(raw) = cursor.try_next().await? {
            let Some(r) = self.decode_raw::<RowSums>(LEDGER, &raw) else {
                continue;
            };
            let start = r.start_ts.to_chrono();
            let key = day_books::entry_key(&r.switch_id, start);
            rows.push((
                local_date(start, tz),
                r.device_id,
                key,
                BookEntry {
                    switch_id: r.switch_id,
                    classroom: r.classroom,
                    wh: r.delta_wh,
                    cost: r.cost_calculation.map_or(0.0, |c| c.cost_inr),
                    written_at: r.created_at.map(|t| t.to_chrono()),
                },
            ));
        }
        let names: Vec<&mut String> = rows.iter_mut().map(|r| &mut r.3.classroom).collect();
        self.resolve_classroom_refs(names).await?;
        let mut out: BTreeMap<NaiveDate, BTreeMap<String, DayBook>> = BTreeMap::new();
        for (date, device, key, entry) in rows {
            out.entry(date)
                .or_default()
                .entry(device.clone())
                .or_insert_with(|| DayBook {
                    device_id: device,
                    entries: BTreeMap::new(),
                })
                .entries
                .insert(key, entry);
        }
        Ok(out)
    }

    /// Makes the stored books of `from..=to` what the ledger gives (entry by entry, so that rows
    /// written meanwhile are kept), reporting each day done to `on_day`.
    pub async fn repair_day_books(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        mut on_day: impl FnMut(NaiveDate),
    ) -> Result<BooksRepaired, StoreError> {
        let settled = dates::now_millis() - SETTLE;
        let mut ledger = self.ledger_books(from, to).await?;
        let mut done = BooksRepaired::default();
        for date in super::aggregation::dates_between(from, to) {
            let coll = self.collection::<Document>(&books_of(date));
            let expected = ledger.remove(&date).unwrap_or_default();
            let stored: BTreeMap<String, DayBook> = self
                .stored_books(date)
                .await?
                .into_iter()
                .map(|b| (b.device_id.clone(), b))
                .collect();
            let devices: BTreeSet<&String> = stored.keys().chain(expected.keys()).collect();
            for device in devices {
                let empty = DayBook::default();
                let want = expected.get(device).unwrap_or(&empty);
                let have = stored.get(device).unwrap_or(&empty);
                let fix = day_books::repair(have, want, settled);
                if fix.is_empty() {
                    continue;
                }
                let mut set = doc! {"date_string": date_string(date), "device_id": device};
                for (k, e) in &fix.set {
                    set.insert(format!("rows.{k}"), entry_doc(e)?);
                }
                let mut update = doc! {"$set": set};
                if !fix.remove.is_empty() {
                    let mut unset = Document::new();
                    for k in &fix.remove {
                        unset.insert(format!("rows.{k}"), "");
                    }
                    update.insert("$unset", unset);
                }
                coll.update_one(doc! {"_id": device}, update)
                    .upsert(true)
                    .await?;
                done.books += 1;
                done.entries_set += fix.set.len();
                done.entries_removed += fix.remove.len();
            }
            on_day(date);
        }
        Ok(done)
    }

    /// Builds the books of `from..=today` from the ledger (one pass), and each device's total of
    /// the aggregated days of `from..today` from their rollups; then marks the books complete from
    /// `from`. Migration 5.
    pub(crate) async fn build_day_books(
        &self,
        from: NaiveDate,
        mut on_day: impl FnMut(NaiveDate, usize),
    ) -> Result<(usize, usize), StoreError> {
        let today = local_date(dates::now_millis(), self.timezone());
        let mut days = 0;
        let repaired = self
            .repair_day_books(from, today, |d| {
                days += 1;
                on_day(d, days);
            })
            .await?;
        let rollups = self
            .daily_aggregates(&super::AggregateQuery {
                from: Some(date_string(from)),
                to: Some(date_string(today)),
                ..super::AggregateQuery::default()
            })
            .await?;
        let mut by_day: BTreeMap<String, Vec<DailyAggregate>> = BTreeMap::new();
        for a in rollups {
            by_day.entry(a.date_string.clone()).or_default().push(a);
        }
        for (ds, rollups) in &by_day {
            let Ok(date) = NaiveDate::parse_from_str(ds, "%Y-%m-%d") else {
                continue;
            };
            if date < today {
                self.write_device_day(date, rollups).await?;
            }
        }
        self.mark_books_complete_from(from).await?;
        Ok((repaired.books, by_day.len()))
    }

    /// The partitions there are (each day's books and each month's device totals), by name.
    pub async fn partitions(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .database()
            .list_collection_names()
            .await?
            .into_iter()
            .filter(|n| is_partition(n))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Drops the books and the device totals, partitioned or not (migration 5 down).
    pub(crate) async fn drop_day_books(&self) -> Result<(), StoreError> {
        for c in self.partitions().await? {
            self.collection::<Document>(&c).drop().await?;
        }
        for c in [DAY_BOOKS, DEVICE_DAYS] {
            self.collection::<Document>(c).drop().await?;
        }
        Ok(())
    }

    /// Moves books and device totals kept in one collection each (as migration 5 first wrote
    /// them: `_id: "YYYY-MM-DD/<device>"` in `dailydevicebooks`, and `dailydevicetotals`) into
    /// their partitions (migration 6 up). Returns the books and the days moved.
    pub(crate) async fn partition_day_books(&self) -> Result<(usize, usize), StoreError> {
        let old = self.collection::<Document>(DAY_BOOKS);
        let books: Vec<Document> = old
            .find(doc! {"_id": {"$ne": HISTORY}})
            .await?
            .try_collect()
            .await?;
        let mut moved = 0;
        for mut book in books {
            let id = book.get_str("_id").unwrap_or_default().to_string();
            let Some((day, device)) = id.split_once('/') else {
                continue;
            };
            let Ok(date) = NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                continue;
            };
            book.insert("_id", device);
            self.collection::<Document>(&books_of(date))
                .replace_one(doc! {"_id": device}, book)
                .upsert(true)
                .await?;
            old.delete_one(doc! {"_id": &id}).await?;
            moved += 1;
        }
        let totals = self.collection::<Document>(DEVICE_DAYS);
        let days: Vec<Document> = totals.find(doc! {}).await?.try_collect().await?;
        for day in &days {
            let id = day.get_str("_id").unwrap_or_default();
            if let Ok(date) = NaiveDate::parse_from_str(id, "%Y-%m-%d") {
                self.collection::<Document>(&device_days_of(date))
                    .replace_one(doc! {"_id": id}, day.clone())
                    .upsert(true)
                    .await?;
            }
        }
        totals.drop().await?;
        Ok((moved, days.len()))
    }

    /// The partitions back into one collection each (migration 6 down): the shape migration 5
    /// first wrote. Returns the books and the days moved.
    pub(crate) async fn unpartition_day_books(&self) -> Result<(usize, usize), StoreError> {
        let (mut books, mut days) = (0, 0);
        for name in self.partitions().await? {
            let from = self.collection::<Document>(&name);
            let docs: Vec<Document> = from.find(doc! {}).await?.try_collect().await?;
            let day_books = name.starts_with(&format!("{DAY_BOOKS}."));
            for mut d in docs {
                if day_books {
                    let device = d.get_str("_id").unwrap_or_default().to_string();
                    let day = name.trim_start_matches(DAY_BOOKS).trim_start_matches('.');
                    let id = format!("{day}/{device}");
                    d.insert("_id", &id);
                    self.collection::<Document>(DAY_BOOKS)
                        .replace_one(doc! {"_id": &id}, d)
                        .upsert(true)
                        .await?;
                    books += 1;
                } else {
                    let id = d.get_str("_id").unwrap_or_default().to_string();
                    self.collection::<Document>(DEVICE_DAYS)
                        .replace_one(doc! {"_id": &id}, d)
                        .upsert(true)
                        .await?;
                    days += 1;
                }
            }
            from.drop().await?;
        }
        Ok((books, days))
    }

    /// The stored books of `date`, for the audit: `None` when the books are not complete for that
    /// day.
    pub(crate) async fn books_to_audit(
        &self,
        date: NaiveDate,
    ) -> Result<Option<Vec<DayBook>>, StoreError> {
        self.complete_books(date).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_named_by_their_day_and_month() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(books_of(d), "dailydevicebooks.2026-03-09");
        assert_eq!(device_days_of(d), "dailydevicetotals.2026-03");
        assert!(is_partition(&books_of(d)));
        assert!(is_partition(&device_days_of(d)));
        for other in [
            DAY_BOOKS,
            DEVICE_DAYS,
            "dailydevicebooks.",
            "dailydevicebooksx.2026-03-09",
            "dailyaggregates",
        ] {
            assert!(!is_partition(other), "{other}");
        }
    }
}
