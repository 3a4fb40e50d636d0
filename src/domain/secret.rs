//! A device secret: compared and sent to the board, never displayed, logged or put in an error.

use serde::{Deserialize, Serialize};

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret's text, for the only two places that need it: comparing and publishing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares in time independent of where the texts first differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let a = self.0.as_bytes();
        let b = candidate.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// A new random secret: 24 bytes as hex, like the boards are provisioned with.
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        let bytes: [u8; 24] = rng.random();
        Secret(hex::encode(bytes))
    }
}

/// How a secret, or the password inside an address, is shown.
pub const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_text() {
        let s = Secret::new("5f1c0a9e");
        assert!(!format!("{s:?}").contains("5f1c"));
        assert!(!format!("{s}").contains("5f1c"));
    }

    #[test]
    fn matches_only_the_same_text() {
        let s = Secret::new("abcd");
        assert!(s.matches("abcd"));
        assert!(!s.matches("abce"));
        assert!(!s.matches("abc"));
        assert!(!s.matches(""));
    }

    #[test]
    fn generated_secrets_are_48_hex_chars() {
        let s = Secret::generate(&mut rand::rng());
        assert_eq!(s.expose().len(), 48);
        assert!(s.expose().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
