//! Days and instants as people type them. The command line and the dashboard read them with these
//! functions, so that a date one accepts the other accepts too.

use super::{Instant, ValidationError};
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The first and last day anything typed may name.
pub const EARLIEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("a valid date"),
};
pub const LATEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => panic!("a valid date"),
};

/// A day, `YYYY-MM-DD`, between 2000-01-01 and 2100-12-31.
pub fn day(raw: &str) -> Result<NaiveDate, String> {
    let d = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| "must be a day, YYYY-MM-DD".to_string())?;
    if !(EARLIEST_DAY..=LATEST_DAY).contains(&d) {
        return Err(format!("must be between {EARLIEST_DAY} and {LATEST_DAY}"));
    }
    Ok(d)
}

/// When something starts: `now` (or nothing) is `None`; else an instant, RFC 3339 or a
/// campus-local `YYYY-MM-DD[ HH:MM[:SS]]` (also with `T`). A local time that does not exist (a DST
/// gap) is refused; an ambiguous one is the first.
pub fn start(raw: &str, tz: Tz) -> Result<Option<Instant>, ValidationError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case("now") {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .ok_or_else(|| {
        ValidationError::new(
            "from",
            raw,
            "must be now, YYYY-MM-DD, YYYY-MM-DD HH:MM (campus time) or RFC 3339",
        )
    })?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| Some(t.with_timezone(&chrono::Utc)))
        .ok_or_else(|| {
            ValidationError::new(
                "from",
                raw,
                format!("does not exist in {tz} (a clock change)"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;

    const IST: Tz = chrono_tz::Asia::Kolkata;

    #[test]
    fn days_are_bounded() {
        assert!(day("2026-12-01").is_ok());
        assert_eq!(day(" 2000-01-01 "), Ok(EARLIEST_DAY));
        assert_eq!(day("2100-12-31"), Ok(LATEST_DAY));
        assert_eq!(
            day("1999-12-31"),
            Err("must be between 2000-01-01 and 2100-12-31".into())
        );
        for bad in [
            "0001-01-01",
            "9999-12-31",
            "2026-02-30",
            "26-12-01",
            "yesterday",
            "",
        ] {
            assert!(day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn starts_are_now_or_campus_local_unless_zoned() {
        assert_eq!(start("", IST).unwrap(), None);
        assert_eq!(start(" NOW ", IST).unwrap(), None);
        let midnight = Utc.with_ymd_and_hms(2026, 11, 24, 18, 30, 0).unwrap();
        for raw in [
            "2026-11-25",
            "2026-11-25 00:00",
            "2026-11-25 00:00:00",
            "2026-11-25T00:00",
            "2026-11-25T00:00:00",
            "2026-11-24T18:30:00Z",
            "2026-11-25T00:00:00+05:30",
        ] {
            assert_eq!(start(raw, IST).unwrap(), Some(midnight), "{raw}");
        }
        for bad in ["25/11/2026", "2026-02-30", "tomorrow"] {
            assert_eq!(start(bad, IST).unwrap_err().field, "from", "{bad}");
        }
        let ny: Tz = chrono_tz::America::New_York;
        assert!(start("2026-03-08 02:30", ny)
            .unwrap_err()
            .rule
            .contains("does not exist"));
    }

    proptest! {
        #[test]
        fn no_text_panics_the_parsers(raw in ".{0,40}") {
            let _ = day(&raw);
            let _ = start(&raw, IST);
        }
    }
}
