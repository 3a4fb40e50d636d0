//! Connecting to the broker: `mqtt://host:port` or `mqtts://host:port` (TLS through rustls, with
//! the CA in `mqtt_ca_file` or else the system's trusted CAs, and optionally a client
//! certificate), as the user `mqtt_username` with the password from the configuration. What the
//! broker or TLS refuses is said in one sentence that names the setting to check, never a password.

use crate::domain::uri::redacted_uri;
use crate::domain::Secret;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use std::path::PathBuf;
use std::sync::Arc;
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
    #[error("the {what} {origin} cannot be used: {why}")]
    File {
        what: &'static str,
        origin: String,
        why: String,
    },
    #[error("{0}")]
    Tls(String),
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
        let bad = |why: &str| ConnectionError::BadUrl(redacted_uri(url), why.to_string());
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let tls = match parsed.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("the scheme must be mqtt or mqtts")),
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad(
                "it holds a user or password; set AUTOVOLT_MQTT_USERNAME and AUTOVOLT_MQTT_PASSWORD_FILE instead",
            ));
        }
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

/// A file the user named, and how they named it (`AUTOVOLT_MQTT_CA_FILE=/etc/ca.pem`), for
/// messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    pub path: PathBuf,
    pub origin: String,
}

/// How this program gets into the broker: who it is, and which CA vouches for the broker.
#[derive(Debug, Clone, Default)]
pub struct BrokerAccess {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Where the password comes from (never the password), for messages.
    pub password_origin: String,
    /// The CA that signed the broker's certificate; `None`: the system's trusted CAs.
    pub ca_file: Option<NamedFile>,
    /// A client certificate and its key, for brokers that require one.
    pub client_cert: Option<(NamedFile, NamedFile)>,
}

impl BrokerAccess {
    /// A user and password, with the system's trusted CAs.
    pub fn login(username: impl Into<String>, password: impl Into<String>) -> Self {
        BrokerAccess {
            username: Some(username.into()),
            password: Some(Secret::new(password)),
            password_origin: "the program".into(),
            ..BrokerAccess::default()
        }
    }
}

/// Options for a client `client_id` of the broker at `url`.
pub fn options(
    url: &str,
    client_id: &str,
    access: &BrokerAccess,
) -> Result<MqttOptions, ConnectionError> {
    let addr = BrokerAddress::parse(url)?;
    let mut o = MqttOptions::new(client_id, addr.host, addr.port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    if addr.tls {
        let tls = tls_config(access)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    } else if access.ca_file.is_some() || access.client_cert.is_some() {
        return Err(ConnectionError::Tls(format!(
            "a CA or client certificate is configured but {} is not TLS: use mqtts://host:port",
            redacted_uri(url)
        )));
    }
    if let Some(user) = &access.username {
        o.set_credentials(
            user.clone(),
            access
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        );
    }
    Ok(o)
}

fn read_pem<T>(
    what: &'static str,
    file: &NamedFile,
    read: impl FnOnce(&std::path::Path) -> Result<T, rustls::pki_types::pem::Error>,
) -> Result<T, ConnectionError> {
    use rustls::pki_types::pem::Error;
    read(&file.path).map_err(|e| ConnectionError::File {
        what,
        origin: file.origin.clone(),
        why: match e {
            Error::Io(e) => e.to_string(),
            Error::NoItemsFound => "it holds no PEM item of the expected kind".into(),
            _ => "it is not a valid PEM file".into(),
        },
    })
}

fn certificates(
    what: &'static str,
    file: &NamedFile,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConnectionError> {
    use rustls::pki_types::pem::PemObject;
    let certs = read_pem(what, file, |p| {
        rustls::pki_types::CertificateDer::pem_file_iter(p)?.collect::<Result<Vec<_>, _>>()
    })?;
    if certs.is_empty() {
        return Err(ConnectionError::File {
            what,
            origin: file.origin.clone(),
            why: "it holds no PEM certificate".into(),
        });
    }
    Ok(certs)
}

/// The TLS settings: the roots to trust and, if given, the client certificate.
fn tls_config(access: &BrokerAccess) -> Result<rustls::ClientConfig, ConnectionError> {
    let mut roots = rustls::RootCertStore::empty();
    match &access.ca_file {
        Some(ca) => {
            for cert in certificates("CA file", ca)? {
                roots.add(cert).map_err(|e| ConnectionError::File {
                    what: "CA file",
                    origin: ca.origin.clone(),
                    why: e.to_string(),
                })?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if roots.is_empty() {
                return Err(ConnectionError::Tls(
                    "this system has no trusted CA certificates: set AUTOVOLT_MQTT_CA_FILE to the CA that signed the broker's certificate".into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectionError::Tls(format!("TLS cannot be set up: {e}")))?
        .with_root_certificates(roots);
    match &access.client_cert {
        Some((cert, key)) => {
            use rustls::pki_types::pem::PemObject;
            let chain = certificates("client certificate", cert)?;
            let key = read_pem("client key", key, |p| {
                rustls::pki_types::PrivateKeyDer::from_pem_file(p)
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConnectionError::File {
                    what: "client certificate",
                    origin: cert.origin.clone(),
                    why: format!("it does not go with its key ({e})"),
                })
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Why a connection failed, in one sentence that says what to check: a refused user (named, with
/// where the password comes from, never the password), a certificate no configured CA signed, a
/// port that does not speak TLS, a broker that cannot be reached.
pub fn explain(e: &rumqttc::ConnectionError, url: &str, access: &BrokerAccess) -> String {
    use rumqttc::{ConnectReturnCode as Code, ConnectionError as E};
    let at = redacted_uri(url);
    if let Some(tls) = rustls_cause(e) {
        return explain_tls(tls, &at, access);
    }
    match e {
        E::ConnectionRefused(Code::BadUserNamePassword | Code::NotAuthorized) => {
            match &access.username {
                Some(user) => format!(
                    "the broker at {at} refused the user {user:?}: wrong user name or password (the password comes from {}); check both",
                    access.password_origin
                ),
                None => format!(
                    "the broker at {at} refuses clients without a user: set AUTOVOLT_MQTT_USERNAME and AUTOVOLT_MQTT_PASSWORD_FILE"
                ),
            }
        }
        E::ConnectionRefused(code) => {
            format!("the broker at {at} refused the connection ({code:?})")
        }
        E::Tls(e) => format!("TLS with the broker at {at} failed: {e}"),
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => format!(
            "the broker at {at} closed the connection during the handshake: if it speaks TLS on this port, use mqtts://"
        ),
        e => format!("the broker at {at} cannot be reached: {e}"),
    }
}

/// The TLS error behind `e`, wherever in its chain of causes it is (a TLS 1.3 alert arrives
/// after the handshake, inside an MQTT read).
fn rustls_cause(e: &rumqttc::ConnectionError) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        cause = c.source();
    }
    None
}

fn explain_tls(e: &rustls::Error, at: &str, access: &BrokerAccess) -> String {
    use rustls::{AlertDescription as Alert, CertificateError as Cert, Error};
    match e {
        Error::InvalidCertificate(Cert::UnknownIssuer) => match &access.ca_file {
            Some(ca) => format!(
                "the broker's certificate ({at}) is not signed by the CA in {}",
                ca.origin
            ),
            None => format!(
                "the broker's certificate ({at}) is not signed by a CA this system trusts: set AUTOVOLT_MQTT_CA_FILE to the CA that signed it"
            ),
        },
        Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            format!("the broker's certificate is not for the host in {at}: use a host name the certificate names")
        }
        Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            format!("the broker's certificate ({at}) has expired")
        }
        Error::InvalidCertificate(other) => {
            format!("the broker's certificate ({at}) is not acceptable: {other:?}")
        }
        Error::AlertReceived(
            alert @ (Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnknownCA
            | Alert::HandshakeFailure
            | Alert::CertificateUnknown),
        ) => match &access.client_cert {
            Some((cert, _)) => format!(
                "the broker at {at} refused the client certificate in {} ({alert:?})",
                cert.origin
            ),
            None => format!(
                "the broker at {at} refused the TLS handshake ({alert:?}): it may require a client certificate (AUTOVOLT_MQTT_CLIENT_CERT_FILE and AUTOVOLT_MQTT_CLIENT_KEY_FILE)"
            ),
        },
        Error::InvalidMessage(_) => format!(
            "the broker at {at} does not speak TLS on this port: check the port, or use mqtt://"
        ),
        other => format!("TLS with the broker at {at} failed: {other}"),
    }
}

/// Whether the broker at `url` accepts a connection with `access`: the round trip of CONNECT →
/// CONNACK in milliseconds, or why not (one sentence, no secret).
pub async fn reachable(url: &str, access: &BrokerAccess, timeout: Duration) -> Result<f64, String> {
    let id = format!("autovolt-health-{}", std::process::id());
    let mut o = options(url, &id, access).map_err(|e| e.to_string())?;
    o.set_clean_session(true);
    let (client, mut events) = rumqttc::AsyncClient::new(o, 4);
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(timeout, async {
        loop {
            match events.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    return Ok(started.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(_) => {}
                Err(e) => return Err(explain(&e, url, access)),
            }
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(format!(
            "the broker at {} did not answer within {} s",
            redacted_uri(url),
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
    fn access_never_prints_the_password() {
        let c = BrokerAccess::login("tech", "hunter22");
        assert!(!format!("{c:?}").contains("hunter22"));
        let o = options("mqtt://127.0.0.1:1", "id", &c).unwrap();
        assert_eq!(o.client_id(), "id");
    }
}
