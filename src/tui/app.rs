//! The dashboard's state and `update`, the only way it changes. `App` holds what every view
//! shares (the campus, the clock, the connections, who acts) and routes keys to the open modal
//! or view (`components`); effects (publish, write, run) go back to the runtime, which runs them
//! and feeds their results back as events.

mod feed;
mod keys;
mod lists;
mod relay;
mod results;

use super::components::aggregate::{AggregateForm, AggregationState};
use super::components::all_off::AllOffConfirm;
use super::components::filter::FilterInput;
use super::components::health::SizesState;
use super::components::navigation::{Navigation, View};
use super::components::sign_in::SignInForm;
use super::components::tariff_edit::TariffForm;
use super::components::{activity, classroom, classrooms, trends as trend_lists};
use super::cursor::Cursor;
use super::effect::Effect;
use super::event::{DbHealth, Event, LinkState};
use super::keymap::Keymap;
use super::model::{Campus, Clock, Ring};
use super::theme::{Symbols, Theme};
use super::trends::TrendsState;
use super::waste::{waste, WasteRow};
use crate::domain::interval::{local_date, local_midnight};
use crate::domain::waste::WasteRule;
use crate::domain::{ActivityLog, Actor, Instant, Schedule};

/// Seconds of one-per-second message counts kept for the rate figure.
const RATE_WINDOW: usize = 60;

/// Fixed settings of a dashboard session.
#[derive(Debug, Clone)]
pub struct Settings {
    pub campus: String,
    pub read_only: bool,
    pub toggle_timeout_secs: i64,
    pub stale_after_secs: i64,
    pub offline_after_secs: i64,
    pub tz: chrono_tz::Tz,
    pub waste: WasteRule,
    /// The broker's URL without its user and password.
    pub mqtt_url: String,
    /// Who acts when the database has no users: the command line's operator (`--as`,
    /// `AUTOVOLT_OPERATOR`, `$USER`, …) with the database's own authority (a campus without
    /// accounts has no one else to ask, and the dashboard holds the database's credentials).
    pub local_operator: Actor,
}

#[derive(Debug, Clone)]
pub enum Modal {
    Help,
    Filter(FilterInput),
    TariffEdit(TariffForm),
    ConfirmAllOff(AllOffConfirm),
    Aggregate(AggregateForm),
    SignIn(SignInForm),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Info,
    Error,
}

#[derive(Debug, Clone)]
pub struct Links {
    pub mqtt: LinkState,
    pub db: LinkState,
    pub feed: LinkState,
}

pub struct App {
    settings: Settings,
    theme: Theme,
    symbols: Symbols,
    keymap: Keymap,
    no_color: bool,
    campus: Campus,
    clock: Clock,
    nav: Navigation,
    /// The classrooms list's cursor.
    rooms_cursor: Cursor,
    /// The open classroom's switches' cursor.
    switch_cursor: Cursor,
    /// The cursor of the other views' lists.
    list_cursor: Cursor,
    sort: classrooms::SortKey,
    /// The filter of the classrooms and the activity.
    filter: String,
    modal: Option<Modal>,
    links: Links,
    db_health: DbHealth,
    msgs_per_second: Ring<u32>,
    msgs_this_second: u32,
    rejected: u64,
    live_messages: u64,
    aggregation: Option<AggregationState>,
    /// Every schedule, by name (they change rarely: read at start and after each change).
    schedules: Vec<Schedule>,
    notice: Option<(NoticeKind, String)>,
    operator: Option<Actor>,
    trends: TrendsState,
    sizes: SizesState,
    loaded: bool,
    width: u16,
    height: u16,
    dirty: bool,
    last_sample_minute: i64,
}

impl App {
    pub fn new(
        settings: Settings,
        theme: Theme,
        symbols: Symbols,
        keymap: Keymap,
        now: Instant,
    ) -> App {
        let tz = settings.tz;
        let clock = Clock {
            now,
            day_start: day_start(now, settings.tz),
            stale_after_secs: settings.stale_after_secs,
            offline_after_secs: settings.offline_after_secs,
        };
        App {
            settings,
            no_color: theme.on.fg == Some(ratatui::style::Color::Reset),
            theme,
            symbols,
            keymap,
            campus: Campus::new(tz, now),
            clock,
            nav: Navigation::default(),
            rooms_cursor: Cursor::default(),
            switch_cursor: Cursor::default(),
            list_cursor: Cursor::default(),
            sort: classrooms::SortKey::default(),
            filter: String::new(),
            modal: None,
            links: Links {
                mqtt: LinkState::Connecting,
                db: LinkState::Connecting,
                feed: LinkState::Connecting,
            },
            db_health: DbHealth::default(),
            msgs_per_second: Ring::new(RATE_WINDOW),
            msgs_this_second: 0,
            rejected: 0,
            live_messages: 0,
            aggregation: None,
            schedules: Vec::new(),
            notice: None,
            operator: None,
            trends: TrendsState::default(),
            sizes: SizesState::default(),
            loaded: false,
            width: 120,
            height: 40,
            dirty: true,
            last_sample_minute: i64::MIN,
        }
    }

    pub fn update(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Tick(now) => {
                self.tick(now);
                self.measure_sizes_if_due(&mut fx);
            }
            Event::Resize(w, h) => {
                self.width = w;
                self.height = h;
                self.dirty = true;
            }
            Event::Drawn => self.dirty = false,
            Event::Theme(theme) => {
                self.theme = *theme;
                self.dirty = true;
            }
            // A key acts on the row the operator sees: the cursor is on what that row shows from
            // now on, wherever a re-sort takes it.
            Event::Key(k) => {
                self.move_by(0);
                self.key(k, &mut fx)
            }
            Event::Mouse(m) => {
                self.move_by(0);
                self.mouse(m)
            }
            Event::Live(live) => self.live_batch(vec![live], &mut fx),
            Event::LiveBatch(batch) => self.live_batch(batch, &mut fx),
            Event::Db(change) => self.db(change),
            Event::Link(link, state) => self.link(link, state),
            Event::PublishFailed {
                device_id,
                switch_id,
                reason,
            } => self.publish_failed(&device_id, &switch_id, &reason),
            Event::TariffResult(result) => self.tariff_saved(result),
            Event::Aggregation(u) => self.aggregation_advanced(u),
            Event::Trends(update) => {
                self.trends.apply(update);
                self.nav.leave_gone(&self.campus);
                self.dirty = true;
            }
            Event::SignIn(result) => self.signed_in(result),
        }
        fx
    }

    /// Opens the sign-in (the database has users and the session may act).
    fn require_sign_in(&mut self) {
        self.operator = None;
        self.modal = Some(Modal::SignIn(SignInForm::default()));
    }

    /// Asks for the collection sizes while the health view is open and they are due.
    fn measure_sizes_if_due(&mut self, fx: &mut Vec<Effect>) {
        if self.nav.view() == View::Health && self.sizes.due(self.clock.now) {
            self.sizes.start(self.clock.now);
            fx.push(Effect::LoadSizes);
            self.dirty = true;
        }
    }
}

/// What the views read.
impl App {
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }

    /// Whether the session started without colours (`NO_COLOR`): theme changes keep it so.
    pub fn no_color(&self) -> bool {
        self.no_color
    }

    pub fn campus(&self) -> &Campus {
        &self.campus
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn view(&self) -> View {
        self.nav.view()
    }

    pub fn sort(&self) -> classrooms::SortKey {
        self.sort
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    pub fn modal(&self) -> Option<&Modal> {
        self.modal.as_ref()
    }

    pub fn links(&self) -> &Links {
        &self.links
    }

    pub fn db_health(&self) -> &DbHealth {
        &self.db_health
    }

    /// Board messages not believed: invalid, or without the board's secret.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Live messages applied since start (the benchmark matches them to frames).
    pub fn live_messages(&self) -> u64 {
        self.live_messages
    }

    pub fn aggregation(&self) -> Option<&AggregationState> {
        self.aggregation.as_ref()
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn notice(&self) -> Option<&(NoticeKind, String)> {
        self.notice.as_ref()
    }

    pub fn operator(&self) -> Option<&Actor> {
        self.operator.as_ref()
    }

    pub fn trends(&self) -> &TrendsState {
        &self.trends
    }

    pub fn sizes(&self) -> &SizesState {
        &self.sizes
    }

    /// Whether the first snapshot of the campus has arrived.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// Whether something changed since the last frame.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Whether live messages are arriving (else the switch states shown are the last known).
    pub fn live_ok(&self) -> bool {
        matches!(self.links.mqtt, LinkState::Up(_))
    }

    /// Messages per minute over the last minute.
    pub fn msgs_per_minute(&self) -> u64 {
        let sum: u64 = self.msgs_per_second.iter().map(|&n| n as u64).sum();
        let secs = self.msgs_per_second.len().max(1) as u64;
        sum * 60 / secs
    }

    /// The next scheduled run that switches something in classroom `room`: when, and its schedule.
    pub fn next_scheduled(&self, room: usize) -> Option<(Instant, &Schedule)> {
        let ids: Vec<&str> = self.campus.rooms[room]
            .boards
            .iter()
            .map(|&b| self.campus.boards[b].id.as_str())
            .collect();
        crate::domain::schedule::next_run_among(
            &self.schedules,
            |w| ids.contains(&w.device_id.to_hex().as_str()),
            self.clock.now,
            self.settings.tz,
        )
    }

    pub fn waste_rows(&self) -> Vec<WasteRow> {
        waste(&self.campus, &self.clock, &self.settings.waste)
    }

    /// The classrooms shown on the home view: filtered, then sorted.
    pub fn visible_rooms(&self) -> Vec<usize> {
        classrooms::visible(&self.campus, &self.clock, &self.filter, self.sort)
    }

    /// Activity entries shown (newest first), filtered.
    pub fn visible_activity(&self) -> Vec<&ActivityLog> {
        activity::visible(&self.campus, &self.filter)
    }

    /// (board, switch) pairs of a classroom in display order.
    pub fn flat_switches(&self, room: usize) -> Vec<(usize, usize)> {
        classroom::switches(&self.campus, room)
    }

    /// The classrooms of the trends' two top lists, one after the other (ledger names).
    pub fn trends_rows(&self) -> Vec<String> {
        trend_lists::rows(&self.campus, &self.trends)
    }

    /// The trends' top classrooms by ₹ this month and by ₹ outside campus hours.
    pub fn trends_tops(&self) -> (trend_lists::Ranking, trend_lists::Ranking) {
        trend_lists::tops(&self.campus, &self.trends)
    }
}

/// Midnight of `now`'s day in the campus time zone, as a UTC instant (the books' midnight: where
/// a zone skips it, the first instant of the day).
fn day_start(now: Instant, tz: chrono_tz::Tz) -> Instant {
    local_midnight(local_date(now, tz), tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::event::DbChange;
    use crate::tui::sample;
    use chrono::TimeZone;

    #[test]
    fn without_users_the_dashboard_acts_as_the_command_lines_operator() {
        let settings = Settings {
            local_operator: Actor::at_database("priya"),
            ..sample::settings()
        };
        let theme = Theme::load("dark", false).unwrap();
        let mut app = App::new(
            settings,
            theme,
            crate::tui::theme::UNICODE,
            Keymap::default(),
            sample::now(),
        );
        app.update(Event::Db(DbChange::UsersExist(false)));
        assert_eq!(app.operator(), Some(&Actor::at_database("priya")));
    }

    #[test]
    fn the_day_starts_where_the_books_start_it_also_when_a_zone_skips_midnight() {
        // São Paulo went from 00:00 to 01:00 on 2018-11-04: that day began at 01:00 local.
        let tz = chrono_tz::America::Sao_Paulo;
        let noon = chrono::Utc.with_ymd_and_hms(2018, 11, 4, 14, 0, 0).unwrap();
        let one_am = chrono::Utc.with_ymd_and_hms(2018, 11, 4, 3, 0, 0).unwrap();
        assert_eq!(day_start(noon, tz), one_am);
        let ist = chrono_tz::Asia::Kolkata;
        assert_eq!(
            day_start(noon, ist),
            chrono::Utc
                .with_ymd_and_hms(2018, 11, 3, 18, 30, 0)
                .unwrap()
        );
    }
}
