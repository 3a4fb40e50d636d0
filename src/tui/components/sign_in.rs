//! The sign-in form a campus with accounts shows before the dashboard may act: e-mail, then
//! password; Esc quits (a session that may act starts signed in or not at all).

use crate::tui::effect::Effect;
use crossterm::event::{KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

#[derive(Debug, Clone, Default)]
pub struct SignInForm {
    email: Input,
    password: Input,
    focus: usize,
    busy: bool,
    error: Option<String>,
}

/// What a key does to the form.
#[derive(Debug, Clone, PartialEq)]
pub enum SignInReply {
    Keep,
    Quit,
    /// Check these credentials (the form shows it checking).
    Submit(Effect),
}

impl SignInForm {
    pub fn email(&self) -> &Input {
        &self.email
    }

    pub fn password(&self) -> &Input {
        &self.password
    }

    /// 0: the e-mail, 1: the password.
    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn busy(&self) -> bool {
        self.busy
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn key(&mut self, k: KeyEvent) -> SignInReply {
        if self.busy {
            return SignInReply::Keep;
        }
        match k.code {
            KeyCode::Esc => return SignInReply::Quit,
            KeyCode::Tab | KeyCode::Down | KeyCode::Up | KeyCode::BackTab => {
                self.focus = 1 - self.focus
            }
            KeyCode::Enter if self.focus == 0 => self.focus = 1,
            KeyCode::Enter => {
                let email = self.email.value().trim().to_string();
                let password = self.password.value().to_string();
                if email.is_empty() || password.is_empty() {
                    self.error = Some("enter your e-mail and password".into());
                } else {
                    self.busy = true;
                    self.error = None;
                    return SignInReply::Submit(Effect::SignIn { email, password });
                }
            }
            _ => {
                let ev = crossterm::event::Event::Key(k);
                if self.focus == 0 {
                    self.email.handle_event(&ev);
                } else {
                    self.password.handle_event(&ev);
                }
            }
        }
        SignInReply::Keep
    }

    /// The credentials were refused: the password is typed again.
    pub fn failed(&mut self, why: String) {
        self.busy = false;
        self.error = Some(why);
        self.password = Input::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn type_into(form: &mut SignInForm, text: &str) {
        for c in text.chars() {
            assert_eq!(form.key(k(KeyCode::Char(c))), SignInReply::Keep);
        }
    }

    #[test]
    fn enter_moves_to_the_password_then_submits_once() {
        let mut form = SignInForm::default();
        type_into(&mut form, " ops@campus.edu ");
        assert_eq!(form.key(k(KeyCode::Enter)), SignInReply::Keep);
        assert_eq!(form.focus(), 1);
        type_into(&mut form, "pw");
        assert_eq!(
            form.key(k(KeyCode::Enter)),
            SignInReply::Submit(Effect::SignIn {
                email: "ops@campus.edu".into(),
                password: "pw".into()
            })
        );
        assert!(form.busy());
        assert_eq!(form.key(k(KeyCode::Enter)), SignInReply::Keep, "asked once");
        form.failed("wrong password".into());
        assert!(!form.busy());
        assert_eq!(form.password().value(), "");
        assert_eq!(form.email().value(), " ops@campus.edu ");
        assert_eq!(form.error(), Some("wrong password"));
    }

    #[test]
    fn empty_fields_are_refused_and_esc_quits() {
        let mut form = SignInForm::default();
        form.key(k(KeyCode::Tab));
        assert_eq!(form.key(k(KeyCode::Enter)), SignInReply::Keep);
        assert_eq!(form.error(), Some("enter your e-mail and password"));
        assert_eq!(form.key(k(KeyCode::Esc)), SignInReply::Quit);
    }
}
