//! The keys help: any key closes it, and the quit key also quits.

use crate::tui::keymap::{Action, Keymap};
use crossterm::event::KeyEvent;

/// What a key does to the open help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpReply {
    Close,
    Quit,
}

pub fn key(keymap: &Keymap, k: &KeyEvent) -> HelpReply {
    match keymap.action(k) {
        Some(Action::Quit) => HelpReply::Quit,
        _ => HelpReply::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn the_quit_key_quits_and_any_other_closes() {
        let keymap = Keymap::default();
        let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert_eq!(key(&keymap, &k(KeyCode::Char('q'))), HelpReply::Quit);
        for other in [KeyCode::Char('j'), KeyCode::Esc, KeyCode::Enter] {
            assert_eq!(key(&keymap, &k(other)), HelpReply::Close);
        }
    }
}
