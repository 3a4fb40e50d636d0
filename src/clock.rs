//! Wall time, injectable: the collector and the relay commands read the time through a `Clock` so
//! tests can cross midnight or an offline threshold without waiting.

use crate::domain::Instant;
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

/// The system's clock, to the millisecond (what a BSON date keeps).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        crate::domain::dates::now_millis()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Instant>>);

impl ManualClock {
    pub fn new(start: Instant) -> Self {
        ManualClock(Arc::new(Mutex::new(crate::domain::dates::truncate_millis(
            start,
        ))))
    }

    pub fn set(&self, t: Instant) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) =
            crate::domain::dates::truncate_millis(t);
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let c = ManualClock::new(start);
        let c2 = c.clone();
        assert_eq!(c.now(), start);
        c.advance(chrono::Duration::seconds(90));
        assert_eq!(c2.now(), start + chrono::Duration::seconds(90));
        c2.set(start);
        assert_eq!(c.now(), start);
    }

    #[test]
    fn system_clock_is_millisecond_precise() {
        let t = SystemClock.now();
        assert_eq!(t.timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
