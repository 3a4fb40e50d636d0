//! Running an aggregation from the dashboard: the date question, and the state of the run the
//! header shows (progress, then its summary until dismissed).

use crate::domain::typed_time;
use crate::tui::event::AggregationUpdate;
use chrono::NaiveDate;
use crossterm::event::{KeyCode, KeyEvent};
use tui_input::backend::crossterm::EventHandler;
use tui_input::Input;

/// The date question.
#[derive(Debug, Clone)]
pub struct AggregateForm {
    input: Input,
}

/// What a key does to the date question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AggregateReply {
    Keep,
    Cancel,
    /// Run the day typed.
    Run(NaiveDate),
    /// What was typed is not a day: why (the question stays open).
    Invalid(String),
}

impl Default for AggregateForm {
    fn default() -> AggregateForm {
        AggregateForm {
            input: Input::new("today".into()),
        }
    }
}

impl AggregateForm {
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// `today` is the campus's day now.
    pub fn key(&mut self, k: KeyEvent, today: NaiveDate) -> AggregateReply {
        match k.code {
            KeyCode::Esc => AggregateReply::Cancel,
            KeyCode::Enter => match date(self.input.value(), today) {
                Ok(d) => AggregateReply::Run(d),
                Err(e) => AggregateReply::Invalid(e),
            },
            _ => {
                self.input.handle_event(&crossterm::event::Event::Key(k));
                AggregateReply::Keep
            }
        }
    }
}

/// `today`, `yesterday`, or a day within the years every command accepts.
fn date(text: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    match text.trim() {
        "" | "today" => Ok(today),
        "yesterday" => Ok(today.pred_opt().unwrap_or(today)),
        other => typed_time::day(other)
            .map_err(|rule| format!("{other:?} is not a date: {rule}, today or yesterday")),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AggregationState {
    Running {
        date: NaiveDate,
        done: u64,
        total: u64,
    },
    Done(String),
    Stopped(String),
    Failed(String),
}

impl AggregationState {
    /// A run just asked for.
    pub fn started(date: NaiveDate) -> AggregationState {
        AggregationState::Running {
            date,
            done: 0,
            total: 0,
        }
    }

    pub fn is_running(state: &Option<AggregationState>) -> bool {
        matches!(state, Some(AggregationState::Running { .. }))
    }

    /// The state after `update` of the run.
    pub fn advance(state: Option<AggregationState>, update: AggregationUpdate) -> AggregationState {
        match (update, state) {
            (
                AggregationUpdate::Progress { done, total },
                Some(AggregationState::Running { date, .. }),
            ) => AggregationState::Running { date, done, total },
            (AggregationUpdate::Progress { .. }, other) => {
                other.unwrap_or(AggregationState::Failed("progress without a run".into()))
            }
            (AggregationUpdate::Done { summary }, _) => AggregationState::Done(summary),
            (AggregationUpdate::Stopped(summary), _) => AggregationState::Stopped(summary),
            (AggregationUpdate::Failed(e), _) => AggregationState::Failed(e),
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

    fn typed(text: &str) -> AggregateForm {
        let mut f = AggregateForm {
            input: Input::default(),
        };
        for c in text.chars() {
            assert_eq!(f.key(k(KeyCode::Char(c)), today()), AggregateReply::Keep);
        }
        f
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn enter_runs_the_day_typed() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            AggregateForm::default().key(k(KeyCode::Enter), today()),
            AggregateReply::Run(today())
        );
        for (text, day) in [
            ("yesterday", d("2026-11-23")),
            ("2026-11-01", d("2026-11-01")),
            (" 2000-01-01 ", d("2000-01-01")),
        ] {
            assert_eq!(
                typed(text).key(k(KeyCode::Enter), today()),
                AggregateReply::Run(day),
                "{text}"
            );
        }
        assert_eq!(
            typed("x").key(k(KeyCode::Esc), today()),
            AggregateReply::Cancel
        );
    }

    #[test]
    fn a_day_outside_the_command_lines_years_is_refused_as_it_is_there() {
        for (text, why) in [
            ("1999-12-31", "must be between 2000-01-01 and 2100-12-31"),
            ("2101-01-01", "must be between 2000-01-01 and 2100-12-31"),
            ("24/11/2026", "must be a day, YYYY-MM-DD"),
        ] {
            match typed(text).key(k(KeyCode::Enter), today()) {
                AggregateReply::Invalid(e) => assert!(e.contains(why), "{e}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn progress_counts_within_a_run_and_the_end_says_how_it_went() {
        let day = today();
        let running = AggregationState::advance(
            Some(AggregationState::started(day)),
            AggregationUpdate::Progress { done: 2, total: 5 },
        );
        assert_eq!(
            running,
            AggregationState::Running {
                date: day,
                done: 2,
                total: 5
            }
        );
        assert!(matches!(
            AggregationState::advance(None, AggregationUpdate::Progress { done: 1, total: 1 }),
            AggregationState::Failed(_)
        ));
        assert_eq!(
            AggregationState::advance(
                Some(running),
                AggregationUpdate::Done {
                    summary: "ok".into()
                }
            ),
            AggregationState::Done("ok".into())
        );
    }
}
