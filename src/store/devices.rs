//! ESP32 boards (`devices`): unique by MAC address.

use super::{collections, stamp_new, Store, StoreError};
use crate::domain::{validation, Device, Id, Mac};
use bson::doc;
use futures::TryStreamExt;

impl Store {
    /// Inserts a device (name trimmed, 2–50 characters). A second device with the same MAC is
    /// refused with [`StoreError::Duplicate`] (the unique index of [`Store::ensure_indexes`]).
    pub async fn insert_device(&self, device: &Device) -> Result<Id, StoreError> {
        let mut d = device.clone();
        d.name = validation::name("name", &d.name)?;
        let id = *d.id.get_or_insert_with(Id::new);
        stamp_new(&mut d.created_at, &mut d.updated_at);
        match self
            .collection::<Device>(collections::DEVICES)
            .insert_one(&d)
            .await
        {
            Ok(_) => Ok(id),
            Err(e) if super::error::is_duplicate_key(&e) => Err(StoreError::Duplicate(format!(
                "a device with MAC {} already exists",
                d.mac_address
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn device_by_mac(&self, mac: Mac) -> Result<Option<Device>, StoreError> {
        Ok(self
            .collection::<Device>(collections::DEVICES)
            .find_one(doc! {"macAddress": mac.to_string()})
            .await?)
    }

    pub async fn device_by_id(&self, id: Id) -> Result<Option<Device>, StoreError> {
        Ok(self
            .collection::<Device>(collections::DEVICES)
            .find_one(doc! {"_id": id})
            .await?)
    }

    /// The devices of one classroom, by name.
    pub async fn devices_in_classroom(&self, classroom: Id) -> Result<Vec<Device>, StoreError> {
        Ok(self
            .collection::<Device>(collections::DEVICES)
            .find(doc! {"classroom": classroom})
            .sort(doc! {"name": 1})
            .await?
            .try_collect()
            .await?)
    }

    /// Every device, by name.
    pub async fn devices(&self) -> Result<Vec<Device>, StoreError> {
        Ok(self
            .collection::<Device>(collections::DEVICES)
            .find(doc! {})
            .sort(doc! {"name": 1})
            .await?
            .try_collect()
            .await?)
    }
}
