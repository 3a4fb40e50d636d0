//! A list's cursor: the row it is on and, once the operator has put it there, what that row
//! shows, so that it stays on the same classroom or switch when the list re-sorts (a room switched
//! off drops down the ₹ order) or grows: a key then acts on the row the operator chose, not on
//! whatever took its place.

use super::model::RoomKey;

/// A row by what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Room(RoomKey),
    /// A switch: its board's `_id` and its own id.
    Switch {
        board: String,
        switch: String,
    },
    /// A classroom in the trends' top lists: which list (₹, or ₹ outside campus hours), and
    /// its ledger name.
    Ranked {
        waste: bool,
        classroom: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    row: usize,
    on: Option<Row>,
}

impl Cursor {
    /// The row it is on in a list of `len` rows: where its row is now when the list says what
    /// its rows show (`rows`, in display order), else (a list followed by position, a row gone)
    /// its row number; always within the list.
    pub fn row(&self, len: usize, rows: Option<&[Row]>) -> usize {
        let found = match (&self.on, rows) {
            (Some(on), Some(rows)) => rows.iter().position(|r| r == on),
            _ => None,
        };
        found.unwrap_or(self.row).min(len.saturating_sub(1))
    }

    /// Puts it on row `i` of a list whose rows show `rows` (`None`: followed by position).
    pub fn set(&mut self, i: usize, rows: Option<&[Row]>) {
        self.row = i;
        self.on = rows.and_then(|r| r.get(i).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rooms(ids: &[&str]) -> Vec<Row> {
        ids.iter()
            .map(|i| Row::Room(RoomKey::Id(i.to_string())))
            .collect()
    }

    #[test]
    fn it_follows_its_row_when_the_list_resorts_or_grows() {
        let mut c = Cursor::default();
        let before = rooms(&["a", "b", "c"]);
        c.set(1, Some(&before));
        assert_eq!(c.row(3, Some(&rooms(&["b", "a", "c"]))), 0);
        assert_eq!(c.row(4, Some(&rooms(&["d", "a", "c", "b"]))), 3);
    }

    #[test]
    fn without_its_row_it_keeps_its_place_within_the_list() {
        let mut c = Cursor::default();
        c.set(2, Some(&rooms(&["a", "b", "c"])));
        assert_eq!(c.row(3, Some(&rooms(&["a", "b", "d"]))), 2);
        assert_eq!(c.row(1, Some(&rooms(&["a"]))), 0);
        assert_eq!(c.row(0, Some(&[])), 0);
        let mut positional = Cursor::default();
        positional.set(5, None);
        assert_eq!(positional.row(9, None), 5);
        assert_eq!(positional.row(3, None), 2);
    }
}
