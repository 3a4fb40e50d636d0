//! The power settings singleton and the tariff history (`powersettings`, `costversions`).
//!
//! No transactions (FerretDB has none): every write is one single-document atomic operation, and
//! readers resolve any in-between state the same way (the newest active document wins).

use super::collections::{COST_VERSIONS, POWER_SETTINGS};
use super::{Store, StoreError};
use crate::domain::activity::action;
use crate::domain::dates;
use crate::domain::tariff::{closures, TariffBook, TariffChange, TariffTarget};
use crate::domain::{
    ActivityLog, Actor, CostVersion, CreatedBy, Id, Instant, Permission, PowerSettings, TriggeredBy,
};
use bson::{doc, Document};
use futures::TryStreamExt;

/// How often a save retries when concurrent saves keep taking its version number.
const SAVE_ATTEMPTS: usize = 20;

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<Document, StoreError> {
    bson::to_document(value).map_err(|e| StoreError::Decode(format!("{what}: {e}")))
}

/// The `_id` of the power settings document with this version: "avps" then the number, big-endian.
fn power_settings_id(version: i64) -> Id {
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(b"avps");
    bytes[4..].copy_from_slice(&version.to_be_bytes());
    Id::from_bytes(bytes)
}

/// The query selecting the versions of exactly one target.
pub(crate) fn target_filter(target: &TariffTarget) -> Document {
    match target {
        TariffTarget::Global => doc! {"scope": "global"},
        TariffTarget::Classroom(name) => doc! {"scope": "classroom", "classroom": name},
        TariffTarget::Device(id) => doc! {"scope": "device", "device_id": id},
    }
}

/// The query selecting every version that may apply to a device in a classroom.
fn applicable_filter(device_id: &str, classroom: &str) -> Document {
    doc! {"$or": [
        {"scope": "global"},
        {"scope": "classroom", "classroom": classroom},
        {"scope": "device", "device_id": device_id},
    ]}
}

impl Store {
    /// The power settings in force: the active document with the highest `version` (ties, which
    /// only exist while two saves race, go to the higher `_id`, as the saves themselves decide).
    /// One that cannot be read is skipped (and counted): the next readable one is in force.
    pub async fn active_power_settings(&self) -> Result<Option<PowerSettings>, StoreError> {
        let mut cursor = self
            .collection::<Document>(POWER_SETTINGS)
            .find(doc! {"isActive": true})
            .sort(doc! {"version": -1, "_id": -1})
            .await?;
        while let Some(d) = cursor.try_next().await? {
            if let Some(settings) = self.decode(POWER_SETTINGS, d) {
                return Ok(Some(settings));
            }
        }
        Ok(None)
    }

    async fn highest_power_settings_version(&self) -> Result<i64, StoreError> {
        let found = self
            .collection::<Document>(POWER_SETTINGS)
            .find_one(doc! {})
            .sort(doc! {"version": -1})
            .await?;
        Ok(found
            .and_then(|d| {
                d.get_i64("version")
                    .ok()
                    .or(d.get_i32("version").ok().map(i64::from))
            })
            .unwrap_or(0))
    }

    /// Saves power settings under the singleton rule: the saved table becomes a new document with
    /// the next `version` (1 for the first), and saving an active one deactivates every other.
    ///
    /// Every save writes a new document, whose `_id` is derived from its version number, so that two
    /// saves claiming the same number collide on the primary key: the one check that is atomic on
    /// every server (FerretDB rewrites whole documents on update, so a compare-and-set by update is
    /// not). Saving a table read earlier (`id` set) is refused with `Conflict` when someone saved in
    /// between; a new table (`id` unset) simply takes the next number.
    pub async fn save_power_settings(
        &self,
        settings: &PowerSettings,
    ) -> Result<PowerSettings, StoreError> {
        settings.validate()?;
        let coll = self.collection::<Document>(POWER_SETTINGS);
        for _ in 0..SAVE_ATTEMPTS {
            let highest = self.highest_power_settings_version().await?;
            if settings.id.is_some() && settings.version != highest {
                return Err(StoreError::Conflict(format!(
                    "the power settings were changed by someone else (now version {highest}, yours is {}); reload them and save again",
                    settings.version
                )));
            }
            let now = dates::now_millis();
            let saved = PowerSettings {
                id: Some(power_settings_id(highest + 1)),
                version: highest + 1,
                created_at: Some(now),
                updated_at: Some(now),
                ..settings.clone()
            };
            match coll.insert_one(encode("power settings", &saved)?).await {
                Ok(_) => {}
                Err(e) if super::error::is_duplicate_key(&e) && settings.id.is_none() => continue,
                Err(e) if super::error::is_duplicate_key(&e) => {
                    return Err(StoreError::Conflict(format!(
                        "the power settings were changed by someone else at the same moment (version {} is taken); reload them and save again",
                        highest + 1
                    )))
                }
                Err(e) => return Err(e.into()),
            }
            if saved.is_active {
                coll.update_many(
                    doc! {"isActive": true, "version": {"$lt": saved.version}},
                    doc! {"$set": {"isActive": false, "updatedAt": bson::DateTime::from_chrono(now)}},
                )
                .await?;
            }
            return Ok(saved);
        }
        Err(StoreError::Conflict(format!(
            "the power settings kept changing under {SAVE_ATTEMPTS} attempts to save them; try again"
        )))
    }

    /// Sets the active power settings' `electricityPrice` (bumping its version), retrying when a
    /// concurrent save gets in between. With no power settings at all, AutoVolt's default table is
    /// saved with this price.
    pub async fn set_power_settings_price(&self, price: f64) -> Result<PowerSettings, StoreError> {
        for _ in 0..SAVE_ATTEMPTS {
            let mut settings = match self.active_power_settings().await? {
                Some(s) => s,
                None => PowerSettings::campus_default(price),
            };
            settings.electricity_price = price;
            match self.save_power_settings(&settings).await {
                Err(StoreError::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict(format!(
            "the power settings kept changing under {SAVE_ATTEMPTS} attempts to set the price; try again"
        )))
    }

    /// Tariff history, newest first: of one target, or of every target with `None`.
    pub async fn cost_versions(
        &self,
        target: Option<&TariffTarget>,
    ) -> Result<Vec<CostVersion>, StoreError> {
        let filter = target.map(target_filter).unwrap_or_default();
        self.find_cost_versions(filter, doc! {"effective_from": -1, "_id": -1})
            .await
    }

    pub(crate) async fn find_cost_versions(
        &self,
        filter: Document,
        sort: Document,
    ) -> Result<Vec<CostVersion>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(COST_VERSIONS)
            .find(filter)
            .sort(sort)
            .await?;
        let mut versions: Vec<CostVersion> = self.read_all(COST_VERSIONS, cursor).await?;
        let names: Vec<&mut String> = versions
            .iter_mut()
            .filter_map(|v| v.classroom.as_mut())
            .collect();
        self.resolve_classroom_refs(names).await?;
        Ok(versions)
    }

    /// The cost version in force at `at` for a device (its `_id` in hex) in a classroom (its name):
    /// device scope first, then classroom, then global; `None` when only the power settings' price
    /// applies.
    pub async fn cost_version_in_force(
        &self,
        at: Instant,
        device_id: &str,
        classroom: &str,
    ) -> Result<Option<CostVersion>, StoreError> {
        let mut filter = applicable_filter(device_id, classroom);
        filter.insert(
            "effective_from",
            doc! {"$lte": bson::DateTime::from_chrono(at)},
        );
        let versions = self.find_cost_versions(filter, doc! {"_id": 1}).await?;
        let book = TariffBook::new(versions, 0.0);
        Ok(book.version_at(at, device_id, classroom).cloned())
    }

    /// Everything needed to bill instants in `[from, to]`: the cost versions overlapping it and the
    /// active power settings' price as the fallback (0 with a warning when there are none, so that
    /// the ledger still records the energy).
    pub async fn tariff_book(&self, from: Instant, to: Instant) -> Result<TariffBook, StoreError> {
        let filter = doc! {
            "effective_from": {"$lte": bson::DateTime::from_chrono(to)},
            "$or": [
                {"effective_until": null},
                {"effective_until": {"$gt": bson::DateTime::from_chrono(from)}},
            ],
        };
        let versions = self.find_cost_versions(filter, doc! {"_id": 1}).await?;
        let fallback = match self.active_power_settings().await? {
            Some(s) => s.electricity_price,
            None => {
                tracing::warn!("no active power settings: intervals without a cost version are billed at ₹0/kWh");
                0.0
            }
        };
        Ok(TariffBook::new(versions, fallback))
    }
}

impl Store {
    /// The one code path of a tariff edit (command line and dashboard): validates the change, writes
    /// the new cost version, closes the previous one of the same target, keeps the power settings'
    /// price in step for the global target and logs a `tariff_change` activity.
    ///
    /// Without transactions the writes are ordered so that any prefix is correct: once the new version
    /// is inserted, the rate lookup already prefers it from its start (newest start wins), the old one
    /// still answers before it; closing, the price copy and the log follow, and the repair at the start
    /// of every change finishes what an interrupted one left open.
    pub async fn set_tariff(&self, change: &TariffChange) -> Result<CostVersion, StoreError> {
        change.by.may(Permission::ChangeTariff)?;
        let (target, device_oid) = self.tariff_target(&change.target).await?;
        self.repair_tariffs(&target).await?;
        let history = self.cost_versions(Some(&target)).await?;
        let previous = history.first();
        let from = change
            .from
            .map(dates::truncate_millis)
            .unwrap_or_else(dates::now_millis);
        let checked = TariffChange {
            from: Some(from),
            target: target.clone(),
            ..change.clone()
        };
        checked.validate(previous)?;

        let now = dates::now_millis();
        let (classroom, device_id) = match &target {
            TariffTarget::Global => (None, None),
            TariffTarget::Classroom(c) => (Some(c.clone()), None),
            TariffTarget::Device(d) => (None, Some(d.clone())),
        };
        let version = CostVersion {
            id: Some(Id::new()),
            cost_per_kwh: change.price,
            effective_from: from,
            effective_until: None,
            scope: target.scope(),
            classroom: classroom.clone(),
            device_id,
            created_by: Some(CreatedBy {
                user_id: change.by.user_id.map(|i| i.to_hex()),
                username: change.by.name.clone(),
            }),
            notes: change.note.clone().filter(|n| !n.trim().is_empty()),
            is_active: true,
            created_at: Some(now),
            updated_at: Some(now),
        };
        self.collection::<Document>(COST_VERSIONS)
            .insert_one(encode("cost version", &version)?)
            .await?;
        let newest = self.close_superseded_versions(&target).await?;
        if target == TariffTarget::Global {
            // The newest global price, which is this one unless a concurrent change started later.
            let price = newest.map_or(change.price, |v| v.cost_per_kwh);
            self.set_power_settings_price(price).await?;
        }

        let mut log = ActivityLog::new(action::TARIFF_CHANGE, TriggeredBy::User, now);
        log.user_name = Some(change.by.name.clone());
        log.user_id = change.by.user_id;
        log.classroom = classroom;
        log.device_id = device_oid;
        log.context = Some(serde_json::json!({
            "scope": target.to_string(),
            "cost_per_kwh": change.price,
            "previous_cost_per_kwh": previous.map(|p| p.cost_per_kwh),
            "effective_from": from.to_rfc3339(),
            "notes": version.notes,
            "cost_version_id": version.id.map(|i| i.to_hex()),
        }));
        self.log_activity(&log).await?;
        Ok(version)
    }

    /// Cancels a price that has not started yet: the version before it of the same target is open
    /// again (it had been closed at the cancelled start), the cancelled one is deleted, and the
    /// cancellation is logged as a `tariff_change` activity. A price already in force is refused:
    /// the past keeps its prices.
    ///
    /// Ordered so that any prefix is correct: reopening first leaves two open versions, which the
    /// rate lookup and the repair resolve as before the cancellation (the newer start wins).
    pub async fn cancel_tariff(&self, id: Id, by: &Actor) -> Result<CostVersion, StoreError> {
        by.may(Permission::ChangeTariff)?;
        let found = self
            .find_cost_versions(doc! {"_id": id}, doc! {"_id": 1})
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no tariff version {id}; `autovolt tariff history` lists them with their ids"
                ))
            })?;
        let now = dates::now_millis();
        if found.effective_from <= now {
            return Err(StoreError::Conflict(format!(
                "tariff version {id} started at {}; only a price that has not started yet can be cancelled (set a new one instead)",
                found.effective_from.to_rfc3339()
            )));
        }
        let target = TariffTarget::of(&found).ok_or_else(|| {
            StoreError::Decode(format!("tariff version {id} has no usable scope"))
        })?;
        let stamp = bson::DateTime::from_chrono(now);
        let mut before = target_filter(&target);
        before.insert(
            "effective_until",
            bson::DateTime::from_chrono(found.effective_from),
        );
        before.insert("_id", doc! {"$ne": id});
        self.collection::<Document>(COST_VERSIONS)
            .update_many(
                before,
                doc! {"$set": {"effective_until": bson::Bson::Null, "is_active": true, "updatedAt": stamp}},
            )
            .await?;
        self.collection::<Document>(COST_VERSIONS)
            .delete_one(doc! {"_id": id})
            .await?;
        let newest = self.close_superseded_versions(&target).await?;
        if target == TariffTarget::Global {
            if let Some(v) = newest {
                self.set_power_settings_price(v.cost_per_kwh).await?;
            }
        }
        let mut log = ActivityLog::new(action::TARIFF_CHANGE, TriggeredBy::User, now);
        log.user_name = Some(by.name.clone());
        log.user_id = by.user_id;
        log.classroom = found.classroom.clone();
        log.context = Some(serde_json::json!({
            "scope": target.to_string(),
            "cancelled_cost_version_id": id.to_hex(),
            "cancelled_cost_per_kwh": found.cost_per_kwh,
            "cancelled_effective_from": found.effective_from.to_rfc3339(),
        }));
        self.log_activity(&log).await?;
        Ok(found)
    }

    /// Finishes what an interrupted tariff change may have left: closes superseded versions of the
    /// target and, for the global target, copies the newest global price into the power settings.
    pub async fn repair_tariffs(&self, target: &TariffTarget) -> Result<(), StoreError> {
        let newest = self.close_superseded_versions(target).await?;
        if let (TariffTarget::Global, Some(newest)) = (target, newest) {
            let settings = self.active_power_settings().await?;
            if settings.map(|s| s.electricity_price) != Some(newest.cost_per_kwh) {
                self.set_power_settings_price(newest.cost_per_kwh).await?;
            }
        }
        Ok(())
    }

    /// Closes every open version of the target that a newer open one supersedes; returns the one
    /// left open.
    async fn close_superseded_versions(
        &self,
        target: &TariffTarget,
    ) -> Result<Option<CostVersion>, StoreError> {
        let mut filter = target_filter(target);
        filter.insert("effective_until", bson::Bson::Null);
        let open = self
            .find_cost_versions(filter, doc! {"effective_from": 1, "_id": 1})
            .await?;
        let now = bson::DateTime::from_chrono(dates::now_millis());
        for (i, until) in closures(&open) {
            let Some(id) = open[i].id else { continue };
            self.collection::<Document>(COST_VERSIONS)
                .update_one(
                    doc! {"_id": id, "effective_until": null},
                    doc! {"$set": {
                        "effective_until": bson::DateTime::from_chrono(until),
                        "is_active": false,
                        "updatedAt": now,
                    }},
                )
                .await?;
        }
        Ok(open.into_iter().last())
    }

    /// The stored form of a target a person named: a classroom by its name in any case, a device
    /// by MAC, name or id (stored as its `_id` in hex, also returned).
    pub async fn tariff_target(
        &self,
        target: &TariffTarget,
    ) -> Result<(TariffTarget, Option<Id>), StoreError> {
        match target {
            TariffTarget::Global => Ok((TariffTarget::Global, None)),
            TariffTarget::Classroom(name) => Ok((
                TariffTarget::Classroom(self.classroom_named(name).await?.name),
                None,
            )),
            TariffTarget::Device(key) => {
                let id = self
                    .device_named(key)
                    .await?
                    .id
                    .ok_or_else(|| StoreError::NotFound(format!("device {key} has no id")))?;
                Ok((TariffTarget::Device(id.to_hex()), Some(id)))
            }
        }
    }
}
