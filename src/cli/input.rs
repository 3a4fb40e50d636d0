//! What a person types, checked before any work is done: every number, date, size and text has a
//! documented range, so nothing typed can panic, run without end or allocate without bound.
//!
//! The parsers here are clap value parsers (`fn(&str) -> Result<T, String>`): clap reports their
//! message with the flag and what was typed, and exits 2.

pub use crate::domain::typed_time::day;
use crate::domain::typed_time::{EARLIEST_DAY, LATEST_DAY};
use crate::domain::ValidationError;
use chrono::NaiveDate;

/// The longest range `aggregate` and `audit` take (ten years of days).
pub const MAX_SPAN_DAYS: i64 = 3660;
/// Ranges longer than this ask first (`--yes` when not on a terminal).
pub const CONFIRM_SPAN_DAYS: i64 = 31;
/// How far ahead a tariff may be set to start.
pub const MAX_TARIFF_LEAD_DAYS: i64 = 366;
/// Longest operator name and note, in characters.
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_NOTE_CHARS: usize = 500;
/// The sizes `seed` and `simulate` accept.
pub const MAX_SEED_CLASSROOMS: usize = 500;
pub const MAX_SEED_BOARDS_PER_CLASSROOM: usize = 20;
pub const MAX_SIMULATED_BOARDS: usize = 10_000;
pub const MAX_SIMULATE_RATE: f64 = 10_000.0;
/// The longest telemetry retention `prune-telemetry` takes (a century).
pub const MAX_RETENTION_DAYS: u32 = 36_500;
/// The most dead letters `rejected list` shows.
pub const MAX_LIST: usize = 10_000;
/// The most backups `backup --keep` keeps.
pub const MAX_KEEP_BACKUPS: usize = 1_000;

/// A month, `YYYY-MM`, within the same years as [`day`].
pub fn month(raw: &str) -> Result<NaiveDate, String> {
    let first = NaiveDate::parse_from_str(&format!("{}-01", raw.trim()), "%Y-%m-%d")
        .map_err(|_| "must be a month, YYYY-MM".to_string())?;
    if !(EARLIEST_DAY..=LATEST_DAY).contains(&first) {
        return Err(format!(
            "must be between {} and {}",
            EARLIEST_DAY.format("%Y-%m"),
            LATEST_DAY.format("%Y-%m")
        ));
    }
    Ok(first)
}

/// A price in ₹/kWh to the paisa: a plain decimal with at most two decimals, from 0.01 to 100.
pub fn price(raw: &str) -> Result<f64, String> {
    crate::domain::validation::tariff_text("price", raw).map_err(|e| e.rule)
}

/// A whole number within `lo..=hi` (clap's ranges, with the range said in the message).
pub fn count(raw: &str, lo: usize, hi: usize) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {lo} to {hi}")),
    }
}

pub fn seed_classrooms(raw: &str) -> Result<usize, String> {
    count(raw, 1, MAX_SEED_CLASSROOMS)
}

pub fn seed_boards(raw: &str) -> Result<usize, String> {
    count(raw, 1, MAX_SEED_BOARDS_PER_CLASSROOM)
}

pub fn simulated_boards(raw: &str) -> Result<usize, String> {
    count(raw, 1, MAX_SIMULATED_BOARDS)
}

pub fn list_limit(raw: &str) -> Result<usize, String> {
    count(raw, 1, MAX_LIST)
}

pub fn report_secs(raw: &str) -> Result<u64, String> {
    count(raw, 1, 3600).map(|n| n as u64)
}

/// A duration as `N` followed by `s`, `m`, `h` or `d` (`90s`, `10m`, `2h`, `1d`), from 1 s to
/// 365 days.
pub fn duration(raw: &str) -> Result<std::time::Duration, String> {
    let raw = raw.trim();
    let err = || {
        format!("{raw:?} is not a duration: write N followed by s, m, h or d (90s, 10m, 2h), from 1 s to 365 d")
    };
    let unit = raw.chars().last().ok_or_else(err)?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(err()),
    };
    let n: u64 = raw[..raw.len() - 1].parse().map_err(|_| err())?;
    match n.checked_mul(per) {
        Some(secs) if (1..=365 * 86_400).contains(&secs) => {
            Ok(std::time::Duration::from_secs(secs))
        }
        _ => Err(err()),
    }
}

pub fn retention_days(raw: &str) -> Result<u32, String> {
    count(raw, 1, MAX_RETENTION_DAYS as usize).map(|n| n as u32)
}

pub fn keep_backups(raw: &str) -> Result<usize, String> {
    count(raw, 1, MAX_KEEP_BACKUPS)
}

/// A schema version for `migrate --to`.
pub fn schema_version(raw: &str) -> Result<i32, String> {
    count(raw, 0, 1000).map(|n| n as i32)
}

/// A speed multiplier: more than 0, at most 10,000.
pub fn rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_SIMULATE_RATE => Ok(r),
        _ => Err(format!(
            "must be a number more than 0 and at most {MAX_SIMULATE_RATE}"
        )),
    }
}

/// An address to listen on: an IP and a port (`127.0.0.1:9464`, `[::1]:9464`; port 0 picks a free
/// one). Never a host name: what is bound is exactly what was typed.
pub fn listen_address(raw: &str) -> Result<std::net::SocketAddr, String> {
    raw.trim().parse().map_err(|_| {
        "must be an IP address and a port, such as 127.0.0.1:9464 or [::1]:9464 (not a host name)"
            .to_string()
    })
}

/// Printable text of at most `max` characters, trimmed: no control characters (escape sequences
/// would later print raw on someone's terminal).
pub fn printable(field: &'static str, raw: &str, max: usize) -> Result<String, ValidationError> {
    let t = raw.trim();
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            t.escape_default(),
            format!(
                "must be printable text (it holds the control character {:?})",
                c
            ),
        ));
    }
    if t.chars().count() > max {
        return Err(ValidationError::new(
            field,
            t.chars().take(20).collect::<String>() + "…",
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_string())
}

/// A person's or program's name: printable, 1 to 64 characters.
pub fn name(raw: &str) -> Result<String, String> {
    let t = printable("name", raw, MAX_NAME_CHARS).map_err(|e| e.rule)?;
    if t.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(t)
}

/// A note: printable, at most 500 characters.
pub fn note(raw: &str) -> Result<String, String> {
    printable("note", raw, MAX_NOTE_CHARS).map_err(|e| e.rule)
}

/// Who acts: `--as NAME` (or `AUTOVOLT_OPERATOR`, which clap reads into it), else `$USER`, else
/// `$LOGNAME`, else the name of the account the process runs as.
pub fn operator(given: Option<String>) -> Result<String, ValidationError> {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let (raw, source) = match given {
        Some(g) => (g, "--as"),
        None => match from_env("USER")
            .map(|u| (u, "$USER"))
            .or_else(|| from_env("LOGNAME").map(|u| (u, "$LOGNAME")))
            .or_else(|| os_account().map(|u| (u, "the system account")))
        {
            Some(found) => found,
            None => {
                return Err(ValidationError::new(
                    "as",
                    "",
                    "nobody to act as: give --as NAME (or set AUTOVOLT_OPERATOR)",
                ))
            }
        },
    };
    name(&raw).map_err(|rule| {
        ValidationError::new(
            "as",
            raw.escape_default(),
            format!("{rule} (from {source})"),
        )
    })
}

/// The login name of the account this process runs as, from the system's user database.
pub fn os_account() -> Option<String> {
    // SAFETY: getpwuid_r writes only into the buffers given, whose sizes are passed with them.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_str()
            .ok()
            .map(str::to_string)
            .filter(|n| !n.is_empty())
    }
}

/// Checks a range of days: not reversed, not longer than [`MAX_SPAN_DAYS`]; its length in days.
pub fn span(from: NaiveDate, to: NaiveDate) -> Result<i64, ValidationError> {
    if to < from {
        return Err(ValidationError::new(
            "to",
            to,
            format!("must not be before --from {from}"),
        ));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_SPAN_DAYS {
        return Err(ValidationError::new(
            "to",
            to,
            format!("the range from {from} is {days} days; at most {MAX_SPAN_DAYS} at once"),
        ));
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_and_stay_within_a_year() {
        assert_eq!(duration("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(duration("10m"), Ok(std::time::Duration::from_secs(600)));
        assert_eq!(duration(" 2h "), Ok(std::time::Duration::from_secs(7_200)));
        assert_eq!(
            duration("365d"),
            Ok(std::time::Duration::from_secs(365 * 86_400))
        );
        for bad in [
            "",
            "10",
            "0s",
            "366d",
            "1.5h",
            "-3m",
            "5w",
            "m",
            "99999999999999999999d",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
    use proptest::prelude::*;

    #[test]
    fn prices_are_to_the_paisa() {
        assert_eq!(price("7.5").unwrap(), 7.5);
        assert_eq!(price(" 8.25 ").unwrap(), 8.25);
        assert_eq!(price("100").unwrap(), 100.0);
        assert_eq!(price("0.01").unwrap(), 0.01);
        for bad in [
            "1e-300",
            "0",
            "0.00",
            "0.001",
            "7.125",
            "-1",
            "100.01",
            "inf",
            "NaN",
            "",
            "7,5",
            "1.2.3",
            "99999999999999",
        ] {
            assert!(price(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_are_bounded() {
        assert!(month("2026-12").is_ok());
        assert!(month("2026-13").is_err());
        assert!(month("0001-01").is_err());
    }

    #[test]
    fn spans_are_bounded() {
        let d = |s| day(s).unwrap();
        assert_eq!(span(d("2026-12-01"), d("2026-12-01")).unwrap(), 1);
        assert_eq!(
            span(d("2026-12-02"), d("2026-12-01")).unwrap_err().field,
            "to"
        );
        assert!(span(d("2000-01-01"), d("2100-12-31")).is_err());
    }

    #[test]
    fn names_and_notes_are_printable() {
        assert_eq!(name(" priya ").unwrap(), "priya");
        assert!(name("").is_err());
        assert!(name("  ").is_err());
        assert!(name("a\u{1b}[31mred").is_err());
        assert!(name(&"x".repeat(65)).is_err());
        assert!(note("").unwrap().is_empty());
        assert!(note("new slab\n").is_ok(), "a trailing newline is trimmed");
        assert!(note("two\nlines").is_err());
        assert!(operator(Some("\u{7}".into())).is_err());
        assert_eq!(operator(Some("ops".into())).unwrap(), "ops");
    }

    #[test]
    fn the_account_has_a_name() {
        assert!(os_account().is_some_and(|n| !n.is_empty()));
    }

    proptest! {
        #[test]
        fn no_text_panics_a_parser(raw in ".{0,40}") {
            let _ = day(&raw);
            let _ = month(&raw);
            let _ = price(&raw);
            let _ = rate(&raw);
            let _ = seed_classrooms(&raw);
            let _ = retention_days(&raw);
            let _ = name(&raw);
            let _ = note(&raw);
        }

        #[test]
        fn accepted_prices_are_whole_paise_within_the_rule(p in 0u32..20_000, junk in "[0-9]{0,2}") {
            let raw = format!("{}.{:02}{junk}", p / 100, p % 100);
            match price(&raw) {
                Ok(v) => {
                    prop_assert!(junk.is_empty());
                    prop_assert!((0.01..=100.0).contains(&v));
                    prop_assert!(((v * 100.0).round() - v * 100.0).abs() < 1e-6);
                }
                Err(_) => prop_assert!(!junk.is_empty() || p == 0 || p > 10_000),
            }
        }
    }
}
