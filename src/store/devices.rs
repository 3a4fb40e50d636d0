//! ESP32 boards (`devices`): unique by MAC address.

use super::{collections, stamp_new, Store, StoreError};
use crate::domain::{validation, Device, Id, Mac};
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use std::collections::BTreeMap;

impl Store {
    /// Inserts a device (name trimmed, 2–50 characters). A second device with the same MAC is
    /// refused with [`StoreError::Duplicate`] (the unique index of [`Store::ensure_indexes`]).
    pub async fn insert_device(&self, device: &Device) -> Result<Id, StoreError> {
        let mut d = device.clone();
        d.name = validation::name("name", &d.name)?;
        d.validate_enums()?;
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
        self.find_devices(doc! {"macAddress": mac.to_string()}, None)
            .await
            .map(|mut d| d.pop())
    }

    pub async fn device_by_id(&self, id: Id) -> Result<Option<Device>, StoreError> {
        self.find_devices(doc! {"_id": id}, None)
            .await
            .map(|mut d| d.pop())
    }

    /// The board a person names: its MAC, its id, or its name (any case; an exact match wins).
    /// Nothing matching is `NotFound`; a name several boards share is `Invalid`, listing them.
    pub async fn device_named(&self, key: &str) -> Result<Device, StoreError> {
        let key = key.trim();
        if let Ok(mac) = Mac::parse(key) {
            return self.device_by_mac(mac).await?.ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no device with MAC {mac} is registered; `autovolt devices list` shows them"
                ))
            });
        }
        if let Ok(id) = Id::parse_str(key) {
            if let Some(d) = self.device_by_id(id).await? {
                return Ok(d);
            }
        }
        let devices = self.devices().await?;
        let same: Vec<&Device> = devices
            .iter()
            .filter(|d| d.name.to_lowercase() == key.to_lowercase())
            .collect();
        let exact: Vec<&Device> = same.iter().copied().filter(|d| d.name == key).collect();
        match (same.as_slice(), exact.as_slice()) {
            ([one], _) | (_, [one]) => Ok((*one).clone()),
            ([], _) => Err(StoreError::NotFound(format!(
                "no device {key:?} (by MAC, id or name); `autovolt devices list` shows them"
            ))),
            (many, _) => Err(StoreError::Invalid(crate::domain::ValidationError::new(
                "device",
                key,
                format!(
                    "names {} devices: {}; give its MAC",
                    many.len(),
                    many.iter()
                        .map(|d| format!("{} ({})", d.name, d.mac_address))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))),
        }
    }

    /// The devices of one classroom, by name (referenced by its `_id`, or as another writer may
    /// store it, by its hex or its name).
    pub async fn devices_in_classroom(&self, classroom: Id) -> Result<Vec<Device>, StoreError> {
        let mut refs = vec![Bson::ObjectId(classroom), Bson::String(classroom.to_hex())];
        if let Some(c) = self.classroom_by_id(classroom).await? {
            refs.push(Bson::String(c.name));
        }
        self.find_devices(doc! {"classroom": {"$in": refs}}, Some(doc! {"name": 1}))
            .await
    }

    /// How many devices are registered, and how many of them are marked offline: two counts
    /// that grow with the fleet, never with history.
    pub async fn device_counts(&self) -> Result<(u64, u64), StoreError> {
        let devices = self.collection::<Document>(collections::DEVICES);
        let all = devices.count_documents(doc! {}).await?;
        let offline = devices
            .count_documents(doc! {"status": crate::domain::DeviceStatus::Offline.as_str()})
            .await?;
        Ok((all, offline))
    }

    /// Every device, by name.
    pub async fn devices(&self) -> Result<Vec<Device>, StoreError> {
        self.find_devices(doc! {}, Some(doc! {"name": 1})).await
    }

    /// The devices matching `filter`, as [`Store::find_devices`] reads them, and the `_id` and
    /// reason of each that does not read (those are recorded as every reader's are).
    pub(crate) async fn find_devices_reporting(
        &self,
        filter: Document,
    ) -> Result<(Vec<Device>, Vec<(String, String)>), StoreError> {
        let mut docs: Vec<Document> = self
            .collection::<Document>(collections::DEVICES)
            .find(filter)
            .await?
            .try_collect()
            .await?;
        self.classroom_names_as_ids(&mut docs).await?;
        let mut devices = Vec::with_capacity(docs.len());
        let mut unreadable = Vec::new();
        for d in docs {
            match self.decode_reporting::<Device>(collections::DEVICES, d) {
                Ok(device) => devices.push(device),
                Err(u) => unreadable.push((u.id.clone(), u.reason())),
            }
        }
        self.with_presence(&mut devices).await?;
        Ok((devices, unreadable))
    }

    /// The readable devices that `filter` selects, with the presence kept of them (`presence.rs`);
    /// see [`Store::read_all`] for the others. A `classroom` stored as the classroom's name
    /// (another writer's shape) is read as its `_id`.
    pub(crate) async fn find_devices(
        &self,
        filter: Document,
        sort: Option<Document>,
    ) -> Result<Vec<Device>, StoreError> {
        let coll = self.collection::<Document>(collections::DEVICES);
        let mut find = coll.find(filter);
        if let Some(s) = sort {
            find = find.sort(s);
        }
        let mut docs: Vec<Document> = find.await?.try_collect().await?;
        self.classroom_names_as_ids(&mut docs).await?;
        let mut devices: Vec<Device> = docs
            .into_iter()
            .filter_map(|d| self.decode(collections::DEVICES, d))
            .collect();
        self.with_presence(&mut devices).await?;
        Ok(devices)
    }

    /// Replaces each `classroom` that holds a classroom's name by that classroom's `_id` (one query
    /// for all of them); a name that matches no classroom is dropped, leaving the device unassigned.
    async fn classroom_names_as_ids(&self, docs: &mut [Document]) -> Result<(), StoreError> {
        let names: Vec<String> = docs
            .iter()
            .filter_map(|d| match d.get("classroom") {
                Some(Bson::String(s))
                    if Id::parse_str(s.trim()).is_err() && !s.trim().is_empty() =>
                {
                    Some(s.trim().to_string())
                }
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let found: Vec<Document> = self
            .collection::<Document>(collections::CLASSROOMS)
            .find(doc! {"name": {"$in": &names}})
            .await?
            .try_collect()
            .await?;
        let ids: BTreeMap<String, Id> = found
            .iter()
            .filter_map(|c| {
                Some((
                    c.get_str("name").ok()?.to_string(),
                    c.get_object_id("_id").ok()?,
                ))
            })
            .collect();
        for d in docs.iter_mut() {
            let Some(Bson::String(s)) = d.get("classroom") else {
                continue;
            };
            let name = s.trim().to_string();
            if Id::parse_str(&name).is_ok() || name.is_empty() {
                continue;
            }
            match ids.get(&name) {
                Some(id) => d.insert("classroom", *id),
                None => {
                    tracing::debug!(classroom = %name, "a device names a classroom that does not exist; read as unassigned");
                    d.remove("classroom")
                }
            };
        }
        Ok(())
    }
}
