//! Relay commands against the simulated boards, with the collector keeping the books: success,
//! already in state, offline device, timeout, forged acknowledgements. The simulator's messages
//! all pass the collector.

mod live;
mod support;

use autovolt::clock::SystemClock;
use autovolt::domain::Actor;
use autovolt::domain::DeviceStatus;
use autovolt::mqtt::connection::BrokerAccess;
use autovolt::mqtt::relay::{Confirmation, Relay, ToggleError};
use autovolt::simulate::{self, SimulateOptions};
use live::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toggles_are_confirmed_refused_or_timed_out_as_the_board_answers() {
    let store = support::store("toggle").await;
    let (a, b) = campus(&store).await;
    let (_broker, url) = support::own_mosquitto();
    let collector = start(
        &store,
        &url,
        options("toggle-collector"),
        Arc::new(SystemClock),
    )
    .await;
    let boards: Vec<_> = simulate::from_store(&store)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.mac == a.mac_address)
        .collect();
    let mut o = SimulateOptions::new(boards, chrono_tz::Asia::Kolkata);
    o.rate = 1e-9;
    let counters = o.counters.clone();
    let stop_fleet = CancellationToken::new();
    let fleet = tokio::spawn(simulate::run(url.clone(), o, stop_fleet.clone()));
    let a_id = a.id.unwrap();
    eventually(20, "board A online", || async {
        store.device_by_id(a_id).await.unwrap().unwrap().status == DeviceStatus::Online
    })
    .await;

    let relay = Relay::connect(&url, "toggle-test", &BrokerAccess::default())
        .await
        .unwrap();
    let operator = Actor::at_database("Technician");
    let now = || autovolt::domain::dates::now_millis();
    let device = store.device_by_id(a_id).await.unwrap().unwrap();
    let five = Duration::from_secs(5);
    let c = relay
        .toggle(&store, &device, "light 1", true, &operator, five, now())
        .await
        .unwrap();
    assert_eq!(c, Confirmation::SwitchEvent);
    eventually(10, "the collector recording the light on", || async {
        store.device_by_id(a_id).await.unwrap().unwrap().switches[0].state
    })
    .await;

    // Already on: the board sends nothing; the state it last reported confirms it.
    let device = store.device_by_id(a_id).await.unwrap().unwrap();
    let c = relay
        .toggle(&store, &device, "16", true, &operator, five, now())
        .await
        .unwrap();
    assert_eq!(c, Confirmation::AlreadyInState);
    eventually(5, "the board ignoring the repeated command", || async {
        counters.commands_unchanged.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(counters.commands_applied.load(Ordering::Relaxed), 1);
    assert_eq!(counters.switch_events.load(Ordering::Relaxed), 1);

    // Board B is offline: refused without sending.
    let b_dev = store.device_by_mac(b.mac_address).await.unwrap().unwrap();
    let err = relay
        .toggle(&store, &b_dev, "sw1", true, &operator, five, now())
        .await
        .unwrap_err();
    assert!(matches!(err, ToggleError::Offline { .. }), "{err}");
    assert!(err.to_string().contains("offline"));

    // Board B marked online but silent: the command times out with a clear error, whatever
    // anyone without its secret publishes in its name meanwhile.
    store.mark_online(b.id.unwrap(), now()).await.unwrap();
    let b_dev = store.device_by_mac(b.mac_address).await.unwrap().unwrap();
    let pin = b_dev.switches[0].relay_pin().unwrap();
    let forger = Publisher::connect(&url, "forger").await;
    let forging = tokio::spawn(async move {
        for secret in [Some("guess"), None, Some("guess")] {
            let mut ack = serde_json::json!({"mac": MAC_B, "type": "switch_event", "gpio": pin,
                "state": true, "source": "backend", "timestamp": 5});
            let mut state = serde_json::json!({"mac": MAC_B,
                "switches": [{"gpio": pin, "state": true, "manual_override": false}]});
            if let Some(s) = secret {
                ack["secret"] = s.into();
                state["secret"] = s.into();
            }
            forger
                .publish("esp32/telemetry", ack.to_string().as_bytes())
                .await;
            forger
                .publish("esp32/state", state.to_string().as_bytes())
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        forger
    });
    let err = relay
        .toggle(
            &store,
            &b_dev,
            "sw1",
            true,
            &operator,
            Duration::from_millis(1500),
            now(),
        )
        .await
        .unwrap_err();
    drop(forging.await.unwrap());
    assert!(matches!(err, ToggleError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("did not confirm"), "{err}");
    let unknown = relay
        .toggle(&store, &device, "heater", true, &operator, five, now())
        .await
        .unwrap_err();
    assert!(matches!(unknown, ToggleError::UnknownSwitch { .. }));

    // The operator's actions are in the activity log, and no secret is anywhere in the errors.
    let acts = store
        .recent_activity(100, None, &Default::default())
        .await
        .unwrap()
        .rows;
    let by_operator: Vec<_> = acts
        .iter()
        .filter(|a| a.user_name.as_deref() == Some("Technician"))
        .collect();
    assert_eq!(by_operator.len(), 2, "{by_operator:?}");
    let confirmed_by: Vec<_> = by_operator
        .iter()
        .map(|a| a.context.as_ref().unwrap()["confirmedBy"].clone())
        .collect();
    assert!(
        confirmed_by.contains(&"switch_event".into()),
        "{confirmed_by:?}"
    );
    assert!(
        confirmed_by.contains(&"already_in_state".into()),
        "{confirmed_by:?}"
    );
    assert!(by_operator
        .iter()
        .all(|a| a.classroom.as_deref() == Some("CS-101")));
    // One entry per operator action: the collector records the board's report of the change it
    // made on command as the action's, not as a second "on".
    let light = &device.switches[0].switch_id;
    let light_on: Vec<_> = acts
        .iter()
        .filter(|a| a.switch_id.as_ref() == Some(light))
        .collect();
    assert_eq!(light_on.len(), 2, "{acts:?}");
    assert!(light_on
        .iter()
        .all(|a| a.action == "on" && a.user_name.as_deref() == Some("Technician")));
    assert!(!err.to_string().contains(SECRET_B));

    stop_fleet.cancel();
    let sent = fleet.await.unwrap().unwrap();
    let stats = collector.stop().await;
    // The simulator's messages all pass; the forged ones are refused by the collector too.
    let expected: std::collections::BTreeMap<String, i64> = [
        ("missing_secret".to_string(), 2),
        ("wrong_secret".to_string(), 4),
    ]
    .into();
    assert_eq!(stats.rejected, expected);
    assert!(sent.sent() >= 3, "{}", sent.summary(1));
}
