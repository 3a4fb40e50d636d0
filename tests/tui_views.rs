//! Every view rendered into ratatui's TestBackend at 120×40 and 80×24 and snapshotted; styled-cell
//! checks for the states whose meaning must be right (ON, OFF, offline, stale).

use autovolt::domain::Role;
use autovolt::tui::app::App;
use autovolt::tui::app::Settings;
use autovolt::tui::event::{DbChange, Event, Link, LinkState};
use autovolt::tui::sample::{self, SampleApp};
use autovolt::tui::theme::{Theme, ASCII};
use autovolt::tui::views;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

fn key(app: &mut App, c: KeyCode) {
    app.update(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)));
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn draw(app: &mut App, w: u16, h: u16) -> Buffer {
    app.update(Event::Resize(w, h));
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| views::render(f, app)).unwrap();
    term.backend().buffer().clone()
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders at both sizes and snapshots each.
fn snap(name: &str, setup: impl Fn(&mut App)) {
    snap_of(name, || sample::default_app(Role::Admin), setup)
}

/// [`snap`] of the app `build` makes.
fn snap_of(name: &str, build: impl Fn() -> App, setup: impl Fn(&mut App)) {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = build();
        app.update(Event::Resize(w, h));
        setup(&mut app);
        let buf = draw(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), text(&buf));
    }
}

#[test]
fn classrooms_home() {
    snap("classrooms", |_| {});
}

#[test]
fn classrooms_filtered_and_sorted_by_name() {
    snap("classrooms_filtered", |app| {
        keys(app, "s");
        keys(app, "s");
        keys(app, "s");
        keys(app, "/CS");
    });
}

#[test]
fn classroom_grid() {
    snap("classroom", |app| key(app, KeyCode::Enter));
}

#[test]
fn classroom_with_pending_and_failed_commands() {
    snap("classroom_toggles", |app| {
        key(app, KeyCode::Enter);
        keys(app, " j ");
        let later = sample::now() + chrono::Duration::seconds(6);
        app.update(Event::Tick(later));
        keys(app, "j ");
    });
}

#[test]
fn board_view() {
    snap("board", |app| {
        key(app, KeyCode::Enter);
        keys(app, "i");
    });
}

#[test]
fn activity_view() {
    snap("activity", |app| keys(app, "v"));
}

#[test]
fn health_view() {
    snap("health", |app| keys(app, "H"));
}

#[test]
fn tariff_view_and_edit_modal() {
    snap("tariff", |app| keys(app, "r"));
    snap("tariff_edit", |app| {
        keys(app, "re");
        key(app, KeyCode::Backspace);
        keys(app, "x");
    });
}

#[test]
fn waste_view() {
    snap("waste", |app| keys(app, "w"));
}

/// Three schedules: every board of the campus off at 18:00 daily, the first board's fans on on
/// weekdays at 08:00, and a disabled one.
fn with_schedules(app: &mut App) {
    use autovolt::domain::{Id, Schedule, ScheduleType, ScheduledSwitch};
    let switches = |boards: &[&autovolt::tui::model::Board]| -> Vec<ScheduledSwitch> {
        boards
            .iter()
            .flat_map(|b| {
                b.switches.iter().map(|s| ScheduledSwitch {
                    device_id: Id::parse_str(&b.id).unwrap(),
                    switch_id: s.id.clone(),
                })
            })
            .collect()
    };
    let all: Vec<&autovolt::tui::model::Board> = app.campus().boards.iter().collect();
    let schedule =
        |name: &str, kind, time: &str, days: Vec<i32>, action: &str, sw, enabled| Schedule {
            id: Some(Id::parse_str(format!("{:0>24}", name.len())).unwrap()),
            name: name.into(),
            schedule_type: kind,
            time: time.into(),
            days,
            date: None,
            action: action.into(),
            switches: sw,
            enabled,
            created_by: None,
            created_at: None,
            updated_at: None,
        };
    let list = vec![
        schedule(
            "Campus off 18:00",
            ScheduleType::Daily,
            "18:00",
            vec![],
            "off",
            switches(&all),
            true,
        ),
        schedule(
            "First board fans on",
            ScheduleType::Weekly,
            "08:00",
            vec![1, 2, 3, 4, 5],
            "on",
            switches(&all[..1]),
            true,
        ),
        schedule(
            "Old holiday",
            ScheduleType::Daily,
            "07:00",
            vec![],
            "off",
            switches(&all[..1]),
            false,
        ),
    ];
    app.update(Event::Db(DbChange::Schedules(list)));
}

#[test]
fn schedules_view() {
    snap("schedules", |app| {
        with_schedules(app);
        keys(app, "S");
    });
}

#[test]
fn a_classroom_shows_its_next_scheduled_action() {
    snap("classroom_next_scheduled", |app| {
        with_schedules(app);
        key(app, KeyCode::Enter);
    });
    let mut app = sample::default_app(Role::Admin);
    with_schedules(&mut app);
    key(&mut app, KeyCode::Enter);
    let screen = text(&draw(&mut app, 120, 40));
    assert!(
        screen.contains("next scheduled: off Tue 24 Nov 18:00 IST"),
        "{screen}"
    );
}

#[test]
fn help_overlay() {
    snap("help", |app| keys(app, "?"));
}

#[test]
fn sign_in_modal() {
    let signed_out = || {
        SampleApp {
            role: None,
            ..SampleApp::new(Role::Admin)
        }
        .build()
    };
    snap_of("sign_in", signed_out, |app| {
        app.update(Event::Db(DbChange::UsersExist(true)));
        keys(app, "tech@campus.edu");
        key(app, KeyCode::Enter);
        keys(app, "secret12");
    });
}

#[test]
fn aggregation_progress_and_confirm_all_off() {
    snap("aggregating", |app| {
        keys(app, "a");
        key(app, KeyCode::Enter);
        app.update(Event::Aggregation(
            autovolt::tui::event::AggregationUpdate::Progress { done: 7, total: 12 },
        ));
    });
    snap("all_off_confirm", |app| {
        key(app, KeyCode::Enter);
        keys(app, "o");
    });
}

#[test]
fn broker_gone_banner() {
    snap("broker_down", |app| {
        key(app, KeyCode::Enter);
        app.update(Event::Link(
            Link::Mqtt,
            LinkState::Down("connection refused".into()),
        ));
    });
}

#[test]
fn the_cursor_stays_on_its_classroom_when_the_list_resorts() {
    // The cursor on the second classroom; two hours on, with every board heard again, the rooms
    // with more power on have overtaken it: it is the third row now, and still the one marked.
    snap("classrooms_resorted", |app| {
        keys(app, "j");
        app.update(Event::Tick(sample::now() + chrono::Duration::hours(2)));
        let macs: Vec<_> = app.campus().boards.iter().map(|b| b.mac).collect();
        for mac in macs {
            let heartbeat = format!(r#"{{"mac":"{mac}","status":"heartbeat","uptime":1000}}"#);
            let live = autovolt::tui::live::parse(
                autovolt::tui::live::TELEMETRY_TOPIC,
                heartbeat.as_bytes(),
            )
            .expect("a heartbeat");
            app.update(Event::Live(live));
        }
    });
}

#[test]
fn a_database_without_a_schema_is_named_on_the_first_screen() {
    let name = "autovolt_tpyo";
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = App::new(
            sample::settings(),
            Theme::load("dark", false).unwrap(),
            autovolt::tui::theme::UNICODE,
            autovolt::tui::keymap::Keymap::default(),
            sample::now(),
        );
        // What the dashboard's database side says of such a database (`follow`).
        app.update(Event::Link(
            Link::Feed,
            LinkState::Down("waiting for the database".into()),
        ));
        app.update(Event::Link(
            Link::Db,
            LinkState::Unusable(
                autovolt::store::StoreError::NoSchema {
                    database: name.into(),
                }
                .to_string(),
            ),
        ));
        let buf = draw(&mut app, w, h);
        let screen = text(&buf);
        assert!(screen.contains("DB ✕ unusable"), "{screen}");
        assert!(screen.contains(name), "{screen}");
        assert!(
            screen.contains("migrate up`, or check the database name"),
            "{screen}"
        );
        let title = screen.lines().find(|l| l.contains("Classrooms (0)"));
        assert!(
            title.is_some_and(|t| !t.contains("loading")),
            "nothing is said to be loading: {screen}"
        );
        insta::assert_snapshot!(format!("no_schema_{w}x{h}"), screen);
    }
}

#[test]
fn too_small_terminal_says_so() {
    let mut app = sample::default_app(Role::User);
    let buf = draw(&mut app, 60, 20);
    assert!(text(&buf).contains("at least 80×24"), "{}", text(&buf));
}

#[test]
fn ascii_symbols_have_no_wide_or_fancy_characters() {
    let mut app = sample::app(6, 2, 6, Role::User, ASCII);
    key(&mut app, KeyCode::Enter);
    let t = text(&draw(&mut app, 120, 40));
    assert!(t.is_ascii(), "{t}");
    assert!(t.contains("# ON") && t.contains("- off"), "{t}");
}

/// The first cell of the first occurrence of `needle` in the buffer.
fn find(buf: &Buffer, needle: &str) -> (u16, u16) {
    let t = text(buf);
    for (y, line) in t.lines().enumerate() {
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count();
            return (x as u16, y as u16);
        }
    }
    panic!("{needle:?} not on screen:\n{t}");
}

#[test]
fn on_off_offline_and_stale_are_styled_by_the_theme() {
    let mut app = sample::default_app(Role::User);
    let theme = Theme::load("dark", false).unwrap();
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 120, 40);
    let (x, y) = find(&buf, "■ ON");
    assert_eq!(buf[(x, y)].fg, theme.on.fg.unwrap());
    assert!(buf[(x + 2, y)]
        .modifier
        .contains(ratatui::style::Modifier::BOLD));
    let (x, y) = find(&buf, "□ off");
    assert_eq!(buf[(x, y)].fg, theme.off.fg.unwrap());

    // The sample's seventh board (Lib-101-A) is offline.
    let mut app = sample::default_app(Role::User);
    keys(&mut app, "sss"); // sort by name
    keys(&mut app, "/Lib-101");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 120, 40);
    let (x, y) = find(&buf, "OFFLINE");
    assert_eq!(buf[(x, y)].fg, theme.offline.fg.unwrap());
    let below = y + 2;
    let row: String = (0..120)
        .map(|x| buf[(x, below)].symbol().to_string())
        .collect();
    assert!(row.contains("ON") || row.contains("off"), "{row}");
    let state_x = row
        .find("■")
        .or_else(|| row.find("□"))
        .map(|b| row[..b].chars().count())
        .unwrap() as u16;
    assert_eq!(
        buf[(state_x, below)].fg,
        theme.offline.fg.unwrap(),
        "an offline board's switches are greyed"
    );

    // Broker gone: online boards' values are stale.
    let mut app = sample::default_app(Role::User);
    key(&mut app, KeyCode::Enter);
    app.update(Event::Link(
        Link::Mqtt,
        LinkState::Down("connection refused".into()),
    ));
    let buf = draw(&mut app, 120, 40);
    let (x, y) = find(&buf, "■ ON");
    assert_eq!(buf[(x, y)].fg, theme.stale.fg.unwrap());
    let (x, y) = find(&buf, "stale · last seen");
    assert_eq!(buf[(x, y)].fg, theme.stale.fg.unwrap());
    assert!(text(&buf).contains("MQTT broker unreachable"));
}

#[test]
fn no_color_keeps_meaning_in_symbols_and_modifiers() {
    let mut app = sample::default_app(Role::User);
    app.update(Event::Theme(Box::new(Theme::load("dark", true).unwrap())));
    key(&mut app, KeyCode::Enter);
    let buf = draw(&mut app, 120, 40);
    let (x, y) = find(&buf, "■ ON");
    assert_eq!(buf[(x, y)].fg, ratatui::style::Color::Reset);
    assert!(buf[(x, y)]
        .modifier
        .contains(ratatui::style::Modifier::BOLD));
    let sel = find(&buf, "▶ Front lights");
    assert!(buf[(sel.0 + 3, sel.1)]
        .modifier
        .contains(ratatui::style::Modifier::REVERSED));
}

#[test]
fn the_board_view_lists_its_firmware_history_with_failures_marked() {
    let mut app = sample::default_app(Role::User);
    let theme = Theme::load("dark", false).unwrap();
    key(&mut app, KeyCode::Enter);
    keys(&mut app, "i");
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    assert!(screen.contains("Firmware history"), "{screen}");
    let (x, y) = find(&buf, "failed");
    assert_eq!(buf[(x, y)].fg, theme.error.fg.unwrap());
    let (x, y2) = find(&buf, "success");
    assert_eq!(buf[(x, y2)].fg, theme.ok.fg.unwrap());
    assert!(y < y2, "newest first");
    assert!(screen.contains("1.4.2 → 1.5.0-rc1"), "{screen}");
}

#[test]
fn the_health_view_shows_the_largest_collections_first() {
    let mut app = sample::default_app(Role::User);
    keys(&mut app, "H");
    let buf = draw(&mut app, 120, 40);
    let screen = text(&buf);
    let (_, top) = find(&buf, "telemetryevents");
    let (_, next) = find(&buf, "deviceconsumptionledgers");
    assert!(top < next, "{screen}");
    assert!(screen.contains("92.0 MiB"), "storage size shown: {screen}");
}

#[test]
fn collection_sizes_are_measured_only_while_the_health_view_is_open() {
    use autovolt::tui::effect::Effect;
    use autovolt::tui::event::CollectionSize;
    let mut app = SampleApp {
        settings: Settings {
            read_only: true,
            ..sample::settings()
        },
        sizes_measured: false,
        ..SampleApp::new(Role::User)
    }
    .build();
    let mut now = app.clock().now;
    let mut tick = |app: &mut App, secs: i64| {
        now += chrono::Duration::seconds(secs);
        app.update(Event::Tick(now))
    };
    assert!(tick(&mut app, 1).is_empty(), "not measured on other views");
    let fx = app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('H'),
        KeyModifiers::NONE,
    )));
    assert_eq!(
        fx,
        vec![Effect::LoadSizes],
        "measured when the view opens, even read-only"
    );
    let shown = text(&draw(&mut app, 120, 40));
    assert!(shown.contains("measuring every collection"), "{shown}");
    assert!(tick(&mut app, 1).is_empty(), "one measurement at a time");
    app.update(Event::Db(DbChange::Sizes {
        result: Err("server selection timed out".into()),
        took: std::time::Duration::from_secs(2),
    }));
    let shown = text(&draw(&mut app, 120, 40));
    assert!(
        shown.contains("not measured: server selection timed out"),
        "{shown}"
    );
    assert!(tick(&mut app, 60).is_empty(), "not again within 15 minutes");
    assert_eq!(
        tick(&mut app, 900),
        vec![Effect::LoadSizes],
        "again once old"
    );
    app.update(Event::Db(DbChange::Sizes {
        result: Ok(vec![CollectionSize {
            name: "deviceconsumptionledgers".into(),
            documents: 1_000_000,
            storage_bytes: Some(400 << 20),
            index_bytes: Some(90 << 20),
            sizes_unknown_because: None,
        }]),
        took: std::time::Duration::from_secs(60),
    }));
    let shown = text(&draw(&mut app, 120, 40));
    assert!(shown.contains("1,000,000"), "{shown}");
    assert!(shown.contains("measured 0s ago in 60.0 s"), "{shown}");
    // A measurement that took a minute waits twenty minutes, not fifteen.
    assert!(tick(&mut app, 1000).is_empty());
    assert_eq!(tick(&mut app, 200), vec![Effect::LoadSizes]);
    // Leaving the view stops the measuring.
    app.update(Event::Db(DbChange::Sizes {
        result: Err("x".into()),
        took: std::time::Duration::from_secs(1),
    }));
    key(&mut app, KeyCode::Esc);
    assert!(
        tick(&mut app, 10_000).is_empty(),
        "not measured on other views"
    );
}

/// Opens the trends and hands them the sample history.
fn with_trends(app: &mut App) {
    keys(app, "T");
    for u in sample::trends(app.campus().rooms.len()) {
        app.update(Event::Trends(u));
    }
}

#[test]
fn trends_view() {
    snap("trends", with_trends);
    snap("trends_classroom", |app| {
        with_trends(app);
        keys(app, "j");
        key(app, KeyCode::Tab);
    });
}

#[test]
fn trends_read_history_once_a_day_even_read_only_and_open_a_room() {
    let mut app = SampleApp {
        settings: Settings {
            read_only: true,
            ..sample::settings()
        },
        ..SampleApp::new(Role::User)
    }
    .build();
    let fx = app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('T'),
        KeyModifiers::NONE,
    )));
    assert!(
        matches!(
            fx.as_slice(),
            [autovolt::tui::effect::Effect::LoadTrends { .. }]
        ),
        "{fx:?}"
    );
    let buf = draw(&mut app, 120, 40);
    assert!(text(&buf).contains("reading the history"), "{}", text(&buf));
    for u in sample::trends(app.campus().rooms.len()) {
        app.update(Event::Trends(u));
    }
    key(&mut app, KeyCode::Esc);
    let fx = app.update(Event::Key(KeyEvent::new(
        KeyCode::Char('T'),
        KeyModifiers::NONE,
    )));
    assert!(fx.is_empty(), "today's history is not read again: {fx:?}");
    // The costliest room of the month is first; Enter opens it.
    let first = app.trends_rows()[0].clone();
    key(&mut app, KeyCode::Enter);
    match app.view() {
        autovolt::tui::components::navigation::View::Classroom(r) => {
            assert_eq!(app.campus().rooms[r].name, first)
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn trends_keep_their_marks_in_ascii_and_without_colour() {
    let mut app = sample::app(6, 2, 6, Role::User, ASCII);
    app.update(Event::Theme(Box::new(Theme::load("dark", true).unwrap())));
    with_trends(&mut app);
    for (w, h) in [(120, 40), (80, 24)] {
        let t = text(&draw(&mut app, w, h));
        assert!(t.is_ascii(), "{t}");
        assert!(t.contains("^^"), "the tariff change is marked: {t}");
        assert!(t.contains("**"), "today is marked: {t}");
        assert!(t.contains("...."), "closed hours are shaded: {t}");
        assert!(t.contains("Top rooms by Rs this month"), "{t}");
    }
}

#[test]
fn trends_failure_is_said_and_keeps_the_view() {
    let mut app = sample::default_app(Role::User);
    keys(&mut app, "T");
    app.update(Event::Trends(autovolt::tui::event::TrendsUpdate::Failed(
        "the database is unreachable".into(),
    )));
    let t = text(&draw(&mut app, 80, 24));
    assert!(t.contains("the database is unreachable"), "{t}");
}
