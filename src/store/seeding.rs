//! Filling an empty campus with a generated one (`autovolt seed`, the demo): whether it is empty,
//! and the bulk writes.

use super::{collections, Store, StoreError};
use crate::domain::{CostVersion, Device, PowerSettings};
use bson::{doc, Document};

impl Store {
    /// How many classrooms and devices the campus holds, from the collections' metadata (cheap;
    /// enough to tell an empty campus).
    pub async fn campus_size(&self) -> Result<(u64, u64), StoreError> {
        let classrooms = self
            .collection::<Document>(collections::CLASSROOMS)
            .estimated_document_count()
            .await?;
        let devices = self
            .collection::<Document>(collections::DEVICES)
            .estimated_document_count()
            .await?;
        Ok((classrooms, devices))
    }

    /// Writes generated devices as they are, 500 a request.
    pub async fn insert_generated_devices(&self, devices: &[Device]) -> Result<(), StoreError> {
        for chunk in devices.chunks(500) {
            if !chunk.is_empty() {
                self.collection::<Device>(collections::DEVICES)
                    .insert_many(chunk)
                    .await?;
            }
        }
        Ok(())
    }

    /// Writes `settings` unless active power settings exist; returns whether it wrote. The check
    /// reads raw documents: another writer's odd table is still a table.
    pub async fn insert_power_settings_if_none(
        &self,
        settings: &PowerSettings,
    ) -> Result<bool, StoreError> {
        if self
            .has_document(collections::POWER_SETTINGS, doc! {"isActive": true})
            .await?
        {
            return Ok(false);
        }
        self.collection::<PowerSettings>(collections::POWER_SETTINGS)
            .insert_one(settings)
            .await?;
        Ok(true)
    }

    /// Writes `tariff` unless a current global tariff exists; returns whether it wrote.
    pub async fn insert_global_tariff_if_none(
        &self,
        tariff: &CostVersion,
    ) -> Result<bool, StoreError> {
        let current = doc! {"scope": "global", "effective_until": null, "is_active": true};
        if self
            .has_document(collections::COST_VERSIONS, current)
            .await?
        {
            return Ok(false);
        }
        self.collection::<CostVersion>(collections::COST_VERSIONS)
            .insert_one(tariff)
            .await?;
        Ok(true)
    }

    async fn has_document(&self, name: &str, filter: Document) -> Result<bool, StoreError> {
        let found = self.collection::<Document>(name).find_one(filter).await?;
        Ok(found.is_some())
    }
}
