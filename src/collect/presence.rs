//! Presence is soft state: what the boards' messages say about `lastSeen`, `lastMotionAt` and the
//! clock anchor is kept here and written coalesced, apart from the batches (a message is
//! acknowledged before its presence is written; what is lost in a crash the next message restores).
//!
//! Talking boards' `lastSeen` is written together once every [`LAST_SEEN_EVERY`]: a board heard
//! every second needs no write every second, and the writes go to the presence groups, one
//! update per group (`store::presence`), so that a round costs the same for 20 boards or 2,000
//! and the groups are rewritten once per interval, not once per board heard. A board's first
//! time, a motion report and an anchor that times a relay change go at once. Until it is
//! written, the offline sweep asks here ([`Presence::unwritten_last_seen`]).

use crate::domain::{BootClock, Id, Instant};
use crate::store::presence::PresenceUpdate;
use crate::store::{Store, StoreError};
use std::collections::{HashMap, VecDeque};

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
    /// When every board's `lastSeen` was last taken for writing.
    last_round: Option<Instant>,
    /// Boards to mark online (in `devices`), each with the time it was first heard.
    marks: VecDeque<(Id, Instant)>,
}

/// At most this many boards are marked online in one update: on FerretDB each costs a scan of
/// the devices (~70 ms of the server's CPU at 2,000 boards), and a campus powering up at once
/// must not hold the database's writes in one long command.
const MARKS_AT_ONCE: usize = 25;

/// One round of presence writes.
#[derive(Debug, Default)]
pub struct PresenceWrites {
    /// What is written per board: its clock anchor only when it moved or with a motion report.
    each: Vec<(Id, PresenceUpdate)>,
    /// Everything taken, to confirm or give back.
    taken: Vec<(Id, PresenceUpdate)>,
}

/// Boards to mark online in `devices`, each with the time it was first heard: taken a bounded
/// number at a time, and written apart from the batches and the presence rounds.
#[derive(Debug, Default)]
pub struct OnlineMarks(Vec<(Id, Instant)>);

impl OnlineMarks {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Marks them online (one update; a board already online or in maintenance is left).
    pub async fn write(&self, store: &Store) -> Result<(), StoreError> {
        if let Some(seen) = self.0.iter().map(|m| m.1).min() {
            let ids: Vec<Id> = self.0.iter().map(|m| m.0).collect();
            store.mark_online_many(&ids, seen).await?;
        }
        Ok(())
    }
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
            last_round: None,
            marks: VecDeque::new(),
        }
    }

    /// Folds what a committed batch heard of a board.
    pub fn heard(&mut self, device: Id, update: PresenceUpdate) {
        self.pending.entry(device).or_default().merge(update);
    }

    /// Queues a board to be marked online (apart from the batches: on FerretDB a campus powering
    /// up at once would hold them for minutes).
    pub fn mark_online(&mut self, device: Id, seen: Instant) {
        if !self.marks.iter().any(|m| m.0 == device) {
            self.marks.push_back((device, seen));
        }
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

    /// Takes the writes due at `now` (all of them when `None`, at exit): every board's once
    /// [`LAST_SEEN_EVERY`] has passed since the last such round, together with its clock anchor
    /// if it moved (judged by `anchor_moved`; an anchor that times a relay change is stored before
    /// the change); in between, a board's first time and a motion report.
    pub fn take_due(
        &mut self,
        now: Option<Instant>,
        anchor_moved: impl Fn(Id, &BootClock) -> bool,
    ) -> PresenceWrites {
        let round = match now {
            None => true,
            Some(now) => self
                .last_round
                .is_none_or(|r| now - r >= self.last_seen_every),
        };
        if round && !self.pending.is_empty() {
            self.last_round = now.or(self.last_round);
        }
        let mut writes = PresenceWrites::default();
        let ids: Vec<Id> = self.pending.keys().copied().collect();
        for id in ids {
            let Some(p) = self.pending.get(&id).copied() else {
                continue;
            };
            let due = round || p.last_seen.is_none() || !self.seen_written.contains_key(&id);
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

    /// Takes the next online marks ([`MARKS_AT_ONCE`] of them; all when `all`).
    pub fn take_marks(&mut self, all: bool) -> OnlineMarks {
        let n = if all {
            self.marks.len()
        } else {
            self.marks.len().min(MARKS_AT_ONCE)
        };
        OnlineMarks(self.marks.drain(..n).collect())
    }

    /// Settles marks taken with [`Presence::take_marks`]: failed ones go first next time.
    pub fn settle_marks(&mut self, marks: OnlineMarks, written: bool) {
        if !written {
            for mark in marks.0.into_iter().rev() {
                self.marks.push_front(mark);
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
        let (other, id) = (Id::new(), Id::new());
        p.heard(other, seen(0));
        let w = p.take_due(Some(t(0)), never_moved);
        p.settle(w, true);
        p.written(id, t(0));
        p.heard(id, seen(2));
        assert!(p.take_due(Some(t(3)), never_moved).is_empty());
        assert_eq!(p.unwritten_last_seen(id), Some(t(2)));
        let w = p.take_due(Some(t(32)), never_moved);
        assert_eq!(taken_ids(&w), [id]);
    }

    #[test]
    fn boards_heard_at_different_times_are_written_together_once_per_interval() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let ids: Vec<Id> = (0..100).map(|_| Id::new()).collect();
        for id in &ids {
            p.heard(*id, seen(0));
        }
        let w = p.take_due(Some(t(0)), never_moved);
        p.settle(w, true);
        let mut rounds = Vec::new();
        for s in 1..=95 {
            // Each board reports every 30 s, at its own second.
            for (i, id) in ids.iter().enumerate() {
                if (s + i as i64) % 30 == 0 {
                    p.heard(*id, seen(s));
                }
            }
            if s % 5 == 0 {
                let w = p.take_due(Some(t(s)), never_moved);
                if !w.is_empty() {
                    rounds.push((s, w.taken.len()));
                }
                p.settle(w, true);
            }
        }
        assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), [30, 60, 90]);
        assert!(rounds.iter().all(|r| r.1 == 100), "{rounds:?}");
        for id in &ids {
            assert!(p.unwritten_last_seen(*id).is_none_or(|t_| t_ > t(90)));
        }
    }

    #[test]
    fn online_marks_go_a_bounded_number_at_a_time_and_failed_ones_come_back_first() {
        let mut p = Presence::new(chrono::Duration::seconds(30));
        let ids: Vec<Id> = (0..250).map(|_| Id::new()).collect();
        for id in &ids {
            p.mark_online(*id, t(0));
        }
        p.mark_online(ids[0], t(1));
        let m = p.take_marks(false);
        assert_eq!(m.0.len(), MARKS_AT_ONCE);
        assert_eq!(
            m.0[0],
            (ids[0], t(0)),
            "a board queued twice is marked once"
        );
        p.settle_marks(m, false);
        let m = p.take_marks(false);
        assert_eq!(m.0[0].0, ids[0], "failed marks are tried again first");
        p.settle_marks(m, true);
        let m = p.take_marks(true);
        assert_eq!(m.0.len(), 250 - MARKS_AT_ONCE, "at exit, all of them");
        p.settle_marks(m, true);
        assert!(p.take_marks(true).is_empty());
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
