//! Presence is soft state: what the boards' messages say about `lastSeen`, `lastMotionAt` and the
//! clock anchor is kept here and written coalesced, apart from the batches (a message is
//! acknowledged before its presence is written; what is lost in a crash the next message restores).
//!
//! A talking board's `lastSeen` is written at most every [`LAST_SEEN_EVERY`]: a board heard every
//! second needs no write every second. Until it is written, the offline sweep asks here
//! ([`Presence::unwritten_last_seen`]). A round's writes go to the presence groups, one update per
//! group touched (`store::presence`), so that a round costs the same for 20 boards or 2,000.

use crate::domain::{BootClock, Id, Instant};
use crate::store::presence::PresenceUpdate;
use crate::store::{Store, StoreError};
use std::collections::HashMap;

/// How often a talking board's `lastSeen` is written by default.
pub const LAST_SEEN_EVERY: chrono::Duration = chrono::Duration::seconds(30);

/// Presence heard and not yet written, and what was written.
pub struct Presence {
    /// Heard since the last writes were taken, coalesced per board.
    pending: HashMap<Id, PresenceUpdate>,
    /// Taken for writing, not yet confirmed written.
    in_flight: HashMap<Id, PresenceUpdate>,
    /// The `lastSeen` last written per board.
    seen_written: HashMap<Id, Instant>,
    last_seen_every: chrono::Duration,
}

/// One round of presence writes.
#[derive(Debug, Default)]
pub struct PresenceWrites {
    /// What is written per board: its clock anchor only when it moved or with a motion report.
    each: Vec<(Id, PresenceUpdate)>,
    /// Everything taken, to confirm or give back.
    taken: Vec<(Id, PresenceUpdate)>,
}

impl PresenceWrites {
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }

    /// Writes them, one update per presence group (times only move forwards).
    pub async fn write(&self, store: &Store) -> Result<(), StoreError> {
        if self.each.is_empty() {
            return Ok(());
        }
        store.write_presences(&self.each).await
    }

    /// The clock anchors these writes store.
    pub fn clocks(&self) -> impl Iterator<Item = (Id, BootClock)> + '_ {
        self.each
            .iter()
            .filter_map(|(id, p)| p.boot_clock.map(|c| (*id, c)))
    }
}

impl Presence {
    pub fn new(last_seen_every: chrono::Duration) -> Presence {
        Presence {
            pending: HashMap::new(),
            in_flight: HashMap::new(),
            seen_written: HashMap::new(),
            last_seen_every,
        }
    }

    /// Folds what a committed batch heard of a board.
    pub fn heard(&mut self, device: Id, update: PresenceUpdate) {
        self.pending.entry(device).or_default().merge(update);
    }

    /// Records a `lastSeen` written: by a round of these writes, or with another write (the mark
    /// that brought the board online), so that the board's next one is due an interval after it.
    pub fn written(&mut self, device: Id, last_seen: Instant) {
        let w = self.seen_written.entry(device).or_insert(last_seen);
        *w = (*w).max(last_seen);
    }

    /// The clock anchor heard for a board and not yet confirmed written.
    pub fn unwritten_clock(&self, device: Id) -> Option<BootClock> {
        self.pending
            .get(&device)
            .and_then(|p| p.boot_clock)
            .or_else(|| self.in_flight.get(&device).and_then(|p| p.boot_clock))
    }

    /// The `lastSeen` heard for a board and not yet confirmed written.
    pub fn unwritten_last_seen(&self, device: Id) -> Option<Instant> {
        let pending = self.pending.get(&device).and_then(|p| p.last_seen);
        let in_flight = self.in_flight.get(&device).and_then(|p| p.last_seen);
        pending.max(in_flight)
    }

    /// Takes the writes due at `now` (all of them when `None`, at exit): a motion report at once;
    /// `lastSeen` once the last write is [`LAST_SEEN_EVERY`] older than what was heard, or the
    /// board has been quiet that long, together with the clock anchor if it moved (judged by
    /// `anchor_moved`; an anchor that times a relay change is stored before the change).
    pub fn take_due(
        &mut self,
        now: Option<Instant>,
        anchor_moved: impl Fn(Id, &BootClock) -> bool,
    ) -> PresenceWrites {
        let mut writes = PresenceWrites::default();
        let ids: Vec<Id> = self.pending.keys().copied().collect();
        for id in ids {
            let Some(p) = self.pending.get(&id).copied() else {
                continue;
            };
            let due = match (now, p.last_seen, self.seen_written.get(&id)) {
                (_, None, _) | (None, _, _) | (_, _, None) => true,
                (Some(now), Some(t), Some(written)) => {
                    t - *written >= self.last_seen_every || now - t >= self.last_seen_every
                }
            };
            if p.last_motion_at.is_none() && !due {
                continue;
            }
            let mut written = p;
            if p.last_motion_at.is_none() && !p.boot_clock.is_some_and(|c| anchor_moved(id, &c)) {
                written.boot_clock = None;
            }
            writes.each.push((id, written));
            self.pending.remove(&id);
            self.in_flight.entry(id).or_default().merge(p);
            writes.taken.push((id, p));
        }
        writes
    }

    /// Settles writes taken with [`Presence::take_due`]: confirmed, or given back to be written
    /// with the next ones.
    pub fn settle(&mut self, writes: PresenceWrites, written: bool) {
        for (id, p) in writes.taken {
            self.in_flight.remove(&id);
            if written {
                if let Some(t) = p.last_seen {
                    self.written(id, t);
                }
            } else {
                let mut back = p;
                if let Some(later) = self.pending.get(&id) {
                    back.merge(*later);
                }
                self.pending.insert(id, back);
            }
        }
    }

    /// Takes one board's presence for writing now (the offline sweep), whatever is due.
    pub fn take_board(&mut self, device: Id) -> PresenceWrites {
        let mut writes = PresenceWrites::default();
        let mut p = self.in_flight.get(&device).copied().unwrap_or_default();
        if let Some(pending) = self.pending.remove(&device) {
            p.merge(pending);
        }
        if p != PresenceUpdate::default() {
            self.in_flight.entry(device).or_default().merge(p);
            writes.each.push((device, p));
            writes.taken.push((device, p));
        }
        writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Instant {
        chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
    }

    fn seen(s: i64) -> PresenceUpdate {
        PresenceUpdate {
            last_seen: Some(t(s)),
            ..Default::default()
        }
    }

    fn never_moved(_: Id, _: &BootClock) -> bool {
        false
    }

    fn taken_ids(w: &PresenceWrites) -> Vec<Id> {
        w.taken.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn a_board_first_heard_is_written_at_once() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let id = Id::new();
        p.heard(id, seen(0));
        let w = p.take_due(Some(t(1)), never_moved);
        assert_eq!(taken_ids(&w), [id]);
        assert_eq!(w.each, [(id, seen(0))]);
    }

    #[test]
    fn a_board_marked_online_is_not_written_again_at_once() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let id = Id::new();
        p.written(id, t(0));
        p.heard(id, seen(2));
        assert!(p.take_due(Some(t(3)), never_moved).is_empty());
        assert_eq!(p.unwritten_last_seen(id), Some(t(2)));
        let w = p.take_due(Some(t(32)), never_moved);
        assert_eq!(taken_ids(&w), [id]);
    }

    #[test]
    fn a_talking_board_is_written_once_per_interval() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let id = Id::new();
        p.heard(id, seen(0));
        let w = p.take_due(Some(t(0)), never_moved);
        p.settle(w, true);
        let mut writes = 0;
        for s in 1..=60 {
            p.heard(id, seen(s));
            let w = p.take_due(Some(t(s)), never_moved);
            if !w.is_empty() {
                writes += 1;
            }
            p.settle(w, true);
        }
        assert_eq!(writes, 2, "written at 30 s and 60 s only");
    }

    #[test]
    fn a_board_that_went_quiet_gets_its_last_time_written() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let id = Id::new();
        p.heard(id, seen(0));
        let w = p.take_due(Some(t(0)), never_moved);
        p.settle(w, true);
        p.heard(id, seen(7));
        assert!(p.take_due(Some(t(20)), never_moved).is_empty());
        assert_eq!(p.unwritten_last_seen(id), Some(t(7)));
        let w = p.take_due(Some(t(37)), never_moved);
        assert_eq!(taken_ids(&w), [id]);
        p.settle(w, true);
        assert_eq!(p.unwritten_last_seen(id), None);
    }

    #[test]
    fn writes_in_flight_still_count_as_unwritten_and_failed_ones_come_back() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let id = Id::new();
        p.heard(id, seen(5));
        let w = p.take_due(Some(t(5)), never_moved);
        assert_eq!(p.unwritten_last_seen(id), Some(t(5)));
        p.heard(id, seen(6));
        p.settle(w, false);
        assert_eq!(p.unwritten_last_seen(id), Some(t(6)));
        let w = p.take_due(None, never_moved);
        assert_eq!(taken_ids(&w), [id]);
        p.settle(w, true);
        assert_eq!(p.unwritten_last_seen(id), None);
    }

    #[test]
    fn motion_is_written_at_once_and_a_moved_clock_with_the_next_last_seen() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let (a, b) = (Id::new(), Id::new());
        for id in [a, b] {
            p.heard(id, seen(0));
        }
        let w = p.take_due(Some(t(0)), never_moved);
        p.settle(w, true);
        p.heard(
            a,
            PresenceUpdate {
                last_seen: Some(t(1)),
                last_motion_at: Some(t(1)),
                boot_clock: None,
            },
        );
        p.heard(
            b,
            PresenceUpdate {
                last_seen: Some(t(1)),
                last_motion_at: None,
                boot_clock: Some(BootClock::new(t(-100), 101_000)),
            },
        );
        let w = p.take_due(Some(t(1)), |_, _| true);
        assert_eq!(taken_ids(&w), [a]);
        assert_eq!(w.each.len(), 1);
        p.settle(w, true);
        let w = p.take_due(Some(t(31)), |_, _| true);
        assert_eq!(taken_ids(&w), [b]);
        assert_eq!(w.clocks().count(), 1);
    }
}
