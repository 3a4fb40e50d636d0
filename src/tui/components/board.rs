//! A board's view: its facts and its switches, one row each.

use crate::tui::model::Campus;

/// The (board, switch) on row `row` of board `board`'s list.
pub fn switch_at(campus: &Campus, board: usize, row: usize) -> Option<(usize, usize)> {
    (row < campus.boards[board].switches.len()).then_some((board, row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    #[test]
    fn rows_are_the_boards_switches() {
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, sample::now());
        c.load(sample::campus(1, 2, 3).0, sample::now());
        assert_eq!(switch_at(&c, 1, 2), Some((1, 2)));
        assert_eq!(switch_at(&c, 1, 3), None);
    }
}
