//! The trends view's lists: the classrooms costliest this month and costliest outside campus
//! hours, one list after the other; `n` narrows the charts to the classroom selected.

use crate::tui::model::Campus;
use crate::tui::trends::{TrendsState, TOP};

/// Classrooms (ledger names) with a figure, largest first.
pub type Ranking = Vec<(String, f64)>;

/// The top classrooms by ₹ this month (the running totals) and by ₹ outside campus hours this
/// month (the month's ledger, once read).
pub fn tops(campus: &Campus, trends: &TrendsState) -> (Ranking, Ranking) {
    use crate::domain::trends::top_n;
    let cost = top_n(
        campus
            .totals
            .classrooms()
            .map(|(n, t)| (n.to_string(), t.month_to_date.cost)),
        TOP,
    );
    let waste = trends
        .ledger
        .as_ref()
        .map(|l| &l.waste)
        .map(|w| {
            top_n(
                w.iter()
                    .filter(|(_, a)| a.cost > 0.0)
                    .map(|(n, a)| (n.clone(), a.cost)),
                TOP,
            )
        })
        .unwrap_or_default();
    (cost, waste)
}

/// The classrooms of the two lists, one after the other (ledger names).
pub fn rows(campus: &Campus, trends: &TrendsState) -> Vec<String> {
    let (cost, waste) = tops(campus, trends);
    cost.into_iter().chain(waste).map(|(n, _)| n).collect()
}

/// The room of row `i` of the lists.
pub fn room(campus: &Campus, trends: &TrendsState, i: usize) -> Option<usize> {
    let name = rows(campus, trends).into_iter().nth(i)?;
    (0..campus.rooms.len()).find(|&r| campus.ledger_classroom(r) == name)
}

/// `n`: the charts show the classroom on row `selected`, or, if they show one, the campus again.
pub fn toggle_scope(campus: &Campus, trends: &mut TrendsState, selected: usize) {
    let picked = rows(campus, trends).into_iter().nth(selected);
    trends.scope = match (&trends.scope, picked) {
        (None, Some(name)) => Some(name),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    #[test]
    fn the_lists_open_their_rooms_and_n_narrows_then_widens() {
        let now = sample::now();
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, now);
        let (snap, books) = sample::campus(4, 1, 2);
        c.load(snap, now);
        for change in books {
            if let crate::tui::event::DbChange::History { day, history } = change {
                c.totals.load_history(day, &history);
            }
        }
        let mut trends = TrendsState::default();
        for u in sample::trends(4) {
            trends.apply(u);
        }
        let names = rows(&c, &trends);
        assert!(!names.is_empty());
        let r = room(&c, &trends, 0).expect("the first row's classroom");
        assert_eq!(c.ledger_classroom(r), names[0]);
        toggle_scope(&c, &mut trends, 0);
        assert_eq!(trends.scope.as_deref(), Some(names[0].as_str()));
        toggle_scope(&c, &mut trends, 0);
        assert_eq!(trends.scope, None);
    }
}
