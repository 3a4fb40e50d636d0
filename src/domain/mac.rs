//! MAC addresses: stored upper case with colons, as the boards' `WiFi.macAddress()` prints them.

use super::validation::ValidationError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A normalised MAC address (`A4:CF:12:B3:C4:D5`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

impl Mac {
    pub fn from_bytes(bytes: [u8; 6]) -> Self {
        Mac(bytes)
    }

    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }

    /// Reads `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` or a mix of separators, any case; also the
    /// 12 hex digits without separators that the boards use in their client ids.
    pub fn parse(raw: &str) -> Result<Mac, ValidationError> {
        let bad = || {
            ValidationError::new(
                "macAddress",
                raw,
                "must be six two-digit hex bytes separated by ':' or '-' (A4:CF:12:B3:C4:D5)",
            )
        };
        let text = raw.trim();
        // Byte offsets below are only character offsets for ASCII text.
        if !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        if text.len() == 12 && text.chars().all(|c| c.is_ascii_hexdigit()) {
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
            }
            return Ok(Mac(out));
        }
        if text.len() != 17 {
            return Err(bad());
        }
        let bytes = text.as_bytes();
        for (i, b) in out.iter_mut().enumerate() {
            let pair = &text[3 * i..3 * i + 2];
            if !pair.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *b = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
            if i < 5 && !matches!(bytes[3 * i + 2], b':' | b'-') {
                return Err(bad());
            }
        }
        Ok(Mac(out))
    }

    /// The 12 upper-case hex digits, as in a board's MQTT client id (`ESP32_A4CF12B3C4D5`).
    pub fn compact(&self) -> String {
        hex::encode_upper(self.0)
    }

    /// The board's MQTT client id.
    pub fn client_id(&self) -> String {
        format!("ESP32_{}", self.compact())
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

impl FromStr for Mac {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mac::parse(s)
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Mac::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepted_forms_normalise() {
        for raw in [
            "A4:CF:12:B3:C4:D5",
            "a4:cf:12:b3:c4:d5",
            "A4-CF-12-B3-C4-D5",
            "a4-cf:12-b3:c4-d5",
            " A4:CF:12:B3:C4:D5 ",
            "A4CF12B3C4D5",
        ] {
            assert_eq!(
                Mac::parse(raw).unwrap().to_string(),
                "A4:CF:12:B3:C4:D5",
                "{raw}"
            );
        }
    }

    #[test]
    fn rejected_forms_name_the_rule() {
        for raw in [
            "",
            "ZZ:CF:12:B3:C4:D5",
            "A4:CF:12:B3:C4",
            "A4:CF:12:B3:C4:D5:00",
            "A4.CF.12.B3.C4.D5",
            "A4:CF:12:B3:C4:D",
            "A4:CF:12:B3:C4:D5x",
            "+4:CF:12:B3:C4:D5",
            "A4CF12B3C4D",
            "\u{fffd}\u{feff}.\u{7b808}`<.&{",
        ] {
            let err = Mac::parse(raw).unwrap_err();
            assert_eq!(err.field, "macAddress", "{raw}");
        }
    }

    #[test]
    fn client_id_has_no_colons() {
        let mac = Mac::parse("a4:cf:12:b3:c4:d5").unwrap();
        assert_eq!(mac.client_id(), "ESP32_A4CF12B3C4D5");
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(bytes in any::<[u8; 6]>()) {
            let mac = Mac::from_bytes(bytes);
            prop_assert_eq!(Mac::parse(&mac.to_string()).unwrap(), mac);
            prop_assert_eq!(Mac::parse(&mac.to_string().to_lowercase().replace(':', "-")).unwrap(), mac);
        }

        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = Mac::parse(&text);
        }
    }
}
