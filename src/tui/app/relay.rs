//! The operator's relay commands: one switch, or every switch of a classroom, each checked first
//! so that the screen says at once why one is not sent.

use super::{App, NoticeKind};
use crate::domain::Permission;
use crate::mqtt::relay::Command;
use crate::tui::components::navigation::View;
use crate::tui::effect::Effect;
use crate::tui::model::{Presence, ToggleState};
use chrono::Duration;

impl App {
    pub(super) fn may_act(&self) -> Result<(), String> {
        self.may(Permission::Toggle)
    }

    pub(super) fn may_administer(&self) -> Result<(), String> {
        self.may(Permission::ChangeTariff)?;
        self.may(Permission::RunAggregation)
    }

    /// The library's rule ([`crate::domain::Actor::may`]), asked before anything is sent so that
    /// the screen says why at once; the store and the relay path ask it again.
    fn may(&self, what: Permission) -> Result<(), String> {
        if self.settings.read_only {
            return Err("read-only: this dashboard sends nothing".into());
        }
        match &self.operator {
            Some(op) => op.may(what).map_err(|e| e.to_string()),
            None => Err("sign in first".into()),
        }
    }

    /// The classroom the current view is on, or its selected row shows.
    pub(super) fn current_room(&self) -> Option<usize> {
        match self.nav.view() {
            View::Classrooms => self.visible_rooms().get(self.rooms_sel()).copied(),
            View::Classroom(r) => Some(r),
            View::Board(b) => Some(self.campus.boards[b].room),
            View::Waste => self.waste_rows().get(self.list_sel()).map(|w| w.room),
            _ => None,
        }
    }

    pub(super) fn toggle_selected(&mut self, fx: &mut Vec<Effect>) {
        let Some((bi, si)) = self.selected_switch() else {
            return;
        };
        let want = !self.campus.boards[bi].switches[si].on;
        if let Err(e) = self.command(bi, si, want, fx) {
            self.notice = Some((NoticeKind::Error, e));
        }
    }

    /// Sends one relay command, marking the switch pending.
    fn command(
        &mut self,
        bi: usize,
        si: usize,
        want: bool,
        fx: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.may_act()?;
        let presence = self.clock.presence(self.campus.boards[bi].last_seen);
        let b = &self.campus.boards[bi];
        let s = &b.switches[si];
        if presence == Presence::Offline {
            return Err(format!(
                "{} is offline: the command would not arrive",
                b.name
            ));
        }
        if matches!(s.toggle, ToggleState::Pending { .. }) {
            return Err(format!(
                "{}: a command is already waiting for the board",
                s.name
            ));
        }
        let Some(pin) = s.pin else {
            return Err(format!(
                "{}: the switch has no relay pin configured",
                s.name
            ));
        };
        let Some(by) = self.operator.clone() else {
            return Err("sign in first".into());
        };
        fx.push(Effect::Publish {
            device_id: b.id.clone(),
            switch_id: s.id.clone(),
            command: Command::new(b.mac, b.secret.clone(), pin, want, &by),
        });
        let deadline = self.clock.now + Duration::seconds(self.settings.toggle_timeout_secs);
        self.campus.boards[bi].switches[si].toggle = ToggleState::Pending { want, deadline, by };
        Ok(())
    }

    pub(super) fn all_off(&mut self, room: usize, fx: &mut Vec<Effect>) {
        let mut sent = 0;
        let mut skipped = 0;
        let boards = self.campus.rooms[room].boards.clone();
        for bi in boards {
            for si in 0..self.campus.boards[bi].switches.len() {
                if !self.campus.boards[bi].switches[si].on {
                    continue;
                }
                match self.command(bi, si, false, fx) {
                    Ok(()) => sent += 1,
                    Err(_) => skipped += 1,
                }
            }
        }
        let name = &self.campus.rooms[room].name;
        self.notice = Some(if skipped == 0 {
            (
                NoticeKind::Info,
                format!("{name}: {sent} off command(s) sent"),
            )
        } else {
            (
                NoticeKind::Error,
                format!("{name}: {sent} sent, {skipped} not sent (offline or already pending)"),
            )
        });
    }
}
