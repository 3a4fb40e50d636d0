//! Relay commands (`esp32/switches`, PROTOCOL.md) and their acknowledgement: a `switch_event` for
//! that relay and state, or an `esp32/state` showing it. There is no correlation id, and the board
//! sends nothing when the relay already was in the requested state.

use super::connection::{self, ConnectionError, Credentials};
use super::message::{self, Event};
use super::topics;
use crate::domain::activity::action;
use crate::domain::{ActivityLog, Device, DeviceStatus, Id, Instant, Switch, TriggeredBy};
use crate::store::{Store, StoreError};
use rumqttc::{AsyncClient, Packet, QoS};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// The command JSON, field for field as PROTOCOL.md shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RelayCommand<'a> {
    pub mac: String,
    pub secret: &'a str,
    pub gpio: i32,
    #[serde(rename = "relayGpio")]
    pub relay_gpio: i32,
    pub state: bool,
    pub source: &'static str,
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(rename = "userName")]
    pub user_name: String,
}

/// Who asked for a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub user_id: Option<Id>,
    pub name: String,
}

/// Why a command is sent, for the activity log: by a person (`toggle`), or by a schedule with
/// the schedule's details merged into the entry's context.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub by: TriggeredBy,
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl Trigger {
    pub fn person() -> Trigger {
        Trigger {
            by: TriggeredBy::User,
            detail: serde_json::Map::new(),
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

#[derive(Debug, thiserror::Error)]
pub enum ToggleError {
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
    #[error(transparent)]
    Store(#[from] StoreError),
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

/// The bytes of a command.
pub fn command_payload(device: &Device, pin: i32, state: bool, operator: &Operator) -> Vec<u8> {
    message::to_bytes(&RelayCommand {
        mac: device.mac_address.to_string(),
        secret: device.device_secret.expose(),
        gpio: pin,
        relay_gpio: pin,
        state,
        source: "backend",
        user_id: operator.user_id.map(|i| i.to_hex()).unwrap_or_default(),
        user_name: operator.name.clone(),
    })
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
    /// Connects and subscribes to the boards' reports; returns once subscribed.
    pub async fn connect(
        url: &str,
        client_id: &str,
        credentials: &Credentials,
    ) -> Result<Relay, ToggleError> {
        let mut o = connection::options(url, client_id, credentials)?;
        o.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(o, 64);
        let (events, _) = broadcast::channel(1024);
        let (ready_tx, mut ready) = watch::channel(None::<Result<(), String>>);
        let (gone_tx, gone) = watch::channel(false);
        let tx = events.clone();
        let sub = client.clone();
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
                        let _ = ready_tx.send(Some(Err(e.to_string())));
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        });
        let task = AbortOnDrop(task);
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(r) = ready.borrow_and_update().clone() {
                    if r.is_ok() {
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
                        connection::redact(url)
                    ),
                    _ => format!("{} did not answer in 10 s", connection::redact(url)),
                }))
            }
        }
    }

    /// Every parsed message from the boards, live.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Switches `wanted` of `device` to `state` for `operator`: refuses an offline device, publishes,
    /// waits up to `timeout` for the acknowledgement, and records the activity.
    #[allow(clippy::too_many_arguments)]
    pub async fn toggle(
        &self,
        store: &Store,
        device: &Device,
        wanted: &str,
        state: bool,
        operator: &Operator,
        timeout: Duration,
        now: Instant,
    ) -> Result<Confirmation, ToggleError> {
        self.toggle_as(
            store,
            device,
            wanted,
            state,
            operator,
            &Trigger::person(),
            timeout,
            now,
        )
        .await
    }

    /// [`Relay::toggle`] for what `trigger` says (a schedule's run, say).
    #[allow(clippy::too_many_arguments)]
    pub async fn toggle_as(
        &self,
        store: &Store,
        device: &Device,
        wanted: &str,
        state: bool,
        operator: &Operator,
        trigger: &Trigger,
        timeout: Duration,
        now: Instant,
    ) -> Result<Confirmation, ToggleError> {
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
        let mut answers = self.events.subscribe();
        self.client
            .publish(
                topics::SWITCHES,
                QoS::AtLeastOnce,
                false,
                command_payload(device, pin, state, operator),
            )
            .await
            .map_err(|e| ToggleError::Broker(e.to_string()))?;
        let confirmation = if sw.state == state {
            Confirmation::AlreadyInState
        } else {
            let mac = device.mac_address;
            let secret_ok = |s: Option<&crate::domain::Secret>| {
                s.is_some_and(|s| device.device_secret.matches(s.expose()))
            };
            let wait = async {
                loop {
                    match answers.recv().await {
                        Ok(Event::SwitchEvent {
                            mac: m,
                            secret,
                            gpio,
                            state: s,
                            ..
                        }) if m == mac
                            && gpio == pin
                            && s == state
                            && secret_ok(secret.as_ref()) =>
                        {
                            return Some(Confirmation::SwitchEvent)
                        }
                        Ok(Event::StateSnapshot {
                            mac: m,
                            secret,
                            switches,
                        }) if m == mac
                            && secret_ok(secret.as_ref())
                            && switches.iter().any(|r| r.gpio == pin && r.state == state) =>
                        {
                            return Some(Confirmation::Snapshot)
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
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
        let mut entry = ActivityLog::new(
            if state { action::ON } else { action::OFF },
            trigger.by.clone(),
            now,
        );
        entry.device_id = device.id;
        entry.switch_id = Some(sw.switch_id.clone());
        entry.switch_name = Some(sw.name.clone());
        entry.user_id = operator.user_id;
        entry.user_name = Some(operator.name.clone());
        let mut context = serde_json::json!({
            "command": true,
            "confirmedBy": match confirmation {
                Confirmation::SwitchEvent => "switch_event",
                Confirmation::Snapshot => "state",
                Confirmation::AlreadyInState => "already_in_state",
            },
        });
        if let Some(c) = context.as_object_mut() {
            c.extend(trigger.detail.clone());
        }
        entry.context = Some(context);
        store.log_activity(&entry).await?;
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

    #[test]
    fn command_is_shaped_like_the_protocol() {
        let text = r#"{"mac":"A4:CF:12:B3:C4:D5","secret":"s3","gpio":16,"relayGpio":16,"state":true,"source":"backend","userId":"","userName":"Technician"}"#;
        let cmd = RelayCommand {
            mac: "A4:CF:12:B3:C4:D5".into(),
            secret: "s3",
            gpio: 16,
            relay_gpio: 16,
            state: true,
            source: "backend",
            user_id: String::new(),
            user_name: "Technician".into(),
        };
        assert_eq!(message::to_bytes(&cmd), text.as_bytes());
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
