//! The home view: the classrooms, filtered by name or building and sorted by what the operator
//! picks (`s` cycles).

use crate::tui::model::{Campus, Clock, RoomStats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    Name,
    #[default]
    Cost,
    SwitchesOn,
    Offline,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Cost => "cost",
            SortKey::SwitchesOn => "switches on",
            SortKey::Offline => "offline boards",
        }
    }

    pub fn next(self) -> SortKey {
        match self {
            SortKey::Cost => SortKey::SwitchesOn,
            SortKey::SwitchesOn => SortKey::Offline,
            SortKey::Offline => SortKey::Name,
            SortKey::Name => SortKey::Cost,
        }
    }
}

/// The classrooms shown (indices into `campus.rooms`): those whose name or building holds
/// `filter` (any case), sorted by `sort`, then by name.
pub fn visible(campus: &Campus, clock: &Clock, filter: &str, sort: SortKey) -> Vec<usize> {
    let f = filter.to_lowercase();
    let mut rooms: Vec<(usize, RoomStats)> = (0..campus.rooms.len())
        .filter(|&i| {
            let r = &campus.rooms[i];
            f.is_empty()
                || r.name.to_lowercase().contains(&f)
                || r.building
                    .as_deref()
                    .is_some_and(|b| b.to_lowercase().contains(&f))
        })
        .map(|i| (i, campus.room_stats(i, clock)))
        .collect();
    let name = |i: usize| &campus.rooms[i].name;
    match sort {
        SortKey::Name => rooms.sort_by(|a, b| name(a.0).cmp(name(b.0))),
        SortKey::Cost => rooms.sort_by(|a, b| {
            b.1.totals
                .today
                .cost
                .total_cmp(&a.1.totals.today.cost)
                .then(name(a.0).cmp(name(b.0)))
        }),
        SortKey::SwitchesOn => rooms.sort_by(|a, b| {
            b.1.switches_on
                .cmp(&a.1.switches_on)
                .then(name(a.0).cmp(name(b.0)))
        }),
        SortKey::Offline => rooms.sort_by(|a, b| {
            let off = |s: &RoomStats| s.boards_total - s.boards_online;
            off(&b.1).cmp(&off(&a.1)).then(name(a.0).cmp(name(b.0)))
        }),
    }
    rooms.into_iter().map(|(i, _)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    fn campus() -> (Campus, Clock) {
        let now = sample::now();
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, now);
        c.load(sample::campus(6, 2, 3).0, now);
        let clock = Clock {
            now,
            day_start: now - chrono::Duration::hours(12),
            stale_after_secs: 90,
            offline_after_secs: 120,
        };
        (c, clock)
    }

    #[test]
    fn s_cycles_through_every_order() {
        let mut k = SortKey::default();
        let mut seen = vec![k];
        for _ in 0..4 {
            k = k.next();
            seen.push(k);
        }
        assert_eq!(seen.first(), seen.last());
        assert_eq!(seen[..4].iter().filter(|k| **k == SortKey::Name).count(), 1);
    }

    #[test]
    fn by_name_is_alphabetical_and_the_filter_matches_any_case() {
        let (c, clock) = campus();
        let names: Vec<&str> = visible(&c, &clock, "", SortKey::Name)
            .into_iter()
            .map(|i| c.rooms[i].name.as_str())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let name = sample::room_name(1);
        let found = visible(&c, &clock, &name.to_uppercase(), SortKey::Cost);
        assert!(found.iter().all(|&i| c.rooms[i].name.contains(&name)));
        assert!(!found.is_empty());
        assert!(visible(&c, &clock, "no such room", SortKey::Cost).is_empty());
    }

    #[test]
    fn by_cost_the_dearest_comes_first() {
        let (c, clock) = campus();
        let cost = |i: usize| c.room_stats(i, &clock).totals.today.cost;
        let rooms = visible(&c, &clock, "", SortKey::Cost);
        assert!(rooms.windows(2).all(|w| cost(w[0]) >= cost(w[1])));
    }
}
