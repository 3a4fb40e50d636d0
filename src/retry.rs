//! How long to wait before trying again: the one rule of every reconnect and retry loop (the
//! collector's broker and database, the dashboard's broker, database and change feed). The wait
//! doubles from a first one up to a cap and starts over after a success; `backon` computes it.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// The waits between failed attempts.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    waits: ExponentialBackoff,
}

impl Backoff {
    /// `first`, then twice as long each time, at most `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        let builder = ExponentialBuilder::default()
            .with_min_delay(first)
            .with_max_delay(cap)
            .without_max_times();
        Backoff {
            builder,
            waits: builder.build(),
        }
    }

    /// Each wait lengthened by a random part of itself (up to twice as long), so that processes
    /// that failed together do not try again in step.
    pub fn with_jitter(self) -> Backoff {
        let builder = self.builder.with_jitter();
        Backoff {
            builder,
            waits: builder.build(),
        }
    }

    /// The wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        // Never ends: the builder has no limit of attempts or of total time.
        self.waits.next().unwrap_or(Duration::MAX)
    }

    /// An attempt succeeded: the next failure waits the first wait again.
    pub fn reset(&mut self) {
        self.waits = self.builder.build();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_to_the_cap_and_start_over_after_a_success() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
        let waits: Vec<u64> = (0..7).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_wait(), Duration::from_millis(500));
        // Thousands of failures later, still the cap.
        for _ in 0..10_000 {
            b.next_wait();
        }
        assert_eq!(b.next_wait(), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_between_the_wait_and_twice_it() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(5)).with_jitter();
        let mut plain = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        for _ in 0..50 {
            let (w, p) = (b.next_wait(), plain.next_wait());
            assert!(w >= p && w <= p * 2, "{w:?} against {p:?}");
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(400));
    }
}
