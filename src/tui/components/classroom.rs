//! A classroom's view: the switches of all its boards in one list; `n` jumps to the next board's
//! first switch.

use crate::tui::model::Campus;

/// The (board, switch) pairs of classroom `room`, in display order.
pub fn switches(campus: &Campus, room: usize) -> Vec<(usize, usize)> {
    campus.rooms[room]
        .boards
        .iter()
        .flat_map(|&bi| (0..campus.boards[bi].switches.len()).map(move |si| (bi, si)))
        .collect()
}

/// The row of the first switch of the board after the one row `at` is on (the first board's
/// after the last).
pub fn next_board(campus: &Campus, room: usize, at: usize) -> usize {
    let mut end = 0;
    for &bi in &campus.rooms[room].boards {
        end += campus.boards[bi].switches.len();
        if at < end {
            break;
        }
    }
    if end >= switches(campus, room).len() {
        0
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    #[test]
    fn n_goes_from_board_to_board_and_around() {
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, sample::now());
        c.load(sample::campus(1, 3, 2).0, sample::now());
        assert_eq!(switches(&c, 0).len(), 6);
        assert_eq!(next_board(&c, 0, 0), 2);
        assert_eq!(next_board(&c, 0, 1), 2);
        assert_eq!(next_board(&c, 0, 3), 4);
        assert_eq!(next_board(&c, 0, 5), 0);
    }
}
