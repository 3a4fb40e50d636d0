//! What the world tells the dashboard: the clock, board messages, database changes and the state
//! of the connections, applied to the shared campus.

use super::{day_start, App, Modal, NoticeKind};
use crate::domain::activity::action;
use crate::mqtt::relay::{action_entry, Target};
use crate::tui::components::all_off::AllOffConfirm;
use crate::tui::effect::Effect;
use crate::tui::event::{DbChange, Link, LinkState, Live};
use crate::tui::model::ToggleState;

/// How long a confirmed toggle shows its tick.
const CONFIRMED_FOR_SECS: i64 = 3;

impl App {
    pub(super) fn tick(&mut self, now: crate::domain::Instant) {
        self.clock.now = now;
        self.clock.day_start = day_start(now, self.settings.tz);
        self.msgs_per_second.push(self.msgs_this_second);
        self.msgs_this_second = 0;
        let timeout = self.settings.toggle_timeout_secs;
        for b in self.campus.boards.iter_mut() {
            for s in b.switches.iter_mut() {
                match &s.toggle {
                    ToggleState::Pending { deadline, .. } if *deadline <= now => {
                        let reason = format!("failed: no acknowledgement in {timeout} s");
                        // Also in the status line, which every width shows, until dismissed.
                        self.notice = Some((
                            NoticeKind::Error,
                            format!("{} {}: {reason}", b.name, s.name),
                        ));
                        s.toggle = ToggleState::Failed { reason };
                    }
                    ToggleState::Confirmed { at }
                        if (now - *at).num_seconds() >= CONFIRMED_FOR_SECS =>
                    {
                        s.toggle = ToggleState::Idle;
                    }
                    _ => {}
                }
            }
        }
        // The running totals move with the clock; at midnight the day that ended joins the month.
        self.campus.totals.tick(now);
        let minute = now.timestamp() / 60;
        if minute != self.last_sample_minute {
            self.last_sample_minute = minute;
            self.campus.sample_power();
        }
        // The clock, presence ages and running totals move every second.
        self.dirty = true;
    }

    /// Board messages that arrived together, with one update of the running totals.
    pub(super) fn live_batch(&mut self, batch: Vec<Live>, fx: &mut Vec<Effect>) {
        let mut totals_changed = false;
        for live in batch {
            totals_changed |= self.live(live, fx);
        }
        if totals_changed {
            self.campus.totals.tick(self.clock.now);
        }
    }

    /// Applies one board message; true when the running totals must be brought up to date.
    fn live(&mut self, live: Live, fx: &mut Vec<Effect>) -> bool {
        self.live_messages += 1;
        self.msgs_this_second = self.msgs_this_second.saturating_add(1);
        if live == Live::Rejected {
            self.rejected += 1;
            return false;
        }
        let out = self.campus.apply_live(&live, self.clock.now);
        if out.untrusted.is_some() {
            self.rejected += 1;
        }
        for (bi, si, by, how) in out.confirmed {
            // The one entry of the operator's action, written once the board has confirmed it.
            let b = &self.campus.boards[bi];
            let s = &b.switches[si];
            let target = Target {
                device_id: bson::oid::ObjectId::parse_str(&b.id).ok(),
                switch_id: s.id.clone(),
                switch_name: s.name.clone(),
                classroom: Some(self.campus.rooms[b.room].name.clone()),
            };
            fx.push(Effect::Record(Box::new(action_entry(
                &target,
                s.on,
                &by,
                how,
                self.clock.now,
            ))));
        }
        if out.changed {
            self.dirty = true;
        }
        out.totals_changed
    }

    pub(super) fn link(&mut self, link: Link, state: LinkState) {
        let slot = match link {
            Link::Mqtt => &mut self.links.mqtt,
            Link::Db => &mut self.links.db,
            Link::Feed => &mut self.links.feed,
        };
        if *slot != state {
            *slot = state;
            self.dirty = true;
        }
    }

    pub(super) fn db(&mut self, change: DbChange) {
        let now = self.clock.now;
        match change {
            DbChange::Snapshot(snap) => {
                if let Some(mut h) = snap.health.clone() {
                    h.last_aggregation = h
                        .last_aggregation
                        .take()
                        .or(self.db_health.last_aggregation.take());
                    h.newest_telemetry = snap.devices.iter().filter_map(|d| d.last_seen).max();
                    h.largest = h.largest.take().or(self.db_health.largest.take());
                    self.db_health = h;
                }
                // The campus is rebuilt and may number its classrooms and boards otherwise: the
                // views open, and a confirmation asked, stay on what they show.
                let places = self.nav.places(&self.campus);
                let all_off = match &self.modal {
                    Some(Modal::ConfirmAllOff(c)) => Some(self.campus.room_key(c.room())),
                    _ => None,
                };
                self.campus.load(*snap, now);
                self.nav.find(&places, &self.campus);
                if let Some(key) = all_off {
                    self.modal = self
                        .campus
                        .room_by_key(&key)
                        .map(|r| Modal::ConfirmAllOff(AllOffConfirm::new(r)));
                }
                self.loaded = true;
                // New rooms start their power history at the next tick, not a minute later.
                self.last_sample_minute = i64::MIN;
            }
            DbChange::Device(d) => {
                // The collector stamps `lastSeen`: the newest one says how far behind it is.
                self.db_health.newest_telemetry = self.db_health.newest_telemetry.max(d.last_seen);
                self.campus.upsert_device(*d);
            }
            DbChange::Classroom(c) => {
                self.campus.upsert_classroom(c);
            }
            DbChange::CostVersion(v) => self.campus.upsert_cost_version(v),
            DbChange::PowerSettings(p) => self.campus.upsert_power_settings(p),
            DbChange::Activity(a) => {
                if a.action == action::AGGREGATION_RUN {
                    self.db_health.last_aggregation = Some(crate::domain::dates::campus_time(
                        a.timestamp,
                        self.settings.tz,
                    ));
                }
                self.campus.add_activity(*a);
            }
            DbChange::RecentActivity(recent) => {
                if let Some(a) = recent
                    .iter()
                    .rev()
                    .find(|a| a.action == action::AGGREGATION_RUN)
                {
                    self.db_health.last_aggregation = Some(crate::domain::dates::campus_time(
                        a.timestamp,
                        self.settings.tz,
                    ));
                }
                self.campus.set_activity(recent);
            }
            DbChange::Schedules(mut schedules) => {
                schedules.sort_by(|a, b| a.name.cmp(&b.name));
                self.schedules = schedules;
            }
            DbChange::LedgerRow(row) => {
                self.campus.totals.learn_row(&row, now);
            }
            DbChange::Reconciled {
                day,
                closed,
                cutoff,
            } => {
                self.campus.totals.reconcile(day, &closed, cutoff);
            }
            DbChange::History { day, history } => {
                self.campus.totals.load_history(day, &history);
            }
            DbChange::Health(h) => {
                // What the health read does not know is kept: the last aggregation seen in the
                // activity, the newest board contact, what could not be read.
                let old = std::mem::replace(&mut self.db_health, h);
                let h = &mut self.db_health;
                h.last_aggregation = h.last_aggregation.take().or(old.last_aggregation);
                h.newest_telemetry = h.newest_telemetry.max(old.newest_telemetry);
                if h.dead_letters.is_none() {
                    h.dead_letters = old.dead_letters;
                }
                h.largest = old.largest;
            }
            DbChange::Sizes { result, took } => match result {
                Ok(largest) => {
                    self.db_health.largest = Some(largest);
                    self.sizes.end(now, took, None);
                }
                Err(e) => self.sizes.end(now, took, Some(e)),
            },
            DbChange::Firmware(records) => self.campus.set_firmware(records),
            DbChange::UsersExist(exist) => {
                let signing_in = matches!(self.modal, Some(Modal::SignIn(_)));
                if exist && !self.settings.read_only && self.operator.is_none() && !signing_in {
                    self.require_sign_in();
                } else if !exist && self.operator.is_none() {
                    self.operator = Some(self.settings.local_operator.clone());
                }
            }
        }
        self.campus.totals.tick(now);
        self.nav.leave_gone(&self.campus);
        self.dirty = true;
    }
}
