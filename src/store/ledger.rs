//! The consumption ledger (`deviceconsumptionledgers`): idempotent batch inserts and newest-first
//! keyset pages on `(start_ts, _id)`.

use super::{collections, Store, StoreError};
use crate::domain::{dates, Id, Instant, LedgerRow};
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use mongodb::error::ErrorKind;

impl Store {
    /// About how many rows the ledger holds (the collection's metadata; for messages).
    pub async fn ledger_rows_estimate(&self) -> Result<u64, StoreError> {
        Ok(self
            .collection::<Document>(collections::LEDGER)
            .estimated_document_count()
            .await?)
    }
}

/// What a batch insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InsertSummary {
    pub inserted: u64,
    /// Rows already present (same device, switch and start): re-delivered, not billed twice.
    pub duplicates: u64,
}

/// One page of a newest-first list and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    pub rows: Vec<T>,
    /// `None` on the last page.
    pub next: Option<C>,
}

/// Which ledger rows: all filters optional; `from` inclusive and `to` exclusive on `start_ts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerQuery {
    /// The device's `_id` in hex.
    pub device_id: Option<String>,
    /// The classroom's name.
    pub classroom: Option<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
}

/// The last row of a page: the next page holds the rows strictly older in `(start_ts, _id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerCursor {
    pub start_ts: Instant,
    pub id: Id,
}

/// The largest page a query may ask for.
pub const MAX_PAGE: usize = 10_000;

/// Rows ready to insert: each validated (an invalid row refuses the whole batch), with its
/// switch type known and its `createdAt` (unless given) and `updatedAt` set.
fn prepared(rows: &[LedgerRow]) -> Result<Vec<LedgerRow>, StoreError> {
    let rows: Vec<LedgerRow> = rows
        .iter()
        .map(|r| r.clone().with_known_switch_type())
        .collect();
    for row in &rows {
        row.validate()?;
    }
    let now = dates::now_millis();
    Ok(rows
        .into_iter()
        .map(|mut r| {
            r.created_at = r.created_at.or(Some(now));
            r.updated_at = Some(now);
            r
        })
        .collect())
}

impl Store {
    /// Inserts rows (unordered, so one duplicate does not stop the rest). Every row is validated
    /// first: an invalid row refuses the whole batch with its [`StoreError::Invalid`]. Rows that hit the unique
    /// `(device_id, switch_id, start_ts)` key count as duplicates, not errors.
    pub async fn insert_ledger_rows(
        &self,
        rows: &[LedgerRow],
    ) -> Result<InsertSummary, StoreError> {
        let docs = prepared(rows)?;
        if docs.is_empty() {
            return Ok(InsertSummary::default());
        }
        let (summary, duplicate) = self.insert_ledger_docs(&docs).await?;
        self.count_in_day_books(&docs, &duplicate).await?;
        // Duplicates too: a retry after a failure between the writes journals them then.
        self.journal_ledger_rows(&docs).await?;
        Ok(summary)
    }

    /// Inserts rows as [`Store::insert_ledger_rows`] does (and counts them in their day books), but
    /// without appending them to the
    /// change journal: for history written before anyone follows the campus (a generated month),
    /// which would fill the journal to its cap with rows no live figure shows, and make every
    /// follower's polling round read all of it.
    pub async fn insert_past_ledger_rows(
        &self,
        rows: &[LedgerRow],
    ) -> Result<InsertSummary, StoreError> {
        let docs = prepared(rows)?;
        if docs.is_empty() {
            return Ok(InsertSummary::default());
        }
        let (summary, duplicate) = self.insert_ledger_docs(&docs).await?;
        self.count_in_day_books(&docs, &duplicate).await?;
        Ok(summary)
    }

    /// Inserts the rows; says what it did and which rows were there already.
    async fn insert_ledger_docs(
        &self,
        docs: &[LedgerRow],
    ) -> Result<(InsertSummary, Vec<bool>), StoreError> {
        let total = docs.len() as u64;
        let mut duplicate = vec![false; docs.len()];
        match self
            .collection::<LedgerRow>(collections::LEDGER)
            .insert_many(docs)
            .ordered(false)
            .await
        {
            Ok(r) => Ok((
                InsertSummary {
                    inserted: r.inserted_ids.len() as u64,
                    duplicates: 0,
                },
                duplicate,
            )),
            Err(e) => {
                let ErrorKind::InsertMany(failure) = &*e.kind else {
                    return Err(e.into());
                };
                if failure.write_concern_error.is_some() {
                    return Err(e.into());
                }
                let errors = failure.write_errors.as_deref().unwrap_or_default();
                if let Some(other) = errors
                    .iter()
                    .find(|w| w.code != super::error::DUPLICATE_KEY)
                {
                    if super::error::driver_fault(&e) == super::error::Fault::Transient {
                        return Err(e.into());
                    }
                    return Err(StoreError::Refused(format!(
                        "ledger row {} was refused by the database: {}",
                        other.index, other.message
                    )));
                }
                for w in errors {
                    if let Some(d) = duplicate.get_mut(w.index) {
                        *d = true;
                    }
                }
                let duplicates = errors.len() as u64;
                Ok((
                    InsertSummary {
                        inserted: total - duplicates,
                        duplicates,
                    },
                    duplicate,
                ))
            }
        }
    }

    /// A newest-first page of ledger rows, ordered by `(start_ts, _id)` descending. `after` is the
    /// previous page's `next`. `limit` is capped at [`MAX_PAGE`].
    pub async fn ledger_page(
        &self,
        query: &LedgerQuery,
        after: Option<LedgerCursor>,
        limit: usize,
    ) -> Result<Page<LedgerRow, LedgerCursor>, StoreError> {
        let mut and = Vec::new();
        if let Some(d) = &query.device_id {
            and.push(doc! {"device_id": d});
        }
        if let Some(c) = &query.classroom {
            and.push(doc! {"classroom": c});
        }
        if let Some(from) = query.from {
            and.push(doc! {"start_ts": {"$gte": bson::DateTime::from_chrono(from)}});
        }
        if let Some(to) = query.to {
            and.push(doc! {"start_ts": {"$lt": bson::DateTime::from_chrono(to)}});
        }
        if let Some(c) = after {
            and.push(older_than("start_ts", c.start_ts, c.id));
        }
        let (mut rows, next) = self
            .newest_first::<LedgerRow>(collections::LEDGER, and, "start_ts", limit)
            .await?;
        let names: Vec<&mut String> = rows.iter_mut().map(|r| &mut r.classroom).collect();
        self.resolve_classroom_refs(names).await?;
        let next = next.map(|(start_ts, id)| LedgerCursor { start_ts, id });
        Ok(Page { rows, next })
    }
}

/// The filter "strictly older than `(t, id)`" in `(field, _id)` order.
pub(crate) fn older_than(field: &str, t: Instant, id: Id) -> Document {
    let t = Bson::DateTime(bson::DateTime::from_chrono(t));
    doc! {"$or": [
        {field: {"$lt": t.clone()}},
        {field: t, "_id": {"$lt": id}},
    ]}
}

impl Store {
    /// Runs a newest-first query on `(field, _id)` of `collection`: the readable documents of the
    /// first `limit`, and where the next page starts when more follow. The next page starts after
    /// the last document read, readable or not, so that unreadable documents (skipped and counted)
    /// never end the pages early.
    pub(crate) async fn newest_first<T>(
        &self,
        collection: &str,
        and: Vec<Document>,
        field: &str,
        limit: usize,
    ) -> Result<(Vec<T>, Option<(Instant, Id)>), StoreError>
    where
        T: serde::de::DeserializeOwned,
    {
        let limit = limit.clamp(1, MAX_PAGE);
        let filter = if and.is_empty() {
            doc! {}
        } else {
            doc! {"$and": and}
        };
        let mut docs: Vec<bson::RawDocumentBuf> = self
            .collection::<bson::RawDocumentBuf>(collection)
            .find(filter)
            .sort(doc! {field: -1, "_id": -1})
            .limit(limit as i64 + 1)
            .await?
            .try_collect()
            .await?;
        let more = docs.len() > limit;
        docs.truncate(limit);
        let next = docs.last().filter(|_| more).and_then(|d| {
            Some((
                d.get_datetime(field).ok()?.to_chrono(),
                d.get_object_id("_id").ok()?,
            ))
        });
        let rows = docs
            .iter()
            .filter_map(|d| self.decode_raw(collection, d))
            .collect();
        Ok((rows, next))
    }
}
