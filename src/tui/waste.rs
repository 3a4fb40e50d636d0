//! The waste view's rows: the campus as the dashboard sees it, judged by the one waste rule
//! ([`crate::domain::waste`]).

use super::model::{Campus, Clock, Presence};
use crate::domain::waste::{judge, Load, WasteReason, WasteRule};
use crate::domain::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct WasteRow {
    pub room: usize,
    /// "AC, 3 lights".
    pub loads: String,
    pub reason: WasteReason,
    /// Since when the loads have been on (the earliest of them).
    pub since: Option<Instant>,
    pub inr_per_hour: f64,
}

/// Every classroom wasting now, most expensive first.
pub fn waste(campus: &Campus, clock: &Clock, rule: &WasteRule) -> Vec<WasteRow> {
    let mut rows = Vec::new();
    for (ri, room) in campus.rooms.iter().enumerate() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        let mut loads = Vec::new();
        let mut last_motion: Option<Instant> = None;
        for &bi in &room.boards {
            let b = &campus.boards[bi];
            if clock.presence(b.last_seen) == Presence::Offline {
                continue;
            }
            last_motion = last_motion.max(b.last_motion);
            let rate = campus.rate(b, &room.name, clock.now);
            for s in b.switches.iter().filter(|s| s.on) {
                loads.push(Load {
                    power_w: s.watts,
                    since: s.since,
                    cost_per_kwh: rate,
                });
                let kind = s.kind.as_str().to_string();
                match counts.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((kind, 1)),
                }
            }
        }
        if let Some(w) = judge(rule, clock.now, &loads, last_motion) {
            rows.push(WasteRow {
                room: ri,
                loads: describe_loads(&counts),
                reason: w.reason,
                since: w.since,
                inr_per_hour: w.inr_per_hour,
            });
        }
    }
    rows.sort_by(|a, b| b.inr_per_hour.total_cmp(&a.inr_per_hour));
    rows
}

fn describe_loads(counts: &[(String, usize)]) -> String {
    let mut sorted = counts.to_vec();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted
        .iter()
        .map(|(k, n)| {
            let label = if k == "ac" {
                "AC".to_string()
            } else {
                k.clone()
            };
            if *n == 1 {
                label
            } else {
                format!("{n} {label}s")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_are_summarised_by_kind() {
        let c = vec![("light".to_string(), 3), ("ac".to_string(), 1)];
        assert_eq!(describe_loads(&c), "3 lights, AC");
    }
}
