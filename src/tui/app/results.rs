//! What comes back from the effects the runtime ran: a relay command not sent, a tariff saved or
//! not, an aggregation's progress, a sign-in's answer.

use super::{App, Modal, NoticeKind};
use crate::domain::{Actor, CostVersion};
use crate::tui::components::aggregate::AggregationState;
use crate::tui::event::AggregationUpdate;
use crate::tui::model::ToggleState;

impl App {
    pub(super) fn publish_failed(&mut self, device_id: &str, switch_id: &str, reason: &str) {
        if let Some(bi) = self.campus.board_by_id(device_id) {
            if let Some(s) = self.campus.boards[bi]
                .switches
                .iter_mut()
                .find(|s| s.id == switch_id)
            {
                s.toggle = ToggleState::Failed {
                    reason: format!("failed: not sent ({reason})"),
                };
            }
        }
        self.dirty = true;
    }

    pub(super) fn tariff_saved(&mut self, result: Result<CostVersion, String>) {
        match result {
            Ok(version) => {
                let price = version.cost_per_kwh;
                let mut versions = self.campus.tariff.versions.clone();
                for v in versions
                    .iter_mut()
                    .filter(|v| v.scope == version.scope && v.effective_until.is_none())
                {
                    v.effective_until = Some(version.effective_from);
                }
                versions.push(version);
                let settings = self.campus.settings.clone();
                self.campus.set_tariff(settings, versions);
                self.campus.totals.tick(self.clock.now);
                if matches!(self.modal, Some(Modal::TariffEdit(_))) {
                    self.modal = None;
                }
                self.notice = Some((
                    NoticeKind::Info,
                    format!("tariff saved: {}{price:.2}/kWh", self.symbols.rupee),
                ));
            }
            Err(e) => {
                if let Some(Modal::TariffEdit(form)) = &mut self.modal {
                    form.failed(e);
                } else {
                    self.notice = Some((NoticeKind::Error, format!("tariff not saved: {e}")));
                }
            }
        }
        self.dirty = true;
    }

    pub(super) fn aggregation_advanced(&mut self, update: AggregationUpdate) {
        if matches!(update, AggregationUpdate::Stopped(_)) {
            self.notice = None;
        }
        self.aggregation = Some(AggregationState::advance(self.aggregation.take(), update));
        self.dirty = true;
    }

    pub(super) fn signed_in(&mut self, result: Result<Actor, String>) {
        match result {
            Ok(op) => {
                self.notice = Some((
                    NoticeKind::Info,
                    format!("signed in as {} ({})", op.name, op.label()),
                ));
                self.operator = Some(op);
                self.modal = None;
            }
            Err(e) => {
                if let Some(Modal::SignIn(f)) = &mut self.modal {
                    f.failed(e);
                }
            }
        }
        self.dirty = true;
    }
}
