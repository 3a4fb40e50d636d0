//! Event time from a board's own clock (PROTOCOL.md, "event time").
//!
//! Boards stamp events with `millis()` since boot. Per board and boot we keep `B`, an estimate of the
//! boot instant: the minimum of `receive − millis` (the least-delayed message bounds it tightest).
//! Instead of a list of recent samples, the bound *ages*: between two messages it may rise by at most
//! `DRIFT_PPM` of the board time elapsed, which is the sliding window that follows a crystal running
//! slow, and needs nothing but `bootClock{bootAt, lastMillis}` stored on the device.

use super::{BootClock, Instant};
use chrono::Duration;

/// How far (parts per million of board time) the boot estimate may rise between messages:
/// ESP32 crystals are within ±50 ppm.
pub const DRIFT_PPM: i64 = 100;

/// Slack for the error of the boot estimate when telling a reboot from a late message.
pub const REBOOT_SLACK_MS: i64 = 5_000;

/// The largest `millis()` value: it is a 32-bit counter that wraps after 49.7 days.
pub const MAX_MILLIS: i64 = u32::MAX as i64;

/// What a timestamp said about the board's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStep {
    /// No anchor yet: this message starts one.
    First,
    /// The same boot, time going forwards (or standing still: a redelivery).
    Forward,
    /// The timestamp went backwards and the board must have restarted after its last event (a
    /// reboot or the 49.7-day wrap): a new anchor.
    NewBoot,
    /// The timestamp went backwards but belongs to the current boot: a late or redelivered message.
    /// It is timed with the current anchor and leaves the anchor unchanged.
    Late,
}

/// The result of one timestamped message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The anchor to store on the device.
    pub clock: BootClock,
    /// The message's event time.
    pub event_time: Instant,
    pub step: ClockStep,
}

/// Times a message with board time `millis` received at `received`, given the device's anchor.
/// The event time is never later than `received` and, within a boot, never earlier than the board's
/// previous event.
pub fn observe(prev: Option<&BootClock>, millis: i64, received: Instant) -> Reading {
    observe_as(prev, millis, received, false)
}

/// As [`observe`], for a message the broker marked as a redelivery (MQTT DUP): it was sent before
/// what this anchor has seen, so a backwards timestamp is a late message, never a reboot.
pub fn observe_redelivered(prev: Option<&BootClock>, millis: i64, received: Instant) -> Reading {
    observe_as(prev, millis, received, true)
}

fn observe_as(
    prev: Option<&BootClock>,
    millis: i64,
    received: Instant,
    redelivered: bool,
) -> Reading {
    let millis = millis.clamp(0, MAX_MILLIS);
    let candidate = received - Duration::milliseconds(millis);
    let fresh = |step| Reading {
        clock: BootClock {
            boot_at: candidate,
            last_millis: millis,
        },
        event_time: received,
        step,
    };
    let Some(prev) = prev else {
        return fresh(ClockStep::First);
    };
    let prev_event = prev.boot_at + Duration::milliseconds(prev.last_millis);
    if millis < prev.last_millis {
        if !redelivered && candidate >= prev_event - Duration::milliseconds(REBOOT_SLACK_MS) {
            return fresh(ClockStep::NewBoot);
        }
        let event_time = (prev.boot_at + Duration::milliseconds(millis)).min(received);
        return Reading {
            clock: *prev,
            event_time,
            step: ClockStep::Late,
        };
    }
    let aged = prev.boot_at
        + Duration::milliseconds((millis - prev.last_millis).saturating_mul(DRIFT_PPM) / 1_000_000);
    let boot_at = candidate.min(aged);
    let event_time = (boot_at + Duration::milliseconds(millis))
        .max(prev_event)
        .min(received);
    Reading {
        clock: BootClock {
            boot_at,
            last_millis: millis,
        },
        event_time,
        step: ClockStep::Forward,
    }
}

/// Times a run of one board's messages `(millis, received)` in arrival order, as [`observe`] one by
/// one, except that each boot's anchor is the tightest over the whole run: a burst delivered late
/// after a reboot (when the first message of the boot is as late as the rest) keeps the board's
/// spacing instead of collapsing onto its arrival time.
/// Each message is `(millis, received, redelivered)`.
pub fn observe_run(prev: Option<&BootClock>, msgs: &[(i64, Instant, bool)]) -> Vec<Reading> {
    let mut seq = Vec::with_capacity(msgs.len());
    let mut clock = prev.copied();
    for &(millis, received, redelivered) in msgs {
        let r = observe_as(clock.as_ref(), millis, received, redelivered);
        clock = Some(r.clock);
        seq.push(r);
    }
    // Boot segments: a new one starts at every First / NewBoot reading.
    let mut best: Vec<Instant> = Vec::new();
    let mut segments = Vec::with_capacity(seq.len());
    for r in &seq {
        if best.is_empty() || matches!(r.step, ClockStep::First | ClockStep::NewBoot) {
            best.push(r.clock.boot_at);
        }
        let seg = best.len() - 1;
        if r.step != ClockStep::Late {
            best[seg] = best[seg].min(r.clock.boot_at);
        }
        segments.push(seg);
    }
    let mut prev_event = prev.map(|p| p.boot_at + Duration::milliseconds(p.last_millis));
    seq.iter()
        .zip(&segments)
        .zip(msgs)
        .map(|((r, &seg), &(_, received, _))| {
            if r.step == ClockStep::Late {
                return *r;
            }
            if matches!(r.step, ClockStep::First | ClockStep::NewBoot) {
                prev_event = None;
            }
            let boot_at = best[seg];
            let millis = r.clock.last_millis;
            let mut event_time = boot_at + Duration::milliseconds(millis);
            if let Some(p) = prev_event {
                event_time = event_time.max(p);
            }
            let event_time = event_time.min(received);
            prev_event = Some(event_time);
            Reading {
                clock: BootClock {
                    boot_at,
                    last_millis: millis,
                },
                event_time,
                step: r.step,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> Instant {
        chrono::Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap()
    }

    fn ms(n: i64) -> Duration {
        Duration::milliseconds(n)
    }

    #[test]
    fn first_message_anchors_at_receive_minus_millis() {
        let r = observe(None, 30_000, t0());
        assert_eq!(r.step, ClockStep::First);
        assert_eq!(r.clock.boot_at, t0() - ms(30_000));
        assert_eq!(r.event_time, t0());
    }

    #[test]
    fn least_delayed_message_tightens_the_anchor() {
        // True boot at t0; the first message was delayed 400 ms, the second 20 ms.
        let a = observe(None, 10_000, t0() + ms(10_400));
        let b = observe(Some(&a.clock), 20_000, t0() + ms(20_020));
        assert_eq!(b.clock.boot_at, t0() + ms(20));
        assert_eq!(b.event_time, t0() + ms(20_020));
        // A later, badly delayed message is timed by the board, not by its arrival.
        // (the anchor may age by 100 ppm of the 10 s between them: 1 ms).
        let c = observe(Some(&b.clock), 30_000, t0() + ms(95_000));
        assert_eq!(c.step, ClockStep::Forward);
        assert_eq!(c.event_time, t0() + ms(30_021));
    }

    #[test]
    fn burst_after_an_outage_keeps_board_durations() {
        let a = observe(None, 5_000, t0() + ms(5_000));
        // On at 10 s and off at 610 s of board time, both received in a burst at 900 s.
        let on = observe(Some(&a.clock), 10_000, t0() + ms(900_000));
        let off = observe(Some(&on.clock), 610_000, t0() + ms(900_010));
        // Within the drift allowance: 100 ppm of 600 s.
        let length = off.event_time - on.event_time;
        assert!(length >= ms(600_000) && length <= ms(600_060), "{length:?}");
    }

    #[test]
    fn reboot_starts_a_new_anchor() {
        let a = observe(None, 3_600_000, t0());
        let r = observe(Some(&a.clock), 1_204, t0() + ms(60_000));
        assert_eq!(r.step, ClockStep::NewBoot);
        assert_eq!(r.clock.boot_at, t0() + ms(60_000 - 1_204));
        assert_eq!(r.event_time, t0() + ms(60_000));
    }

    #[test]
    fn wrap_of_the_32_bit_counter_is_a_new_boot() {
        let a = observe(None, MAX_MILLIS - 1_000, t0());
        let r = observe(Some(&a.clock), 500, t0() + ms(1_500));
        assert_eq!(r.step, ClockStep::NewBoot);
        assert_eq!(r.event_time, t0() + ms(1_500));
    }

    #[test]
    fn redelivered_older_message_is_late_not_a_reboot() {
        let a = observe(None, 600_000, t0() + ms(600_000));
        let b = observe(Some(&a.clock), 700_000, t0() + ms(700_000));
        let late = observe(Some(&b.clock), 650_000, t0() + ms(760_000));
        assert_eq!(late.step, ClockStep::Late);
        assert_eq!(late.event_time, t0() + ms(650_000));
        assert_eq!(late.clock, b.clock);
    }

    #[test]
    fn a_redelivered_message_from_long_ago_is_late_even_when_it_looks_like_a_reboot() {
        // The board has been up two minutes; the collector comes back an hour later and the broker
        // redelivers (DUP) a message from before the stored anchor.
        let a = observe(None, 120_000, t0() + ms(120_000));
        let old = observe(Some(&a.clock), 60_000, t0() + ms(3_720_000));
        assert_eq!(old.step, ClockStep::NewBoot);
        let dup = observe_redelivered(Some(&a.clock), 60_000, t0() + ms(3_720_000));
        assert_eq!(dup.step, ClockStep::Late);
        assert_eq!(dup.event_time, t0() + ms(60_000));
    }

    #[test]
    fn redelivery_of_the_same_timestamp_gives_the_same_time() {
        let a = observe(None, 10_000, t0() + ms(10_000));
        let again = observe(Some(&a.clock), 10_000, t0() + ms(12_000));
        assert_eq!(again.step, ClockStep::Forward);
        assert_eq!(again.event_time, a.event_time);
    }

    #[test]
    fn anchor_follows_a_slow_crystal_within_the_drift_bound() {
        // The board's millisecond is 50 ppm long: every message arrives a little later than B + m.
        let mut clock = observe(None, 0, t0()).clock;
        let mut last = None;
        for k in 1..=100i64 {
            let m = k * 30_000;
            let real = t0() + ms(m + m * 50 / 1_000_000);
            let r = observe(Some(&clock), m, real);
            assert!(r.event_time <= real);
            clock = r.clock;
            last = Some((r, real));
        }
        let (r, real) = last.unwrap();
        // After 50 minutes (150 ms of drift) the event time is still within a few ms of the truth.
        assert!(real - r.event_time <= ms(5), "{:?}", real - r.event_time);
    }

    #[test]
    fn negative_and_oversized_millis_are_clamped() {
        let r = observe(None, -5, t0());
        assert_eq!(r.clock.last_millis, 0);
        let r = observe(None, i64::MAX, t0());
        assert_eq!(r.clock.last_millis, MAX_MILLIS);
    }

    #[test]
    fn a_late_burst_after_a_reboot_keeps_the_boards_spacing() {
        let first = observe(None, 3_600_000, t0());
        // Rebooted at t0 + 10 s; events at 2 s, 9 s, 22 s, 29 s of the new boot, all received at
        // t0 + 1 h.
        let arrival = t0() + ms(3_600_000);
        let msgs: Vec<(i64, Instant, bool)> = [2_000, 9_000, 22_000, 29_000]
            .iter()
            .enumerate()
            .map(|(i, &m)| (m, arrival + ms(i as i64), false))
            .collect();
        let run = observe_run(Some(&first.clock), &msgs);
        assert_eq!(run[0].step, ClockStep::NewBoot);
        let gaps: Vec<i64> = run
            .windows(2)
            .map(|w| (w[1].event_time - w[0].event_time).num_milliseconds())
            .collect();
        assert_eq!(gaps, [7_000, 13_000, 7_000]);
        assert!(run.iter().zip(&msgs).all(|(r, m)| r.event_time <= m.1));
        // One by one, the same burst collapses onto its arrival.
        let mut clock = first.clock;
        let mut one_by_one = vec![];
        for &(m, recv, _) in &msgs {
            let r = observe(Some(&clock), m, recv);
            clock = r.clock;
            one_by_one.push(r.event_time);
        }
        assert!(one_by_one[1] - one_by_one[0] < ms(10));
    }

    #[test]
    fn a_run_matches_single_observations_when_delivery_is_prompt() {
        let mut clock = observe(None, 1_000, t0() + ms(1_000)).clock;
        let msgs: Vec<(i64, Instant, bool)> = (2..20)
            .map(|k| (k * 1_000, t0() + ms(k * 1_000), false))
            .collect();
        let run = observe_run(Some(&clock), &msgs);
        for (r, &(m, recv, _)) in run.iter().zip(&msgs) {
            let single = observe(Some(&clock), m, recv);
            clock = single.clock;
            assert_eq!(r.event_time, single.event_time);
        }
    }

    proptest! {
        #[test]
        fn runs_never_time_after_receipt_nor_backwards_within_a_boot(
            steps in proptest::collection::vec((0i64..60_000, 0i64..5_000, any::<bool>()), 1..30),
        ) {
            let mut millis = 10_000i64;
            let mut received = t0();
            let mut msgs = vec![];
            for (dm, delay, reboot) in steps {
                millis = if reboot { dm % 5_000 } else { millis + dm };
                received += ms(dm.max(1) + delay);
                msgs.push((millis, received, false));
            }
            let run = observe_run(None, &msgs);
            for (i, r) in run.iter().enumerate() {
                prop_assert!(r.event_time <= msgs[i].1);
                if i > 0 && r.step == ClockStep::Forward && run[i - 1].step != ClockStep::Late {
                    prop_assert!(r.event_time >= run[i - 1].event_time);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn event_time_is_never_after_receipt_and_never_goes_back_within_a_boot(
            start in 0i64..MAX_MILLIS / 2,
            steps in proptest::collection::vec((0i64..120_000, 0i64..600_000), 1..40),
        ) {
            let mut received = t0();
            let mut millis = start;
            let mut r = observe(None, millis, received);
            for (dm, delay) in steps {
                millis += dm;
                received += ms(dm.max(1) + delay / 100);
                let next = observe(Some(&r.clock), millis, received);
                prop_assert!(next.event_time <= received);
                prop_assert_eq!(next.step, ClockStep::Forward);
                prop_assert!(next.event_time >= r.event_time);
                prop_assert!(next.clock.boot_at <= received - ms(millis));
                r = next;
            }
        }

        #[test]
        fn board_durations_survive_any_delivery_delay(
            boot_delay in 0i64..1_000,
            on_at in 1_000i64..1_000_000,
            length in 0i64..3_600_000,
            backlog in 0i64..3_600_000,
        ) {
            // A heartbeat delivered promptly anchors the clock; the on and off events arrive late in a
            // burst: their difference is the board's, within the drift allowance.
            let boot = t0();
            let hb = observe(None, 500, boot + ms(500 + boot_delay));
            let off_ms = on_at + length;
            let arrival = boot + ms(off_ms + backlog);
            let on = observe(Some(&hb.clock), on_at, arrival);
            let off = observe(Some(&on.clock), off_ms, arrival + ms(3));
            let measured = (off.event_time - on.event_time).num_milliseconds();
            // An event is timed late by at most the anchor's error when it arrives: the smallest
            // delivery delay seen so far in the boot (the heartbeat's, or the `on`'s own), plus what
            // the drift allowance let the anchor rise since. A quicker `off` tightens the anchor, so
            // the interval may come out short by that much, never long beyond the drift.
            let anchor_error = boot_delay.min(length + backlog);
            let rise = (on_at - 500) * DRIFT_PPM / 1_000_000 + 1;
            prop_assert!(measured >= length - anchor_error - rise && measured <= length + length * DRIFT_PPM / 1_000_000 + 1, "{} vs {}", measured, length);
        }

        #[test]
        fn never_panics(prev in proptest::option::of((any::<i64>(), any::<i64>())), millis in any::<i64>(), recv in -1_000_000_000i64..1_000_000_000) {
            let received = t0() + ms(recv);
            let prev = prev.map(|(b, m)| BootClock { boot_at: t0() + ms(b % 1_000_000_000_000), last_millis: m.clamp(0, MAX_MILLIS) });
            let r = observe(prev.as_ref(), millis, received);
            prop_assert!(r.event_time <= received);
        }
    }
}
