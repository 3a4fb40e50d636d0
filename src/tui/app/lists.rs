//! The open view's list and its cursor: which rows it has, which one the cursor is on, and moving
//! it by key or mouse. A cursor follows what its row shows where the list says (classrooms,
//! switches, the trends' classrooms), else its position.

use super::App;
use crate::tui::components::navigation::View;
use crate::tui::components::{board, trends as trend_lists};
use crate::tui::cursor::{Cursor, Row};
use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};

impl App {
    /// The switch selected in a classroom or board view.
    pub fn selected_switch(&self) -> Option<(usize, usize)> {
        match self.nav.view() {
            View::Classroom(room) => self.flat_switches(room).get(self.switch_sel()).copied(),
            View::Board(bi) => board::switch_at(&self.campus, bi, self.list_sel()),
            _ => None,
        }
    }

    /// The row of the classrooms list the cursor is on (it follows its classroom as the list
    /// re-sorts).
    pub fn rooms_sel(&self) -> usize {
        self.selected_row(View::Classrooms)
    }

    /// The row of the open classroom's switches the cursor is on.
    pub fn switch_sel(&self) -> usize {
        match self.nav.view() {
            v @ View::Classroom(_) => self.selected_row(v),
            _ => 0,
        }
    }

    /// The row of the current view's list (a board's switches, waste, activity, …) the cursor
    /// is on.
    pub fn list_sel(&self) -> usize {
        match self.nav.view() {
            View::Classrooms | View::Classroom(_) => 0,
            v => self.selected_row(v),
        }
    }

    /// Rows in `view`'s list.
    fn list_len(&self, view: View) -> usize {
        match view {
            View::Classrooms => self.visible_rooms().len(),
            View::Classroom(r) => self.flat_switches(r).len(),
            View::Board(b) => self.campus.boards[b].switches.len(),
            View::Activity => self.visible_activity().len(),
            View::Waste => self.waste_rows().len(),
            View::Tariff => self.campus.tariff.versions.len(),
            View::Schedules => self.schedules.len(),
            View::Trends => self.trends_rows().len(),
            View::Health => 0,
        }
    }

    /// What the rows of `view`'s list show, in display order: classrooms and switches, which the
    /// cursor follows; `None` for the lists it follows by position (the activity, newest first,
    /// the tariff's and the schedules').
    fn rows(&self, view: View) -> Option<Vec<Row>> {
        let room = |r: usize| Row::Room(self.campus.room_key(r));
        let switch = |b: usize, s: usize| Row::Switch {
            board: self.campus.boards[b].id.clone(),
            switch: self.campus.boards[b].switches[s].id.clone(),
        };
        match view {
            View::Classrooms => Some(self.visible_rooms().into_iter().map(room).collect()),
            View::Classroom(r) => Some(
                self.flat_switches(r)
                    .into_iter()
                    .map(|(b, s)| switch(b, s))
                    .collect(),
            ),
            View::Board(b) => Some(
                (0..self.campus.boards[b].switches.len())
                    .map(|s| switch(b, s))
                    .collect(),
            ),
            View::Waste => Some(self.waste_rows().iter().map(|w| room(w.room)).collect()),
            View::Trends => {
                let (cost, waste) = trend_lists::tops(&self.campus, &self.trends);
                let ranked = |waste: bool| {
                    move |(classroom, _): (String, f64)| Row::Ranked { waste, classroom }
                };
                Some(
                    cost.into_iter()
                        .map(ranked(false))
                        .chain(waste.into_iter().map(ranked(true)))
                        .collect(),
                )
            }
            View::Activity | View::Tariff | View::Schedules | View::Health => None,
        }
    }

    fn cursor(&self, view: View) -> &Cursor {
        match view {
            View::Classrooms => &self.rooms_cursor,
            View::Classroom(_) => &self.switch_cursor,
            _ => &self.list_cursor,
        }
    }

    fn cursor_mut(&mut self, view: View) -> &mut Cursor {
        match view {
            View::Classrooms => &mut self.rooms_cursor,
            View::Classroom(_) => &mut self.switch_cursor,
            _ => &mut self.list_cursor,
        }
    }

    /// The row of `view`'s list its cursor is on.
    fn selected_row(&self, view: View) -> usize {
        let rows = self.rows(view);
        let len = rows.as_ref().map_or_else(|| self.list_len(view), Vec::len);
        self.cursor(view).row(len, rows.as_deref())
    }

    /// Puts the current view's cursor on row `i`, and on what that row shows.
    pub(super) fn select(&mut self, i: usize) {
        let view = self.nav.view();
        let rows = self.rows(view);
        self.cursor_mut(view).set(i, rows.as_deref());
    }

    /// Rows a page move jumps.
    pub(super) fn page(&self) -> usize {
        self.height.saturating_sub(8).max(1) as usize
    }

    /// Moves the current view's cursor by `delta` rows within its list; `move_by(0)` puts it on
    /// what its row shows now (the row the operator sees is the one a key acts on).
    pub(super) fn move_by(&mut self, delta: i64) {
        let view = self.nav.view();
        let rows = self.rows(view);
        let len = rows.as_ref().map_or_else(|| self.list_len(view), Vec::len);
        let cursor = self.cursor_mut(view);
        let at = cursor.row(len, rows.as_deref()) as i64;
        let to = at
            .saturating_add(delta)
            .clamp(0, len.saturating_sub(1) as i64) as usize;
        cursor.set(to, rows.as_deref());
    }

    pub(super) fn mouse(&mut self, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(i) = crate::tui::views::row_at(self, m.row) {
                    self.select(i);
                    self.move_by(0);
                }
            }
            _ => return,
        }
        self.dirty = true;
    }
}
