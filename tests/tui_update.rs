//! `App::update` for every action: toggles (confirmed, timed out, refused), tariff input,
//! aggregation, connection banners, sign-in and roles.

use autovolt::domain::{Actor, CostVersion, Mac, Role, TariffScope};
use autovolt::mqtt::relay::Command;
use autovolt::tui::app::{App, Modal, NoticeKind, Settings};
use autovolt::tui::components::aggregate::AggregationState;
use autovolt::tui::components::navigation::View;
use autovolt::tui::effect::Effect;
use autovolt::tui::event::{AggregationUpdate, DbChange, Event, Link, LinkState, Live};
use autovolt::tui::live;
use autovolt::tui::model::ToggleState;
use autovolt::tui::sample::{self, SampleApp};
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
    assert!(matches!(app.view(), View::Classroom(_)));
    app.selected_switch().unwrap()
}

fn relay(fx: &[Effect]) -> Option<&Command> {
    fx.iter().find_map(|e| match e {
        Effect::Publish { command, .. } => Some(command),
        _ => None,
    })
}

/// What a board publishes, parsed as the dashboard parses it.
fn board_says(topic: &str, payload: serde_json::Value) -> Event {
    Event::Live(live::parse(topic, payload.to_string().as_bytes()).expect("a board message"))
}

fn secret_of(app: &App, b: usize) -> String {
    app.campus().boards[b].secret.expose().to_string()
}

fn switch_event(mac: Mac, secret: &str, pin: i32, on: bool, source: &str) -> Event {
    board_says(
        live::TELEMETRY_TOPIC,
        serde_json::json!({"mac": mac.to_string(), "secret": secret, "type": "switch_event",
            "gpio": pin, "state": on, "source": source, "timestamp": 1000}),
    )
}

fn snapshot(mac: Mac, secret: &str, relays: &[(i32, bool)]) -> Event {
    let switches: Vec<_> = relays
        .iter()
        .map(|(g, s)| serde_json::json!({"gpio": g, "state": s, "manual_override": false}))
        .collect();
    board_says(
        live::STATE_TOPIC,
        serde_json::json!({"mac": mac.to_string(), "secret": secret, "switches": switches}),
    )
}

fn heartbeat(mac: Mac) -> Event {
    board_says(
        live::TELEMETRY_TOPIC,
        serde_json::json!({"mac": mac.to_string(), "status": "heartbeat", "uptime": 1000}),
    )
}

#[test]
fn toggle_is_pending_at_once_then_confirmed_by_the_board() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let was_on = app.campus().boards[b].switches[s].on;
    let fx = press(&mut app, KeyCode::Char(' '));
    let cmd = relay(&fx).expect("a relay command").clone();
    assert_eq!(cmd.state, !was_on);
    assert_eq!(cmd.mac, app.campus().boards[b].mac);
    assert_eq!(cmd.user_name, "Technician");
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Record(_))),
        "nothing is recorded until the board confirms"
    );
    assert!(
        matches!(app.campus().boards[b].switches[s].toggle, ToggleState::Pending { want, .. } if want != was_on)
    );

    // Anyone can publish on the device topics: without the board's secret nothing is confirmed.
    let secret = secret_of(&app, b);
    for forged in [
        switch_event(cmd.mac, "not-the-secret", cmd.pin, !was_on, "backend"),
        board_says(
            live::TELEMETRY_TOPIC,
            serde_json::json!({"mac": cmd.mac.to_string(), "type": "switch_event",
                "gpio": cmd.pin, "state": !was_on, "source": "backend", "timestamp": 1}),
        ),
    ] {
        let fx = app.update(forged);
        assert!(fx.is_empty(), "{fx:?}");
        let sw = &app.campus().boards[b].switches[s];
        assert!(matches!(sw.toggle, ToggleState::Pending { .. }));
        assert_eq!(sw.on, was_on, "a forged message changes nothing");
    }
    assert_eq!(app.rejected(), 2);

    // The board's switch_event with source backend is the acknowledgement, and the action's one
    // activity entry says who asked and what confirmed it.
    let fx = app.update(switch_event(cmd.mac, &secret, cmd.pin, !was_on, "backend"));
    let sw = &app.campus().boards[b].switches[s];
    assert!(matches!(sw.toggle, ToggleState::Confirmed { .. }));
    assert_eq!(sw.on, !was_on);
    let records: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Record(log) => Some(log),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 1, "{fx:?}");
    assert_eq!(records[0].user_name.as_deref(), Some("Technician"));
    assert_eq!(
        records[0].context.as_ref().unwrap()["confirmedBy"],
        "switch_event"
    );
    assert_eq!(records[0].switch_id.as_deref(), Some(sw.id.as_str()));
    // A repeat of the acknowledgement records nothing more.
    let fx = app.update(switch_event(cmd.mac, &secret, cmd.pin, !was_on, "backend"));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Record(_))));

    // The tick clears after a moment.
    app.update(Event::Tick(sample::now() + Duration::seconds(4)));
    assert_eq!(app.campus().boards[b].switches[s].toggle, ToggleState::Idle);
}

#[test]
fn a_state_snapshot_showing_the_requested_state_also_confirms() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let fx = press(&mut app, KeyCode::Enter);
    let cmd = relay(&fx).unwrap().clone();
    let secret = secret_of(&app, b);
    // A motion-triggered change to the other state does not confirm.
    app.update(switch_event(
        cmd.mac, &secret, cmd.pin, !cmd.state, "motion",
    ));
    assert!(matches!(
        app.campus().boards[b].switches[s].toggle,
        ToggleState::Pending { .. }
    ));
    app.update(snapshot(cmd.mac, &secret, &[(cmd.pin, cmd.state)]));
    assert!(matches!(
        app.campus().boards[b].switches[s].toggle,
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
        app.campus().boards[b].switches[s].toggle,
        ToggleState::Pending { .. }
    ));
    app.update(Event::Tick(sample::now() + Duration::seconds(5)));
    assert_eq!(
        app.campus().boards[b].switches[s].toggle,
        ToggleState::Failed {
            reason: "failed: no acknowledgement in 5 s".into()
        }
    );
    let (kind, text) = app.notice().cloned().unwrap();
    assert_eq!(kind, NoticeKind::Error);
    assert!(text.contains("no acknowledgement in 5 s"));
    // It stays until dismissed.
    app.update(Event::Tick(sample::now() + Duration::seconds(60)));
    assert!(matches!(
        app.campus().boards[b].switches[s].toggle,
        ToggleState::Failed { .. }
    ));
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(app.campus().boards[b].switches[s].toggle, ToggleState::Idle);
    assert!(app.notice().is_none());
}

#[test]
fn toggle_refused_for_an_offline_board() {
    let mut app = sample::default_app(Role::User);
    type_text(&mut app, "sss/Lib-101");
    press(&mut app, KeyCode::Enter);
    press(&mut app, KeyCode::Enter);
    let (b, _) = app.selected_switch().unwrap();
    assert_eq!(app.campus().boards[b].name, "Lib-101-A");
    let fx = press(&mut app, KeyCode::Char(' '));
    assert!(relay(&fx).is_none());
    let (kind, text) = app.notice().cloned().unwrap();
    assert_eq!(kind, NoticeKind::Error);
    assert!(text.contains("offline"), "{text}");
}

#[test]
fn read_only_never_sends() {
    let mut app = SampleApp {
        settings: Settings {
            read_only: true,
            ..sample::settings()
        },
        ..SampleApp::new(Role::SuperAdmin)
    }
    .build();
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
            Effect::Publish { .. }
                | Effect::SaveTariff { .. }
                | Effect::Aggregate { .. }
                | Effect::Record(_)
        )),
        "{fx:?}"
    );
    assert!(app.notice().unwrap().1.contains("read-only"));
}

#[test]
fn all_off_asks_then_sends_one_command_per_load_on() {
    let mut app = sample::default_app(Role::User);
    open_first(&mut app);
    let room = match app.view() {
        View::Classroom(r) => r,
        _ => unreachable!(),
    };
    let on: usize = app.campus().rooms[room]
        .boards
        .iter()
        .map(|&b| {
            app.campus().boards[b]
                .switches
                .iter()
                .filter(|s| s.on)
                .count()
        })
        .sum();
    assert!(on > 0);
    let fx = press(&mut app, KeyCode::Char('o'));
    assert!(fx.is_empty());
    assert!(matches!(app.modal(), Some(Modal::ConfirmAllOff(_))));
    let fx = press(&mut app, KeyCode::Char('n'));
    assert!(
        fx.is_empty() && app.modal().is_none(),
        "any other key cancels"
    );
    press(&mut app, KeyCode::Char('o'));
    let fx = press(&mut app, KeyCode::Char('y'));
    let cmds: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Publish { command, .. } => Some(command),
            _ => None,
        })
        .collect();
    assert_eq!(cmds.len(), on);
    assert!(cmds.iter().all(|c| !c.state));
}

#[test]
fn users_toggle_but_only_admins_edit_tariffs_and_aggregate() {
    let mut app = sample::default_app(Role::User);
    let fx = type_text(&mut app, "e");
    assert!(fx.is_empty() && app.modal().is_none());
    assert!(app.notice().unwrap().1.contains("may not change tariffs"));
    type_text(&mut app, "a");
    assert!(app.modal().is_none());

    let mut app = sample::default_app(Role::Other("auditor".into()));
    open_first(&mut app);
    let fx = press(&mut app, KeyCode::Char(' '));
    assert!(relay(&fx).is_none());
    assert!(app.notice().unwrap().1.contains("may not switch relays"));
}

#[test]
fn tariff_input_is_validated_inline_and_saved_once_valid() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "e");
    let Some(Modal::TariffEdit(form)) = &app.modal() else {
        panic!("no tariff form")
    };
    assert_eq!(form.field(0).value(), "7.50");
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "150");
    let fx = press(&mut app, KeyCode::Enter);
    assert!(fx.is_empty());
    let Some(Modal::TariffEdit(form)) = &app.modal() else {
        panic!()
    };
    assert!(
        form.error().unwrap().contains("to ₹100"),
        "{:?}",
        form.error()
    );

    for _ in 0..3 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "abc");
    press(&mut app, KeyCode::Enter);
    let Some(Modal::TariffEdit(form)) = &app.modal() else {
        panic!()
    };
    assert!(form.error().unwrap().contains("to the paisa"));

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
            by,
        }] => {
            assert_eq!(*price, 8.25);
            assert_eq!(*from, None);
            assert_eq!(note, "MSEDCL revision");
            assert_eq!(by.role(), Some(&Role::Admin));
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
    assert!(app.modal().is_none());
    assert_eq!(
        app.campus()
            .global_rate(sample::now() + Duration::seconds(1)),
        8.25
    );
}

#[test]
fn a_failed_tariff_save_stays_in_the_form() {
    let mut app = sample::default_app(Role::Admin);
    type_text(&mut app, "e");
    press(&mut app, KeyCode::Enter);
    app.update(Event::TariffResult(Err("database unreachable".into())));
    let Some(Modal::TariffEdit(form)) = &app.modal() else {
        panic!()
    };
    assert!(!form.saving());
    assert_eq!(form.error(), Some("database unreachable"));
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
        app.aggregation(),
        Some(&AggregationState::Running {
            date: *date,
            done: 3,
            total: 10
        })
    );
    type_text(&mut app, "a");
    assert!(app.modal().is_none(), "one run at a time");
    app.update(Event::Aggregation(AggregationUpdate::Done {
        summary: "12 devices, 96.2 kWh".into(),
    }));
    assert_eq!(
        app.aggregation(),
        Some(&AggregationState::Done("12 devices, 96.2 kWh".into()))
    );

    // Esc while it runs stops it (and does not leave the view); what it kept is said.
    type_text(&mut app, "a");
    press(&mut app, KeyCode::Enter);
    let view = app.view();
    let fx = press(&mut app, KeyCode::Esc);
    assert_eq!(fx, vec![Effect::CancelAggregation]);
    assert_eq!(app.view(), view);
    app.update(Event::Aggregation(AggregationUpdate::Stopped(
        "2026-11-24: 4 daily aggregates written before it stopped".into(),
    )));
    assert!(matches!(
        app.aggregation(),
        Some(&AggregationState::Stopped(_))
    ));

    type_text(&mut app, "a");
    press(&mut app, KeyCode::Enter);
    app.update(Event::Aggregation(AggregationUpdate::Failed(
        "database unreachable".into(),
    )));
    assert_eq!(
        app.aggregation(),
        Some(&AggregationState::Failed("database unreachable".into()))
    );

    type_text(&mut app, "a");
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "someday");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert!(app.notice().cloned().unwrap().1.contains("not a date"));
}

#[test]
fn reconnect_banners_follow_the_links_and_keep_state() {
    let mut app = sample::default_app(Role::User);
    let boards = app.campus().boards.len();
    app.update(Event::Drawn);
    app.update(Event::Link(
        Link::Mqtt,
        LinkState::Down("connection refused".into()),
    ));
    assert!(app.dirty() && !app.live_ok());
    app.update(Event::Link(
        Link::Db,
        LinkState::Down("server selection timeout".into()),
    ));
    assert_eq!(app.campus().boards.len(), boards, "last known state kept");
    app.update(Event::Drawn);
    app.update(Event::Link(
        Link::Db,
        LinkState::Down("server selection timeout".into()),
    ));
    assert!(!app.dirty(), "an unchanged state does not redraw");
    app.update(Event::Link(Link::Mqtt, LinkState::Up("live".into())));
    app.update(Event::Link(Link::Db, LinkState::Up("connected".into())));
    assert!(app.live_ok());
}

#[test]
fn sign_in_sends_credentials_and_keeps_errors_in_the_form() {
    let mut app = SampleApp {
        role: None,
        ..SampleApp::new(Role::User)
    }
    .build();
    app.update(Event::Db(DbChange::UsersExist(true)));
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
    let Some(Modal::SignIn(f)) = &app.modal() else {
        panic!()
    };
    assert_eq!(f.password().value(), "", "the password is cleared");
    assert!(f.error().unwrap().contains("4 attempts left"));
    app.update(Event::SignIn(Ok(Actor::signed_in(
        "Tech",
        None,
        Role::Admin,
    ))));
    assert!(app.modal().is_none());
    assert_eq!(app.operator().as_ref().unwrap().role(), Some(&Role::Admin));
}

#[test]
fn live_messages_update_switches_and_count_strangers() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let mac = app.campus().boards[b].mac;
    let pin = app.campus().boards[b].switches[s].pin.unwrap();
    let was = app.campus().boards[b].switches[s].on;
    let secret = secret_of(&app, b);
    app.update(switch_event(mac, &secret, pin, !was, "manual"));
    assert_eq!(app.campus().boards[b].switches[s].on, !was);
    assert_eq!(
        app.campus().boards[b].switches[s].since,
        Some(sample::now())
    );
    // A wall switch reported without the secret, or with another, is not believed.
    app.update(switch_event(mac, "guess", pin, was, "manual"));
    assert_eq!(app.campus().boards[b].switches[s].on, !was);
    assert_eq!(app.rejected(), 1);
    let stranger = Mac::parse("00:11:22:33:44:55").unwrap();
    app.update(heartbeat(stranger));
    app.update(heartbeat(stranger));
    assert_eq!(app.campus().unregistered.len(), 1);
    app.update(Event::Live(Live::Rejected));
    assert_eq!(app.rejected(), 2);
}

#[test]
fn navigation_views_and_quit() {
    let mut app = sample::default_app(Role::User);
    type_text(&mut app, "w");
    assert_eq!(app.view(), View::Waste);
    press(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.view(), View::Classroom(_)),
        "waste opens the classroom"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view(), View::Waste);
    type_text(&mut app, "c");
    assert_eq!(app.view(), View::Classrooms);
    type_text(&mut app, "G");
    assert_eq!(app.rooms_sel(), 5);
    type_text(&mut app, "jjj");
    assert_eq!(app.rooms_sel(), 5);
    type_text(&mut app, "g");
    assert_eq!(app.rooms_sel(), 0);
    let fx = type_text(&mut app, "t");
    assert_eq!(fx, vec![Effect::ChangeTheme("light".into())]);
    let fx = type_text(&mut app, "q");
    assert_eq!(fx, vec![Effect::Quit]);
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
    assert_eq!(app.rooms_sel(), 2);
    app.update(Event::Mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 5,
        row: 6,
        modifiers: KeyModifiers::NONE,
    }));
    assert_eq!(app.rooms_sel(), 5);
}

#[test]
fn heartbeats_of_online_boards_do_not_redraw_but_changes_do() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    let mac = app.campus().boards[b].mac;
    app.update(Event::Drawn);
    app.update(heartbeat(mac));
    assert!(!app.dirty(), "nothing shown changed until the next tick");
    let pin = app.campus().boards[b].switches[s].pin.unwrap();
    let on = app.campus().boards[b].switches[s].on;
    let secret = secret_of(&app, b);
    app.update(snapshot(mac, &secret, &[(pin, on)]));
    assert!(
        !app.dirty(),
        "a snapshot that confirms what is shown changes nothing"
    );
    app.update(snapshot(mac, &secret, &[(pin, !on)]));
    assert!(app.dirty());
}

#[test]
fn boards_heard_before_the_database_snapshot_are_not_strangers() {
    let mut app = sample::default_app(Role::User);
    let known = app.campus().boards[0].mac;
    // A fresh app hears the board before its first snapshot arrives, as at start-up.
    let mut early = App::new(
        sample::settings(),
        autovolt::tui::theme::Theme::load("dark", false).unwrap(),
        autovolt::tui::theme::UNICODE,
        autovolt::tui::keymap::Keymap::default(),
        sample::now(),
    );
    early.update(heartbeat(known));
    assert_eq!(early.campus().unregistered.len(), 1);
    early.update(Event::Db(autovolt::tui::event::DbChange::Snapshot(
        Box::new(sample::snapshot(6, 2, 6)),
    )));
    assert!(early.campus().unregistered.is_empty());
    // A real stranger stays one after a reload.
    let stranger = Mac::parse("00:11:22:33:44:55").unwrap();
    app.update(heartbeat(stranger));
    app.update(Event::Db(autovolt::tui::event::DbChange::Snapshot(
        Box::new(sample::snapshot(6, 2, 6)),
    )));
    assert_eq!(app.campus().unregistered.len(), 1);
}

fn room_names(app: &App, rooms: &[usize]) -> Vec<String> {
    rooms
        .iter()
        .map(|&r| app.campus().rooms[r].name.clone())
        .collect()
}

/// Two hours on, with every board heard again: the classrooms with more power on have cost more
/// and moved up the ₹ order.
fn two_hours_later(app: &mut App) {
    app.update(Event::Tick(sample::now() + Duration::hours(2)));
    let macs: Vec<Mac> = app.campus().boards.iter().map(|b| b.mac).collect();
    for mac in macs {
        app.update(heartbeat(mac));
    }
}

/// The boards' ids of the relay commands among `fx`.
fn commanded_boards(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Publish { device_id, .. } => Some(device_id.clone()),
            _ => None,
        })
        .collect()
}

fn boards_of(app: &App, room: usize) -> Vec<String> {
    app.campus().rooms[room]
        .boards
        .iter()
        .map(|&b| app.campus().boards[b].id.clone())
        .collect()
}

#[test]
fn after_the_classrooms_resort_the_cursor_and_all_off_stay_on_the_chosen_room() {
    let mut app = sample::default_app(Role::User);
    press(&mut app, KeyCode::Char('j'));
    let chosen = app.visible_rooms()[1];
    two_hours_later(&mut app);
    let order = app.visible_rooms();
    assert_ne!(
        order[1],
        chosen,
        "the list re-sorted: {:?}",
        room_names(&app, &order)
    );
    assert_eq!(
        order[app.rooms_sel()],
        chosen,
        "the cursor follows {:?}: {:?}",
        app.campus().rooms[chosen].name,
        room_names(&app, &order)
    );
    press(&mut app, KeyCode::Char('o'));
    assert!(matches!(app.modal(), Some(Modal::ConfirmAllOff(c)) if c.room() == chosen));
    let sent = commanded_boards(&press(&mut app, KeyCode::Char('y')));
    assert!(!sent.is_empty());
    let own = boards_of(&app, chosen);
    assert!(
        sent.iter().all(|b| own.contains(b)),
        "only the chosen room's boards are switched off: {sent:?} vs {own:?}"
    );
}

#[test]
fn a_rebuilt_campus_keeps_the_open_room_its_switch_cursor_and_a_pending_all_off() {
    let mut app = sample::default_app(Role::User);
    let (b, s) = open_first(&mut app);
    type_text(&mut app, "jjj");
    let (board, switch) = app.selected_switch().unwrap();
    let chosen = (
        app.campus().boards[board].id.clone(),
        app.campus().boards[board].switches[switch].id.clone(),
    );
    assert_ne!((b, s), (board, switch));
    let View::Classroom(room) = app.view() else {
        unreachable!()
    };
    let name = app.campus().rooms[room].name.clone();
    press(&mut app, KeyCode::Char('o'));
    // After an outage the dashboard reads the campus again, and the database lists it in
    // another order: every classroom and board has another number.
    let mut snap = sample::snapshot(6, 2, 6);
    snap.classrooms.reverse();
    snap.devices.reverse();
    app.update(Event::Db(DbChange::Snapshot(Box::new(snap))));
    let View::Classroom(now_room) = app.view() else {
        panic!("the classroom stays open: {:?}", app.view())
    };
    assert_ne!(now_room, room, "the rooms were numbered otherwise");
    assert_eq!(app.campus().rooms[now_room].name, name);
    assert!(matches!(app.modal(), Some(Modal::ConfirmAllOff(c)) if c.room() == now_room));
    let sent = commanded_boards(&press(&mut app, KeyCode::Char('y')));
    let own = boards_of(&app, now_room);
    assert!(!sent.is_empty() && sent.iter().all(|b| own.contains(b)));
    let (board, switch) = app.selected_switch().unwrap();
    assert_eq!(
        (
            app.campus().boards[board].id.clone(),
            app.campus().boards[board].switches[switch].id.clone()
        ),
        chosen,
        "the switch cursor follows its switch"
    );
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.view(), View::Classrooms);
    assert_eq!(app.visible_rooms()[app.rooms_sel()], now_room);
}

#[test]
fn a_burst_of_board_messages_applied_as_one_batch_shows_what_they_would_one_by_one() {
    let mut one_by_one = sample::app(6, 2, 6, Role::User, autovolt::tui::theme::UNICODE);
    let mut batched = sample::app(6, 2, 6, Role::User, autovolt::tui::theme::UNICODE);
    let mut burst = vec![];
    for b in 0..one_by_one.campus().boards.len() {
        let mac = one_by_one.campus().boards[b].mac;
        let secret = secret_of(&one_by_one, b);
        for (k, pin) in [16, 17, 18].into_iter().enumerate() {
            burst.push(switch_event(mac, &secret, pin, k % 2 == 0, "manual"));
        }
        burst.push(heartbeat(mac));
        burst.push(snapshot(mac, &secret, &[(16, false), (19, true)]));
    }
    let live: Vec<Live> = burst
        .iter()
        .map(|e| match e {
            Event::Live(l) => l.clone(),
            _ => unreachable!(),
        })
        .collect();
    for e in burst {
        one_by_one.update(e);
    }
    batched.update(Event::LiveBatch(live));
    assert_eq!(batched.live_messages(), one_by_one.live_messages());
    for (a, b) in batched
        .campus()
        .boards
        .iter()
        .zip(&one_by_one.campus().boards)
    {
        let on =
            |x: &autovolt::tui::model::Board| x.switches.iter().map(|s| s.on).collect::<Vec<_>>();
        assert_eq!(on(a), on(b));
    }
    let (ta, tb) = (
        batched.campus().totals.campus(),
        one_by_one.campus().totals.campus(),
    );
    assert_eq!(ta.power_w, tb.power_w);
    assert!(ta.power_w > 0.0);
    assert_eq!(ta.today, tb.today);
}
