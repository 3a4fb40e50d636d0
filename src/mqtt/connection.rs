//! Connecting to the broker: `mqtt://host:port` or `mqtts://host:port` (TLS with the system's root
//! certificates), credentials from `AUTOVOLT_MQTT_USERNAME` / `AUTOVOLT_MQTT_PASSWORD`.

use rumqttc::{MqttOptions, Transport};
use std::time::Duration;

/// The largest packet MQTT can frame (a remaining length of 268,435,455 bytes). The client reads
/// whatever the broker sends, so that the parser refuses an oversized payload (> 64 KiB) and the
/// message is acknowledged and dropped: MQTT 3.1.1 has no way to tell the broker what the client
/// will take, and a packet over the client's own limit drops the connection, to be delivered again
/// on every reconnect, for ever. The broker's `message_size_limit` (README) keeps such packets
/// from being published at all.
pub const MAX_INCOMING_PACKET: usize = 268_435_455;

/// Larger than anything this project sends.
pub const MAX_OUTGOING_PACKET: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionError {
    #[error("the MQTT URL {0:?} is not valid: {1}; use mqtt://host:port or mqtts://host:port")]
    BadUrl(String, String),
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerAddress {
    pub fn parse(url: &str) -> Result<BrokerAddress, ConnectionError> {
        let bad = |why: &str| ConnectionError::BadUrl(redact(url), why.to_string());
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let tls = match parsed.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("the scheme must be mqtt or mqtts")),
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
        Ok(BrokerAddress { host, port, tls })
    }
}

/// The URL without any user or password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "<unparseable URL>".into(),
    }
}

/// Broker credentials, read from the environment (never from a flag `ps` would show).
#[derive(Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: Some(username.into()),
            password: Some(password.into()),
        }
    }

    pub fn from_env() -> Self {
        Credentials {
            username: std::env::var("AUTOVOLT_MQTT_USERNAME").ok(),
            password: std::env::var("AUTOVOLT_MQTT_PASSWORD").ok(),
        }
    }
}

/// Options for a client `client_id` of the broker at `url`.
pub fn options(
    url: &str,
    client_id: &str,
    credentials: &Credentials,
) -> Result<MqttOptions, ConnectionError> {
    let addr = BrokerAddress::parse(url)?;
    let mut o = MqttOptions::new(client_id, addr.host, addr.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    if addr.tls {
        o.set_transport(Transport::tls_with_default_config());
    }
    if let Some(user) = &credentials.username {
        o.set_credentials(
            user.clone(),
            credentials.password.clone().unwrap_or_default(),
        );
    }
    Ok(o)
}

/// Whether the broker at `url` accepts a connection with the environment's credentials: the
/// round trip of CONNECT → CONNACK in milliseconds, or why not (one sentence, no secret).
pub async fn reachable(url: &str, timeout: Duration) -> Result<f64, String> {
    let id = format!("autovolt-health-{}", std::process::id());
    let mut o = options(url, &id, &Credentials::from_env()).map_err(|e| e.to_string())?;
    o.set_clean_session(true);
    let (client, mut events) = rumqttc::AsyncClient::new(o, 4);
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(timeout, async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => {
                    return if ack.code == rumqttc::ConnectReturnCode::Success {
                        Ok(started.elapsed().as_secs_f64() * 1000.0)
                    } else {
                        Err(format!(
                            "the broker refused the connection ({:?})",
                            ack.code
                        ))
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "the broker at {} cannot be reached: {e}",
                        redact(url)
                    ))
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "the broker at {} did not answer within {} s",
            redact(url),
            timeout.as_secs()
        ))
    });
    let _ = client.try_disconnect();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports() {
        assert_eq!(
            BrokerAddress::parse("mqtt://broker.campus:1884").unwrap(),
            BrokerAddress {
                host: "broker.campus".into(),
                port: 1884,
                tls: false
            }
        );
        assert_eq!(BrokerAddress::parse("mqtt://h").unwrap().port, 1883);
        let tls = BrokerAddress::parse("mqtts://h").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.port, 8883);
    }

    #[test]
    fn bad_urls_say_what_to_use_and_hide_passwords() {
        let e = BrokerAddress::parse("http://u:hunter22@h:1").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("mqtt://host:port"), "{text}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(BrokerAddress::parse("not a url").is_err());
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials::new("tech", "hunter22");
        assert!(!format!("{c:?}").contains("hunter22"));
        let o = options("mqtt://127.0.0.1:1", "id", &c).unwrap();
        assert_eq!(o.client_id(), "id");
    }
}
