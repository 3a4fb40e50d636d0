//! Documents that do not decode: skipped by every reader, never fatal, and counted.
//!
//! The database is shared with other writers (the Node back end, scripts, older versions of this
//! one), so a reader can meet a document it cannot decode. One such document must not blank a
//! screen or stop the books: every reader reads raw documents and decodes them here one by one. A
//! document that does not decode is skipped; its collection, `_id`, field and what is wrong with
//! it (the type found, never the value, which could be a secret) are logged once per problem and
//! tallied in the [`Store`], where `autovolt health` reports them. The tally is bounded: at most
//! [`MAX_PROBLEMS`] problems and [`MAX_IDS_PER_PROBLEM`] documents each.

use super::{Store, StoreError};
use crate::domain::lenient::describe;
use bson::{Bson, Document, RawDocument, RawDocumentBuf};
use futures::TryStreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Distinct documents remembered per problem; past it the count reads "at least".
pub const MAX_IDS_PER_PROBLEM: usize = 1000;
/// Distinct problems remembered; past it further problems are counted under one "other" entry.
pub const MAX_PROBLEMS: usize = 100;
/// `_id`s shown per problem.
const EXAMPLES: usize = 3;

/// Why one document could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub collection: String,
    /// The `_id` as text (hex for an ObjectId).
    pub id: String,
    /// The field at fault (`classroom`, `switches[2].type`), or "" when the document as a whole is.
    pub field: String,
    /// What is wrong, without the value: "is an ObjectId (expected a string)", "is missing".
    pub problem: String,
}

impl Unreadable {
    /// "classroom is an ObjectId (expected a string)".
    pub fn reason(&self) -> String {
        sentence(&self.field, &self.problem)
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.collection,
            self.id,
            sentence(&self.field, &self.problem)
        )
    }
}

fn sentence(field: &str, problem: &str) -> String {
    if field.is_empty() {
        format!("the document {problem}")
    } else {
        format!("{field} {problem}")
    }
}

/// One problem as `health` shows it: how many documents of a collection have it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnreadableDocuments {
    pub collection: String,
    pub field: String,
    pub problem: String,
    /// Distinct documents seen with this problem since the process started.
    pub documents: usize,
    /// More documents than `documents` may have it (the tally stopped remembering them).
    pub at_least: bool,
    /// A few of their `_id`s, to find them.
    pub examples: Vec<String>,
}

impl UnreadableDocuments {
    /// "2 activity entries unreadable: classroom is an ObjectId (expected a string)".
    pub fn describe(&self) -> String {
        let (one, many) = noun(&self.collection);
        format!(
            "{}{} {} unreadable: {}",
            if self.at_least { "at least " } else { "" },
            self.documents,
            if self.documents == 1 { one } else { many },
            sentence(&self.field, &self.problem)
        )
    }
}

/// How a collection's documents are called in a sentence (singular, plural).
fn noun(collection: &str) -> (&str, &str) {
    use super::collections::*;
    match collection {
        USERS => ("user", "users"),
        CLASSROOMS => ("classroom", "classrooms"),
        DEVICES => ("device", "devices"),
        POWER_SETTINGS => ("power settings document", "power settings documents"),
        COST_VERSIONS => ("cost version", "cost versions"),
        LEDGER => ("ledger row", "ledger rows"),
        DAILY => ("daily aggregate", "daily aggregates"),
        MONTHLY => ("monthly aggregate", "monthly aggregates"),
        TELEMETRY => ("telemetry event", "telemetry events"),
        ACTIVITY => ("activity entry", "activity entries"),
        SCHEDULES => ("schedule", "schedules"),
        FIRMWARE_UPDATES => ("firmware update", "firmware updates"),
        MIGRATIONS => ("migration record", "migration records"),
        super::campus_days::CAMPUS_DAYS => ("campus day", "campus days"),
        super::campus_days::CLASSROOM_DAYS => ("classrooms' day", "classrooms' days"),
        other => (other, other),
    }
}

#[derive(Debug, Default)]
struct Seen {
    ids: BTreeSet<String>,
    at_least: bool,
}

/// The bounded tally of unreadable documents that a [`Store`] keeps.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    problems: BTreeMap<(String, String, String), Seen>,
}

impl Tally {
    /// Counts one document; returns whether its problem is new (then it is worth a log line).
    fn record(&mut self, u: &Unreadable) -> bool {
        let mut key = (u.collection.clone(), u.field.clone(), u.problem.clone());
        if !self.problems.contains_key(&key) && self.problems.len() >= MAX_PROBLEMS {
            key = (
                u.collection.clone(),
                String::new(),
                "has other problems".into(),
            );
        }
        let fresh = !self.problems.contains_key(&key);
        let seen = self.problems.entry(key).or_default();
        if seen.ids.len() < MAX_IDS_PER_PROBLEM {
            seen.ids.insert(u.id.clone());
        } else if !seen.ids.contains(&u.id) {
            seen.at_least = true;
        }
        fresh
    }

    fn summary(&self) -> Vec<UnreadableDocuments> {
        self.problems
            .iter()
            .map(|((collection, field, problem), seen)| UnreadableDocuments {
                collection: collection.clone(),
                field: field.clone(),
                problem: problem.clone(),
                documents: seen.ids.len(),
                at_least: seen.at_least,
                examples: seen.ids.iter().take(EXAMPLES).cloned().collect(),
            })
            .collect()
    }
}

/// A document's `_id` as text.
fn id_text(d: &Document) -> String {
    match d.get("_id") {
        Some(Bson::ObjectId(o)) => o.to_hex(),
        Some(Bson::String(s)) => s.clone(),
        Some(Bson::Int32(v)) => v.to_string(),
        Some(Bson::Int64(v)) => v.to_string(),
        Some(other) => format!("({})", describe(other)),
        None => "(no _id)".into(),
    }
}

/// The value at a decoding path (`switches[2].type`), if the document has one.
fn value_at<'a>(d: &'a Document, path: &serde_path_to_error::Path) -> Option<&'a Bson> {
    use serde_path_to_error::Segment;
    let mut here: Option<&Bson> = None;
    for segment in path.iter() {
        here = match (segment, here) {
            (Segment::Map { key }, None) => d.get(key),
            (Segment::Map { key }, Some(Bson::Document(inner))) => inner.get(key),
            (Segment::Seq { index }, Some(Bson::Array(items))) => items.get(*index),
            _ => return None,
        };
        here?;
    }
    here
}

/// Where and why `T` cannot be read from `d`, in words that never include a value.
fn diagnose<T: DeserializeOwned>(collection: &str, d: &Document) -> Unreadable {
    let id = id_text(d);
    let deserializer = bson::Deserializer::new(Bson::Document(d.clone()));
    let (path, message) = match serde_path_to_error::deserialize::<_, T>(deserializer) {
        Ok(_) => (None, "does not decode".to_string()),
        Err(e) => {
            let message = e.inner().to_string();
            (Some(e.path().clone()), message)
        }
    };
    let mut field = path
        .as_ref()
        .map(|p| p.to_string())
        .filter(|p| p != ".")
        .unwrap_or_default();
    let expected = message
        .find("expected ")
        .map(|i| message[i..].trim_end_matches('.').to_string());
    // serde names a missing field in its message, at the path of the document holding it.
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.split('`').next())
    {
        field = if field.is_empty() {
            missing.to_string()
        } else {
            format!("{field}.{missing}")
        };
        return Unreadable {
            collection: collection.into(),
            id,
            field,
            problem: "is missing".into(),
        };
    }
    let found = path.as_ref().and_then(|p| value_at(d, p));
    let expected = expected.map(|e| e.split(", found").next().unwrap_or_default().to_string());
    let problem = match (found, expected) {
        (Some(v), Some(exp)) => format!("is {} ({exp})", describe(v)),
        (Some(v), None) => format!("is {} that is not valid here", describe(v)),
        (None, Some(exp)) => format!("is not valid ({exp})"),
        (None, None) => "is not valid".into(),
    };
    Unreadable {
        collection: collection.into(),
        id,
        field,
        problem,
    }
}

impl Store {
    /// Decodes one document of `collection`; one that does not decode is recorded (logged once
    /// per problem, counted for `health`) and returned as the reason.
    pub(crate) fn decode_reporting<T: DeserializeOwned>(
        &self,
        collection: &str,
        d: Document,
    ) -> Result<T, Unreadable> {
        // The fast path consumes a copy; only a failure pays for the diagnosis.
        match bson::from_document::<T>(d.clone()) {
            Ok(v) => Ok(v),
            Err(_) => {
                let u = diagnose::<T>(collection, &d);
                self.record_unreadable(&u);
                Err(u)
            }
        }
    }

    /// Decodes one document of `collection`, or skips it (recorded, see [`Store::decode_reporting`]).
    pub(crate) fn decode<T: DeserializeOwned>(&self, collection: &str, d: Document) -> Option<T> {
        self.decode_reporting(collection, d).ok()
    }

    /// Decodes one document of `collection` as the server sent it, without copying it (the path
    /// of long reads: ledger passes, pages); one that does not decode is skipped and recorded.
    pub(crate) fn decode_raw<T: DeserializeOwned>(
        &self,
        collection: &str,
        raw: &RawDocument,
    ) -> Option<T> {
        if let Ok(v) = bson::from_slice::<T>(raw.as_bytes()) {
            return Some(v);
        }
        match Document::try_from(raw) {
            Ok(d) => self.decode(collection, d),
            Err(_) => {
                self.record_unreadable(&Unreadable {
                    collection: collection.into(),
                    id: raw
                        .get_object_id("_id")
                        .map(|o| o.to_hex())
                        .unwrap_or_else(|_| "(unknown)".into()),
                    field: String::new(),
                    problem: "is not valid BSON".into(),
                });
                None
            }
        }
    }

    /// Every readable document of a cursor over `collection`; the others are skipped and recorded.
    pub(crate) async fn read_all<T: DeserializeOwned>(
        &self,
        collection: &str,
        mut cursor: mongodb::Cursor<RawDocumentBuf>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        while let Some(raw) = cursor.try_next().await? {
            if let Some(v) = self.decode_raw(collection, &raw) {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn record_unreadable(&self, u: &Unreadable) {
        let fresh = self
            .unreadable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .record(u);
        if fresh {
            tracing::warn!(
                collection = %u.collection,
                id = %u.id,
                field = %u.field,
                "a document cannot be read and is skipped ({}); others like it are counted in `autovolt health`",
                sentence(&u.field, &u.problem)
            );
        } else {
            tracing::debug!(collection = %u.collection, id = %u.id, "skipped an unreadable document: {}", sentence(&u.field, &u.problem));
        }
    }

    /// The unreadable documents this process has met, by collection and problem.
    pub fn unreadable_documents(&self) -> Vec<UnreadableDocuments> {
        self.unreadable
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .summary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityLog, Device};
    use bson::doc;

    fn problem<T: DeserializeOwned>(d: Document) -> Unreadable {
        assert!(bson::from_document::<T>(d.clone()).is_err());
        diagnose::<T>("c", &d)
    }

    #[test]
    fn the_field_and_the_type_found_are_named() {
        let id = bson::oid::ObjectId::new();
        let u = problem::<ActivityLog>(doc! {"_id": id, "action": "on", "timestamp": true});
        assert_eq!(u.id, id.to_hex());
        assert_eq!(u.field, "timestamp");
        assert_eq!(u.problem, "is a boolean (expected a date)");
    }

    #[test]
    fn a_missing_field_is_named() {
        let id = bson::oid::ObjectId::new();
        let u = problem::<ActivityLog>(
            doc! {"_id": id, "timestamp": bson::DateTime::now(), "classroom": "x"},
        );
        assert_eq!(
            (u.id, u.field, u.problem),
            (id.to_hex(), "action".into(), "is missing".into())
        );
    }

    #[test]
    fn nested_fields_are_named_by_their_path_without_the_value() {
        let u = problem::<Device>(doc! {
            "name": "b", "macAddress": "A4:CF:12:B3:C4:D5", "deviceSecret": "s3cr3t",
            "switches": [{"switchId": "1", "name": "a"}, {"switchId": "2", "name": {"x": "s3cr3t"}}],
        });
        assert_eq!(u.field, "switches[1].name");
        assert!(u.problem.starts_with("is a document"), "{}", u.problem);
        assert!(!u.to_string().contains("s3cr3t"));
    }

    #[test]
    fn the_tally_counts_documents_once_and_stays_bounded() {
        let mut t = Tally::default();
        let u = |id: usize, p: &str| Unreadable {
            collection: "activitylogs".into(),
            id: id.to_string(),
            field: "classroom".into(),
            problem: p.into(),
        };
        assert!(t.record(&u(1, "is an ObjectId")));
        assert!(!t.record(&u(1, "is an ObjectId")));
        assert!(!t.record(&u(2, "is an ObjectId")));
        let s = t.summary();
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].describe(),
            "2 activity entries unreadable: classroom is an ObjectId"
        );
        for i in 0..MAX_IDS_PER_PROBLEM + 10 {
            t.record(&u(i, "is an ObjectId"));
        }
        for p in 0..MAX_PROBLEMS + 10 {
            t.record(&u(0, &format!("problem {p}")));
        }
        let s = t.summary();
        assert!(s.len() <= MAX_PROBLEMS + 1);
        let first = s.iter().find(|x| x.problem == "is an ObjectId").unwrap();
        assert_eq!(first.documents, MAX_IDS_PER_PROBLEM);
        assert!(first
            .describe()
            .starts_with("at least 1000 activity entries"));
        assert!(s.iter().any(|x| x.problem == "has other problems"));
    }
}
