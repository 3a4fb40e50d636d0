//! **Ours:** `deadletters`, the messages the collector could not take (a message broker's
//! dead-letter queue kept in the database): malformed ones, and well-formed ones whose effects the
//! database refused for good. Each keeps its topic, its raw bytes, why and when, so that an operator
//! can look at it and, once the cause is fixed, replay it (`autovolt rejected`).
//!
//! Bounded: a TTL index expires them where the server has TTL indexes; everywhere, inserting prunes
//! what is older than [`DEAD_LETTER_RETENTION`] and what is beyond the newest [`MAX_DEAD_LETTERS`].

use super::switching::derived_id;
use super::{Store, StoreError};
use crate::domain::{dates, Id, Instant};
use bson::spec::BinarySubtype;
use bson::{doc, Binary, Document};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub const DEAD_LETTERS: &str = "deadletters";

/// How long a dead letter is kept.
pub const DEAD_LETTER_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most dead letters kept: a flood of junk on the device topics cannot grow the database.
pub const MAX_DEAD_LETTERS: u64 = 10_000;

/// The most bytes of a payload kept (the protocol's own limit): a larger payload is kept cut, with
/// its size, and cannot be replayed.
pub const MAX_KEPT_BYTES: usize = crate::domain::telemetry::MAX_PAYLOAD;

/// When this process last pruned dead letters (Unix milliseconds).
static LAST_PRUNE_MS: AtomicI64 = AtomicI64::new(0);
const PRUNE_EVERY_MS: i64 = 60_000;

/// Why a message is a dead letter, in two kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadKind {
    /// Not a message the protocol allows (not JSON, wrong types, too large, …): nothing is missing
    /// from the books.
    Malformed,
    /// A well-formed message whose effects the database refused for good (a document breaking a
    /// rule, a stored document that does not read): the books miss it until it is replayed.
    Failed,
}

impl DeadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadKind::Malformed => "malformed",
            DeadKind::Failed => "failed",
        }
    }
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Derived from topic, payload and receive time: the same message refused twice is kept once.
    #[serde(rename = "_id")]
    pub id: Id,
    pub topic: String,
    /// The raw bytes as received (at most [`MAX_KEPT_BYTES`]): any payload round-trips.
    pub payload: Binary,
    /// The payload's size as received.
    pub size: i64,
    pub truncated: bool,
    pub kind: DeadKind,
    /// A short stable code (`not_json`, `invalid_document`, …), as counted in the collector status.
    pub reason: String,
    /// What was wrong, for a person (never a secret).
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(rename = "receivedAt", with = "dates::required")]
    pub received_at: Instant,
    /// Failed replays since it was first refused.
    #[serde(default)]
    pub replays: i64,
    #[serde(rename = "createdAt", with = "dates::required")]
    pub created_at: Instant,
    #[serde(rename = "updatedAt", with = "dates::required")]
    pub updated_at: Instant,
}

impl DeadLetter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: &str,
        payload: &[u8],
        received_at: Instant,
        kind: DeadKind,
        reason: &str,
        detail: &str,
        mac: Option<String>,
        now: Instant,
    ) -> DeadLetter {
        let kept = &payload[..payload.len().min(MAX_KEPT_BYTES)];
        let mut h = Sha256::new();
        h.update(topic.as_bytes());
        h.update(b"\n");
        h.update(payload);
        let key = format!(
            "dead:{}:{}",
            hex::encode(h.finalize()),
            received_at.timestamp_millis()
        );
        DeadLetter {
            id: derived_id(&key),
            topic: topic.chars().take(200).collect(),
            payload: Binary {
                subtype: BinarySubtype::Generic,
                bytes: kept.to_vec(),
            },
            size: payload.len() as i64,
            truncated: kept.len() < payload.len(),
            kind,
            reason: reason.to_string(),
            detail: detail.chars().take(500).collect(),
            mac,
            received_at,
            replays: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// The payload for a person: as text (bytes that are not UTF-8 shown as `�`, control
    /// characters as `·`), every `"secret"` value masked, cut to `max` characters. The stored bytes
    /// keep the secret, which a replay needs; nothing shows it.
    pub fn payload_preview(&self, max: usize) -> String {
        let text = mask_secrets(&String::from_utf8_lossy(&self.payload.bytes));
        let mut out: String = text
            .chars()
            .map(|c| if c.is_control() { '·' } else { c })
            .take(max)
            .collect();
        if text.chars().count() > max || self.truncated {
            out.push('…');
        }
        out
    }
}

/// Masks the string value after every `"secret"` key of a JSON-like text, whole or cut short.
pub fn mask_secrets(text: &str) -> String {
    const KEY: &str = "\"secret\"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (head, tail) = rest.split_at(at + KEY.len());
        out.push_str(head);
        let after_colon = tail.trim_start().strip_prefix(':').map(str::trim_start);
        match after_colon.and_then(|v| v.strip_prefix('"')) {
            Some(value) => {
                out.push_str(":\"***\"");
                // Skip the value up to its closing quote (past escaped ones), or to the end.
                let mut escaped = false;
                let mut end = value.len();
                for (i, c) in value.char_indices() {
                    match c {
                        '\\' if !escaped => escaped = true,
                        '"' if !escaped => {
                            end = i + 1;
                            break;
                        }
                        _ => escaped = false,
                    }
                }
                rest = &value[end..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

impl Store {
    /// Keeps dead letters (a letter already kept is not kept twice), then prunes the collection.
    pub async fn insert_dead_letters(&self, letters: &[DeadLetter]) -> Result<(), StoreError> {
        if letters.is_empty() {
            return Ok(());
        }
        let coll = self.collection::<DeadLetter>(DEAD_LETTERS);
        super::error::only_duplicates(coll.insert_many(letters).ordered(false).await)?;
        // A flood of junk must not cost each batch the pruning's round trips: at most once a
        // minute per process (the collection overshoots its cap by at most a minute's letters).
        let now = dates::now_millis();
        let last = LAST_PRUNE_MS.load(Ordering::Relaxed);
        if now.timestamp_millis() - last < PRUNE_EVERY_MS
            || LAST_PRUNE_MS
                .compare_exchange(
                    last,
                    now.timestamp_millis(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Ok(());
        }
        self.prune_dead_letters(now).await
    }

    /// Deletes dead letters older than the retention and beyond the newest [`MAX_DEAD_LETTERS`].
    pub async fn prune_dead_letters(&self, now: Instant) -> Result<(), StoreError> {
        let coll = self.collection::<Document>(DEAD_LETTERS);
        let retention = chrono::Duration::from_std(DEAD_LETTER_RETENTION)
            .unwrap_or_else(|_| chrono::Duration::days(30));
        coll.delete_many(doc! {"createdAt": {"$lt": bson::DateTime::from_chrono(now - retention)}})
            .await?;
        let count = coll.count_documents(doc! {}).await?;
        if count > MAX_DEAD_LETTERS {
            let oldest: Vec<Document> = coll
                .find(doc! {})
                .sort(doc! {"createdAt": 1, "_id": 1})
                .limit((count - MAX_DEAD_LETTERS) as i64)
                .await?
                .try_collect()
                .await?;
            let ids: Vec<bson::Bson> = oldest
                .iter()
                .filter_map(|d| d.get("_id").cloned())
                .collect();
            coll.delete_many(doc! {"_id": {"$in": ids}}).await?;
        }
        Ok(())
    }

    /// Dead letters, newest first, at most `limit`.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .collection::<DeadLetter>(DEAD_LETTERS)
            .find(doc! {})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .limit(limit.clamp(1, MAX_DEAD_LETTERS as usize) as i64)
            .await?
            .try_collect()
            .await?)
    }

    pub async fn dead_letter(&self, id: Id) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self
            .collection::<DeadLetter>(DEAD_LETTERS)
            .find_one(doc! {"_id": id})
            .await?)
    }

    /// Removes a dead letter; whether it was there.
    pub async fn remove_dead_letter(&self, id: Id) -> Result<bool, StoreError> {
        Ok(self
            .collection::<Document>(DEAD_LETTERS)
            .delete_one(doc! {"_id": id})
            .await?
            .deleted_count
            == 1)
    }

    /// Records a failed replay: the new reason, one more attempt.
    pub async fn dead_letter_replay_failed(
        &self,
        id: Id,
        reason: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.collection::<Document>(DEAD_LETTERS)
            .update_one(
                doc! {"_id": id},
                doc! {
                    "$set": {
                        "reason": reason,
                        "detail": detail.chars().take(500).collect::<String>(),
                        "updatedAt": bson::DateTime::from_chrono(dates::now_millis()),
                    },
                    "$inc": {"replays": 1},
                },
            )
            .await?;
        Ok(())
    }

    /// How many dead letters there are, by kind and reason (`failed/invalid_document` → 2).
    pub async fn dead_letter_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let groups: Vec<Document> = self
            .collection::<Document>(DEAD_LETTERS)
            .aggregate([
                doc! {"$group": {"_id": {"kind": "$kind", "reason": "$reason"}, "n": {"$sum": 1}}},
            ])
            .await?
            .try_collect()
            .await?;
        let mut out = BTreeMap::new();
        for g in groups {
            let Ok(key) = g.get_document("_id") else {
                continue;
            };
            let kind = key.get_str("kind").unwrap_or("?");
            let reason = key.get_str("reason").unwrap_or("?");
            let n = match g.get("n") {
                Some(bson::Bson::Int32(n)) => i64::from(*n),
                Some(bson::Bson::Int64(n)) => *n,
                Some(bson::Bson::Double(n)) => *n as i64,
                _ => 0,
            };
            *out.entry(format!("{kind}/{reason}")).or_default() += n;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn secrets_never_show() {
        assert_eq!(
            mask_secrets(r#"{"mac":"A","secret" : "5f1c0a","gpio":1}"#),
            r#"{"mac":"A","secret":"***","gpio":1}"#
        );
        assert_eq!(mask_secrets(r#"{"secret":"5f1c"#), r#"{"secret":"***""#);
        assert_eq!(
            mask_secrets(r#"{"secret":"a\"b","x":"secret"}"#),
            r#"{"secret":"***","x":"secret"}"#
        );
        assert_eq!(mask_secrets("hello"), "hello");
    }

    #[test]
    fn any_bytes_are_kept_and_large_ones_cut() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
        let raw = [0u8, b'$', b'.', 0xff, b'{'];
        let d = DeadLetter::new(
            "esp32/state",
            &raw,
            t,
            DeadKind::Malformed,
            "not_text",
            "x",
            None,
            t,
        );
        assert_eq!(d.payload.bytes, raw);
        assert!(!d.truncated);
        assert_eq!(d.payload_preview(80), "·$.\u{fffd}{");
        let big = vec![b'a'; 2 * 1024 * 1024];
        let d = DeadLetter::new(
            "esp32/state",
            &big,
            t,
            DeadKind::Malformed,
            "too_large",
            "x",
            None,
            t,
        );
        assert_eq!(d.payload.bytes.len(), MAX_KEPT_BYTES);
        assert_eq!(d.size, big.len() as i64);
        assert!(d.truncated);
        let again = DeadLetter::new(
            "esp32/state",
            &big,
            t,
            DeadKind::Malformed,
            "too_large",
            "x",
            None,
            t,
        );
        assert_eq!(d.id, again.id);
    }
}
