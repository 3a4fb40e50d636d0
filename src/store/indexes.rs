//! Every index of SCHEMA.md, with stable names, created only where missing.

use super::{collections as c, Capabilities, Store, StoreError};
use bson::{doc, Document};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use std::time::Duration;

/// How long raw telemetry is kept where the server can expire it.
pub const TELEMETRY_RETENTION: Duration = Duration::from_secs(2 * 365 * 24 * 3600);

/// The collections the live view follows (the polling change feed reads them by `updatedAt`).
pub const LIVE_COLLECTIONS: &[&str] = &[
    c::DEVICES,
    c::LEDGER,
    c::ACTIVITY,
    c::POWER_SETTINGS,
    c::COST_VERSIONS,
    c::DAILY,
];

/// One index: its collection, keys, name and options.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    pub collection: &'static str,
    pub keys: Document,
    /// MongoDB's default name for the keys (`a_1_b_-1`), which Mongoose also uses, so an index
    /// the Node back end made is recognised.
    pub name: String,
    pub unique: bool,
    pub expire_after: Option<Duration>,
}

fn spec(collection: &'static str, keys: Document, unique: bool) -> IndexSpec {
    let name = keys
        .iter()
        .map(|(k, v)| format!("{k}_{v}"))
        .collect::<Vec<_>>()
        .join("_");
    IndexSpec {
        collection,
        keys,
        name,
        unique,
        expire_after: None,
    }
}

/// The indexes this server should have: SCHEMA.md's list, the TTL one only where supported.
pub fn index_specs(caps: &Capabilities) -> Vec<IndexSpec> {
    let mut v = vec![
        spec(c::USERS, doc! {"email": 1}, true),
        spec(c::USERS, doc! {"role": 1}, false),
        spec(c::USERS, doc! {"createdAt": -1}, false),
        spec(c::CLASSROOMS, doc! {"name": 1}, true),
        spec(c::DEVICES, doc! {"macAddress": 1}, true),
        spec(c::DEVICES, doc! {"classroom": 1}, false),
        spec(c::DEVICES, doc! {"status": 1}, false),
        spec(c::DEVICES, doc! {"type": 1}, false),
        spec(c::DEVICES, doc! {"switches.switchId": 1}, false),
        spec(c::DEVICES, doc! {"classroom": 1, "status": 1}, false),
        spec(c::LEDGER, doc! {"device_id": 1}, false),
        spec(c::LEDGER, doc! {"classroom": 1}, false),
        spec(c::LEDGER, doc! {"start_ts": 1}, false),
        spec(c::LEDGER, doc! {"end_ts": 1}, false),
        spec(c::LEDGER, doc! {"device_id": 1, "start_ts": 1}, false),
        spec(c::LEDGER, doc! {"classroom": 1, "start_ts": 1}, false),
        spec(c::LEDGER, doc! {"start_ts": 1, "end_ts": 1}, false),
        spec(
            c::LEDGER,
            doc! {"device_id": 1, "switch_id": 1, "start_ts": 1},
            true,
        ),
        spec(c::DAILY, doc! {"date_string": 1}, false),
        spec(c::DAILY, doc! {"classroom": 1}, false),
        spec(c::DAILY, doc! {"classroom": 1, "date_string": 1}, false),
        spec(c::DAILY, doc! {"device_id": 1, "date_string": 1}, true),
        spec(c::MONTHLY, doc! {"device_id": 1, "month_string": 1}, true),
        spec(c::MONTHLY, doc! {"classroom": 1, "month_string": 1}, false),
        spec(c::TELEMETRY, doc! {"event_hash": 1}, true),
        spec(c::TELEMETRY, doc! {"device_id": 1, "received_at": 1}, false),
        // Ours: newest-first keyset pages on (time, _id) walk these backwards with no sort stage.
        spec(
            c::LEDGER,
            doc! {"device_id": 1, "start_ts": 1, "_id": 1},
            false,
        ),
        spec(
            c::LEDGER,
            doc! {"classroom": 1, "start_ts": 1, "_id": 1},
            false,
        ),
        spec(c::ACTIVITY, doc! {"timestamp": 1, "_id": 1}, false),
    ];
    if caps.ttl_indexes {
        let mut ttl = spec(c::TELEMETRY, doc! {"received_at": 1}, false);
        ttl.expire_after = Some(TELEMETRY_RETENTION);
        v.push(ttl);
        let mut dead = spec(
            super::deadletters::DEAD_LETTERS,
            doc! {"createdAt": 1},
            false,
        );
        dead.expire_after = Some(super::deadletters::DEAD_LETTER_RETENTION);
        v.push(dead);
    }
    for coll in LIVE_COLLECTIONS {
        v.push(spec(coll, doc! {"updatedAt": 1}, false));
    }
    v
}

/// What [`Store::ensure_indexes`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// `collection.name` of each index created.
    pub created: Vec<String>,
    /// Indexes that were already there.
    pub existing: usize,
}

impl Store {
    /// Creates every index of [`index_specs`] that is missing (by name). A second run creates
    /// nothing. Creating an index also creates its collection.
    pub async fn ensure_indexes(&self) -> Result<IndexReport, StoreError> {
        let mut report = IndexReport::default();
        for s in index_specs(self.capabilities()) {
            let present = self.index_names(s.collection).await?;
            if present.contains(&s.name) {
                report.existing += 1;
                continue;
            }
            let options = IndexOptions::builder()
                .name(s.name.clone())
                .unique(s.unique.then_some(true))
                .expire_after(s.expire_after)
                .build();
            self.collection::<Document>(s.collection)
                .create_index(IndexModel::builder().keys(s.keys).options(options).build())
                .await
                .map_err(|e| {
                    StoreError::Conflict(format!(
                        "cannot create index {} on {}: {e}; if duplicates already exist in a unique \
                         key, remove them and run `autovolt migrate up` again",
                        s.name, s.collection
                    ))
                })?;
            report.created.push(format!("{}.{}", s.collection, s.name));
        }
        Ok(report)
    }

    /// The names of a collection's indexes (none for a collection that does not exist).
    pub async fn index_names(&self, collection: &str) -> Result<Vec<String>, StoreError> {
        match self
            .collection::<Document>(collection)
            .list_index_names()
            .await
        {
            Ok(n) => Ok(n),
            Err(e) if super::error::error_code(&e) == Some(NAMESPACE_NOT_FOUND) => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Drops the indexes of [`index_specs`] that exist; data is never touched.
    pub async fn drop_schema_indexes(&self) -> Result<Vec<String>, StoreError> {
        let mut dropped = Vec::new();
        for s in index_specs(self.capabilities()) {
            if self.index_names(s.collection).await?.contains(&s.name) {
                self.collection::<Document>(s.collection)
                    .drop_index(&s.name)
                    .await?;
                dropped.push(format!("{}.{}", s.collection, s.name));
            }
        }
        Ok(dropped)
    }

    /// Deletes raw telemetry received before `before`: the TTL index's job, done by hand where the
    /// server has no TTL indexes. Returns how many events were (or, in a dry run, would be) deleted.
    pub async fn prune_telemetry(
        &self,
        before: crate::domain::Instant,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        let filter = doc! {"received_at": {"$lt": bson::DateTime::from_chrono(before)}};
        let coll = self.collection::<Document>(c::TELEMETRY);
        if dry_run {
            return Ok(coll.count_documents(filter).await?);
        }
        Ok(coll.delete_many(filter).await?.deleted_count)
    }

    /// Names of the collections that exist.
    pub async fn collection_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = self
            .database()
            .list_collections()
            .await?
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The collections a health check looks at: every one but the older partitions (the books of
    /// days before the newest, the device totals of months before the newest), so that its cost
    /// grows with the schema, not with the days of history.
    pub async fn current_collection_names(&self) -> Result<Vec<String>, StoreError> {
        let names = self.collection_names().await?;
        let newest = |prefix: &str| {
            names
                .iter()
                .filter(|n| super::day_books::is_partition(n) && n.starts_with(prefix))
                .max()
                .cloned()
        };
        let keep = [
            newest(&format!("{}.", super::day_books::DAY_BOOKS)),
            newest(&format!("{}.", super::day_books::DEVICE_DAYS)),
        ];
        Ok(names
            .iter()
            .filter(|n| !super::day_books::is_partition(n) || keep.contains(&Some((*n).clone())))
            .cloned()
            .collect())
    }
}

/// MongoDB's "namespace not found" code.
const NAMESPACE_NOT_FOUND: i32 = 26;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_mongodb_default_naming() {
        let specs = index_specs(&Capabilities::default());
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"device_id_1_switch_id_1_start_ts_1"));
        assert!(names.contains(&"createdAt_-1"));
        assert!(names.contains(&"switches.switchId_1"));
    }

    #[test]
    fn ttl_only_where_supported() {
        let without = index_specs(&Capabilities::default());
        assert!(without.iter().all(|s| s.expire_after.is_none()));
        let with = index_specs(&Capabilities {
            ttl_indexes: true,
            ..Capabilities::default()
        });
        let ttl: Vec<_> = with.iter().filter(|s| s.expire_after.is_some()).collect();
        assert_eq!(ttl.len(), 2);
        assert_eq!(ttl[0].collection, c::TELEMETRY);
        assert_eq!(ttl[1].collection, super::super::deadletters::DEAD_LETTERS);
    }

    #[test]
    fn no_two_specs_share_a_name_in_a_collection() {
        let specs = index_specs(&Capabilities {
            ttl_indexes: true,
            ..Capabilities::default()
        });
        let mut seen = std::collections::HashSet::new();
        for s in &specs {
            assert!(seen.insert((s.collection, s.name.clone())), "{s:?}");
        }
        for coll in LIVE_COLLECTIONS {
            assert!(specs
                .iter()
                .any(|s| s.collection == *coll && s.name == "updatedAt_1"));
        }
    }
}
