//! The dashboard's money is the books' money: a scripted day through a real collector, with a
//! tariff change while a load is on and a classroom tariff, leaves the read-only dashboard's
//! Today ₹ equal to what `aggregate` writes for the day; and that dashboard sent only reads.

mod live;
mod support;

use autovolt::clock::ManualClock;
use autovolt::domain::interval::{local_date, local_midnight};
use autovolt::domain::tariff::{TariffChange, TariffTarget};
use autovolt::domain::{Instant, TriggeredBy};
use autovolt::store::aggregation::AggregationRequest;
use autovolt::store::{AggregateQuery, Store};
use autovolt::tui::app::{App, Settings};
use autovolt::tui::event::Event;
use autovolt::tui::follow::{self, FollowOptions};
use autovolt::tui::keymap::Keymap;
use autovolt::tui::theme::{Theme, UNICODE};
use chrono::Duration;
use live::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;

const IST: chrono_tz::Tz = chrono_tz::Asia::Kolkata;

/// Commands that only read (what a read-only account may run).
const READS: &[&str] = &[
    "find",
    "getMore",
    "aggregate",
    "count",
    "listCollections",
    "listIndexes",
    "ping",
    "hello",
    "isMaster",
    "ismaster",
    "buildInfo",
    "buildinfo",
    "killCursors",
    "endSessions",
    "collStats",
    "dbStats",
    "saslStart",
    "saslContinue",
];

/// Applies everything the dashboard's database side sent, then a tick at `now`.
fn pump(app: &mut App, rx: &mut mpsc::Receiver<Event>, now: Instant) {
    while let Ok(e) = rx.try_recv() {
        app.update(e);
    }
    app.update(Event::Tick(now));
}

async fn set_price(store: &Store, price: f64, target: TariffTarget, from: Instant) {
    store
        .set_tariff(&TariffChange {
            price,
            target,
            from: Some(from),
            note: None,
            by: autovolt::domain::Actor::at_database("asha"),
        })
        .await
        .unwrap();
}

/// Gives a switch of a board a rated power (an administrator's edit), as another writer would.
async fn rate(store: &Store, mac: &str, index: usize, watts: f64) {
    let d = store
        .device_by_mac(autovolt::domain::Mac::parse(mac).unwrap())
        .await
        .unwrap()
        .unwrap();
    store
        .collection::<bson::Document>("devices")
        .update_one(
            bson::doc! {"_id": d.id},
            bson::doc! {"$set": {
                format!("switches.{index}.powerRating"): watts,
                "updatedAt": bson::DateTime::now(),
            }},
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_dashboards_today_equals_the_books_and_it_sends_only_reads() {
    // The day is the real one (the dashboard's reconciliations read the real clock); the script
    // runs from 01:00 to 06:00 of it on the collector's clock. Not across a real midnight.
    while chrono::Utc::now().with_timezone(&IST).time()
        > chrono::NaiveTime::from_hms_opt(23, 58, 0).unwrap()
    {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    let uri = support::fresh_database_uri("tui_books");
    let store = Store::connect(&uri, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    store.migrate_up(None, false).await.unwrap();
    campus(&store).await;
    let day = local_date(chrono::Utc::now(), IST);
    let at = |h: i64, m: i64| local_midnight(day, IST) + Duration::hours(h) + Duration::minutes(m);
    set_price(
        &store,
        8.0,
        TariffTarget::Global,
        at(0, 0) - Duration::days(1),
    )
    .await;
    rate(&store, MAC_A, 4, 2000.0).await;
    rate(&store, MAC_A, 5, 3000.0).await;
    rate(&store, MAC_B, 0, 1500.0).await;
    // A board another program wrote in a shape this project cannot read: skipped, counted, and
    // nothing else is lost.
    store
        .collection::<bson::Document>("devices")
        .insert_one(
            bson::doc! {"name": "Odd", "macAddress": "02:00:00:00:00:01",
            "switches": "not a list", "updatedAt": bson::DateTime::now()},
        )
        .await
        .unwrap();

    // The dashboard: read-only, its every command seen.
    let commands = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = commands.clone();
    let (tx, mut rx) = mpsc::channel(10_000);
    let cancel = CancellationToken::new();
    let dashboard = tokio::spawn(follow::follow_database(
        uri.clone(),
        IST,
        Arc::new(RwLock::new(None)),
        tx,
        cancel.clone(),
        FollowOptions {
            observer: Some(Arc::new(move |name: &str| {
                seen.lock().unwrap().push(name.to_string())
            })),
            ..FollowOptions::default()
        },
    ));
    let settings = Settings {
        read_only: true,
        ..autovolt::tui::sample::settings()
    };
    let mut app = App::new(
        settings,
        Theme::load("dark", false).unwrap(),
        UNICODE,
        Keymap::default(),
        at(1, 0),
    );

    let (_broker, url) = support::own_mosquitto();
    let boot = at(0, 30);
    let clock = ManualClock::new(at(1, 0));
    let mut c = start(&store, &url, options("tui-books"), Arc::new(clock.clone())).await;
    let p = Publisher::connect(&url, "tui-books-pub").await;
    let mut sent = 0;
    // One step of the script: the collector's clock at `t`, both boards heard, then `events`.
    let mut step = |t: Instant, events: Vec<(&'static str, i32, bool)>| {
        clock.set(t);
        let ms = millis_since(boot, t);
        let mut msgs = vec![heartbeat(MAC_A, ms), heartbeat(MAC_B, ms)];
        for (mac, pin, on) in events {
            let secret = if mac == MAC_A { SECRET_A } else { SECRET_B };
            msgs.push(switch_event(mac, secret, pin, on, "manual", ms));
        }
        sent += msgs.len();
        (msgs, sent)
    };
    async fn send(p: &Publisher, c: &mut Running, (msgs, total): (Vec<Vec<u8>>, usize)) {
        for m in msgs {
            p.publish("esp32/telemetry", &m).await;
        }
        c.wait_committed(total).await;
    }

    send(&p, &mut c, step(at(1, 0), vec![(MAC_A, 21, true)])).await;
    send(&p, &mut c, step(at(2, 0), vec![(MAC_B, 16, true)])).await;
    // While both loads are on, the global price goes up at 02:30.
    clock.set(at(2, 30));
    set_price(&store, 9.0, TariffTarget::Global, at(2, 30)).await;
    send(&p, &mut c, step(at(3, 0), vec![(MAC_A, 21, false)])).await;
    // A classroom tariff for CS-101 from 04:00, saved at 03:30.
    set_price(
        &store,
        12.0,
        TariffTarget::Classroom("CS-101".into()),
        at(4, 0),
    )
    .await;
    // Mid-way, at 04:30, with board B's light still on: the closed 2 kW hour and a half at ₹8
    // and half hour at ₹9, and the open 1.5 kW from 02:00 at ₹8, ₹9, then ₹12.
    let mid = at(4, 30);
    let want_mid = 2.0 * 1.5 * 8.0 + 2.0 * 0.5 * 9.0 + 1.5 * (0.5 * 8.0 + 1.5 * 9.0 + 0.5 * 12.0);
    eventually(30, "the dashboard's Today ₹ at 04:30", || {
        pump(&mut app, &mut rx, mid);
        let today = app.campus().totals.campus().today.cost;
        std::future::ready(app.campus().totals.is_today_loaded() && (today - want_mid).abs() < 0.01)
    })
    .await;
    assert_eq!(
        app.campus().boards.len(),
        2,
        "the readable boards are shown"
    );
    assert!(
        app.db_health()
            .unreadable_reason
            .as_deref()
            .is_some_and(|r| r.contains("device")),
        "{:?}",
        app.db_health()
    );

    send(&p, &mut c, step(at(5, 0), vec![(MAC_B, 16, false)])).await;
    send(&p, &mut c, step(at(5, 30), vec![(MAC_A, 22, true)])).await;
    send(&p, &mut c, step(at(6, 0), vec![(MAC_A, 22, false)])).await;
    c.stop().await;

    store
        .aggregate(
            &AggregationRequest {
                from: day,
                to: day,
                tz: IST,
                triggered_by: TriggeredBy::User,
                by: None,
                break_locks: false,
            },
            None,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    let books: f64 = store
        .daily_aggregates(&AggregateQuery {
            from: Some(day.format("%Y-%m-%d").to_string()),
            to: Some(day.format("%Y-%m-%d").to_string()),
            ..AggregateQuery::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|d| d.cost_at_calc_time)
        .sum();
    let want =
        2.0 * 1.5 * 8.0 + 2.0 * 0.5 * 9.0 + 1.5 * (0.5 * 8.0 + 1.5 * 9.0 + 12.0) + 1.5 * 12.0;
    assert!(
        (books - want).abs() < 0.01,
        "the books say ₹{books}, the script ₹{want}"
    );
    let end = at(6, 30);
    let mut shown = 0.0;
    eventually(30, "the dashboard's Today ₹ equal to the books", || {
        pump(&mut app, &mut rx, end);
        shown = app.campus().totals.campus().today.cost;
        std::future::ready((shown - books).abs() < 0.01)
    })
    .await;
    cancel.cancel();
    let _ = dashboard.await;

    // "find devices": the command's name, then the collection it names.
    let sent: BTreeSet<String> = commands
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert!(sent.contains("find"), "{sent:?}");
    let writes: Vec<&String> = sent
        .iter()
        .filter(|c| !READS.contains(&c.as_str()))
        .collect();
    assert!(writes.is_empty(), "a read-only dashboard sent {writes:?}");
}
