//! `App::update` for every action: toggles (confirmed, timed out, refused), tariff input,
//! aggregation, connection banners, sign-in and roles.

use autovolt::domain::{CostVersion, Mac, Role, TariffScope};
use autovolt::tui::app::{AggregationState, App, Effect, Modal, NoticeKind, View};
use autovolt::tui::event::{
    AggregationUpdate, ChangeSource, Event, Link, LinkState, Live, Operator,
};
use autovolt::tui::model::ToggleState;
use autovolt::tui::sample;
use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn press(app: &mut App, c: KeyCode) -> Vec<Effect> {
    app.update(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)))
}

fn type_text(app: &mut App, text: &str) -> Vec<Effect> {
    text.chars()
        .flat_map(|c| press(app, KeyCode::Char(c)))
        .collect()
}

/// Opens the costliest classroom and returns the first switch (board, switch).
fn open_first(app: &mut App) -> (usize, usize) {
    press(app, KeyCode::Enter);
    assert!(matches!(app.view, View::Classroom(_)));
    app.selected_switch().unwrap()
}

fn relay(fx: &[Effect]) -> Option<&autovolt::tui::app::RelayCommand> {
    fx.iter().find_map(|e| match e {
        Effect::Publish(c) => Some(c),
        _ => None,
    })
}

#[test]
fn toggle_is_pending_at_once_then_confirmed_by_the_board() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let was_on = app.campus.boards[b].switches[s].on;
    let fx = press(&mut app, KeyCode::Char(' '));
    let cmd = relay(&fx).expect("a relay command");
    assert_eq!(cmd.on, !was_on);
    assert_eq!(cmd.mac, app.campus.boards[b].mac);
    assert_eq!(cmd.user_name, "Technician");
    assert!(fx.iter().any(
        |e| matches!(e, Effect::Record(log) if log.user_name.as_deref() == Some("Technician"))
    ));
    assert!(
        matches!(app.campus.boards[b].switches[s].toggle, ToggleState::Pending { want, .. } if want != was_on)
    );

    // A switch_event from the board with source backend is the acknowledgement.
    let pin = cmd.pin;
    let mac = cmd.mac;
    app.update(Event::Live(Live::SwitchChanged {
        mac,
        pin,
        on: !was_on,
        source: ChangeSource::Command,
    }));
    let sw = &app.campus.boards[b].switches[s];
    assert!(matches!(sw.toggle, ToggleState::Confirmed { .. }));
    assert_eq!(sw.on, !was_on);

    // The tick clears after a moment.
    app.update(Event::Tick(sample::now() + Duration::seconds(4)));
    assert_eq!(app.campus.boards[b].switches[s].toggle, ToggleState::Idle);
}

#[test]
fn a_state_snapshot_showing_the_requested_state_also_confirms() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let fx = press(&mut app, KeyCode::Enter);
    let cmd = relay(&fx).unwrap().clone();
    // A motion-triggered change to the other state does not confirm.
    app.update(Event::Live(Live::SwitchChanged {
        mac: cmd.mac,
        pin: cmd.pin,
        on: !cmd.on,
        source: ChangeSource::Motion,
    }));
    assert!(matches!(
        app.campus.boards[b].switches[s].toggle,
        ToggleState::Pending { .. }
    ));
    app.update(Event::Live(Live::State {
        mac: cmd.mac,
        relays: vec![(cmd.pin, cmd.on)],
    }));
    assert!(matches!(
        app.campus.boards[b].switches[s].toggle,
        ToggleState::Confirmed { .. }
    ));
}

#[test]
fn toggle_without_acknowledgement_fails_after_the_timeout() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    press(&mut app, KeyCode::Char(' '));
    app.update(Event::Tick(sample::now() + Duration::seconds(4)));
    assert!(matches!(
        app.campus.boards[b].switches[s].toggle,
        ToggleState::Pending { .. }
    ));
    app.update(Event::Tick(sample::now() + Duration::seconds(5)));
    assert_eq!(
        app.campus.boards[b].switches[s].toggle,
        ToggleState::Failed {
            reason: "failed: no acknowledgement in 5 s".into()
        }
    );
    let (kind, text) = app.notice.clone().unwrap();
    assert_eq!(kind, NoticeKind::Error);
    assert!(text.contains("no acknowledgement in 5 s"));
    // It stays until dismissed.
    app.update(Event::Tick(sample::now() + Duration::seconds(60)));
    assert!(matches!(
        app.campus.boards[b].switches[s].toggle,
        ToggleState::Failed { .. }
    ));
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.campus.boards[b].switches[s].toggle, ToggleState::Idle);
    assert!(app.notice.is_none());
}

#[test]
fn toggle_refused_for_an_offline_board() {
    let mut app = sample::default_app(Role::User);
    type_text(&mut app, "sss/Lib-101");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    let (b, _) = app.selected_switch().unwrap();
    assert_eq!(app.campus.boards[b].name, "Lib-101-A");
    let fx = press(&mut app, KeyCode::Char(' '));
    assert!(relay(&fx).is_none());
    let (kind, text) = app.notice.clone().unwrap();
    assert_eq!(kind, NoticeKind::Error);
    assert!(text.contains("offline"), "{text}");
}

#[test]
fn read_only_never_sends() {
    let mut app = sample::default_app(Role::SuperAdmin);
    app.settings.read_only = true;
    open_first(&mut app);
    let mut fx = press(&mut app, KeyCode::Char(' '));
    fx.extend(press(&mut app, KeyCode::Char('o')));
    fx.extend(type_text(&mut app, "y"));
    fx.extend(type_text(&mut app, "e"));
    fx.extend(type_text(&mut app, "a"));
    fx.extend(press(&mut app, KeyCode::Enter));
    assert!(
        fx.iter().all(|e| !matches!(
            e,
            Effect::Publish(_)
                | Effect::SaveTariff { .. }
                | Effect::Aggregate { .. }
                | Effect::Record(_)
        )),
        "{fx:?}"
    );
    assert!(app.notice.unwrap().1.contains("read-only"));
}

#[test]
fn all_off_asks_then_sends_one_command_per_load_on() {
    let mut app = sample::default_app(Role::User);
    open_first(&mut app);
    let room = match app.view {
        View::Classroom(r) => r,
        _ => unreachable!(),
    };
    let on: usize = app.campus.rooms[room]
        .boards
        .iter()
        .map(|&b| {
            app.campus.boards[b]
                .switches
                .iter()
                .filter(|s| s.on)
                .count()
        })
        .sum();
    assert!(on > 0);
    let fx = press(&mut app, KeyCode::Char('o'));
    assert!(fx.is_empty());
    assert!(matches!(app.modal, Some(Modal::ConfirmAllOff(_))));
    let fx = press(&mut app, KeyCode::Char('n'));
    assert!(
        fx.is_empty() && app.modal.is_none(),
        "any other key cancels"
    );
    press(&mut app, KeyCode::Char('o'));
    let fx = press(&mut app, KeyCode::Char('y'));
    let cmds: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(cmds.len(), on);
    assert!(cmds.iter().all(|c| !c.on));
}

#[test]
fn users_toggle_but_only_admins_edit_tariffs_and_aggregate() {
    let mut app = sample::default_app(Role::User);
    let fx = type_text(&mut app, "e");
    assert!(fx.is_empty() && app.modal.is_none());
    assert!(app
        .notice
        .clone()
        .unwrap()
        .1
        .contains("may not change tariffs"));
    type_text(&mut app, "a");
    assert!(app.modal.is_none());

    let mut app = sample::default_app(Role::Other("auditor".into()));
    open_first(&mut app);
    let fx = press(&mut app, KeyCode::Char(' '));
    assert!(relay(&fx).is_none());
    assert!(app.notice.unwrap().1.contains("may not switch relays"));
}

#[test]
fn tariff_input_is_validated_inline_and_saved_once_valid() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "e");
    let Some(Modal::TariffEdit(form)) = &app.modal else {
        panic!("no tariff form")
    };
    assert_eq!(form.fields[0].value(), "7.50");
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "150");
    let fx = press(&mut app, KeyCode::Enter);
    assert!(fx.is_empty());
    let Some(Modal::TariffEdit(form)) = &app.modal else {
        panic!()
    };
    assert!(
        form.error.as_deref().unwrap().contains("to ₹100"),
        "{:?}",
        form.error
    );

    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "abc");
    press(&mut app, KeyCode::Enter);
    let Some(Modal::TariffEdit(form)) = &app.modal else {
        panic!()
    };
    assert!(form.error.as_deref().unwrap().contains("to the paisa"));

    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "8.25");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "MSEDCL revision");
    let fx = press(&mut app, KeyCode::Enter);
    match &fx[..] {
        [Effect::SaveTariff {
            price,
            from,
            note,
            operator,
        }] => {
            assert_eq!(*price, 8.25);
            assert_eq!(*from, None);
            assert_eq!(note, "MSEDCL revision");
            assert_eq!(operator.role, Role::Admin);
        }
        other => panic!("{other:?}"),
    }
    // The result shows everywhere at once: the rate in force changes.
    app.update(Event::TariffResult(Ok(CostVersion {
        id: None,
        cost_per_kwh: 8.25,
        effective_from: sample::now(),
        effective_until: None,
        scope: TariffScope::Global,
        classroom: None,
        device_id: None,
        created_by: None,
        notes: None,
        is_active: true,
        created_at: None,
        updated_at: None,
    })));
    assert!(app.modal.is_none());
    assert_eq!(
        app.campus.global_rate(sample::now() + Duration::seconds(1)),
        8.25
    );
}

#[test]
fn a_failed_tariff_save_stays_in_the_form() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "e");
    press(&mut app, KeyCode::Enter);
    app.update(Event::TariffResult(Err("database unreachable".into())));
    let Some(Modal::TariffEdit(form)) = &app.modal else {
        panic!()
    };
    assert!(!form.saving);
    assert_eq!(form.error.as_deref(), Some("database unreachable"));
}

#[test]
fn tariff_from_date_is_checked() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "e");
    press(&mut app, KeyCode::Tab);
    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "2026-13-01");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    for _ in 0..10 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "2026-12-01");
    let fx = press(&mut app, KeyCode::Enter);
    let Effect::SaveTariff {
        from: Some(from), ..
    } = &fx[0]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(
        from.to_rfc3339(),
        "2026-11-30T18:30:00+00:00",
        "local midnight in IST"
    );
}

#[test]
fn aggregation_reports_progress_then_done_or_failure() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "a");
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "yesterday");
    let fx = press(&mut app, KeyCode::Enter);
    let Effect::Aggregate { date, .. } = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(date.to_string(), "2026-11-23");
    app.update(Event::Aggregation(AggregationUpdate::Progress {
        done: 3,
        total: 10,
    }));
    assert_eq!(
        app.aggregation,
        Some(AggregationState::Running {
            date: *date,
            done: 3,
            total: 10
        })
    );
    type_text(&mut app, "a");
    assert!(app.modal.is_none(), "one run at a time");
    app.update(Event::Aggregation(AggregationUpdate::Done {
        summary: "12 devices, 96.2 kWh".into(),
    }));
    assert_eq!(
        app.aggregation,
        Some(AggregationState::Done("12 devices, 96.2 kWh".into()))
    );

    // Esc while it runs stops it (and does not leave the view); what it kept is said.
    type_text(&mut app, "a");
    press(&mut app, KeyCode::Enter);
    let view = app.view;
    let fx = press(&mut app, KeyCode::Esc);
    assert_eq!(fx, vec![Effect::CancelAggregation]);
    assert_eq!(app.view, view);
    app.update(Event::Aggregation(AggregationUpdate::Stopped(
        "2026-11-24: 4 daily aggregates written before it stopped".into(),
    )));
    assert!(matches!(
        app.aggregation,
        Some(AggregationState::Stopped(_))
    ));

    type_text(&mut app, "a");
    press(&mut app, KeyCode::Enter);
    app.update(Event::Aggregation(AggregationUpdate::Failed(
        "database unreachable".into(),
    )));
    assert_eq!(
        app.aggregation,
        Some(AggregationState::Failed("database unreachable".into()))
    );

    type_text(&mut app, "a");
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "someday");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.notice.clone().unwrap().1.contains("not a date"));
}

#[test]
fn reconnect_banners_follow_the_links_and_keep_state() {
    let mut app = sample::default_app(Role::User);
    let boards = app.campus.boards.len();
    app.dirty = false;
    app.update(Event::Link(
        Link::Mqtt,
        LinkState::Down("connection refused".into()),
    ));
    assert!(app.dirty && !app.live_ok());
    app.update(Event::Link(
        Link::Db,
        LinkState::Down("server selection timeout".into()),
    ));
    assert_eq!(app.campus.boards.len(), boards, "last known state kept");
    app.dirty = false;
    app.update(Event::Link(
        Link::Db,
        LinkState::Down("server selection timeout".into()),
    ));
    assert!(!app.dirty, "an unchanged state does not redraw");
    app.update(Event::Link(Link::Mqtt, LinkState::Up("live".into())));
    app.update(Event::Link(Link::Db, LinkState::Up("connected".into())));
    assert!(app.live_ok());
}

#[test]
fn sign_in_sends_credentials_and_keeps_errors_in_the_form() {
    let mut app = sample::default_app(Role::User);
    app.require_sign_in();
    type_text(&mut app, "tech@campus.edu");
    press(&mut app, KeyCode::Enter);
    let fx = type_text(&mut app, "secret12");
    assert!(fx.is_empty());
    let fx = press(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::SignIn {
            email: "tech@campus.edu".into(),
            password: "secret12".into()
        }]
    );
    app.update(Event::SignIn(Err(
        "wrong e-mail or password (4 attempts left)".into(),
    )));
    let Some(Modal::SignIn(f)) = &app.modal else {
        panic!()
    };
    assert_eq!(f.password.value(), "", "the password is cleared");
    assert!(f.error.as_deref().unwrap().contains("4 attempts left"));
    app.update(Event::SignIn(Ok(Operator {
        id: None,
        name: "Tech".into(),
        role: Role::Admin,
    })));
    assert!(app.modal.is_none());
    assert_eq!(app.operator.as_ref().unwrap().role, Role::Admin);
}

#[test]
fn live_messages_update_switches_and_count_strangers() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let mac = app.campus.boards[b].mac;
    let pin = app.campus.boards[b].switches[s].pin.unwrap();
    let was = app.campus.boards[b].switches[s].on;
    app.update(Event::Live(Live::SwitchChanged {
        mac,
        pin,
        on: !was,
        source: ChangeSource::WallSwitch,
    }));
    assert_eq!(app.campus.boards[b].switches[s].on, !was);
    assert_eq!(app.campus.boards[b].switches[s].since, Some(sample::now()));
    let stranger = Mac::parse("00:11:22:33:44:55").unwrap();
    app.update(Event::Live(Live::Heartbeat { mac: stranger }));
    app.update(Event::Live(Live::Heartbeat { mac: stranger }));
    assert_eq!(app.campus.unregistered.len(), 1);
    app.update(Event::Live(Live::Rejected));
    assert_eq!(app.rejected, 1);
}

#[test]
fn navigation_views_and_quit() {
    let mut app = sample::default_app(Role::User);
    type_text(&mut app, "w");
    assert_eq!(app.view, View::Waste);
    press(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.view, View::Classroom(_)),
        "waste opens the classroom"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view, View::Waste);
    type_text(&mut app, "c");
    assert_eq!(app.view, View::Classrooms);
    type_text(&mut app, "G");
    assert_eq!(app.rooms_sel, 5);
    type_text(&mut app, "jjj");
    assert_eq!(app.rooms_sel, 5);
    type_text(&mut app, "g");
    assert_eq!(app.rooms_sel, 0);
    let fx = type_text(&mut app, "t");
    assert_eq!(fx, vec![Effect::ChangeTheme("light".into())]);
    let fx = type_text(&mut app, "q");
    assert_eq!(fx, vec![Effect::Quit]);
    assert!(app.quit);
}

#[test]
fn mouse_click_selects_the_row_under_it() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mut app = sample::default_app(Role::User);
    app.update(Event::Resize(120, 40));
    // Header 2 rows, border, column header: the third classroom is on row 6.
    app.update(Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 5,
        row: 6,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.rooms_sel, 2);
    app.update(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 5,
        row: 6,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.rooms_sel, 5);
}

#[test]
fn heartbeats_of_online_boards_do_not_redraw_but_changes_do() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let mac = app.campus.boards[b].mac;
    app.dirty = false;
    app.update(Event::Live(Live::Heartbeat { mac }));
    assert!(!app.dirty, "nothing shown changed until the next tick");
    let pin = app.campus.boards[b].switches[s].pin.unwrap();
    let on = app.campus.boards[b].switches[s].on;
    app.update(Event::Live(Live::State {
        mac,
        relays: vec![(pin, on)],
    }));
    assert!(
        !app.dirty,
        "a snapshot that confirms what is shown changes nothing"
    );
    app.update(Event::Live(Live::State {
        mac,
        relays: vec![(pin, !on)],
    }));
    assert!(app.dirty);
}

#[test]
fn boards_heard_before_the_database_snapshot_are_not_strangers() {
    let mut app = sample::default_app(Role::User);
    let known = app.campus.boards[0].mac;
    // A fresh app hears the board before its first snapshot arrives, as at start-up.
    let mut early = App::new(
        sample::settings(),
        autovolt::tui::theme::Theme::load("dark", false).unwrap(),
        autovolt::tui::theme::UNICODE,
        autovolt::tui::keymap::Keymap::default(),
        sample::now(),
    );
    early.update(Event::Live(Live::Heartbeat { mac: known }));
    assert_eq!(early.campus.unregistered.len(), 1);
    early.update(Event::Db(autovolt::tui::event::DbChange::Snapshot(
        Box::new(sample::snapshot(6, 2, 6)),
    )));
    assert!(early.campus.unregistered.is_empty());
    // A real stranger stays one after a reload.
    let stranger = Mac::parse("00:11:22:33:44:55").unwrap();
    app.update(Event::Live(Live::Heartbeat { mac: stranger }));
    app.update(Event::Db(autovolt::tui::event::DbChange::Snapshot(
        Box::new(sample::snapshot(6, 2, 6)),
    )));
    assert_eq!(app.campus.unregistered.len(), 1);
}
