//! Validation errors that name the field, the value and the rule, and the shared field rules.

use std::fmt;

/// A value that breaks a rule of SCHEMA.md.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ValidationError {
    /// The field, as stored (`macAddress`, `delta_wh`, …).
    pub field: &'static str,
    /// The offending value as text (never a secret or a password).
    pub value: String,
    /// The rule, said so that the reader knows what to do.
    pub rule: String,
}

impl ValidationError {
    pub fn new(field: &'static str, value: impl fmt::Display, rule: impl Into<String>) -> Self {
        ValidationError {
            field,
            value: value.to_string(),
            rule: rule.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}: {}", self.field, self.value, self.rule)
    }
}

/// A person's or a thing's display name: trimmed, 2 to 50 characters.
pub fn name(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if !(2..=50).contains(&len) {
        return Err(ValidationError::new(
            field,
            raw,
            format!("must be 2 to 50 characters after trimming (is {len})"),
        ));
    }
    Ok(trimmed.to_string())
}

/// An e-mail address: trimmed, lower-cased, `^[^\s@]+@[^\s@]+\.[^\s@]+$`.
pub fn email(raw: &str) -> Result<String, ValidationError> {
    let email = raw.trim().to_lowercase();
    let ok = match email.split_once('@') {
        Some((local, domain)) => {
            let bytes = domain.as_bytes();
            !email.chars().any(char::is_whitespace)
                && !local.is_empty()
                && !domain.contains('@')
                // Some dot with at least one character on each side, as the pattern allows.
                && (1..bytes.len().saturating_sub(1)).any(|i| bytes[i] == b'.')
        }
        None => false,
    };
    if ok {
        Ok(email)
    } else {
        Err(ValidationError::new(
            "email",
            raw,
            "must look like name@example.org",
        ))
    }
}

/// The longest password bcrypt reads, in bytes: it ignores whatever follows, so a longer one
/// would be accepted for what it only begins with.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// A password before hashing: at least 8 characters, at most [`MAX_PASSWORD_BYTES`] bytes. The
/// value is never echoed.
pub fn password(raw: &str) -> Result<(), ValidationError> {
    if raw.chars().count() < 8 {
        return Err(ValidationError::new(
            "password",
            "<hidden>",
            "must be at least 8 characters",
        ));
    }
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err(ValidationError::new(
            "password",
            "<hidden>",
            format!("must be at most {MAX_PASSWORD_BYTES} bytes (bcrypt reads no further)"),
        ));
    }
    Ok(())
}

/// The longest firmware version accepted, in characters.
pub const MAX_FIRMWARE_VERSION_CHARS: usize = 32;

/// A firmware version as a board reports it (`1.4.2`, `v2.0.0-rc1`): trimmed, 1 to 32 printable
/// characters without spaces.
pub fn firmware_version(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let t = raw.trim();
    let shown = || t.escape_default().to_string();
    if t.is_empty() {
        return Err(ValidationError::new(field, "", "must not be empty"));
    }
    if t.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(ValidationError::new(
            field,
            shown(),
            "must be printable, without spaces (like 1.4.2)",
        ));
    }
    if t.chars().count() > MAX_FIRMWARE_VERSION_CHARS {
        return Err(ValidationError::new(
            field,
            t.chars().take(20).collect::<String>() + "…",
            format!("must be at most {MAX_FIRMWARE_VERSION_CHARS} characters"),
        ));
    }
    Ok(t.to_string())
}

/// A new tariff in ₹/kWh: to the paisa, from ₹0.01 to ₹100 (a smaller or finer price would be shown,
/// and read by people, as something else).
pub fn tariff(field: &'static str, price: f64) -> Result<f64, ValidationError> {
    if !price.is_finite() {
        return Err(ValidationError::new(
            field,
            price,
            "must be a finite number of ₹/kWh",
        ));
    }
    if !(0.01..=100.0).contains(&price) {
        return Err(ValidationError::new(
            field,
            price,
            "must be from ₹0.01 to ₹100 per kWh",
        ));
    }
    if ((price * 100.0).round() - price * 100.0).abs() > 1e-6 {
        return Err(ValidationError::new(
            field,
            price,
            "must be a whole number of paise (at most two decimals)",
        ));
    }
    Ok(price)
}

/// A price typed by a person: a plain decimal with at most two decimals (no sign, exponent or
/// separator), within [`tariff`]'s rule.
pub fn tariff_text(field: &'static str, raw: &str) -> Result<f64, ValidationError> {
    let t = raw.trim();
    let plain = !t.is_empty()
        && t.len() <= 12
        && t.chars().all(|c| c.is_ascii_digit() || c == '.')
        && t.matches('.').count() <= 1
        && t.split('.').nth(1).is_none_or(|d| d.len() <= 2);
    let price =
        t.parse::<f64>().ok().filter(|_| plain).ok_or_else(|| {
            ValidationError::new(field, t, "must be ₹/kWh to the paisa, like 7.50")
        })?;
    tariff(field, price)
}

/// A finite, non-negative number.
pub fn non_negative(field: &'static str, value: f64) -> Result<f64, ValidationError> {
    if !value.is_finite() || value < 0.0 {
        return Err(ValidationError::new(
            field,
            value,
            "must be a finite number ≥ 0",
        ));
    }
    Ok(value)
}

/// A finite number within `[min, max]`.
pub fn within(field: &'static str, value: f64, min: f64, max: f64) -> Result<f64, ValidationError> {
    if !value.is_finite() || value < min || value > max {
        return Err(ValidationError::new(
            field,
            value,
            format!("must be a finite number from {min} to {max}"),
        ));
    }
    Ok(value)
}

/// A time of day `HH:MM` (24-hour).
pub fn time_of_day(field: &'static str, raw: &str) -> Result<(u32, u32), ValidationError> {
    let bad = || ValidationError::new(field, raw, "must be a time of day HH:MM, 00:00 to 23:59");
    let (h, m) = raw.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok((h, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_length_boundaries() {
        assert!(name("name", "A").is_err());
        assert_eq!(name("name", "Ab").unwrap(), "Ab");
        assert_eq!(name("name", "  Ab  ").unwrap(), "Ab");
        assert!(name("name", &"x".repeat(50)).is_ok());
        let err = name("name", &"x".repeat(51)).unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.rule.contains("2 to 50"));
        assert!(name("name", "   ").is_err());
    }

    #[test]
    fn email_rules() {
        assert_eq!(email(" Asha@Campus.EDU ").unwrap(), "asha@campus.edu");
        assert!(email("a@b.co").is_ok());
        for bad in [
            "", "a", "a@b", "@b.c", "a@.c", "a@b.", "a b@c.d", "a@b@c.d", "a@b c.d",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn password_length_and_no_echo() {
        assert!(password("1234567").is_err());
        assert!(password("12345678").is_ok());
        assert!(!password("hunter2")
            .unwrap_err()
            .to_string()
            .contains("hunter2"));
        assert!(password(&"é".repeat(36)).is_ok(), "72 bytes");
        let long = "x".repeat(73);
        let e = password(&long).unwrap_err();
        assert!(e.rule.contains("72 bytes") && !e.to_string().contains(&long));
    }

    #[test]
    fn firmware_versions() {
        assert_eq!(firmware_version("v", " 1.4.2 ").unwrap(), "1.4.2");
        assert!(firmware_version("v", "v2.0.0-rc1+build.7").is_ok());
        assert!(firmware_version("v", &"1".repeat(32)).is_ok());
        for bad in ["", "  ", "1.4 beta", "1.4\u{1b}[31m", &"1".repeat(33)] {
            assert!(firmware_version("v", bad).is_err(), "{bad:?}");
        }
        let e = firmware_version("to_version", "a\u{7}b").unwrap_err();
        assert!(!e.to_string().contains('\u{7}'), "{e}");
    }

    #[test]
    fn tariff_boundaries() {
        assert!(tariff("cost_per_kwh", 0.0).is_err());
        assert!(tariff("cost_per_kwh", -1.0).is_err());
        assert!(tariff("cost_per_kwh", 0.0001).is_err());
        assert!(tariff("cost_per_kwh", 1e-300).is_err());
        assert!(tariff("cost_per_kwh", 7.125).is_err());
        assert!(tariff("cost_per_kwh", 0.01).is_ok());
        assert!(tariff("cost_per_kwh", 8.25).is_ok());
        assert!(tariff("cost_per_kwh", 100.0).is_ok());
        assert!(tariff("cost_per_kwh", 100.01).is_err());
        assert!(tariff("cost_per_kwh", f64::NAN).is_err());
        assert!(tariff("cost_per_kwh", f64::INFINITY).is_err());
        let err = tariff("cost_per_kwh", 100.01).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cost_per_kwh = \"100.01\": must be from ₹0.01 to ₹100 per kWh"
        );
    }

    #[test]
    fn time_of_day_rules() {
        assert_eq!(time_of_day("time", "00:00").unwrap(), (0, 0));
        assert_eq!(time_of_day("time", "23:59").unwrap(), (23, 59));
        for bad in ["24:00", "12:60", "7:00", "07:0", "0700", "ab:cd", ""] {
            assert!(time_of_day("time", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn within_and_non_negative() {
        assert!(non_negative("x", 0.0).is_ok());
        assert!(non_negative("x", -0.001).is_err());
        assert!(non_negative("x", f64::NAN).is_err());
        assert!(within("x", 86400.0, 0.0, 86400.0).is_ok());
        assert!(within("x", 86401.0, 0.0, 86400.0).is_err());
    }
}
