//! The filter line of the classrooms and activity lists: what is typed filters at once, Enter
//! keeps it, Esc clears it.

use crossterm::event::{KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

#[derive(Debug, Clone)]
pub struct FilterInput {
    input: Input,
}

/// What a key does to the filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterReply {
    /// The filter is now this text; the line stays open.
    Typed(String),
    /// Closed, the filter kept.
    Kept,
    /// Closed, the filter cleared.
    Cleared,
}

impl FilterInput {
    /// Opens on the filter in force.
    pub fn new(current: &str) -> FilterInput {
        FilterInput {
            input: Input::new(current.to_string()),
        }
    }

    pub fn input(&self) -> &Input {
        &self.input
    }

    pub fn key(&mut self, k: KeyEvent) -> FilterReply {
        match k.code {
            KeyCode::Esc => FilterReply::Cleared,
            KeyCode::Enter => FilterReply::Kept,
            _ => {
                self.input.handle_event(&crossterm::event::Event::Key(k));
                FilterReply::Typed(self.input.value().to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn typing_filters_enter_keeps_esc_clears() {
        let mut f = FilterInput::new("cs");
        assert_eq!(
            f.key(k(KeyCode::Char('-'))),
            FilterReply::Typed("cs-".into())
        );
        assert_eq!(
            f.key(k(KeyCode::Backspace)),
            FilterReply::Typed("cs".into())
        );
        assert_eq!(f.key(k(KeyCode::Enter)), FilterReply::Kept);
        assert_eq!(f.key(k(KeyCode::Esc)), FilterReply::Cleared);
    }
}
