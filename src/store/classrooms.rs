//! Classrooms (`classrooms`): unique by name.

use super::{collections, stamp_new, Store, StoreError};
use crate::domain::{validation, Classroom, Id};
use bson::{doc, Document};
use futures::TryStreamExt;
use std::collections::{BTreeMap, BTreeSet};

impl Store {
    /// Inserts a classroom (name trimmed, 2–50 characters). A second classroom with the same name
    /// is refused with [`StoreError::Duplicate`] (the unique index of [`Store::ensure_indexes`]).
    pub async fn insert_classroom(&self, classroom: &Classroom) -> Result<Id, StoreError> {
        let mut c = classroom.clone();
        c.name = validation::name("name", &c.name)?;
        let id = *c.id.get_or_insert_with(Id::new);
        stamp_new(&mut c.created_at, &mut c.updated_at);
        match self
            .collection::<Classroom>(collections::CLASSROOMS)
            .insert_one(&c)
            .await
        {
            Ok(_) => Ok(id),
            Err(e) if super::error::is_duplicate_key(&e) => Err(StoreError::Duplicate(format!(
                "a classroom named {:?} already exists",
                c.name
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Every classroom, by name.
    pub async fn classrooms(&self) -> Result<Vec<Classroom>, StoreError> {
        let cursor = self
            .collection::<bson::RawDocumentBuf>(collections::CLASSROOMS)
            .find(doc! {})
            .sort(doc! {"name": 1})
            .await?;
        self.read_all(collections::CLASSROOMS, cursor).await
    }

    /// The classroom a person names: its exact name, else the one name that matches in any case.
    /// Nothing matching is `NotFound`; several matches are `Invalid`, listing them.
    pub async fn classroom_named(&self, name: &str) -> Result<Classroom, StoreError> {
        let name = name.trim();
        if let Some(c) = self.classroom_by_name(name).await? {
            return Ok(c);
        }
        let rooms = self.classrooms().await?;
        let same: Vec<&Classroom> = rooms
            .iter()
            .filter(|r| r.name.to_lowercase() == name.to_lowercase())
            .collect();
        match same.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(StoreError::NotFound(format!(
                "no classroom named {name:?}; `autovolt devices list` shows them"
            ))),
            many => Err(StoreError::Invalid(crate::domain::ValidationError::new(
                "classroom",
                name,
                format!(
                    "names {} classrooms: {}; give the exact name",
                    many.len(),
                    many.iter()
                        .map(|r| format!("{:?}", r.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))),
        }
    }

    pub async fn classroom_by_name(&self, name: &str) -> Result<Option<Classroom>, StoreError> {
        self.find_one_classroom(doc! {"name": name.trim()}).await
    }

    pub async fn classroom_by_id(&self, id: Id) -> Result<Option<Classroom>, StoreError> {
        self.find_one_classroom(doc! {"_id": id}).await
    }

    async fn find_one_classroom(&self, filter: Document) -> Result<Option<Classroom>, StoreError> {
        let found = self
            .collection::<Document>(collections::CLASSROOMS)
            .find_one(filter)
            .await?;
        Ok(found.and_then(|d| self.decode(collections::CLASSROOMS, d)))
    }

    /// Replaces each classroom that is an ObjectId reference (read as its 24-digit hex, see
    /// [`crate::domain::lenient::text`]) by that classroom's name, in one query; a reference to no
    /// classroom stays as the hex.
    pub(crate) async fn resolve_classroom_refs(
        &self,
        names: Vec<&mut String>,
    ) -> Result<(), StoreError> {
        let mut refs: Vec<(&mut String, Id)> = names
            .into_iter()
            .filter_map(|n| {
                let id = (n.len() == 24).then(|| Id::parse_str(n.as_str()).ok())??;
                Some((n, id))
            })
            .collect();
        if refs.is_empty() {
            return Ok(());
        }
        let ids: BTreeSet<Id> = refs.iter().map(|(_, id)| *id).collect();
        let found: Vec<Document> = self
            .collection::<Document>(collections::CLASSROOMS)
            .find(doc! {"_id": {"$in": ids.into_iter().collect::<Vec<_>>()}})
            .await?
            .try_collect()
            .await?;
        let by_id: BTreeMap<Id, String> = found
            .iter()
            .filter_map(|c| {
                Some((
                    c.get_object_id("_id").ok()?,
                    c.get_str("name").ok()?.to_string(),
                ))
            })
            .collect();
        for (name, id) in refs.iter_mut() {
            if let Some(n) = by_id.get(id) {
                **name = n.clone();
            }
        }
        Ok(())
    }
}
