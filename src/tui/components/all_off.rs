//! The question before switching off every load of a classroom: `y` or Enter confirms, any other
//! key cancels.

use crossterm::event::{KeyCode, KeyEvent};

/// The confirmation asked for classroom `room` (an index into the campus's rooms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllOffConfirm {
    room: usize,
}

impl AllOffConfirm {
    pub fn new(room: usize) -> AllOffConfirm {
        AllOffConfirm { room }
    }

    pub fn room(&self) -> usize {
        self.room
    }

    /// Whether the key says yes (the question closes either way).
    pub fn confirmed(k: &KeyEvent) -> bool {
        matches!(
            k.code,
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    #[test]
    fn only_yes_or_enter_confirm() {
        let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
        for yes in [KeyCode::Char('y'), KeyCode::Char('Y'), KeyCode::Enter] {
            assert!(AllOffConfirm::confirmed(&k(yes)));
        }
        for no in [KeyCode::Char('n'), KeyCode::Esc, KeyCode::Char(' ')] {
            assert!(!AllOffConfirm::confirmed(&k(no)));
        }
    }
}
