//! Reading fields that other writers of the shared database store in another plausible type.
//!
//! The Node back end and hand-written scripts write the same collections: a classroom may be a name
//! or an ObjectId reference, a device id an ObjectId or its hex, a whole number a double (JavaScript
//! has one number type). These deserializers accept each such shape and nothing else, so a value
//! that is really wrong still fails (and the store skips and counts that document). Writing is
//! unchanged: we always write the type SCHEMA.md names.

use super::Id;
use bson::Bson;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// How a BSON value's type reads in a sentence: "a string", "an ObjectId", "null".
pub fn describe(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "a double",
        Bson::String(_) => "a string",
        Bson::Array(_) => "an array",
        Bson::Document(_) => "a document",
        Bson::Boolean(_) => "a boolean",
        Bson::Null | Bson::Undefined => "null",
        Bson::RegularExpression(_) => "a regular expression",
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => "JavaScript code",
        Bson::Int32(_) => "an int32",
        Bson::Int64(_) => "an int64",
        Bson::Timestamp(_) => "a timestamp",
        Bson::Binary(_) => "binary data",
        Bson::ObjectId(_) => "an ObjectId",
        Bson::DateTime(_) => "a date",
        Bson::Symbol(_) => "a symbol",
        Bson::Decimal128(_) => "a Decimal128",
        Bson::MaxKey | Bson::MinKey => "a min/max key",
        Bson::DbPointer(_) => "a DB pointer",
    }
}

fn wrong<E: serde::de::Error>(expected: &str, found: &Bson) -> E {
    E::custom(format!("expected {expected}, found {}", describe(found)))
}

/// Text that may be stored as an ObjectId reference (read as its hex); null or missing reads as "".
pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(optional_text(d)?.unwrap_or_default())
}

/// Optional text that may be stored as an ObjectId reference (read as its hex).
pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Bson::deserialize(d)? {
        Bson::String(s) => Ok(Some(s)),
        Bson::ObjectId(id) => Ok(Some(id.to_hex())),
        Bson::Null | Bson::Undefined => Ok(None),
        other => Err(wrong("a string or an ObjectId", &other)),
    }
}

/// An optional ObjectId that may be stored as its 24-digit hex text.
pub fn optional_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Id>, D::Error> {
    match Bson::deserialize(d)? {
        Bson::ObjectId(id) => Ok(Some(id)),
        Bson::String(s) if s.trim().is_empty() => Ok(None),
        Bson::String(s) => Id::parse_str(s.trim())
            .map(Some)
            .map_err(|_| D::Error::custom("expected an ObjectId, found a string that is not one")),
        Bson::Null | Bson::Undefined => Ok(None),
        other => Err(wrong("an ObjectId", &other)),
    }
}

/// An ObjectId that may be stored as its 24-digit hex text.
pub fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
    optional_id(d)?.ok_or_else(|| D::Error::custom("expected an ObjectId, found nothing"))
}

/// A whole number from int32, int64 or an integral double within `i64`.
fn whole(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        // 2^63 is exactly representable; anything at or beyond it does not fit.
        Bson::Double(v) if v.fract() == 0.0 && v.abs() < 2f64.powi(63) => Some(*v as i64),
        _ => None,
    }
}

/// A whole number stored as int32, int64 or a double without a fraction.
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let value = Bson::deserialize(d)?;
    whole(&value).ok_or_else(|| wrong("a whole number", &value))
}

/// [`int64`] within `i32`.
pub fn int32<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    let value = Bson::deserialize(d)?;
    whole(&value)
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| wrong("a whole number within 32 bits", &value))
}

/// An optional [`int32`]; null reads as `None`.
pub fn optional_int32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    let value = Bson::deserialize(d)?;
    if matches!(value, Bson::Null | Bson::Undefined) {
        return Ok(None);
    }
    whole(&value)
        .and_then(|v| i32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| wrong("a whole number within 32 bits", &value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;
    use proptest::prelude::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "text")]
        classroom: String,
        #[serde(default, deserialize_with = "optional_id")]
        device: Option<Id>,
        #[serde(default, deserialize_with = "int32")]
        count: i32,
        #[serde(default, deserialize_with = "optional_int32")]
        floor: Option<i32>,
    }

    fn read(d: bson::Document) -> Result<Sample, bson::de::Error> {
        bson::from_document(d)
    }

    #[test]
    fn a_classroom_reads_as_a_name_or_a_reference() {
        let id = Id::new();
        assert_eq!(
            read(doc! {"classroom": "CS-101"}).unwrap().classroom,
            "CS-101"
        );
        assert_eq!(read(doc! {"classroom": id}).unwrap().classroom, id.to_hex());
        assert_eq!(read(doc! {"classroom": null}).unwrap().classroom, "");
        assert_eq!(read(doc! {}).unwrap().classroom, "");
        let err = read(doc! {"classroom": 5}).unwrap_err().to_string();
        assert!(err.contains("found an int32"), "{err}");
    }

    #[test]
    fn an_id_reads_as_an_object_id_or_its_hex() {
        let id = Id::new();
        assert_eq!(read(doc! {"device": id}).unwrap().device, Some(id));
        assert_eq!(read(doc! {"device": id.to_hex()}).unwrap().device, Some(id));
        assert_eq!(read(doc! {"device": ""}).unwrap().device, None);
        assert!(read(doc! {"device": "lab-7"}).is_err());
    }

    #[test]
    fn whole_numbers_read_from_every_numeric_type() {
        assert_eq!(read(doc! {"count": 3}).unwrap().count, 3);
        assert_eq!(read(doc! {"count": 3i64}).unwrap().count, 3);
        assert_eq!(read(doc! {"count": 3.0}).unwrap().count, 3);
        assert!(read(doc! {"count": 3.5}).is_err());
        assert!(read(doc! {"count": 5_000_000_000i64}).is_err());
        assert!(read(doc! {"count": "3"}).is_err());
        assert_eq!(read(doc! {"floor": null}).unwrap().floor, None);
        assert_eq!(read(doc! {"floor": 2.0}).unwrap().floor, Some(2));
    }

    proptest! {
        #[test]
        fn every_i32_reads_back_from_each_numeric_type(v in any::<i32>()) {
            for stored in [Bson::Int32(v), Bson::Int64(i64::from(v)), Bson::Double(f64::from(v))] {
                let count = read(doc! {"count": stored}).unwrap().count;
                prop_assert_eq!(count, v);
            }
        }

        #[test]
        fn a_fraction_is_never_read_as_a_whole_number(v in any::<f64>().prop_filter("fractional", |v| v.fract() != 0.0)) {
            let outcome = read(doc! {"count": v});
            prop_assert!(outcome.is_err());
        }
    }
}
