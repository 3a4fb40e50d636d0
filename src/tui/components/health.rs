//! The health view's own state: the collection sizes, measured when it opens and again while it
//! stays open once they are old (a measurement reads every collection's statistics).

use crate::domain::Instant;
use chrono::Duration;

/// How old the collection sizes may be while the health view is open.
const SIZES_EVERY_SECS: i64 = 900;
/// A measurement of the sizes takes at most 1/`SIZES_DUTY` of the time the health view is open.
const SIZES_DUTY: i64 = 20;

/// The collection sizes of the health view: measured when it opens, and again while it stays
/// open once they are `SIZES_EVERY_SECS` old (or 20 times the last measurement's time, if longer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizesState {
    /// Since when a measurement runs.
    pub loading: Option<Instant>,
    /// When the last measurement ended, and how long it took.
    pub measured: Option<(Instant, std::time::Duration)>,
    /// Why the last measurement failed.
    pub error: Option<String>,
}

impl SizesState {
    /// Whether a new measurement is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        if self.loading.is_some() {
            return false;
        }
        match self.measured {
            None => true,
            Some((at, took)) => {
                let took = Duration::from_std(took).unwrap_or(Duration::zero());
                now - at >= Duration::seconds(SIZES_EVERY_SECS).max(took * SIZES_DUTY as i32)
            }
        }
    }

    /// A measurement asked for at `now`.
    pub fn start(&mut self, now: Instant) {
        self.loading = Some(now);
    }

    /// A measurement that ended at `now` after `took`, failed for `error` if it did.
    pub fn end(&mut self, now: Instant, took: std::time::Duration, error: Option<String>) {
        self.loading = None;
        self.measured = Some((now, took));
        self.error = error;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_due_at_first_then_every_quarter_hour_or_twenty_measurements() {
        let t0 = crate::tui::sample::now();
        let mut s = SizesState::default();
        assert!(s.due(t0));
        s.start(t0);
        assert!(!s.due(t0 + Duration::hours(1)), "one at a time");
        s.end(t0, std::time::Duration::from_secs(1), None);
        assert!(!s.due(t0 + Duration::seconds(899)));
        assert!(s.due(t0 + Duration::seconds(900)));
        s.end(t0, std::time::Duration::from_secs(60), Some("slow".into()));
        assert_eq!(s.error.as_deref(), Some("slow"));
        assert!(!s.due(t0 + Duration::seconds(1199)));
        assert!(s.due(t0 + Duration::seconds(1200)));
    }
}
