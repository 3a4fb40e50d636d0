//! Serde helpers that store chrono instants as BSON dates (millisecond precision, like JavaScript).

use super::Instant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// For `Instant` fields: `#[serde(with = "crate::domain::dates::required")]`.
pub mod required {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Instant, s: S) -> Result<S::Ok, S::Error> {
        bson::DateTime::from_chrono(*value).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        super::optional::deserialize(d)?
            .ok_or_else(|| serde::de::Error::custom("expected a date, found null"))
    }
}

/// For `Option<Instant>` fields; `None` is stored as null, and a missing field reads as `None`
/// (pair with `#[serde(default)]`).
pub mod optional {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
        value.map(bson::DateTime::from_chrono).serialize(s)
    }

    /// Reads a BSON date, or an ISO 8601 / RFC 3339 text with an offset (as a script or another
    /// writer may store it); null reads as `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
        match bson::Bson::deserialize(d)? {
            bson::Bson::DateTime(t) => Ok(Some(t.to_chrono())),
            bson::Bson::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|t| Some(super::truncate_millis(t.with_timezone(&chrono::Utc))))
                .map_err(|_| {
                    serde::de::Error::custom("expected a date, found a string that is not one")
                }),
            bson::Bson::Null | bson::Bson::Undefined => Ok(None),
            other => Err(serde::de::Error::custom(format!(
                "expected a date, found {}",
                super::super::lenient::describe(&other)
            ))),
        }
    }
}

/// The current instant truncated to milliseconds, so that what is written equals what is read back.
/// An instant as people on campus read it: local date and time with the zone named
/// (`2026-11-24 14:05 IST`). Every front end shows times this way.
pub fn campus_time(t: Instant, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

pub fn now_millis() -> Instant {
    truncate_millis(chrono::Utc::now())
}

/// Truncates an instant to whole milliseconds (BSON dates hold no more).
pub fn truncate_millis(t: Instant) -> Instant {
    bson::DateTime::from_chrono(t).to_chrono()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct At {
        #[serde(with = "required")]
        at: Instant,
        #[serde(with = "optional", default)]
        until: Option<Instant>,
    }

    #[test]
    fn dates_read_from_bson_dates_and_iso_texts() {
        let t = now_millis();
        let a: At = bson::from_document(bson::doc! {"at": bson::DateTime::from_chrono(t)}).unwrap();
        assert_eq!(a.at, t);
        assert_eq!(a.until, None);
        let b: At =
            bson::from_document(bson::doc! {"at": "2026-11-24T09:30:00.250+05:30", "until": null})
                .unwrap();
        assert_eq!(b.at.to_rfc3339(), "2026-11-24T04:00:00.250+00:00");
        for bad in [
            bson::Bson::from("yesterday"),
            bson::Bson::Int32(5),
            bson::Bson::Null,
        ] {
            let err = bson::from_document::<At>(bson::doc! {"at": bad}).unwrap_err();
            assert!(err.to_string().contains("expected a date"), "{err}");
        }
    }
}
