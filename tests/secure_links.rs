//! Secure links against real servers: Mosquitto with a password file and a TLS listener whose CA
//! the test generates, FerretDB with authentication; the right settings get in, a wrong password
//! or a wrong CA is refused with a message that says what to check and never shows a password.
//! `autovolt config show` and `autovolt health` are run as a user would.

mod support;

use autovolt::mqtt::connection::{self, BrokerAccess, NamedFile};
use autovolt::servers::{self, ServerProcess};
use autovolt::store::{Store, StoreError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const USER: &str = "tech";
const PASSWORD: &str = "correct-horse-7";
const WRONG_PASSWORD: &str = "battery-staple-9";

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files in `dir`.
struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path, name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let out = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&out.ca, ca_cert.pem()).unwrap();
    std::fs::write(&out.cert, cert.pem()).unwrap();
    std::fs::write(&out.key, key.serialize_pem()).unwrap();
    out
}

/// A Mosquitto password file with `USER`/`PASSWORD`, made by Mosquitto's own tool.
fn password_file(dir: &Path) -> PathBuf {
    let file = dir.join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&file)
        .args([USER, PASSWORD])
        .status()
        .unwrap_or_else(|e| panic!("mosquitto_passwd (Debian package mosquitto): {e}"));
    assert!(status.success());
    file
}

/// A broker on a TLS listener (certificate signed by the test's CA) that admits only `USER`.
fn tls_broker(dir: &Path, pki: &Pki, extra: &str) -> ServerProcess {
    let passwd = password_file(dir);
    let settings = format!(
        "certfile {}\nkeyfile {}\n{extra}\nallow_anonymous false\npassword_file {}\n",
        pki.cert.display(),
        pki.key.display(),
        passwd.display()
    );
    servers::start_mosquitto_with(&dir.join("broker"), true, &settings)
        .unwrap_or_else(|e| panic!("a TLS Mosquitto could not start: {e}"))
}

fn named(path: &Path, how: &str) -> NamedFile {
    NamedFile {
        path: path.to_path_buf(),
        origin: format!("{how}={}", path.display()),
    }
}

fn access(password: &str, ca: Option<&Path>) -> BrokerAccess {
    BrokerAccess {
        ca_file: ca.map(|p| named(p, "AUTOVOLT_MQTT_CA_FILE")),
        password_origin: "AUTOVOLT_MQTT_PASSWORD".into(),
        ..BrokerAccess::login(USER, password)
    }
}

async fn reach(url: &str, access: &BrokerAccess) -> Result<f64, String> {
    connection::reachable(url, access, Duration::from_secs(10)).await
}

fn no_password_in(text: &str) {
    for p in [PASSWORD, WRONG_PASSWORD] {
        assert!(!text.contains(p), "a password is shown: {text}");
    }
}

#[tokio::test]
async fn the_broker_over_tls_admits_the_right_user_and_refuses_a_wrong_password_or_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pki(dir.path(), "campus");
    let other = pki(dir.path(), "other");
    let broker = tls_broker(dir.path(), &ours, "");
    let url = format!("mqtts://localhost:{}", broker.port());

    let ms = reach(&url, &access(PASSWORD, Some(&ours.ca))).await;
    assert!(ms.is_ok(), "{ms:?}");
    // By address too: the certificate names 127.0.0.1.
    let by_ip = format!("mqtts://127.0.0.1:{}", broker.port());
    let ms = reach(&by_ip, &access(PASSWORD, Some(&ours.ca))).await;
    assert!(ms.is_ok(), "{ms:?}");

    let wrong = reach(&url, &access(WRONG_PASSWORD, Some(&ours.ca)))
        .await
        .unwrap_err();
    assert!(wrong.contains("refused the user \"tech\""), "{wrong}");
    assert!(wrong.contains("AUTOVOLT_MQTT_PASSWORD"), "{wrong}");
    no_password_in(&wrong);

    let anonymous = reach(
        &url,
        &BrokerAccess {
            ca_file: Some(named(&ours.ca, "AUTOVOLT_MQTT_CA_FILE")),
            ..BrokerAccess::default()
        },
    )
    .await
    .unwrap_err();
    assert!(anonymous.contains("AUTOVOLT_MQTT_USERNAME"), "{anonymous}");

    let wrong_ca = reach(&url, &access(PASSWORD, Some(&other.ca)))
        .await
        .unwrap_err();
    assert_eq!(
        wrong_ca,
        format!(
            "the broker's certificate ({url}) is not signed by the CA in AUTOVOLT_MQTT_CA_FILE={}",
            other.ca.display()
        )
    );

    let system_roots = reach(&url, &access(PASSWORD, None)).await.unwrap_err();
    assert!(
        system_roots.contains("not signed by a CA this system trusts"),
        "{system_roots}"
    );

    let plain = format!("mqtt://localhost:{}", broker.port());
    let plain = reach(&plain, &BrokerAccess::login(USER, PASSWORD))
        .await
        .unwrap_err();
    no_password_in(&plain);

    let not_a_ca = reach(&url, &access(PASSWORD, Some(&ours.key)))
        .await
        .unwrap_err();
    assert!(not_a_ca.contains("AUTOVOLT_MQTT_CA_FILE"), "{not_a_ca}");
    assert!(not_a_ca.contains("no PEM"), "{not_a_ca}");
}

#[tokio::test]
async fn a_broker_that_requires_a_client_certificate_admits_one_its_ca_signed() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pki(dir.path(), "campus");
    let client = pki(dir.path(), "client");
    let broker = tls_broker(
        dir.path(),
        &ours,
        &format!("cafile {}\nrequire_certificate true", client.ca.display()),
    );
    let url = format!("mqtts://localhost:{}", broker.port());
    let with_cert = BrokerAccess {
        client_cert: Some((
            named(&client.cert, "AUTOVOLT_MQTT_CLIENT_CERT_FILE"),
            named(&client.key, "AUTOVOLT_MQTT_CLIENT_KEY_FILE"),
        )),
        ..access(PASSWORD, Some(&ours.ca))
    };
    let ms = reach(&url, &with_cert).await;
    assert!(ms.is_ok(), "{ms:?}");
    let without = reach(&url, &access(PASSWORD, Some(&ours.ca)))
        .await
        .unwrap_err();
    assert!(without.contains("client certificate"), "{without}");
}

/// The binary, with a clean environment but for `vars`.
fn autovolt(args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_autovolt"));
    command.args(args).env("XDG_CONFIG_HOME", "/nonexistent");
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTOVOLT_") {
            command.env_remove(k);
        }
    }
    command.envs(vars.iter().copied());
    let out = command.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn health_reaches_a_tls_broker_with_settings_from_the_environment_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let ours = pki(dir.path(), "campus");
    let broker = tls_broker(dir.path(), &ours, "");
    let url = format!("mqtts://localhost:{}", broker.port());
    let db = support::fresh_database_uri("secure_health");
    let right = dir.path().join("right");
    let wrong = dir.path().join("wrong");
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    std::fs::write(&wrong, format!("{WRONG_PASSWORD}\n")).unwrap();
    let ca = ours.ca.display().to_string();
    let vars = |password_file: &Path| {
        vec![
            ("AUTOVOLT_MONGODB_URI", db.clone()),
            ("AUTOVOLT_MQTT_URL", url.clone()),
            ("AUTOVOLT_MQTT_USERNAME", USER.to_string()),
            ("AUTOVOLT_MQTT_CA_FILE", ca.clone()),
            (
                "AUTOVOLT_MQTT_PASSWORD_FILE",
                password_file.display().to_string(),
            ),
        ]
    };
    let run = |password_file: &Path| {
        let v = vars(password_file);
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (_, out, err) = autovolt(&["health", "--json"], &v);
        no_password_in(&out);
        no_password_in(&err);
        let value: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
        value["broker"].clone()
    };
    let ok = run(&right);
    assert_eq!(ok["reachable"], true, "{ok}");
    let refused = run(&wrong);
    assert_eq!(refused["reachable"], false, "{refused}");
    let message = refused["error"].as_str().unwrap_or_default();
    assert!(message.contains("refused the user \"tech\""), "{message}");
    assert!(
        message.contains("named by AUTOVOLT_MQTT_PASSWORD_FILE"),
        "{message}"
    );
}

#[test]
fn config_show_says_where_each_value_came_from_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "campus = \"North\"\nmqtt_url = \"mqtt://file:1\"\nmqtt_username = \"tech\"\n",
    )
    .unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let vars = [
        ("AUTOVOLT_CONFIG", file.to_str().unwrap()),
        ("AUTOVOLT_MQTT_URL", "mqtts://env:8883"),
        ("AUTOVOLT_MQTT_PASSWORD_FILE", pw.to_str().unwrap()),
        (
            "AUTOVOLT_MONGODB_URI",
            "mongodb://ops:battery-staple-9@db:27017/campus?authMechanism=SCRAM-SHA-256",
        ),
    ];
    let (code, out, err) = autovolt(
        &[
            "config",
            "show",
            "--json",
            "--mqtt-url",
            "mqtts://flag:8883",
        ],
        &vars,
    );
    assert_eq!(code, 0, "{err}");
    no_password_in(&out);
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = |name: &str| {
        value["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["key"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    assert_eq!(value["config_file"]["path"], file.display().to_string());
    assert_eq!(key("campus")["value"], "North");
    assert_eq!(key("campus")["layer"], "file");
    assert_eq!(key("mqtt_url")["value"], "mqtts://flag:8883");
    assert_eq!(key("mqtt_url")["source"], "--mqtt-url");
    assert_eq!(key("mqtt_password")["value"], "<redacted>");
    assert_eq!(key("mqtt_password")["layer"], "env");
    assert_eq!(
        key("mongodb_uri")["value"],
        "mongodb://ops:<redacted>@db:27017/campus?authMechanism=SCRAM-SHA-256"
    );
    assert_eq!(key("mongodb_uri")["source"], "AUTOVOLT_MONGODB_URI");
    assert_eq!(key("timezone")["layer"], "default");

    let (code, text, _) = autovolt(&["config", "show"], &vars);
    assert_eq!(code, 0);
    no_password_in(&text);
    assert!(text.contains("mqtt_password"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("# AUTOVOLT_MQTT_URL"), "{text}");
}

/// FerretDB with SCRAM-SHA-256 users of its own (`--test-enable-new-auth`) and one user set up.
fn ferretdb_with_auth() -> (ServerProcess, u16) {
    let dir = servers::temp_dir("autovolt-test-ferretdb-auth").unwrap();
    let server = servers::start_ferretdb_with(
        &dir,
        true,
        &[
            "--test-enable-new-auth".into(),
            "--setup-database=admin".into(),
            format!("--setup-username={USER}"),
            format!("--setup-password={PASSWORD}"),
        ],
    )
    .unwrap_or_else(|e| panic!("FerretDB with authentication could not start: {e}"));
    let port = server.port();
    (server, port)
}

/// FerretDB 1.24.2 checks SCRAM-SHA-256 passwords itself, but ends a conversation whose password
/// was right with `done: false` (it ignores the driver's `skipEmptyExchange`), which the Rust
/// driver 3.9 refuses ("expected SCRAM authentication to have completed"): against FerretDB only
/// the refusal of a wrong password can be shown; a real MongoDB admits the right one.
#[tokio::test]
async fn ferretdb_with_authentication_refuses_a_wrong_password_without_showing_it() {
    let (_server, port) = ferretdb_with_auth();
    let uri = format!(
        "mongodb://{USER}:{WRONG_PASSWORD}@127.0.0.1:{port}/campus?authMechanism=SCRAM-SHA-256&authSource=admin"
    );
    let refused = Store::connect(&uri, Duration::from_secs(10))
        .await
        .err()
        .expect("a wrong password is refused");
    assert!(
        matches!(refused, StoreError::AuthFailed { .. }),
        "{refused:?}"
    );
    let message = refused.to_string();
    no_password_in(&message);
    no_password_in(&format!("{refused:?}"));
    assert!(message.contains("refused the credentials"), "{message}");
    assert!(message.contains("tech:<redacted>@"), "{message}");
}

#[test]
fn the_command_line_names_where_a_refused_database_password_came_from() {
    let (_server, port) = ferretdb_with_auth();
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, format!("{WRONG_PASSWORD}\n")).unwrap();
    let uri = format!(
        "mongodb://{USER}@127.0.0.1:{port}/campus?authMechanism=SCRAM-SHA-256&authSource=admin"
    );
    let (code, out, err) = autovolt(
        &["migrate", "status", "--json"],
        &[
            ("AUTOVOLT_MONGODB_URI", &uri),
            ("AUTOVOLT_MONGODB_PASSWORD_FILE", wrong.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    no_password_in(&out);
    no_password_in(&err);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(
        err.contains("(named by AUTOVOLT_MONGODB_PASSWORD_FILE)"),
        "{err}"
    );
}
