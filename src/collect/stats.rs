//! What a collector has done, for its status record and its exit summary.

use super::process::Transition;
use std::collections::BTreeMap;

/// In JSON (`collect --json`) under these field names.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Stats {
    pub received: i64,
    /// Messages whose effects are committed (rejected ones are counted in `rejected` instead).
    pub committed: i64,
    pub transitions: i64,
    pub stale: i64,
    pub contended: i64,
    pub ledger_rows: i64,
    pub telemetry_inserted: u64,
    pub went_offline: i64,
    /// Boards whose clock showed a new boot (their open intervals closed at the last certain time).
    pub reboots: i64,
    /// Of those, jumps the clock could not tell from a slow delivery.
    pub unsure_boots: i64,
    /// Messages kept as dead letters (malformed, or refused by the database for good).
    pub dead_letters: i64,
    /// Rejected messages by reason code (`wrong_secret`, `unregistered`, `not_json`, …).
    pub rejected: BTreeMap<String, i64>,
}

impl Stats {
    pub fn reject(&mut self, code: &str) {
        *self.rejected.entry(code.to_string()).or_default() += 1;
    }

    pub fn rejected_total(&self) -> i64 {
        self.rejected.values().sum()
    }

    pub fn count_transition(&mut self, t: Transition, ledger_rows: u64) {
        self.ledger_rows += ledger_rows as i64;
        match t {
            Transition::Applied => self.transitions += 1,
            Transition::Stale => self.stale += 1,
            Transition::Contended => self.contended += 1,
            Transition::UnknownPin => self.reject("unknown_relay_pin"),
            Transition::NoChange => {}
        }
    }

    pub fn add(&mut self, o: &Stats) {
        self.received += o.received;
        self.committed += o.committed;
        self.transitions += o.transitions;
        self.stale += o.stale;
        self.contended += o.contended;
        self.ledger_rows += o.ledger_rows;
        self.telemetry_inserted += o.telemetry_inserted;
        self.went_offline += o.went_offline;
        self.reboots += o.reboots;
        self.unsure_boots += o.unsure_boots;
        self.dead_letters += o.dead_letters;
        for (k, v) in &o.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
    }

    /// One line for the log and the exit summary.
    pub fn summary(&self) -> String {
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        format!(
            "{} messages received, {} committed, {} relay transitions, {} ledger rows, {} devices went offline, {} reboots ({} unsure), {} rejected{}, {} dead letters",
            self.received,
            self.committed,
            self.transitions,
            self.ledger_rows,
            self.went_offline,
            self.reboots,
            self.unsure_boots,
            self.rejected_total(),
            if rejected.is_empty() { String::new() } else { format!(" ({})", rejected.join(", ")) },
            self.dead_letters
        )
    }
}
