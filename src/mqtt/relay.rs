//! Relay commands (`esp32/switches`, PROTOCOL.md) and their acknowledgement: a `switch_event` for
//! that relay and state, or an `esp32/state` showing it. There is no correlation id, and the board
//! sends nothing when the relay already was in the requested state.

use super::connection::{self, BrokerAccess, ConnectionError};
use super::message::{self, Event, SwitchSource};
use super::topics;
use crate::domain::activity::action;
use crate::domain::actor::Forbidden;
use crate::domain::uri::redacted_uri;
use crate::domain::{
    ActivityLog, Actor, Authority, Device, DeviceStatus, Id, Instant, Mac, Permission, Secret,
    Switch, TriggeredBy,
};
use rumqttc::{AsyncClient, Packet, QoS};
use serde::Serialize;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The command JSON, field for field as PROTOCOL.md shows it.
#[derive(Serialize)]
struct Wire<'a> {
    mac: String,
    secret: &'a str,
    gpio: i32,
    #[serde(rename = "relayGpio")]
    relay_gpio: i32,
    state: bool,
    source: &'static str,
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "userName")]
    user_name: String,
}

/// A relay command for one board: the only builder of `esp32/switches` payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub mac: Mac,
    pub secret: Secret,
    pub pin: i32,
    pub state: bool,
    /// Who asked: the firmware echoes nothing of it, but other listeners see it.
    pub user_id: Option<Id>,
    pub user_name: String,
}

impl Command {
    pub fn new(device_mac: Mac, secret: Secret, pin: i32, state: bool, by: &Actor) -> Command {
        Command {
            mac: device_mac,
            secret,
            pin,
            state,
            user_id: by.user_id,
            user_name: by.name.clone(),
        }
    }

    /// The bytes to publish: `gpio` and `relayGpio` both the relay pin.
    pub fn payload(&self) -> Vec<u8> {
        message::to_bytes(&Wire {
            mac: self.mac.to_string(),
            secret: self.secret.expose(),
            gpio: self.pin,
            relay_gpio: self.pin,
            state: self.state,
            source: "backend",
            user_id: self.user_id.map(|i| i.to_hex()).unwrap_or_default(),
            user_name: self.user_name.clone(),
        })
    }

    /// What confirms this command.
    pub fn pending(&self) -> Pending {
        Pending {
            mac: self.mac,
            pin: self.pin,
            state: self.state,
        }
    }
}

/// How a command was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The board's `switch_event` for that relay and state.
    SwitchEvent,
    /// An `esp32/state` showing the requested state.
    Snapshot,
    /// The relay already was in that state by the board's last snapshot (the collector's record),
    /// so no event comes; the command was sent anyway and changes nothing.
    AlreadyInState,
}

impl Confirmation {
    /// As the activity log records it (`context.confirmedBy`).
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::SwitchEvent => "switch_event",
            Confirmation::Snapshot => "state",
            Confirmation::AlreadyInState => "already_in_state",
        }
    }
}

/// A command waiting for its board. There is no correlation id in the protocol: the board's own
/// report of that relay in that state is the acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub mac: Mac,
    pub pin: i32,
    pub state: bool,
}

impl Pending {
    /// The one acknowledgement rule: whether `message` confirms this command, given the board's
    /// secret. A message without it, or with another, confirms nothing (anyone may publish on the
    /// device topics); a heartbeat carries no relay state; a wall switch is not our command.
    pub fn acknowledged_by(&self, message: &Event, board_secret: &Secret) -> Option<Confirmation> {
        if message.mac() != Some(self.mac) || message.trusted_by(board_secret).is_err() {
            return None;
        }
        match message {
            Event::SwitchEvent {
                gpio,
                state,
                source: SwitchSource::Backend,
                ..
            } if *gpio == self.pin && *state == self.state => Some(Confirmation::SwitchEvent),
            Event::StateSnapshot { switches, .. }
                if switches
                    .iter()
                    .any(|r| r.gpio == self.pin && r.state == self.state) =>
            {
                Some(Confirmation::Snapshot)
            }
            _ => None,
        }
    }
}

/// What an operator's switch action touched, for its activity entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub device_id: Option<Id>,
    pub switch_id: String,
    pub switch_name: String,
    pub classroom: Option<String>,
}

/// The one activity entry of a confirmed switch action: who asked, on what authority, and what
/// confirmed it. The collector records no second entry for the board's report of it.
pub fn action_entry(
    target: &Target,
    state: bool,
    by: &Actor,
    confirmation: Confirmation,
    now: Instant,
) -> ActivityLog {
    let triggered_by = match by.authority {
        Authority::Automation => TriggeredBy::Schedule,
        Authority::Role(_) | Authority::Database => TriggeredBy::User,
    };
    let mut entry = ActivityLog::new(
        if state { action::ON } else { action::OFF },
        triggered_by,
        now,
    );
    entry.device_id = target.device_id;
    entry.switch_id = Some(target.switch_id.clone());
    entry.switch_name = Some(target.switch_name.clone());
    entry.classroom = target.classroom.clone();
    entry.user_id = by.user_id;
    entry.user_name = Some(by.name.clone());
    entry.context = Some(serde_json::json!({
        "command": true,
        "confirmedBy": confirmation.as_str(),
    }));
    entry
}

/// Why a relay command failed. `E` is the error of the [`SwitchLog`] a toggle writes to; connecting
/// writes nothing, so its errors have none.
#[derive(Debug, thiserror::Error)]
pub enum ToggleError<E = std::convert::Infallible> {
    #[error("{device} is offline (last heard {last_seen}); the command was not sent. Check the board's power and Wi-Fi")]
    Offline { device: String, last_seen: String },
    #[error("{device} has no switch {wanted:?} (by id, name or relay pin); it has: {known}")]
    UnknownSwitch {
        device: String,
        wanted: String,
        known: String,
    },
    #[error("{wanted:?} names several switches of {device}: {candidates}; give its id or pin")]
    AmbiguousSwitch {
        device: String,
        wanted: String,
        candidates: String,
    },
    #[error(
        "switch {switch} of {device} has no relay pin in the device document; set its relayGpio"
    )]
    NoPin { device: String, switch: String },
    #[error("{device} did not confirm switching {switch} {state} within {} s; the board may be busy, offline or have another secret", .timeout.as_secs_f64())]
    Timeout {
        device: String,
        switch: String,
        state: &'static str,
        timeout: Duration,
    },
    #[error("the broker connection failed: {0}")]
    Broker(String),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// The person may not switch relays; nothing was sent.
    #[error(transparent)]
    Forbidden(#[from] Forbidden),
    /// The switch could not be written down (see [`SwitchLog`]).
    #[error(transparent)]
    Log(E),
}

/// Where a confirmed switch is written down: the name of the classroom a board is in, and the
/// activity log. The relay knows no database; the store is one such log (wired where both are
/// known, in `cli::switch_log`).
pub trait SwitchLog: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The name of the classroom `id`, if it still exists.
    fn classroom_name(
        &self,
        id: Id,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Records the one activity entry of a switch.
    fn log_switch(
        &self,
        entry: &ActivityLog,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// The switch a person means: its id, else its name (any case) when one switch alone has it, else
/// its relay pin. `Err` holds the switches that share the name (none when nothing matches).
pub fn find_switch<'a>(
    device: &'a Device,
    wanted: &str,
) -> Result<(usize, &'a Switch), Vec<&'a Switch>> {
    if let Some(found) = device.switch_by_id(wanted) {
        return Ok(found);
    }
    let named: Vec<(usize, &Switch)> = device
        .switches
        .iter()
        .enumerate()
        .filter(|(_, s)| s.name.eq_ignore_ascii_case(wanted.trim()))
        .collect();
    match named.as_slice() {
        [one] => Ok(*one),
        [] => wanted
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(|p| device.switch_by_pin(p))
            .ok_or_else(Vec::new),
        many => Err(many.iter().map(|(_, s)| *s).collect()),
    }
}

/// A broker connection that sends relay commands and watches the boards' answers.
pub struct Relay {
    client: AsyncClient,
    events: broadcast::Sender<Event>,
    /// Set once the disconnect, and so every command queued before it, is written to the broker.
    gone: watch::Receiver<bool>,
    _task: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Relay {
    /// Connects and subscribes to the boards' reports; returns once subscribed, trying again
    /// for up to 10 s while the broker refuses or cannot be reached (it may be restarting).
    pub async fn connect(
        url: &str,
        client_id: &str,
        access: &BrokerAccess,
    ) -> Result<Relay, ToggleError> {
        Self::connect_with(url, client_id, access, true).await
    }

    /// [`Relay::connect`] without trying again: a broker that refuses the connection (a closed
    /// port, a wrong password) or cannot be reached is the answer at once, for a person waiting
    /// at the command line.
    pub async fn connect_once(
        url: &str,
        client_id: &str,
        access: &BrokerAccess,
    ) -> Result<Relay, ToggleError> {
        Self::connect_with(url, client_id, access, false).await
    }

    async fn connect_with(
        url: &str,
        client_id: &str,
        access: &BrokerAccess,
        retry: bool,
    ) -> Result<Relay, ToggleError> {
        let mut o = connection::options(url, client_id, access)?;
        o.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        let (events, _) = broadcast::channel(1024);
        let (ready_tx, mut ready) = watch::channel(None::<Result<(), String>>);
        let (gone_tx, gone) = watch::channel(false);
        let tx = events.clone();
        let sub = client.clone();
        let (broker, access) = (url.to_string(), access.clone());
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                        let filters = [topics::STATE, topics::TELEMETRY]
                            .map(|t| rumqttc::SubscribeFilter::new(t.into(), QoS::AtLeastOnce));
                        let _ = sub.try_subscribe_many(filters);
                    }
                    Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(Some(Ok(())));
                    }
                    Ok(rumqttc::Event::Incoming(Packet::Publish(p))) => {
                        if let Ok(parsed) = message::parse(&p.topic, &p.payload) {
                            let _ = tx.send(parsed.event);
                        }
                    }
                    Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        let _ = gone_tx.send(true);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = ready_tx.send(Some(Err(connection::explain(&e, &broker, &access))));
                        if !retry {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let task = AbortOnDrop(task);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(r) = ready.borrow_and_update().clone() {
                    if r.is_ok() || !retry {
                        return r;
                    }
                }
                if ready.changed().await.is_err() {
                    return Err("the connection task ended".to_string());
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ok(Relay {
                client,
                events,
                gone,
                _task: task,
            }),
            Ok(Err(e)) => Err(ToggleError::Broker(e)),
            Err(_) => {
                let last = ready.borrow().clone();
                Err(ToggleError::Broker(match last {
                    Some(Err(e)) => format!(
                        "{} did not accept the connection in 10 s: {e}",
                        redacted_uri(url)
                    ),
                    _ => format!("{} did not answer in 10 s", redacted_uri(url)),
                }))
            }
        }
    }

    /// Every parsed message from the boards, live.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Switches `wanted` of `device` to `state` for `by`: checks the permission, refuses an offline
    /// device, publishes, waits up to `timeout` for the acknowledgement, and records the one
    /// activity entry of the action.
    #[allow(clippy::too_many_arguments)]
    pub async fn toggle<L: SwitchLog>(
        &self,
        log: &L,
        device: &Device,
        wanted: &str,
        state: bool,
        by: &Actor,
        timeout: Duration,
        now: Instant,
    ) -> Result<Confirmation, ToggleError<L::Error>> {
        self.toggle_with(
            log,
            device,
            wanted,
            state,
            by,
            &serde_json::Map::new(),
            timeout,
            now,
        )
        .await
    }

    /// [`Relay::toggle`] with `detail` added to the activity entry's context (a schedule's id and
    /// the minute it was due, say).
    #[allow(clippy::too_many_arguments)]
    pub async fn toggle_with<L: SwitchLog>(
        &self,
        log: &L,
        device: &Device,
        wanted: &str,
        state: bool,
        by: &Actor,
        detail: &serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
        now: Instant,
    ) -> Result<Confirmation, ToggleError<L::Error>> {
        by.may(Permission::Toggle)?;
        if device.status != DeviceStatus::Online {
            return Err(ToggleError::Offline {
                device: device.name.clone(),
                last_seen: device
                    .last_seen
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into()),
            });
        }
        let describe = |list: &mut dyn Iterator<Item = &Switch>| {
            list.map(|s| {
                format!(
                    "{} (id {}, pin {})",
                    s.name,
                    s.switch_id,
                    s.relay_pin().map_or("?".into(), |p| p.to_string())
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
        };
        let sw = match find_switch(device, wanted) {
            Ok((_, sw)) => sw,
            Err(same_name) if same_name.is_empty() => {
                return Err(ToggleError::UnknownSwitch {
                    device: device.name.clone(),
                    wanted: wanted.to_string(),
                    known: describe(&mut device.switches.iter()),
                })
            }
            Err(same_name) => {
                return Err(ToggleError::AmbiguousSwitch {
                    device: device.name.clone(),
                    wanted: wanted.to_string(),
                    candidates: describe(&mut same_name.into_iter()),
                })
            }
        };
        let Some(pin) = sw.relay_pin() else {
            return Err(ToggleError::NoPin {
                device: device.name.clone(),
                switch: sw.name.clone(),
            });
        };
        let command = Command::new(
            device.mac_address,
            device.device_secret.clone(),
            pin,
            state,
            by,
        );
        let mut answers = self.events.subscribe();
        self.client
            .publish(topics::SWITCHES, QoS::AtLeastOnce, false, command.payload())
            .await
            .map_err(|e| ToggleError::Broker(e.to_string()))?;
        let confirmation = if sw.state == state {
            Confirmation::AlreadyInState
        } else {
            let pending = command.pending();
            let wait = async {
                loop {
                    match answers.recv().await {
                        Ok(message) => {
                            if let Some(c) =
                                pending.acknowledged_by(&message, &device.device_secret)
                            {
                                return Some(c);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            };
            match tokio::time::timeout(timeout, wait).await {
                Ok(Some(c)) => c,
                _ => {
                    return Err(ToggleError::Timeout {
                        device: device.name.clone(),
                        switch: sw.name.clone(),
                        state: if state { "on" } else { "off" },
                        timeout,
                    })
                }
            }
        };
        let classroom = match device.classroom {
            Some(id) => log.classroom_name(id).await.map_err(ToggleError::Log)?,
            None => None,
        };
        let target = Target {
            device_id: device.id,
            switch_id: sw.switch_id.clone(),
            switch_name: sw.name.clone(),
            classroom,
        };
        let mut entry = action_entry(&target, state, by, confirmation, now);
        if let Some(serde_json::Value::Object(context)) = entry.context.as_mut() {
            context.extend(detail.clone());
        }
        log.log_switch(&entry).await.map_err(ToggleError::Log)?;
        Ok(confirmation)
    }

    /// Disconnects once every command sent is written to the broker (a command for a relay
    /// already in its state is confirmed without waiting, and would otherwise be lost when the
    /// process exits right after).
    pub async fn disconnect(&self) {
        if self.client.disconnect().await.is_ok() {
            let mut gone = self.gone.clone();
            let _ = tokio::time::timeout(Duration::from_secs(5), gone.wait_for(|g| *g)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "5f1c0a9e8d7b6a5948372615f4e3d2c1b0a99887";

    fn mac() -> Mac {
        "A4:CF:12:B3:C4:D5".parse().unwrap()
    }

    fn board(topic: &str, payload: serde_json::Value) -> Event {
        message::parse(topic, payload.to_string().as_bytes())
            .unwrap()
            .event
    }

    #[test]
    fn command_is_shaped_like_the_protocol() {
        let text = r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"s3","gpio":16,"relayGpio":16,"state":true,"source":"backend","userId":"","userName":"Technician"}"#;
        let cmd = Command::new(
            mac(),
            Secret::new("s3"),
            16,
            true,
            &Actor::at_database("Technician"),
        );
        assert_eq!(cmd.payload(), text.as_bytes());
        let parsed = message::parse(topics::SWITCHES, text.as_bytes()).unwrap();
        assert!(matches!(
            parsed.event,
            Event::Command {
                relay: message::RelaySelector::Pin(16),
                state: true,
                ..
            }
        ));
    }

    #[test]
    fn only_the_boards_own_report_of_that_relay_and_state_confirms() {
        let secret = Secret::new(SECRET);
        let pending = Pending {
            mac: mac(),
            pin: 16,
            state: true,
        };
        let event = |secret: Option<&str>, gpio: i32, state: bool, source: &str| {
            let mut p = serde_json::json!({"mac": "A4:CF:12:B3:C4:D5", "type": "switch_event",
                "gpio": gpio, "state": state, "source": source, "timestamp": 41877});
            if let Some(s) = secret {
                p["secret"] = s.into();
            }
            board(topics::TELEMETRY, p)
        };
        let ack = |e: &Event| pending.acknowledged_by(e, &secret);
        assert_eq!(
            ack(&event(Some(SECRET), 16, true, "backend")),
            Some(Confirmation::SwitchEvent)
        );
        // Anyone can publish: without the board's secret nothing is confirmed.
        assert_eq!(ack(&event(None, 16, true, "backend")), None);
        assert_eq!(ack(&event(Some("guess"), 16, true, "backend")), None);
        // Another relay, the other state, a wall switch or a motion rule: not our command.
        assert_eq!(ack(&event(Some(SECRET), 17, true, "backend")), None);
        assert_eq!(ack(&event(Some(SECRET), 16, false, "backend")), None);
        assert_eq!(ack(&event(Some(SECRET), 16, true, "manual")), None);
        assert_eq!(ack(&event(Some(SECRET), 16, true, "motion")), None);
        let snapshot = |secret: &str, state: bool| {
            board(
                topics::STATE,
                serde_json::json!({"mac": "A4:CF:12:B3:C4:D5", "secret": secret,
                    "switches": [{"gpio": 16, "state": state, "manual_override": false}]}),
            )
        };
        assert_eq!(ack(&snapshot(SECRET, true)), Some(Confirmation::Snapshot));
        assert_eq!(ack(&snapshot(SECRET, false)), None);
        assert_eq!(ack(&snapshot("guess", true)), None);
        // A heartbeat carries no secret and no relay state; another board is another board.
        let heartbeat = board(
            topics::TELEMETRY,
            serde_json::json!({"mac": "A4:CF:12:B3:C4:D5", "status": "heartbeat", "uptime": 1}),
        );
        assert_eq!(ack(&heartbeat), None);
        let other = board(
            topics::TELEMETRY,
            serde_json::json!({"mac": "24:6F:28:AA:10:0B", "secret": SECRET, "type": "switch_event",
                "gpio": 16, "state": true, "source": "backend", "timestamp": 1}),
        );
        assert_eq!(ack(&other), None);
    }

    #[test]
    fn the_action_entry_says_who_asked_and_what_confirmed_it() {
        let target = Target {
            device_id: None,
            switch_id: "sw-1".into(),
            switch_name: "Light".into(),
            classroom: Some("Room 101".into()),
        };
        let by = Actor::signed_in("Asha", None, crate::domain::Role::User);
        let now = chrono::Utc::now();
        let e = action_entry(&target, true, &by, Confirmation::Snapshot, now);
        assert_eq!(e.action, action::ON);
        assert_eq!(e.triggered_by, TriggeredBy::User);
        assert_eq!(e.user_name.as_deref(), Some("Asha"));
        assert_eq!(e.classroom.as_deref(), Some("Room 101"));
        assert_eq!(e.context.unwrap()["confirmedBy"], "state");
        let schedule = Actor {
            name: "Lights out".into(),
            user_id: None,
            authority: Authority::Automation,
        };
        let e = action_entry(&target, false, &schedule, Confirmation::SwitchEvent, now);
        assert_eq!(
            (e.action.as_str(), e.triggered_by),
            (action::OFF, TriggeredBy::Schedule)
        );
    }

    #[test]
    fn a_switch_is_found_by_id_name_or_pin_and_a_shared_name_is_not_guessed() {
        let device: Device = serde_json::from_value(serde_json::json!({
            "name": "Board 1",
            "macAddress": "A4:CF:12:B3:C4:D5",
            "switches": [
                {"switchId": "sw-1", "name": "Light", "type": "light", "relayGpio": 4, "state": false},
                {"switchId": "sw-2", "name": "AC", "type": "ac", "relayGpio": 16, "state": false},
                {"switchId": "sw-3", "name": "ac", "type": "ac", "relayGpio": 18, "state": false},
            ],
        }))
        .unwrap();
        assert_eq!(find_switch(&device, "sw-3").unwrap().0, 2);
        assert_eq!(find_switch(&device, "light").unwrap().0, 0);
        assert_eq!(find_switch(&device, "16").unwrap().0, 1);
        assert_eq!(find_switch(&device, "AC").unwrap_err().len(), 2);
        assert!(find_switch(&device, "fan").unwrap_err().is_empty());
    }
}
