//! The global tariff's edit form: price, when it starts, a note. Enter checks them and asks for
//! the save; the form stays open, saving, until the result comes back.

use crate::domain::{typed_time, validation, Actor, Instant};
use crate::tui::effect::Effect;
use crossterm::event::{KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

#[derive(Debug, Clone)]
pub struct TariffForm {
    fields: [Input; 3],
    focus: usize,
    saving: bool,
    error: Option<String>,
}

/// What a key does to the form.
#[derive(Debug, Clone, PartialEq)]
pub enum TariffReply {
    Keep,
    Close,
    /// Save the new price (the form shows it saving).
    Save(Effect),
}

impl TariffForm {
    pub const LABELS: [&'static str; 3] = ["New", "From", "Note"];

    /// Opens on the price in force, starting now.
    pub fn new(current_price: f64) -> TariffForm {
        TariffForm {
            fields: [
                Input::new(format!("{current_price:.2}")),
                Input::new("now".into()),
                Input::default(),
            ],
            focus: 0,
            saving: false,
            error: None,
        }
    }

    pub fn field(&self, i: usize) -> &Input {
        &self.fields[i]
    }

    pub fn focus(&self) -> usize {
        self.focus
    }

    pub fn saving(&self) -> bool {
        self.saving
    }

    /// Why the last save or check failed.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The price if valid, else what is wrong.
    pub fn price(&self) -> Result<f64, String> {
        validation::tariff_text("cost_per_kwh", self.fields[0].value())
            .map_err(|e| format!("{:?} {}", e.value, e.rule))
    }

    /// When the price starts (`None`: now), in the command line's grammar, else what is wrong.
    pub fn from(&self, tz: chrono_tz::Tz) -> Result<Option<Instant>, String> {
        typed_time::start(self.fields[1].value(), tz)
            .map_err(|e| format!("from {:?} {}", e.value, e.rule))
    }

    /// `by` is who would save it (`None`: nobody signed in).
    pub fn key(&mut self, k: KeyEvent, tz: chrono_tz::Tz, by: Option<&Actor>) -> TariffReply {
        if self.saving {
            return TariffReply::Keep;
        }
        match k.code {
            KeyCode::Esc => return TariffReply::Close,
            KeyCode::Tab | KeyCode::Down => self.focus = (self.focus + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => self.focus = (self.focus + 2) % 3,
            KeyCode::Enter => {
                let checked = self.price().and_then(|p| self.from(tz).map(|f| (p, f)));
                match (checked, by) {
                    (Ok((price, from)), Some(by)) => {
                        self.saving = true;
                        self.error = None;
                        return TariffReply::Save(Effect::SaveTariff {
                            price,
                            from,
                            note: self.fields[2].value().trim().to_string(),
                            by: by.clone(),
                        });
                    }
                    (Err(e), _) => self.error = Some(e),
                    (_, None) => self.error = Some("sign in first".into()),
                }
            }
            _ => {
                self.fields[self.focus].handle_event(&crossterm::event::Event::Key(k));
                self.error = None;
            }
        }
        TariffReply::Keep
    }

    /// The save failed: the form is editable again and says why.
    pub fn failed(&mut self, why: String) {
        self.saving = false;
        self.error = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use chrono::TimeZone;
    use crossterm::event::KeyModifiers;

    const IST: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

    fn k(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn admin() -> Actor {
        Actor::signed_in("Asha", None, Role::Admin)
    }

    fn type_into(form: &mut TariffForm, text: &str) {
        for c in text.chars() {
            assert_eq!(form.key(k(KeyCode::Char(c)), IST, None), TariffReply::Keep);
        }
    }

    fn clear(form: &mut TariffForm) {
        for _ in 0..10 {
            form.key(k(KeyCode::Backspace), IST, None);
        }
    }

    #[test]
    fn enter_saves_the_checked_price_then_waits_for_the_result() {
        let mut form = TariffForm::new(7.5);
        clear(&mut form);
        type_into(&mut form, "8.25");
        form.key(k(KeyCode::Tab), IST, None);
        clear(&mut form);
        type_into(&mut form, "2026-12-01");
        form.key(k(KeyCode::Tab), IST, None);
        type_into(&mut form, " new slab ");
        let reply = form.key(k(KeyCode::Enter), IST, Some(&admin()));
        assert_eq!(
            reply,
            TariffReply::Save(Effect::SaveTariff {
                price: 8.25,
                from: Some(
                    chrono::Utc
                        .with_ymd_and_hms(2026, 11, 30, 18, 30, 0)
                        .unwrap()
                ),
                note: "new slab".into(),
                by: admin(),
            })
        );
        assert!(form.saving());
        assert_eq!(form.key(k(KeyCode::Esc), IST, None), TariffReply::Keep);
        form.failed("the database is unreachable".into());
        assert_eq!(form.error(), Some("the database is unreachable"));
        assert_eq!(form.key(k(KeyCode::Esc), IST, None), TariffReply::Close);
    }

    #[test]
    fn the_from_field_reads_what_tariff_set_from_reads() {
        let mut form = TariffForm::new(7.5);
        form.key(k(KeyCode::Down), IST, None);
        assert_eq!(form.focus(), 1);
        assert_eq!(form.from(IST), Ok(None), "now");
        clear(&mut form);
        type_into(&mut form, "2026-11-24T18:30:00Z");
        assert_eq!(
            form.from(IST),
            Ok(Some(
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 24, 18, 30, 0)
                    .unwrap()
            ))
        );
        clear(&mut form);
        clear(&mut form);
        type_into(&mut form, "soon");
        let reply = form.key(k(KeyCode::Enter), IST, Some(&admin()));
        assert_eq!(reply, TariffReply::Keep);
        assert!(form.error().is_some_and(|e| e.contains("RFC 3339")));
    }

    #[test]
    fn nobody_signed_in_saves_nothing() {
        let mut form = TariffForm::new(7.5);
        assert_eq!(form.key(k(KeyCode::Enter), IST, None), TariffReply::Keep);
        assert_eq!(form.error(), Some("sign in first"));
        assert!(!form.saving());
        form.key(k(KeyCode::BackTab), IST, None);
        assert_eq!(form.focus(), 2);
    }
}
