//! Keys: to the open modal if there is one, else through the key map to the open view.

use super::{App, Modal, NoticeKind};
use crate::domain::interval::local_date;
use crate::tui::components::aggregate::{AggregateForm, AggregateReply, AggregationState};
use crate::tui::components::all_off::AllOffConfirm;
use crate::tui::components::filter::{FilterInput, FilterReply};
use crate::tui::components::help::{self, HelpReply};
use crate::tui::components::navigation::View;
use crate::tui::components::sign_in::SignInReply;
use crate::tui::components::tariff_edit::{TariffForm, TariffReply};
use crate::tui::components::{classroom, trends as trend_lists};
use crate::tui::cursor::Cursor;
use crate::tui::effect::Effect;
use crate::tui::keymap::Action;
use crate::tui::model::ToggleState;
use crate::tui::theme::Theme;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

impl App {
    pub(super) fn key(&mut self, k: KeyEvent, fx: &mut Vec<Effect>) {
        if k.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        self.dirty = true;
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            fx.push(Effect::Quit);
            return;
        }
        if let Some(modal) = self.modal.take() {
            self.modal = self.modal_key(modal, k, fx);
            return;
        }
        if let Some(action) = self.keymap.action(&k) {
            self.action(action, fx);
        }
    }

    /// Keys while a modal is open; returns the modal to keep open, if any.
    fn modal_key(&mut self, modal: Modal, k: KeyEvent, fx: &mut Vec<Effect>) -> Option<Modal> {
        match modal {
            Modal::Help => {
                if help::key(&self.keymap, &k) == HelpReply::Quit {
                    fx.push(Effect::Quit);
                }
                None
            }
            Modal::Filter(mut input) => {
                let (filter, open) = match input.key(k) {
                    FilterReply::Kept => return None,
                    FilterReply::Typed(text) => (text, Some(Modal::Filter(input))),
                    FilterReply::Cleared => (String::new(), None),
                };
                self.filter = filter;
                self.rooms_cursor = Cursor::default();
                self.list_cursor = Cursor::default();
                open
            }
            Modal::ConfirmAllOff(confirm) => {
                if AllOffConfirm::confirmed(&k) {
                    self.all_off(confirm.room(), fx);
                }
                None
            }
            Modal::Aggregate(mut form) => {
                match form.key(k, local_date(self.clock.now, self.settings.tz)) {
                    AggregateReply::Keep => Some(Modal::Aggregate(form)),
                    AggregateReply::Cancel => None,
                    AggregateReply::Run(date) => {
                        if let Some(by) = self.operator.clone() {
                            self.aggregation = Some(AggregationState::started(date));
                            fx.push(Effect::Aggregate { date, by });
                        }
                        None
                    }
                    AggregateReply::Invalid(why) => {
                        self.notice = Some((NoticeKind::Error, why));
                        Some(Modal::Aggregate(form))
                    }
                }
            }
            Modal::TariffEdit(mut form) => {
                match form.key(k, self.settings.tz, self.operator.as_ref()) {
                    TariffReply::Keep => {}
                    TariffReply::Close => return None,
                    TariffReply::Save(effect) => fx.push(effect),
                }
                Some(Modal::TariffEdit(form))
            }
            Modal::SignIn(mut form) => {
                match form.key(k) {
                    SignInReply::Keep => {}
                    SignInReply::Quit => {
                        fx.push(Effect::Quit);
                        return None;
                    }
                    SignInReply::Submit(effect) => fx.push(effect),
                }
                Some(Modal::SignIn(form))
            }
        }
    }

    fn action(&mut self, action: Action, fx: &mut Vec<Effect>) {
        let view = self.nav.view();
        match action {
            Action::Quit => fx.push(Effect::Quit),
            Action::Help => self.modal = Some(Modal::Help),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page() as i64)),
            Action::PageDown => self.move_by(self.page() as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Open => self.open(fx),
            Action::Toggle => {
                if matches!(view, View::Classroom(_) | View::Board(_)) {
                    self.toggle_selected(fx);
                }
            }
            // Esc first stops an aggregation that is running.
            Action::Back if AggregationState::is_running(&self.aggregation) => {
                fx.push(Effect::CancelAggregation);
                self.notice = Some((
                    NoticeKind::Info,
                    "stopping the aggregation after the current classroom".into(),
                ));
            }
            Action::Back => {
                if !self.nav.back() {
                    self.filter.clear();
                }
                self.nav.leave_gone(&self.campus);
            }
            Action::AllOff => {
                if let Some(room) = self.current_room() {
                    match self.may_act() {
                        Ok(()) => self.modal = Some(Modal::ConfirmAllOff(AllOffConfirm::new(room))),
                        Err(e) => self.notice = Some((NoticeKind::Error, e)),
                    }
                }
            }
            // The charts show the campus, or the classroom selected in the lists.
            Action::NextBoard if view == View::Trends => {
                let selected = self.list_sel();
                trend_lists::toggle_scope(&self.campus, &mut self.trends, selected);
            }
            Action::NextBoard => {
                if let View::Classroom(room) = view {
                    let next = classroom::next_board(&self.campus, room, self.switch_sel());
                    self.select(next);
                }
            }
            Action::BoardInfo => {
                if let Some((bi, _)) = self.selected_switch() {
                    self.go(View::Board(bi));
                }
            }
            Action::Filter => {
                if matches!(view, View::Classrooms | View::Activity) {
                    self.modal = Some(Modal::Filter(FilterInput::new(&self.filter)));
                }
            }
            Action::Sort => {
                self.sort = self.sort.next();
                self.rooms_cursor = Cursor::default();
            }
            Action::Classrooms => self.nav.home(),
            Action::Waste => self.go(View::Waste),
            Action::Activity => self.go(View::Activity),
            Action::Health => {
                self.go(View::Health);
                self.measure_sizes_if_due(fx);
            }
            Action::Tariff => self.go(View::Tariff),
            Action::Schedules => self.go(View::Schedules),
            Action::Trends => self.open_trends(fx),
            Action::EditTariff => match self.may_administer() {
                Ok(()) => {
                    let current = self.campus.global_rate(self.clock.now);
                    self.modal = Some(Modal::TariffEdit(TariffForm::new(current)));
                }
                Err(e) => self.notice = Some((NoticeKind::Error, e)),
            },
            Action::Aggregate => match self.may_administer() {
                Ok(()) if AggregationState::is_running(&self.aggregation) => {
                    self.notice = Some((
                        NoticeKind::Error,
                        "an aggregation is already running".into(),
                    ));
                }
                Ok(()) => self.modal = Some(Modal::Aggregate(AggregateForm::default())),
                Err(e) => self.notice = Some((NoticeKind::Error, e)),
            },
            Action::Theme => fx.push(Effect::ChangeTheme(
                Theme::next_name(&self.theme.name).to_string(),
            )),
            Action::Dismiss => {
                self.notice = None;
                if !AggregationState::is_running(&self.aggregation) {
                    self.aggregation = None;
                }
                for b in self.campus.boards.iter_mut() {
                    for s in b.switches.iter_mut() {
                        if matches!(s.toggle, ToggleState::Failed { .. }) {
                            s.toggle = ToggleState::Idle;
                        }
                    }
                }
            }
        }
    }

    /// Opens `view` over the current one, its list at the top.
    fn go(&mut self, view: View) {
        if self.nav.go(view) {
            self.list_cursor = Cursor::default();
        }
    }

    /// Opens the classroom `room`, its switches at the top.
    fn open_room(&mut self, room: usize) {
        self.go(View::Classroom(room));
        self.switch_cursor = Cursor::default();
    }

    fn open(&mut self, fx: &mut Vec<Effect>) {
        match self.nav.view() {
            View::Classrooms => {
                if let Some(&room) = self.visible_rooms().get(self.rooms_sel()) {
                    self.open_room(room);
                }
            }
            View::Waste => {
                if let Some(row) = self.waste_rows().get(self.list_sel()) {
                    let room = row.room;
                    self.open_room(room);
                }
            }
            View::Trends => {
                if let Some(room) = trend_lists::room(&self.campus, &self.trends, self.list_sel()) {
                    self.open_room(room);
                }
            }
            View::Classroom(_) | View::Board(_) => self.toggle_selected(fx),
            _ => {}
        }
    }

    /// Shows the trends, reading their history unless what is loaded is today's.
    fn open_trends(&mut self, fx: &mut Vec<Effect>) {
        self.go(View::Trends);
        let today = self.campus.totals.day();
        if !self.trends.loading && !self.trends.is_current(today) {
            self.trends.loading = true;
            self.trends.error = None;
            self.trends.ledger = None;
            fx.push(Effect::LoadTrends {
                now: self.clock.now,
                rule: self.settings.waste.clone(),
            });
        }
    }
}
