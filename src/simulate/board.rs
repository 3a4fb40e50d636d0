//! One virtual board: its relays and its command queue, exactly as the field firmware handles
//! `esp32/switches` (PROTOCOL.md): MAC + secret check, `gpio` / `relayGpio` / `index` and
//! `state` / `value`, a 16-slot queue where a newer command for a relay replaces a queued one, one
//! change per 150 ms, 300 ms between changes of the same relay, and no event when a relay already
//! is in the requested state.

use crate::domain::{Mac, Secret};
use crate::mqtt::message::{board, Event, RelaySelector};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const QUEUE_SLOTS: usize = 16;
pub const APPLY_EVERY: Duration = Duration::from_millis(150);
pub const SAME_RELAY_GAP: Duration = Duration::from_millis(300);
/// The firmware's default relay pins.
pub const DEFAULT_PINS: [i32; 6] = [16, 17, 18, 19, 21, 22];

/// What a board is: its identity and relay pins.
#[derive(Debug, Clone, PartialEq)]
pub struct BoardSpec {
    pub mac: Mac,
    pub secret: Secret,
    pub pins: Vec<i32>,
}

/// The board's answer to a queued command once applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The relay switched: send a `switch_event` (source backend) and a snapshot.
    Changed { gpio: i32, state: bool },
    /// It already was in that state: send nothing.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub spec: BoardSpec,
    mac_text: String,
    pub relays: Vec<bool>,
    pub manual_override: Vec<bool>,
    booted: Instant,
    /// `millis()` at `booted` (0 after a reboot; more to start a board near the 49.7-day wrap).
    millis_at_boot: u64,
    queue: VecDeque<(usize, bool)>,
    last_change: Vec<Option<Instant>>,
    last_apply: Option<Instant>,
}

impl Board {
    pub fn new(spec: BoardSpec, now: Instant) -> Board {
        let n = spec.pins.len();
        Board {
            mac_text: spec.mac.to_string(),
            spec,
            relays: vec![false; n],
            manual_override: vec![false; n],
            booted: now,
            millis_at_boot: 0,
            queue: VecDeque::new(),
            last_change: vec![None; n],
            last_apply: None,
        }
    }

    /// A board that has been up `uptime` already at `now` (its counter that far on).
    pub fn up_for(mut self, uptime: Duration, now: Instant) -> Board {
        self.booted = now;
        self.millis_at_boot = uptime.as_millis() as u64;
        self
    }

    /// `millis()`: milliseconds since boot, a 32-bit counter.
    pub fn millis(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.booted).as_millis() as u64;
        (self.millis_at_boot.wrapping_add(elapsed) % (1u64 << 32)) as u32
    }

    /// A reboot: the counter restarts from zero; relays keep their state (restored at boot) and the
    /// queue is lost.
    pub fn reboot(&mut self, now: Instant) {
        self.booted = now;
        self.millis_at_boot = 0;
        self.queue.clear();
    }

    /// Takes a parsed `esp32/switches` message; true if it was for this board and queued.
    pub fn accept(&mut self, event: &Event) -> bool {
        let Event::Command {
            mac,
            secret,
            relay,
            state,
        } = event
        else {
            return false;
        };
        if *mac != self.spec.mac
            || !secret
                .as_ref()
                .is_some_and(|s| self.spec.secret.matches(s.expose()))
        {
            return false;
        }
        let index = match relay {
            RelaySelector::Pin(p) => self.spec.pins.iter().position(|x| x == p),
            RelaySelector::Index(i) => (*i < self.spec.pins.len()).then_some(*i),
        };
        let Some(index) = index else { return false };
        self.queue.retain(|(i, _)| *i != index);
        if self.queue.len() >= QUEUE_SLOTS {
            return false;
        }
        self.queue.push_back((index, *state));
        true
    }

    /// Applies the next queued command if the firmware's pacing allows it now.
    pub fn step(&mut self, now: Instant) -> Option<Applied> {
        if self
            .last_apply
            .is_some_and(|t| now.saturating_duration_since(t) < APPLY_EVERY)
        {
            return None;
        }
        let pos = self.queue.iter().position(|(i, _)| {
            self.last_change[*i].is_none_or(|t| now.saturating_duration_since(t) >= SAME_RELAY_GAP)
        })?;
        let (index, state) = self.queue.remove(pos)?;
        self.last_apply = Some(now);
        if self.relays[index] == state {
            return Some(Applied::Unchanged);
        }
        self.set(index, state, now);
        Some(Applied::Changed {
            gpio: self.spec.pins[index],
            state,
        })
    }

    /// Switches a relay locally (wall switch or motion).
    pub fn set(&mut self, index: usize, state: bool, now: Instant) {
        self.relays[index] = state;
        self.last_change[index] = Some(now);
    }

    /// The MAC as the board prints it.
    pub fn mac_text(&self) -> &str {
        &self.mac_text
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn snapshot(&self) -> board::State<'_> {
        board::State {
            mac: &self.mac_text,
            secret: self.spec.secret.expose(),
            switches: self
                .spec
                .pins
                .iter()
                .zip(self.relays.iter().zip(&self.manual_override))
                .map(|(&gpio, (&state, &manual_override))| board::RelayEntry {
                    gpio,
                    state,
                    manual_override,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::message::parse;

    fn spec() -> BoardSpec {
        BoardSpec {
            mac: Mac::parse("A4:CF:12:B3:C4:D5").unwrap(),
            secret: Secret::new("s3cret"),
            pins: DEFAULT_PINS.to_vec(),
        }
    }

    fn cmd(text: &str) -> Event {
        parse("esp32/switches", text.as_bytes()).unwrap().event
    }

    #[test]
    fn only_commands_with_this_mac_and_secret_are_taken() {
        let t = Instant::now();
        let mut b = Board::new(spec(), t);
        assert!(!b.accept(&cmd(
            r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"nope","gpio":16,"state":true}"#
        )));
        assert!(!b.accept(&cmd(
            r#"{"mac":"A4:CF:12:B3:C4:D6","secret":"s3cret","gpio":16,"state":true}"#
        )));
        assert!(!b.accept(&cmd(
            r#"{"mac":"A4:CF:12:B3:C4:D5","gpio":16,"state":true}"#
        )));
        assert!(b.accept(&cmd(
            r#"{"mac":"a4cf12b3c4d5","secret":"s3cret","relayGpio":17,"value":1}"#
        )));
        assert!(b.accept(&cmd(
            r#"{"mac":"A4-CF-12-B3-C4-D5","secret":"s3cret","index":5,"state":true}"#
        )));
        assert!(!b.accept(&cmd(
            r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"s3cret","gpio":4,"state":true}"#
        )));
        assert_eq!(b.queued(), 2);
    }

    #[test]
    fn pacing_superseding_and_no_event_when_unchanged() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut b = Board::new(spec(), t);
        let on = |g: i32, s: bool| {
            cmd(&format!(
                r#"{{"mac":"A4:CF:12:B3:C4:D5","secret":"s3cret","gpio":{g},"state":{s}}}"#
            ))
        };
        assert!(b.accept(&on(16, true)));
        assert!(b.accept(&on(17, true)));
        assert!(b.accept(&on(17, false))); // supersedes the queued "17 on"
        assert_eq!(b.queued(), 2);
        assert_eq!(
            b.step(t),
            Some(Applied::Changed {
                gpio: 16,
                state: true
            })
        );
        assert_eq!(b.step(ms(100)), None, "150 ms between changes");
        assert_eq!(
            b.step(ms(150)),
            Some(Applied::Unchanged),
            "17 already off: no event"
        );
        assert!(b.accept(&on(16, false)));
        assert_eq!(b.step(ms(250)), None, "150 ms between changes");
        assert_eq!(
            b.step(ms(300)),
            Some(Applied::Changed {
                gpio: 16,
                state: false
            })
        );
    }

    #[test]
    fn the_same_relay_waits_300_ms() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut b = Board::new(spec(), t);
        let on = |s: bool| {
            cmd(&format!(
                r#"{{"mac":"A4:CF:12:B3:C4:D5","secret":"s3cret","gpio":16,"state":{s}}}"#
            ))
        };
        assert!(b.accept(&on(true)));
        assert_eq!(
            b.step(t),
            Some(Applied::Changed {
                gpio: 16,
                state: true
            })
        );
        assert!(b.accept(&on(false)));
        assert_eq!(b.step(ms(150)), None, "only 150 ms since relay 16 changed");
        assert_eq!(
            b.step(ms(300)),
            Some(Applied::Changed {
                gpio: 16,
                state: false
            })
        );
    }

    #[test]
    fn the_queue_holds_sixteen() {
        let t = Instant::now();
        let mut spec = spec();
        spec.pins = (0..20).collect();
        let mut b = Board::new(spec, t);
        for g in 0..20 {
            let ok = b.accept(&cmd(&format!(
                r#"{{"mac":"A4:CF:12:B3:C4:D5","secret":"s3cret","gpio":{g},"state":true}}"#
            )));
            assert_eq!(ok, g < 16, "{g}");
        }
    }

    #[test]
    fn millis_restart_at_reboot() {
        let t = Instant::now();
        let mut b = Board::new(spec(), t);
        assert_eq!(b.millis(t + Duration::from_millis(5_000)), 5_000);
        b.reboot(t + Duration::from_millis(6_000));
        assert_eq!(b.millis(t + Duration::from_millis(6_250)), 250);
    }

    #[test]
    fn the_counter_wraps_after_49_7_days() {
        let t = Instant::now();
        let b = Board::new(spec(), t).up_for(Duration::from_millis(u32::MAX as u64 - 999), t);
        assert_eq!(b.millis(t), u32::MAX - 999);
        assert_eq!(b.millis(t + Duration::from_millis(1_500)), 500);
    }
}
