//! The on-call verdict and the rules behind it: whether a collector runs, whether anything hears the
//! boards, and the one level (text, exit code, `--json`) that the problems found add up to.

use super::Instant;
use serde::Serialize;

/// Overall verdict, and the process exit code it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthLevel {
    Ok,
    Warning,
    Critical,
}

impl HealthLevel {
    pub fn exit_code(self) -> i32 {
        match self {
            HealthLevel::Ok => 0,
            HealthLevel::Warning => 1,
            HealthLevel::Critical => 2,
        }
    }

    /// A single-width mark readable without colour.
    pub fn mark(self) -> &'static str {
        match self {
            HealthLevel::Ok => "●",
            HealthLevel::Warning => "▲",
            HealthLevel::Critical => "✕",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            HealthLevel::Ok => "OK",
            HealthLevel::Warning => "WARNING",
            HealthLevel::Critical => "CRITICAL",
        }
    }
}

/// What a check found wrong, by level. The verdict is derived from it and nothing else, so that the
/// text, the exit code and `--json` cannot disagree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub warnings: Vec<String>,
    pub criticals: Vec<String>,
}

impl Problems {
    /// Adds a problem at `level`; an `Ok` level adds nothing.
    pub fn raise(&mut self, level: HealthLevel, problem: impl Into<String>) {
        match level {
            HealthLevel::Ok => {}
            HealthLevel::Warning => self.warnings.push(problem.into()),
            HealthLevel::Critical => self.criticals.push(problem.into()),
        }
    }

    /// The verdict: critical if anything is, else a warning if anything is, else OK.
    pub fn level(&self) -> HealthLevel {
        if !self.criticals.is_empty() {
            HealthLevel::Critical
        } else if !self.warnings.is_empty() {
            HealthLevel::Warning
        } else {
            HealthLevel::Ok
        }
    }

    /// The end of the report: each problem on a line of its own (criticals first), then the
    /// verdict as the last line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.criticals {
            out.push_str(&format!(" {} {c}\n", HealthLevel::Critical.mark()));
        }
        for w in &self.warnings {
            out.push_str(&format!(" {} {w}\n", HealthLevel::Warning.mark()));
        }
        let level = self.level();
        let count = |n: usize, what: &str| match n {
            0 => None,
            1 => Some(format!("1 {what}")),
            n => Some(format!("{n} {what}s")),
        };
        let tally: Vec<String> = [
            count(self.criticals.len(), "critical"),
            count(self.warnings.len(), "warning"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if tally.is_empty() {
            out.push_str(&format!(" {} {}\n", level.mark(), level.word()));
        } else {
            out.push_str(&format!(
                " {} {} ({})\n",
                level.mark(),
                level.word(),
                tally.join(", ")
            ));
        }
        out
    }
}

/// How many renewal periods a collector may miss before it is taken for dead, and the slack on
/// top for a database slow to take its renewal.
const RENEWALS_MISSED: i32 = 3;
const RENEWAL_SLACK_SECS: i64 = 10;

/// How long a collector's registration stays good without renewal, for one renewed `every`.
pub fn lease(every: chrono::Duration) -> chrono::Duration {
    every.max(chrono::Duration::seconds(1)) * RENEWALS_MISSED
        + chrono::Duration::seconds(RENEWAL_SLACK_SECS)
}

/// A collector's registration, as far as the rules here need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// When it last renewed its registration.
    pub renewed_at: Instant,
    /// How often it renews it.
    pub renew_every: chrono::Duration,
    /// When it said it stopped (a clean stop); `None` while it runs or after it died.
    pub stopped_at: Option<Instant>,
    /// Whether it was connected to the broker at its last renewal.
    pub broker_connected: bool,
    /// Since when it has been cut off from the broker, if it lost it while running.
    pub broker_lost_at: Option<Instant>,
}

/// Whether a collector runs, at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectorState {
    /// Its registration is renewed in time.
    Running,
    /// It stopped cleanly at that instant.
    Stopped(Instant),
    /// It stopped renewing at that instant and its lease ran out: it died, or cannot reach the
    /// database.
    Silent(Instant),
}

impl CollectorState {
    /// Its name in `--json`.
    pub fn name(self) -> &'static str {
        match self {
            CollectorState::Running => "running",
            CollectorState::Stopped(_) => "stopped",
            CollectorState::Silent(_) => "silent",
        }
    }

    pub fn is_running(self) -> bool {
        self == CollectorState::Running
    }

    /// When it stopped running, if it did.
    pub fn ended_at(self) -> Option<Instant> {
        match self {
            CollectorState::Running => None,
            CollectorState::Stopped(t) | CollectorState::Silent(t) => Some(t),
        }
    }
}

/// Whether something hears the boards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hearing {
    /// A running collector is connected to the broker.
    Now,
    /// Nothing has heard them since then.
    Since(Instant),
    /// No collector has ever been heard to hear them.
    Never,
}

impl Registration {
    /// Its state at `now`: a clean stop at once, a death once its lease runs out.
    pub fn state(&self, now: Instant) -> CollectorState {
        if let Some(at) = self.stopped_at {
            return CollectorState::Stopped(at);
        }
        if now - self.renewed_at > lease(self.renew_every) {
            return CollectorState::Silent(self.renewed_at);
        }
        CollectorState::Running
    }

    /// Until when this collector heard the boards, at `now`.
    pub fn hearing(&self, now: Instant) -> Hearing {
        if let Some(lost) = self.broker_lost_at {
            return Hearing::Since(lost);
        }
        match self.state(now) {
            CollectorState::Running if self.broker_connected => Hearing::Now,
            CollectorState::Running => Hearing::Never,
            // A clean stop disconnects last: it heard the boards until then.
            CollectorState::Stopped(at) => Hearing::Since(at),
            CollectorState::Silent(at) if self.broker_connected => Hearing::Since(at),
            CollectorState::Silent(_) => Hearing::Never,
        }
    }
}

/// Whether any of `collectors` hears the boards at `now`; if none does, since when the last one
/// stopped hearing them.
pub fn hearing(collectors: &[Registration], now: Instant) -> Hearing {
    let mut last: Option<Instant> = None;
    for c in collectors {
        match c.hearing(now) {
            Hearing::Now => return Hearing::Now,
            Hearing::Since(t) => last = Some(last.map_or(t, |l| l.max(t))),
            Hearing::Never => {}
        }
    }
    last.map_or(Hearing::Never, Hearing::Since)
}

/// The level of boards unheard since `since` at `now`: a warning at once, critical once the silence
/// is longer than `limit` (the offline threshold: by then boards would have been marked offline).
pub fn unheard_level(since: Option<Instant>, now: Instant, limit: chrono::Duration) -> HealthLevel {
    match since {
        Some(t) if now - t <= limit => HealthLevel::Warning,
        Some(_) => HealthLevel::Critical,
        None => HealthLevel::Warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn t0() -> Instant {
        Utc.with_ymd_and_hms(2026, 12, 7, 16, 18, 0).unwrap()
    }

    fn running(connected: bool) -> Registration {
        Registration {
            renewed_at: t0(),
            renew_every: Duration::seconds(5),
            stopped_at: None,
            broker_connected: connected,
            broker_lost_at: None,
        }
    }

    #[test]
    fn the_verdict_is_the_worst_problem_and_the_last_line_says_it() {
        let mut p = Problems::default();
        assert_eq!(p.level(), HealthLevel::Ok);
        assert_eq!(p.render(), " ● OK\n");
        p.raise(HealthLevel::Ok, "nothing");
        assert_eq!(p.level(), HealthLevel::Ok);
        p.raise(HealthLevel::Warning, "broker refused the user");
        assert_eq!(p.level(), HealthLevel::Warning);
        assert_eq!(p.level().exit_code(), 1);
        assert_eq!(
            p.render(),
            " ▲ broker refused the user\n ▲ WARNING (1 warning)\n"
        );
        p.raise(HealthLevel::Critical, "no collector running");
        p.raise(HealthLevel::Warning, "2 of 8 boards offline");
        assert_eq!(p.level(), HealthLevel::Critical);
        assert_eq!(p.level().exit_code(), 2);
        let text = p.render();
        assert_eq!(
            text,
            " ✕ no collector running\n ▲ broker refused the user\n ▲ 2 of 8 boards offline\n ✕ CRITICAL (1 critical, 2 warnings)\n"
        );
        assert!(text.lines().last().unwrap().contains("CRITICAL"));
    }

    #[test]
    fn a_collector_runs_while_its_lease_holds_and_stops_at_once_when_it_says_so() {
        let c = running(true);
        let lease_end = t0() + lease(c.renew_every);
        assert_eq!(lease(Duration::seconds(5)), Duration::seconds(25));
        assert_eq!(c.state(t0()), CollectorState::Running);
        assert_eq!(c.state(lease_end), CollectorState::Running);
        assert_eq!(
            c.state(lease_end + Duration::milliseconds(1)),
            CollectorState::Silent(t0())
        );
        // A longer renewal period is a longer lease: judged by its own period.
        let slow = Registration {
            renew_every: Duration::seconds(30),
            ..c
        };
        assert_eq!(
            slow.state(t0() + Duration::seconds(95)),
            CollectorState::Running
        );
        assert_eq!(
            slow.state(t0() + Duration::seconds(101)),
            CollectorState::Silent(t0())
        );
        // A clean stop counts from the first second, even with a fresh renewal.
        let stopped = Registration {
            stopped_at: Some(t0()),
            broker_connected: false,
            ..c
        };
        assert_eq!(stopped.state(t0()), CollectorState::Stopped(t0()));
        assert!(!stopped.state(t0()).is_running());
        assert_eq!(stopped.state(t0()).ended_at(), Some(t0()));
        // A zero period (a damaged record) still gets a lease of a few seconds.
        assert_eq!(lease(Duration::zero()), Duration::seconds(13));
    }

    #[test]
    fn boards_are_heard_only_while_a_running_collector_is_on_the_broker() {
        let now = t0() + Duration::seconds(2);
        assert_eq!(hearing(&[], now), Hearing::Never);
        assert_eq!(hearing(&[running(true)], now), Hearing::Now);
        // Running but never connected since it started: nothing hears them, and it never did.
        assert_eq!(hearing(&[running(false)], now), Hearing::Never);
        // Cut off from the broker while running.
        let cut = Registration {
            broker_connected: false,
            broker_lost_at: Some(t0() - Duration::seconds(40)),
            ..running(false)
        };
        assert_eq!(
            hearing(&[cut], now),
            Hearing::Since(t0() - Duration::seconds(40))
        );
        // Stopped cleanly: heard until it stopped.
        let stopped = Registration {
            stopped_at: Some(t0() - Duration::seconds(5)),
            broker_connected: false,
            ..running(false)
        };
        assert_eq!(
            hearing(&[stopped], now),
            Hearing::Since(t0() - Duration::seconds(5))
        );
        // Died while connected: heard until its last renewal.
        let died = Registration {
            renewed_at: t0() - Duration::minutes(10),
            ..running(true)
        };
        assert_eq!(
            hearing(&[died], now),
            Hearing::Since(t0() - Duration::minutes(10))
        );
        // The latest of those that stopped hearing; any one hearing wins.
        assert_eq!(
            hearing(&[died, stopped, cut], now),
            Hearing::Since(t0() - Duration::seconds(5))
        );
        assert_eq!(hearing(&[died, running(true), stopped], now), Hearing::Now);
    }

    #[test]
    fn unheard_boards_are_a_warning_until_the_offline_threshold_then_critical() {
        let limit = Duration::seconds(120);
        let stop = t0();
        for (after, level) in [
            (0, HealthLevel::Warning),
            (5, HealthLevel::Warning),
            (65, HealthLevel::Warning),
            (120, HealthLevel::Warning),
            (121, HealthLevel::Critical),
            (125, HealthLevel::Critical),
        ] {
            assert_eq!(
                unheard_level(Some(stop), stop + Duration::seconds(after), limit),
                level,
                "{after} s after the stop"
            );
        }
        assert_eq!(unheard_level(None, stop, limit), HealthLevel::Warning);
    }
}
