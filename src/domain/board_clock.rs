//! Event time from a board's own clock (PROTOCOL.md, "event time"; the rules in words are in
//! `docs/board-clock.md`).
//!
//! Boards stamp events with `millis()` since boot. Per board and boot we keep `B`, an estimate of the
//! boot instant: the minimum of `receive − millis` (the least-delayed message bounds it tightest).
//! Instead of a list of recent samples, the bound *ages*: between two messages it may rise by at most
//! `DRIFT_PPM` of the board time elapsed, which is the sliding window that follows a crystal running
//! slow, and needs nothing but `bootClock{bootAt, lastMillis}` stored on the device.
//!
//! An anchor never carries over from one boot to the next. A message is of the current boot only if
//! it could have been sent in it: not before the boot (`receive − millis ≥ B`), and, when its clock
//! went on from the last message seen, not so late that a reboot since that message is possible
//! unless the delivery was that slow. Where the clock cannot tell a reboot from a slow delivery the
//! message starts a new anchor ([`ClockStep::Unsure`]) and the collector closes the board's open
//! intervals at the last certain time.

use super::device::EarlierBoot;
use super::{BootClock, Instant};
use chrono::Duration;

/// How far (parts per million of board time) the boot estimate may rise between messages:
/// ESP32 crystals are within ±50 ppm.
pub const DRIFT_PPM: i64 = 100;

/// The error allowed for the boot estimate and for a prompt delivery: a message whose clock says it
/// is later than this is held back or of another boot.
pub const REBOOT_SLACK_MS: i64 = 5_000;

/// The largest `millis()` value: it is a 32-bit counter that wraps after 49.7 days.
pub const MAX_MILLIS: i64 = u32::MAX as i64;

/// One turn of the 32-bit counter.
const WRAP_MS: i64 = MAX_MILLIS + 1;

/// What a timestamp said about the board's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockStep {
    /// No anchor yet: this message starts one.
    First,
    /// The same boot, time going forwards (or standing still: a redelivery).
    Forward,
    /// The 32-bit counter wrapped after 49.7 days: the same boot, the clock's next turn.
    Wrap,
    /// The timestamp went backwards and the message cannot be older than the boot's last one: the
    /// board restarted since. A new anchor.
    NewBoot,
    /// The clock went on, but so much later than the boot's last message that the board may have
    /// restarted since, unless the message was held back as long: no way to tell. Taken as a new
    /// boot (a new anchor); the open intervals are closed at the last certain time.
    Unsure,
    /// The timestamp went backwards but belongs to the current boot: a late or redelivered message.
    /// It is timed with the current anchor and leaves the anchor unchanged.
    Late,
    /// A message of the boot before the current one, arriving after the new boot's: timed with
    /// that boot's anchor, the anchor unchanged.
    Earlier,
    /// A message sent before the current boot that fits no boot known: it cannot be timed, and
    /// nothing is done on its word but keeping it.
    Untimed,
}

impl ClockStep {
    /// Whether the message ends the boot before it (the board's open intervals end there).
    pub fn ends_a_boot(self) -> bool {
        matches!(self, ClockStep::NewBoot | ClockStep::Unsure)
    }

    /// Whether the message starts an anchor.
    fn starts_an_anchor(self) -> bool {
        matches!(
            self,
            ClockStep::First | ClockStep::Wrap | ClockStep::NewBoot | ClockStep::Unsure
        )
    }

    /// Whether the message leaves the anchor as it was.
    pub fn is_past(self) -> bool {
        matches!(
            self,
            ClockStep::Late | ClockStep::Earlier | ClockStep::Untimed
        )
    }
}

/// The result of one timestamped message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The anchor to store on the device.
    pub clock: BootClock,
    /// The message's event time.
    pub event_time: Instant,
    pub step: ClockStep,
    /// Where the message ends a boot: the board's last event known of the boot before, the last
    /// time its relays are known to have been as recorded.
    pub last_certain: Option<Instant>,
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

fn ms(n: i64) -> Duration {
    Duration::milliseconds(n)
}

fn observe_as(
    prev: Option<&BootClock>,
    millis: i64,
    received: Instant,
    redelivered: bool,
) -> Reading {
    let millis = millis.clamp(0, MAX_MILLIS);
    let candidate = received - ms(millis);
    let slack = ms(REBOOT_SLACK_MS);
    let Some(cur) = prev else {
        return anchor(
            BootClock::new(candidate, millis),
            received,
            ClockStep::First,
            None,
        );
    };
    let new_boot = |step| {
        let clock = BootClock {
            boot_at: candidate,
            last_millis: millis,
            previous: Some(EarlierBoot {
                boot_at: cur.boot_at,
                last_millis: cur.last_millis,
                unsure: step == ClockStep::Unsure,
                wrapped: false,
            }),
        };
        // The boot before ended before this one began (at or before `candidate`).
        let last_certain = cur.last_event().min(candidate);
        anchor(clock, received, step, Some(last_certain))
    };
    let before_this_boot = cur
        .previous
        .is_some_and(|p| candidate < p.boot_at + ms(p.last_millis) - slack);
    if candidate < cur.boot_at - slack && !before_this_boot {
        // Timed by the anchor it would have happened after it arrived, yet it may have been sent
        // after the boot before ended: the anchor came from a slow message; this one tightens it.
        return if millis >= cur.last_millis {
            forward(cur, millis, received, candidate)
        } else {
            late(cur, millis, received)
        };
    }
    if candidate < cur.boot_at - slack {
        // Sent before the boot before ended: of that boot, or of one before it.
        if let Some(p) = cur.previous {
            let sent = p.boot_at + ms(millis);
            if p.unsure && candidate >= p.boot_at - slack && sent > cur.boot_at + slack {
                // The anchor left that boot on a jump a slow delivery could explain, and that boot
                // was still running after the new anchor would have begun: it was a slow delivery,
                // not a reboot. Back to that boot.
                let revived = BootClock::new(p.boot_at, p.last_millis);
                return forward(&revived, millis, received, candidate);
            }
        }
        return earlier(cur, millis, received);
    }
    let late_by = candidate - cur.boot_at;
    if millis >= cur.last_millis {
        // A reboot since the last message needs `candidate ≥ bootAt + lastMillis`: below that (or
        // with a prompt delivery) the message is of this boot.
        if late_by <= slack || late_by < ms(cur.last_millis) - slack {
            return forward(cur, millis, received, candidate);
        }
        return new_boot(ClockStep::Unsure);
    }
    if redelivered {
        return late(cur, millis, received);
    }
    let wrapped = cur.boot_at + ms(WRAP_MS);
    if candidate >= wrapped - slack && candidate <= wrapped + slack {
        let clock = BootClock {
            boot_at: candidate.min(wrapped),
            last_millis: millis,
            previous: Some(EarlierBoot {
                boot_at: cur.boot_at,
                last_millis: cur.last_millis,
                unsure: false,
                wrapped: true,
            }),
        };
        let event_time = (clock.boot_at + ms(millis))
            .max(cur.last_event())
            .min(received);
        return Reading {
            clock,
            event_time,
            step: ClockStep::Wrap,
            last_certain: None,
        };
    }
    if candidate >= cur.last_event() - slack {
        return new_boot(ClockStep::NewBoot);
    }
    late(cur, millis, received)
}

fn anchor(
    clock: BootClock,
    received: Instant,
    step: ClockStep,
    last_certain: Option<Instant>,
) -> Reading {
    Reading {
        clock,
        event_time: received,
        step,
        last_certain,
    }
}

fn forward(cur: &BootClock, millis: i64, received: Instant, candidate: Instant) -> Reading {
    let aged = cur.boot_at + ms((millis - cur.last_millis).saturating_mul(DRIFT_PPM) / 1_000_000);
    let boot_at = candidate.min(aged);
    let event_time = (boot_at + ms(millis)).max(cur.last_event()).min(received);
    Reading {
        clock: BootClock {
            boot_at,
            last_millis: millis,
            previous: cur.previous,
        },
        event_time,
        step: ClockStep::Forward,
        last_certain: None,
    }
}

fn late(cur: &BootClock, millis: i64, received: Instant) -> Reading {
    // Sent in this boot, it bounds the boot instant too.
    let clock = BootClock {
        boot_at: cur.boot_at.min(received - ms(millis)),
        ..*cur
    };
    Reading {
        clock,
        event_time: (clock.boot_at + ms(millis)).min(received),
        step: ClockStep::Late,
        last_certain: None,
    }
}

/// A message sent before the current boot: of the boot before if it fits it (sent after that boot
/// began, and before the current one), else of a boot no longer known.
fn earlier(cur: &BootClock, millis: i64, received: Instant) -> Reading {
    let slack = ms(REBOOT_SLACK_MS);
    let candidate = received - ms(millis);
    let fits = cur.previous.filter(|p| {
        candidate >= p.boot_at - slack && p.boot_at + ms(millis) <= cur.boot_at + slack
    });
    let (event_time, step) = match fits {
        Some(p) => (
            (p.boot_at + ms(millis)).min(cur.boot_at).min(received),
            ClockStep::Earlier,
        ),
        None => (received, ClockStep::Untimed),
    };
    Reading {
        clock: *cur,
        event_time,
        step,
        last_certain: None,
    }
}

/// Times a run of one board's messages `(millis, received)` in arrival order, as [`observe`] one by
/// one, except that each boot's anchor is the tightest over the whole run: a burst delivered late
/// after a reboot (when the first message of the boot is as late as the rest) keeps the board's
/// spacing instead of collapsing onto its arrival time; and a jump the clock could not explain
/// ([`ClockStep::Unsure`]) that the rest of the run shows to be a slow delivery of the same boot
/// (its anchor comes back to the boot's) is taken back.
/// Each message is `(millis, received, redelivered)`.
pub fn observe_run(prev: Option<&BootClock>, msgs: &[(i64, Instant, bool)]) -> Vec<Reading> {
    let mut seq = Vec::with_capacity(msgs.len());
    let mut clock = prev.copied();
    for &(millis, received, redelivered) in msgs {
        let r = observe_as(clock.as_ref(), millis, received, redelivered);
        clock = Some(r.clock);
        seq.push(r);
    }
    // Anchors of the run: the stored one (if any) is number 0, then one per reading that starts one.
    struct Segment {
        best: Instant,
        last_millis: i64,
        previous: Option<EarlierBoot>,
    }
    let mut segments: Vec<Segment> = prev
        .map(|p| Segment {
            best: p.boot_at,
            last_millis: p.last_millis,
            previous: p.previous,
        })
        .into_iter()
        .collect();
    let mut of_reading = Vec::with_capacity(seq.len());
    for r in &mut seq {
        if r.step.starts_an_anchor() || segments.is_empty() {
            segments.push(Segment {
                best: r.clock.boot_at,
                last_millis: r.clock.last_millis,
                previous: r.clock.previous,
            });
        }
        let seg = segments.len() - 1;
        if !r.step.is_past() {
            let s = &mut segments[seg];
            if r.step == ClockStep::Forward
                && r.clock.previous.is_none()
                && s.previous.is_some_and(|p| p.unsure)
            {
                // Taken back to the boot before (see `observe_as`): no boot before it is known.
                s.previous = None;
            }
            s.best = s.best.min(r.clock.boot_at);
            s.last_millis = s.last_millis.max(r.clock.last_millis);
        }
        of_reading.push(seg);
    }
    // An Unsure anchor whose tightest bound came back to the anchor before it is that boot's.
    let mut same_as: Vec<usize> = (0..segments.len()).collect();
    for k in 1..segments.len() {
        let starts_unsure = seq
            .iter()
            .zip(&of_reading)
            .find(|(_, &s)| s == k)
            .is_some_and(|(r, _)| r.step == ClockStep::Unsure);
        let before = same_as[k - 1];
        if starts_unsure && segments[k].best <= segments[before].best + ms(REBOOT_SLACK_MS) {
            same_as[k] = before;
            segments[before].best = segments[before].best.min(segments[k].best);
            segments[before].last_millis =
                segments[before].last_millis.max(segments[k].last_millis);
        }
    }
    let mut prev_event = prev.map(|p| p.last_event());
    let mut last_of: Vec<Option<Instant>> = vec![None; segments.len()];
    if prev.is_some() {
        last_of[0] = prev_event;
    }
    let mut millis_so_far: Vec<i64> = segments.iter().map(|_| 0).collect();
    if let Some(p) = prev {
        millis_so_far[0] = p.last_millis;
    }
    let mut current = prev.map(|_| 0usize);
    seq.iter()
        .zip(&of_reading)
        .zip(msgs)
        .map(|((r, &seg), &(_, received, _))| {
            if r.step.is_past() {
                return *r;
            }
            let seg = same_as[seg];
            let mut step = r.step;
            let mut last_certain = None;
            if current != Some(seg) {
                if let Some(before) = current {
                    last_certain = last_of[before];
                }
                current = Some(seg);
                prev_event = last_of[seg];
            } else if step.starts_an_anchor() && step != ClockStep::First {
                // Taken back: the same boot after all.
                step = ClockStep::Forward;
            }
            let s = &segments[seg];
            let millis = r.clock.last_millis;
            millis_so_far[seg] = millis_so_far[seg].max(millis);
            let mut event_time = s.best + ms(millis);
            if let Some(p) = prev_event {
                event_time = event_time.max(p);
            }
            let event_time = event_time.min(received);
            prev_event = Some(event_time);
            last_of[seg] = Some(event_time);
            Reading {
                clock: BootClock {
                    boot_at: s.best,
                    last_millis: millis_so_far[seg],
                    previous: s.previous,
                },
                event_time,
                step,
                last_certain: if step.ends_a_boot() {
                    last_certain
                } else {
                    None
                },
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
        // A later, badly delayed message of a board up for an hour is timed by the board, not by
        // its arrival (the anchor may age by 100 ppm of the 10 s between them: 1 ms).
        let a = observe(None, 3_600_000, t0() + ms(3_600_400));
        let b = observe(Some(&a.clock), 3_610_000, t0() + ms(3_610_020));
        let c = observe(Some(&b.clock), 3_620_000, t0() + ms(3_685_000));
        assert_eq!(c.step, ClockStep::Forward);
        assert_eq!(c.event_time, t0() + ms(3_620_021));
    }

    #[test]
    fn burst_after_an_outage_keeps_board_durations() {
        // Up an hour when last heard; on at +10 s and off at +610 s of board time, both received
        // in a burst 900 s later: held back within the boot's time, they are the same boot's.
        let a = observe(None, 3_600_000, t0() + ms(3_600_000));
        let msgs = [
            (3_610_000, t0() + ms(4_500_000), false),
            (4_210_000, t0() + ms(4_500_010), false),
        ];
        let run = observe_run(Some(&a.clock), &msgs);
        assert_eq!(run[0].step, ClockStep::Forward);
        assert_eq!(run[0].event_time, t0() + ms(3_610_000));
        // Within the drift allowance: 100 ppm of 600 s.
        let length = run[1].event_time - run[0].event_time;
        assert!(length >= ms(600_000) && length <= ms(600_060), "{length:?}");
    }

    #[test]
    fn a_jump_the_clock_cannot_explain_is_unsure_and_keeps_the_boards_spacing() {
        // Up 5 s when last heard; 900 s later messages stamped 10 s and 610 s: a reboot since, or
        // messages held back 890 s. No way to tell: a new anchor, the boot before ended at its
        // last certain time, and the burst keeps the board's spacing.
        let a = observe(None, 5_000, t0() + ms(5_000));
        let msgs = [
            (10_000, t0() + ms(900_000), false),
            (610_000, t0() + ms(900_010), false),
        ];
        let run = observe_run(Some(&a.clock), &msgs);
        assert_eq!(run[0].step, ClockStep::Unsure);
        assert_eq!(run[0].last_certain, Some(t0() + ms(5_000)));
        assert_eq!(run[1].step, ClockStep::Forward);
        let length = run[1].event_time - run[0].event_time;
        assert_eq!(length, ms(600_000));
        assert!(run[0].clock.previous.is_some_and(|p| p.unsure));
    }

    #[test]
    fn an_unsure_jump_is_taken_back_when_the_boot_before_is_heard_still_running() {
        // Up an hour; a message stamped 2 h arrives 2 h 10 s after the boot (held back over an
        // hour, or a reboot since: unsure). Then the old boot is heard at once, later than the
        // new anchor would have begun: it was still running.
        let a = observe(None, 3_600_000, t0() + ms(3_600_000));
        let jump = observe(Some(&a.clock), 3_610_000, t0() + ms(7_300_000));
        assert_eq!(jump.step, ClockStep::Unsure);
        let back = observe(Some(&jump.clock), 3_700_001, t0() + ms(3_700_001));
        assert_eq!(back.step, ClockStep::Forward);
        assert_eq!(back.clock.boot_at, t0());
        assert_eq!(back.event_time, t0() + ms(3_700_001));
        // After a certain reboot a message of the old boot is late, and the anchor stays.
        let boot2 = observe(Some(&a.clock), 1_000, t0() + ms(3_700_000));
        assert_eq!(boot2.step, ClockStep::NewBoot);
        let old = observe(Some(&boot2.clock), 3_000_000, t0() + ms(3_700_010));
        assert_eq!(old.step, ClockStep::Earlier);
        assert_eq!(old.event_time, t0() + ms(3_000_000));
        assert_eq!(old.clock, boot2.clock);
        // One stamped later than the new boot's first is the new boot's.
        let new = observe(Some(&boot2.clock), 4_000, t0() + ms(3_703_000));
        assert_eq!(new.step, ClockStep::Forward);
    }

    #[test]
    fn a_board_rebooted_while_unheard_for_longer_than_it_was_up_is_never_timed_by_the_old_boot() {
        // Last heard 1.2 s after its boot; it reboots 100 s later and its first message heard is
        // stamped 30 s into the new boot, delivered at once.
        let a = observe(None, 1_204, t0() + ms(1_204));
        let boot2 = t0() + ms(100_000);
        let r = observe(Some(&a.clock), 30_000, boot2 + ms(30_000));
        assert_eq!(r.step, ClockStep::Unsure);
        assert_eq!(r.event_time, boot2 + ms(30_000));
        assert_eq!(r.clock.boot_at, boot2);
        assert_eq!(r.last_certain, Some(t0() + ms(1_204)));
        // Its next messages are timed by the new boot.
        let n = observe(Some(&r.clock), 60_000, boot2 + ms(60_000));
        assert_eq!(n.step, ClockStep::Forward);
        assert_eq!(n.event_time, boot2 + ms(60_000));
    }

    #[test]
    fn a_run_keeps_the_boot_before_even_when_the_boots_are_only_seconds_apart() {
        // Up 3.3 s, down 1.5 s, booted 5 s after the boot before: the new anchor keeps it.
        let a = observe(None, 3_293, t0() + ms(3_293));
        let run = observe_run(
            Some(&a.clock),
            &[
                (423, t0() + ms(5_423), false),
                (1_122, t0() + ms(6_122), false),
            ],
        );
        assert_eq!(run[0].step, ClockStep::NewBoot);
        for r in &run {
            assert_eq!(r.clock.previous.map(|p| p.boot_at), Some(t0()), "{r:?}");
        }
        assert_eq!(run[0].last_certain, Some(t0() + ms(3_293)));
    }

    #[test]
    fn a_late_message_of_the_boot_before_is_timed_by_that_boot() {
        // Up an hour, rebooted 10 s after its last message; the new boot is heard, then a message
        // the old boot sent 10 s before its end arrives.
        let a = observe(None, 3_600_000, t0() + ms(3_600_000));
        let boot2 = t0() + ms(3_610_000);
        let n1 = observe(Some(&a.clock), 2_000, boot2 + ms(2_000));
        assert_eq!(n1.step, ClockStep::NewBoot);
        assert_eq!(n1.last_certain, Some(t0() + ms(3_600_000)));
        let n2 = observe(Some(&n1.clock), 20_000, boot2 + ms(20_000));
        assert_eq!(n2.step, ClockStep::Forward);
        let old = observe(Some(&n2.clock), 3_590_000, boot2 + ms(25_000));
        assert_eq!(old.step, ClockStep::Earlier);
        assert_eq!(old.event_time, t0() + ms(3_590_000));
        assert_eq!(old.clock, n2.clock);
        // A message of a boot before that one fits none: untimed.
        let older = observe(Some(&n2.clock), 3_700_000, boot2 + ms(26_000));
        assert_eq!(older.step, ClockStep::Untimed);
        assert_eq!(older.clock, n2.clock);
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
    fn wrap_of_the_32_bit_counter_is_the_same_boot() {
        let a = observe(None, MAX_MILLIS - 1_000, t0());
        let r = observe(Some(&a.clock), 500, t0() + ms(1_500));
        assert_eq!(r.step, ClockStep::Wrap);
        assert!(!r.step.ends_a_boot());
        assert_eq!(r.event_time, t0() + ms(1_500));
        assert_eq!(r.clock.boot_at, t0() + ms(1_000));
        assert!(r.clock.previous.is_some_and(|p| p.wrapped));
        // A message from before the wrap, late, is timed by the turn before.
        let late = observe(Some(&r.clock), MAX_MILLIS - 500, t0() + ms(2_000));
        assert_eq!(late.step, ClockStep::Earlier);
        assert_eq!(late.event_time, t0() + ms(500));
        assert_eq!(late.clock, r.clock);
        // A reboot just before the wrap is a new boot, not the next turn.
        let reboot = observe(Some(&a.clock), 500, t0() + ms(60_000));
        assert_eq!(reboot.step, ClockStep::NewBoot);
        assert_eq!(reboot.last_certain, Some(t0()));
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
                if i > 0 && r.step == ClockStep::Forward && !run[i - 1].step.is_past() {
                    prop_assert!(r.event_time >= run[i - 1].event_time);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn event_time_is_never_after_receipt_and_never_goes_back_within_a_boot(
            // Up longer than any delivery delay below: no reboot could explain one.
            start in 300_000i64..MAX_MILLIS / 2,
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
            let run = observe_run(Some(&hb.clock), &[(on_at, arrival, false), (off_ms, arrival + ms(3), false)]);
            let (on, off) = (run[0], run[1]);
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
        fn prompt_messages_are_timed_right_across_any_reboots(
            boots in proptest::collection::vec(
                (6_000i64..200_000, proptest::collection::vec((1i64..40_000, 0i64..1_000), 1..8), 0i64..100_000),
                1..6,
            ),
        ) {
            // Each boot: how long it ran, its messages (board time since the last, delivery delay),
            // and how long the board was down after it. Delivered within a second, every message is
            // timed within that second of when it was sent, and each boot's first ends the one before.
            let mut clock: Option<BootClock> = None;
            let mut boot = t0();
            for (k, (uptime, msgs, down)) in boots.iter().enumerate() {
                let mut m = 0i64;
                let mut last_sent = None;
                for (j, &(dm, delay)) in msgs.iter().enumerate() {
                    m = (m + dm).min(*uptime);
                    let sent = boot + ms(m);
                    let r = observe(clock.as_ref(), m, sent + ms(delay));
                    prop_assert!(r.event_time <= sent + ms(delay));
                    prop_assert!((r.event_time - sent).num_milliseconds().abs() <= 1_000, "{:?} {:?}", r, sent);
                    if j == 0 && k > 0 {
                        prop_assert!(r.step.ends_a_boot(), "{:?}", r.step);
                        prop_assert!(r.last_certain.is_some_and(|t| t <= boot + ms(1_000)));
                    }
                    if j > 0 {
                        prop_assert_eq!(r.step, ClockStep::Forward);
                    }
                    clock = Some(r.clock);
                    last_sent = Some(sent);
                }
                prop_assert!(last_sent.is_some());
                boot += ms(*uptime + down);
            }
        }

        #[test]
        fn never_panics(prev in proptest::option::of((any::<i64>(), any::<i64>())), millis in any::<i64>(), recv in -1_000_000_000i64..1_000_000_000) {
            let received = t0() + ms(recv);
            let prev = prev.map(|(b, m)| BootClock::new(t0() + ms(b % 1_000_000_000_000), m.clamp(0, MAX_MILLIS)));
            let r = observe(prev.as_ref(), millis, received);
            prop_assert!(r.event_time <= received);
        }
    }
}
