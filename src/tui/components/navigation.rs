//! Which view is open and the way back to the ones under it. Views name classrooms and boards by
//! their index in the campus; when the campus is rebuilt, [`Place`]s find them again.

use crate::tui::model::{Campus, RoomKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Classrooms,
    Classroom(usize),
    Board(usize),
    Activity,
    Health,
    Tariff,
    Waste,
    Schedules,
    Trends,
}

/// The open view, and the views it was opened over (the last one under it last).
#[derive(Debug, Clone)]
pub struct Navigation {
    view: View,
    history: Vec<View>,
}

/// A view by what it shows, to find it again in a rebuilt campus.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Room(RoomKey),
    Board(String),
    Other(View),
}

impl Default for Navigation {
    fn default() -> Navigation {
        Navigation {
            view: View::Classrooms,
            history: Vec::new(),
        }
    }
}

impl Navigation {
    pub fn view(&self) -> View {
        self.view
    }

    /// Opens `view` over the current one; false when it is the current one.
    pub fn go(&mut self, view: View) -> bool {
        if self.view == view {
            return false;
        }
        self.history.push(self.view);
        self.view = view;
        true
    }

    /// Returns to the view under the current one; false when there is none.
    pub fn back(&mut self) -> bool {
        match self.history.pop() {
            Some(v) => {
                self.view = v;
                true
            }
            None => false,
        }
    }

    /// The classrooms, with nothing under them.
    pub fn home(&mut self) {
        self.view = View::Classrooms;
        self.history.clear();
    }

    /// Goes home from a classroom or board that is gone.
    pub fn leave_gone(&mut self, campus: &Campus) {
        let gone = match self.view {
            View::Classroom(r) => r >= campus.rooms.len(),
            View::Board(b) => b >= campus.boards.len(),
            _ => false,
        };
        if gone {
            self.home();
        }
    }

    /// The views open, by what they show.
    pub fn places(&self, campus: &Campus) -> Vec<Place> {
        let place = |v: &View| match *v {
            View::Classroom(r) => Place::Room(campus.room_key(r)),
            View::Board(b) => Place::Board(campus.boards[b].id.clone()),
            v => Place::Other(v),
        };
        self.history.iter().chain([&self.view]).map(place).collect()
    }

    /// Puts the views back on what they showed in `campus`; those whose classroom or board is
    /// gone close, and if the current one is gone, it is the classrooms again.
    pub fn find(&mut self, places: &[Place], campus: &Campus) {
        let find = |p: &Place| match p {
            Place::Room(k) => campus.room_by_key(k).map(View::Classroom),
            Place::Board(id) => campus.board_by_id(id).map(View::Board),
            Place::Other(v) => Some(*v),
        };
        let mut views: Vec<Option<View>> = places.iter().map(find).collect();
        match views.pop().flatten() {
            Some(v) => {
                self.view = v;
                self.history = views.into_iter().flatten().collect();
            }
            None => self.home(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample;

    fn campus(rooms: usize) -> Campus {
        let mut c = Campus::new(chrono_tz::Asia::Kolkata, sample::now());
        c.load(sample::campus(rooms, 1, 2).0, sample::now());
        c
    }

    #[test]
    fn go_opens_over_and_back_returns() {
        let mut nav = Navigation::default();
        assert!(!nav.go(View::Classrooms));
        assert!(nav.go(View::Classroom(2)));
        assert!(nav.go(View::Board(1)));
        assert!(nav.back());
        assert_eq!(nav.view(), View::Classroom(2));
        nav.go(View::Health);
        nav.home();
        assert_eq!(nav.view(), View::Classrooms);
        assert!(!nav.back());
    }

    #[test]
    fn views_follow_what_they_show_into_a_rebuilt_campus() {
        let big = campus(4);
        let mut nav = Navigation::default();
        nav.go(View::Classroom(3));
        nav.go(View::Board(big.rooms[3].boards[0]));
        let places = nav.places(&big);
        nav.find(&places, &campus(4));
        assert_eq!(nav.view(), View::Board(big.rooms[3].boards[0]));
        nav.find(&places, &campus(2));
        assert_eq!(nav.view(), View::Classrooms, "the classroom is gone");
        assert!(!nav.back());
    }

    #[test]
    fn a_view_on_what_is_gone_goes_home() {
        let mut nav = Navigation::default();
        nav.go(View::Activity);
        nav.go(View::Classroom(7));
        nav.leave_gone(&campus(2));
        assert_eq!(nav.view(), View::Classrooms);
        assert!(!nav.back());
    }
}
