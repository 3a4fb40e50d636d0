//! Classrooms (`classrooms`): unique by name.

use super::{collections, stamp_new, Store, StoreError};
use crate::domain::{validation, Classroom, Id};
use bson::doc;
use futures::TryStreamExt;

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
        Ok(self
            .collection::<Classroom>(collections::CLASSROOMS)
            .find(doc! {})
            .sort(doc! {"name": 1})
            .await?
            .try_collect()
            .await?)
    }

    pub async fn classroom_by_name(&self, name: &str) -> Result<Option<Classroom>, StoreError> {
        Ok(self
            .collection::<Classroom>(collections::CLASSROOMS)
            .find_one(doc! {"name": name.trim()})
            .await?)
    }

    pub async fn classroom_by_id(&self, id: Id) -> Result<Option<Classroom>, StoreError> {
        Ok(self
            .collection::<Classroom>(collections::CLASSROOMS)
            .find_one(doc! {"_id": id})
            .await?)
    }
}
