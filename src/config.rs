//! Configuration, resolved in one place: every key has a default and can be set in the TOML file
//! (`$XDG_CONFIG_HOME/autovolt/config.toml`), in the environment (`AUTOVOLT_` and the key in
//! capitals) and, for the keys in [`KEYS`] that have one, by a command-line flag. A flag beats the
//! environment, which beats the file, which beats the default; the resolved [`Config`] remembers
//! which of them each value came from ([`Config::source`]). A missing file is not an error.
//!
//! Passwords are never taken from a flag (`ps` would show them): they come from the file, the
//! environment, or a file of their own named by the `…_password_file` keys, and are held as
//! [`Secret`]s that print as `<redacted>`.

use crate::domain::secret::REDACTED;
use crate::domain::Secret;
use crate::mqtt::connection::{BrokerAccess, NamedFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything the commands read. Field names are the TOML keys; [`KEYS`] lists them with how each
/// can be set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The campus's name, shown in the dashboard's header.
    pub campus: String,
    /// `mongodb://…` or `mongodb+srv://…`; the database is the URI's path (default `autovolt`).
    /// TLS and the authentication mechanism are URI options (`tls=true`, `tlsCAFile=…`,
    /// `authMechanism=SCRAM-SHA-256`, `authSource=admin`).
    pub mongodb_uri: String,
    /// The password of the user named in `mongodb_uri`, when the URI does not carry one.
    #[serde(skip_serializing)]
    pub mongodb_password: Option<Secret>,
    /// A file holding that password (its first line).
    pub mongodb_password_file: Option<PathBuf>,
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub mqtt_url: String,
    /// The user the broker knows this program as.
    pub mqtt_username: Option<String>,
    /// That user's password.
    #[serde(skip_serializing)]
    pub mqtt_password: Option<Secret>,
    /// A file holding that password (its first line).
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM file of the CA that signed the broker's certificate (`mqtts://` only; default: the
    /// system's trusted CAs).
    pub mqtt_ca_file: Option<PathBuf>,
    /// PEM certificate this program shows the broker, for brokers that require one.
    pub mqtt_client_cert_file: Option<PathBuf>,
    /// PEM private key of that certificate.
    pub mqtt_client_key_file: Option<PathBuf>,
    /// The campus time zone (IANA name), which decides where days begin.
    pub timezone: String,
    /// Seconds of silence after which a board counts as stale.
    pub stale_after_secs: u64,
    /// Seconds of silence after which a board is offline and its open intervals close.
    pub offline_after_secs: u64,
    /// Seconds to wait for a board to acknowledge a relay command.
    pub toggle_timeout_secs: u64,
    /// Local time (`HH:MM`) at which the collector aggregates yesterday.
    pub aggregate_at: String,
    /// Seconds an aggregation or migration lock stays held unless its run renews it (every third
    /// of this); a run that died loses its locks this long after its last renewal.
    pub lock_lease_secs: u64,
    /// Minutes without motion after which loads on in a classroom count as waste.
    pub waste_no_motion_minutes: u64,
    /// The campus's working hours, e.g. `08:00-18:00`.
    pub campus_hours: String,
    /// Working days, 0 = Sunday.
    pub campus_days: Vec<u8>,
    /// Dashboard theme: a name in `themes/` or a path to a TOML file.
    pub theme: String,
    /// Key binding overrides: action name → key (`"toggle" = "t"`).
    pub keys: BTreeMap<String, String>,
    /// Where the dashboard writes its log (default: the XDG state directory).
    pub log_file: Option<PathBuf>,
    /// Seconds between two reconciliations of a dashboard's totals with the ledger (stretched so
    /// that reconciling takes at most 5 % of the time).
    pub reconcile_every_secs: u64,
    /// Where each key's value came from; keys not in it have their default.
    #[serde(skip)]
    sources: BTreeMap<&'static str, Source>,
    /// The config file that was read, if any.
    #[serde(skip)]
    file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            campus: "Main Campus".into(),
            mongodb_uri: "mongodb://127.0.0.1:27017/autovolt".into(),
            mongodb_password: None,
            mongodb_password_file: None,
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
            mqtt_username: None,
            mqtt_password: None,
            mqtt_password_file: None,
            mqtt_ca_file: None,
            mqtt_client_cert_file: None,
            mqtt_client_key_file: None,
            timezone: "Asia/Kolkata".into(),
            stale_after_secs: 90,
            offline_after_secs: 120,
            toggle_timeout_secs: 5,
            aggregate_at: "00:10".into(),
            lock_lease_secs: crate::store::DEFAULT_LOCK_LEASE.as_secs(),
            waste_no_motion_minutes: 15,
            campus_hours: "08:00-18:00".into(),
            campus_days: vec![1, 2, 3, 4, 5, 6],
            theme: "dark".into(),
            keys: Default::default(),
            log_file: None,
            reconcile_every_secs: 900,
            sources: BTreeMap::new(),
            file: None,
        }
    }
}

/// How a key's value is written in the environment or on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A whole number of seconds or minutes.
    Whole,
    Path,
    /// Comma-separated day numbers, `1,2,3,4,5`.
    Days,
    /// Comma-separated `action=key` pairs, `toggle=t,quit=q`.
    KeyMap,
    /// A password: never a flag, never shown.
    Secret,
}

/// One configuration key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The TOML key (and, in capitals after `AUTOVOLT_`, the environment variable).
    pub name: &'static str,
    pub kind: Kind,
    /// Whether `--name-with-dashes` sets it.
    pub flag: bool,
}

impl Key {
    const fn new(name: &'static str, kind: Kind, flag: bool) -> Key {
        Key { name, kind, flag }
    }

    /// `AUTOVOLT_MQTT_URL` for `mqtt_url`.
    pub fn env(&self) -> String {
        format!("AUTOVOLT_{}", self.name.to_ascii_uppercase())
    }

    /// `--mqtt-url` for `mqtt_url`, if the key has a flag.
    pub fn flag(&self) -> Option<String> {
        self.flag
            .then(|| format!("--{}", self.name.replace('_', "-")))
    }

    pub fn is_secret(&self) -> bool {
        self.kind == Kind::Secret
    }
}

/// Every key of [`Config`], in the order `config show` lists them.
pub const KEYS: &[Key] = &[
    Key::new("campus", Kind::Text, false),
    Key::new("mongodb_uri", Kind::Text, true),
    Key::new("mongodb_password", Kind::Secret, false),
    Key::new("mongodb_password_file", Kind::Path, true),
    Key::new("mqtt_url", Kind::Text, true),
    Key::new("mqtt_username", Kind::Text, true),
    Key::new("mqtt_password", Kind::Secret, false),
    Key::new("mqtt_password_file", Kind::Path, true),
    Key::new("mqtt_ca_file", Kind::Path, true),
    Key::new("mqtt_client_cert_file", Kind::Path, true),
    Key::new("mqtt_client_key_file", Kind::Path, true),
    Key::new("timezone", Kind::Text, false),
    Key::new("stale_after_secs", Kind::Whole, false),
    Key::new("offline_after_secs", Kind::Whole, false),
    Key::new("toggle_timeout_secs", Kind::Whole, false),
    Key::new("aggregate_at", Kind::Text, false),
    Key::new("lock_lease_secs", Kind::Whole, false),
    Key::new("waste_no_motion_minutes", Kind::Whole, false),
    Key::new("campus_hours", Kind::Text, false),
    Key::new("campus_days", Kind::Days, false),
    Key::new("theme", Kind::Text, true),
    Key::new("keys", Kind::KeyMap, false),
    Key::new("log_file", Kind::Path, true),
    Key::new("reconcile_every_secs", Kind::Whole, false),
];

/// The key named `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
    /// A password read from the file that another key (`…_password_file`) names.
    ReadFrom {
        file: PathBuf,
        named_by: Box<Source>,
    },
    /// Set by the program itself (the demo's private servers), as described.
    Program(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("the default"),
            Source::File(p) => write!(f, "the config file {}", p.display()),
            Source::Env(v) | Source::Flag(v) | Source::Program(v) => f.write_str(v),
            Source::ReadFrom { file, named_by } => {
                write!(f, "the file {} (named by {named_by})", file.display())
            }
        }
    }
}

/// Values given on the command line, by key name.
pub type Flags = BTreeMap<&'static str, String>;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{name} = {value:?} is not valid: {rule}")]
    Value {
        name: String,
        value: String,
        rule: String,
    },
    /// A key whose value is a secret, or keys that do not fit together: said without any value.
    #[error("{0}")]
    Conflict(String),
}

/// A TOML error said without the text around it (which may hold a password): where, and what the
/// parser expected, never the value it found.
fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let at = e
        .span()
        .map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: ")
        })
        .unwrap_or_default();
    format!("{at}{}", without_values(e.message()))
}

/// A serde message with any value it quotes left out.
fn without_values(message: &str) -> String {
    let message = message.lines().next().unwrap_or_default();
    // "invalid type: string \"hunter2\", expected u64": keep only what was expected.
    match message.split_once(", expected ") {
        Some((found, expected)) if found.starts_with("invalid") => {
            format!("the value has the wrong type; expected {expected}")
        }
        _ if message.contains('"')
            || message.contains('`') && !message.starts_with("unknown field") =>
        {
            "not valid TOML here".to_string()
        }
        _ => message.to_string(),
    }
}

/// The default config file: `$XDG_CONFIG_HOME/autovolt/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autovolt").join("config.toml"))
}

/// A config file as read: where it is and its text.
#[derive(Debug, Clone)]
pub struct FileLayer {
    pub path: PathBuf,
    pub text: String,
}

impl FileLayer {
    /// Reads `path`, else the default file if there is one. A file named explicitly must exist.
    pub fn read(path: Option<&Path>) -> Result<Option<FileLayer>, ConfigError> {
        let (path, named) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match default_path() {
                Some(p) => (p, false),
                None => return Ok(None),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(FileLayer { path, text })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(None),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// The keys the file sets, checked against [`Config`] (unknown keys and wrong types are
    /// refused here, named by line and column).
    fn table(&self) -> Result<toml::Table, ConfigError> {
        let parse = |e: toml::de::Error| ConfigError::Parse {
            path: self.path.clone(),
            message: parse_message(&self.text, &e),
        };
        toml::from_str::<Config>(&self.text).map_err(parse)?;
        self.text.parse::<toml::Table>().map_err(parse)
    }
}

/// A value from the environment or a flag, as TOML, checked for its key's kind. `origin` names
/// where it was given (`AUTOVOLT_X` or `--x`).
fn typed_value(key: &Key, raw: &str, origin: &str) -> Result<toml::Value, ConfigError> {
    let bad = |rule: &str| ConfigError::Value {
        name: origin.to_string(),
        value: raw.to_string(),
        rule: rule.to_string(),
    };
    Ok(match key.kind {
        Kind::Text | Kind::Path | Kind::Secret => toml::Value::String(raw.to_string()),
        Kind::Whole => raw
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(|n| i64::try_from(n).ok())
            .map(toml::Value::Integer)
            .ok_or_else(|| bad("must be a whole number"))?,
        Kind::Days => {
            let days = raw
                .split(',')
                .map(|d| d.trim().parse::<u8>().ok().filter(|d| *d <= 6))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| bad("must be day numbers 0-6 (0 = Sunday) separated by commas"))?;
            toml::Value::Array(
                days.into_iter()
                    .map(|d| toml::Value::Integer(d.into()))
                    .collect(),
            )
        }
        Kind::KeyMap => {
            let mut map = toml::Table::new();
            for pair in raw.split(',').filter(|p| !p.trim().is_empty()) {
                let (action, key) = pair
                    .split_once('=')
                    .filter(|(a, k)| !a.trim().is_empty() && !k.trim().is_empty())
                    .ok_or_else(|| bad("must be action=key pairs separated by commas"))?;
                map.insert(
                    action.trim().to_string(),
                    toml::Value::String(key.trim().to_string()),
                );
            }
            toml::Value::Table(map)
        }
    })
}

impl Config {
    /// The configuration of this process: the file at `path` (or the default file), the
    /// process's environment, and `flags`.
    pub fn load(path: Option<&Path>, flags: &Flags) -> Result<Config, ConfigError> {
        let file = FileLayer::read(path)?;
        Config::resolve(file.as_ref(), &|name| std::env::var(name).ok(), flags)
    }

    /// Resolves every key from its layers: `flags` over `env` (read through a function, so tests
    /// need not touch the process) over `file` over the default. An empty environment variable
    /// counts as not set. Password files are read, and the result is checked.
    pub fn resolve(
        file: Option<&FileLayer>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &Flags,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::Table::new();
        let mut sources = BTreeMap::new();
        if let Some(file) = file {
            for (name, value) in file.table()? {
                if let Some(key) = key(&name) {
                    sources.insert(key.name, Source::File(file.path.clone()));
                    table.insert(name, value);
                }
            }
        }
        for key in KEYS {
            let var = key.env();
            if let Some(raw) = env(&var).filter(|v| !v.is_empty()) {
                table.insert(key.name.to_string(), typed_value(key, &raw, &var)?);
                sources.insert(key.name, Source::Env(var));
            }
        }
        for (name, raw) in flags {
            let Some((key, flag)) = key(name).and_then(|k| k.flag().map(|f| (k, f))) else {
                return Err(ConfigError::Conflict(format!(
                    "{name} cannot be set on the command line"
                )));
            };
            table.insert(key.name.to_string(), typed_value(key, raw, &flag)?);
            sources.insert(key.name, Source::Flag(flag));
        }
        let mut config: Config = toml::Value::Table(table).try_into().map_err(|e| {
            ConfigError::Conflict(format!(
                "the configuration does not fit its keys: {}",
                without_values(&e.to_string())
            ))
        })?;
        config.sources = sources;
        config.file = file.map(|f| f.path.clone());
        config.read_password_files()?;
        config.check()?;
        Ok(config)
    }

    /// Where the value of the key `name` came from.
    pub fn source(&self, name: &str) -> Source {
        self.sources.get(name).cloned().unwrap_or(Source::Default)
    }

    /// The config file that was read, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Points the MQTT keys at a broker this program started itself (`why` says which), with
    /// none of the configured user, password or certificates, which are for the campus's broker.
    pub fn use_private_broker(&mut self, url: String, why: &str) {
        self.mqtt_url = url;
        self.mqtt_username = None;
        self.mqtt_password = None;
        self.mqtt_password_file = None;
        self.mqtt_ca_file = None;
        self.mqtt_client_cert_file = None;
        self.mqtt_client_key_file = None;
        for key in KEYS.iter().filter(|k| k.name.starts_with("mqtt_")) {
            self.sources
                .insert(key.name, Source::Program(why.to_string()));
        }
    }

    /// Points the MongoDB keys at `uri` (a complete URI, password included if any), set by the
    /// program itself (`why` says how).
    pub fn use_database(&mut self, uri: String, why: &str) {
        self.mongodb_uri = uri;
        self.mongodb_password = None;
        self.mongodb_password_file = None;
        for key in KEYS.iter().filter(|k| k.name.starts_with("mongodb_")) {
            self.sources
                .insert(key.name, Source::Program(why.to_string()));
        }
    }

    /// How the user set a (non-secret) key, as they would recognise it: `AUTOVOLT_X=value`,
    /// `--x value`, `x = value in the config file …`.
    pub fn origin(&self, name: &str, value: &str) -> String {
        match self.source(name) {
            Source::Env(var) => format!("{var}={value}"),
            Source::Flag(flag) => format!("{flag} {value}"),
            Source::File(path) => format!("{name} = {value:?} in {}", path.display()),
            other => format!("{name} = {value:?} ({other})"),
        }
    }

    /// Reads the passwords that `…_password_file` keys point to.
    fn read_password_files(&mut self) -> Result<(), ConfigError> {
        read_password_file(
            &mut self.mongodb_password,
            self.mongodb_password_file.as_deref(),
            ("mongodb_password", "mongodb_password_file"),
            &mut self.sources,
        )?;
        read_password_file(
            &mut self.mqtt_password,
            self.mqtt_password_file.as_deref(),
            ("mqtt_password", "mqtt_password_file"),
            &mut self.sources,
        )
    }

    /// The URI to connect with: `mongodb_uri`, with `mongodb_password` put in if it is set.
    pub fn mongodb_connection_uri(&self) -> String {
        match &self.mongodb_password {
            Some(p) => crate::domain::uri::uri_with_password(&self.mongodb_uri, p.expose()),
            None => self.mongodb_uri.clone(),
        }
    }

    /// Checks the values that would otherwise fail later and less clearly.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.tz()?;
        crate::domain::validation::time_of_day("aggregate_at", &self.aggregate_at).map_err(
            |e| ConfigError::Value {
                name: "aggregate_at".into(),
                value: e.value,
                rule: e.rule,
            },
        )?;
        if self.reconcile_every_secs == 0 {
            return Err(ConfigError::Value {
                name: "reconcile_every_secs".into(),
                value: "0".into(),
                rule: "must be at least 1".into(),
            });
        }
        if self.offline_after_secs == 0 || self.stale_after_secs > self.offline_after_secs {
            return Err(ConfigError::Value {
                name: "offline_after_secs".into(),
                value: self.offline_after_secs.to_string(),
                rule: "must be more than 0 and at least stale_after_secs".into(),
            });
        }
        if self.lock_lease_secs < 3 {
            return Err(ConfigError::Value {
                name: "lock_lease_secs".into(),
                value: self.lock_lease_secs.to_string(),
                rule: "must be at least 3 (a lock is renewed every third of it)".into(),
            });
        }
        self.check_links()
    }

    /// The security settings fit together: a password has its user, a certificate its key, TLS
    /// files a TLS URL.
    fn check_links(&self) -> Result<(), ConfigError> {
        let from = |name: &str| self.source(name);
        if self.mqtt_password.is_some() && self.mqtt_username.is_none() {
            return Err(ConfigError::Conflict(format!(
                "an MQTT password is set (from {}) but no user: set AUTOVOLT_MQTT_USERNAME or mqtt_username",
                from("mqtt_password")
            )));
        }
        match (&self.mqtt_client_cert_file, &self.mqtt_client_key_file) {
            (Some(_), None) => {
                return Err(ConfigError::Conflict(format!(
                    "mqtt_client_cert_file is set (from {}) but mqtt_client_key_file is not: the broker needs both",
                    from("mqtt_client_cert_file")
                )))
            }
            (None, Some(_)) => {
                return Err(ConfigError::Conflict(format!(
                    "mqtt_client_key_file is set (from {}) but mqtt_client_cert_file is not: the broker needs both",
                    from("mqtt_client_key_file")
                )))
            }
            _ => {}
        }
        let plain = !self
            .mqtt_url
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("mqtts:")
            && !self
                .mqtt_url
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("ssl:");
        for name in ["mqtt_ca_file", "mqtt_client_cert_file"] {
            let set = match name {
                "mqtt_ca_file" => self.mqtt_ca_file.is_some(),
                _ => self.mqtt_client_cert_file.is_some(),
            };
            if set && plain {
                return Err(ConfigError::Conflict(format!(
                    "{name} is set (from {}) but mqtt_url {} (from {}) is not TLS: use mqtts://host:port",
                    from(name),
                    crate::domain::uri::redacted_uri(&self.mqtt_url),
                    from("mqtt_url")
                )));
            }
        }
        if self.mongodb_password.is_some() {
            match crate::domain::uri::uri_userinfo(&self.mongodb_uri) {
                Some((user, None)) if !user.is_empty() => {}
                Some((_, Some(_))) => {
                    return Err(ConfigError::Conflict(format!(
                        "the MongoDB URI (from {}) has a password and mongodb_password is set too (from {}): keep one",
                        from("mongodb_uri"),
                        from("mongodb_password")
                    )))
                }
                _ => {
                    return Err(ConfigError::Conflict(format!(
                        "a MongoDB password is set (from {}) but the URI (from {}) names no user: write it as mongodb://USER@host/db",
                        from("mongodb_password"),
                        from("mongodb_uri")
                    )))
                }
            }
        }
        Ok(())
    }

    /// Every key with its value as `config show` prints it (secrets as `<redacted>`, the
    /// password in a MongoDB URI too) and where it came from.
    pub fn shown(&self) -> Vec<(&'static Key, serde_json::Value, Source)> {
        let values = serde_json::to_value(self).unwrap_or_default();
        KEYS.iter()
            .map(|key| {
                let set = match key.name {
                    "mongodb_password" => self.mongodb_password.is_some(),
                    "mqtt_password" => self.mqtt_password.is_some(),
                    _ => false,
                };
                let value = match key.name {
                    _ if key.is_secret() && set => serde_json::Value::from(REDACTED),
                    _ if key.is_secret() => serde_json::Value::Null,
                    "mongodb_uri" => crate::domain::uri::redacted_uri(&self.mongodb_uri).into(),
                    "mqtt_url" => crate::domain::uri::redacted_uri(&self.mqtt_url).into(),
                    name => values.get(name).cloned().unwrap_or_default(),
                };
                (key, value, self.source(key.name))
            })
            .collect()
    }

    /// How long a lock stays held without renewal.
    pub fn lock_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lock_lease_secs)
    }

    /// How to reach the broker: the user, the password and the certificates this configuration
    /// names, each with where it came from (for messages).
    pub fn broker_access(&self) -> BrokerAccess {
        let named = |name: &str, path: &Option<PathBuf>| {
            path.as_ref().map(|p| NamedFile {
                path: p.clone(),
                origin: self.origin(name, &p.display().to_string()),
            })
        };
        let cert = named("mqtt_client_cert_file", &self.mqtt_client_cert_file);
        let key = named("mqtt_client_key_file", &self.mqtt_client_key_file);
        BrokerAccess {
            username: self.mqtt_username.clone(),
            password: self.mqtt_password.clone(),
            password_origin: self.source("mqtt_password").to_string(),
            ca_file: named("mqtt_ca_file", &self.mqtt_ca_file),
            client_cert: cert.zip(key),
        }
    }

    /// The campus time zone.
    pub fn tz(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone.parse().map_err(|_| ConfigError::Value {
            name: "timezone".into(),
            value: self.timezone.clone(),
            rule: "must be an IANA time zone name such as Asia/Kolkata".into(),
        })
    }
}

/// Fills `secret` from the file at `path` (its first line), unless both are set.
fn read_password_file(
    secret: &mut Option<Secret>,
    path: Option<&Path>,
    (secret_name, file_name): (&'static str, &'static str),
    sources: &mut BTreeMap<&'static str, Source>,
) -> Result<(), ConfigError> {
    let Some(path) = path else {
        return Ok(());
    };
    let file_source = sources.get(file_name).cloned().unwrap_or(Source::Default);
    if secret.is_some() {
        let secret_source = sources.get(secret_name).cloned().unwrap_or(Source::Default);
        return Err(ConfigError::Conflict(format!(
            "{secret_name} (from {secret_source}) and {file_name} (from {file_source}) are both set: keep one"
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Conflict(format!(
            "cannot read the password file {} ({file_name}, from {file_source}): {e}",
            path.display()
        ))
    })?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(ConfigError::Conflict(format!(
            "the password file {} ({file_name}, from {file_source}) is empty",
            path.display()
        )));
    }
    *secret = Some(Secret::new(password));
    sources.insert(
        secret_name,
        Source::ReadFrom {
            file: path.to_path_buf(),
            named_by: Box::new(file_source),
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(text: &str) -> FileLayer {
        FileLayer {
            path: PathBuf::from("/etc/autovolt.toml"),
            text: text.to_string(),
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn flags_of(pairs: &[(&'static str, &str)]) -> Flags {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    #[test]
    fn every_field_is_a_key_and_every_key_a_field() {
        let fields: Vec<String> = match toml::Value::try_from(Config {
            mongodb_password: Some(Secret::new("x")),
            mqtt_password: Some(Secret::new("x")),
            mongodb_password_file: Some("f".into()),
            mqtt_username: Some("u".into()),
            mqtt_password_file: Some("f".into()),
            mqtt_ca_file: Some("f".into()),
            mqtt_client_cert_file: Some("f".into()),
            mqtt_client_key_file: Some("f".into()),
            log_file: Some("f".into()),
            ..Config::default()
        }) {
            Ok(toml::Value::Table(t)) => t.keys().cloned().collect(),
            other => panic!("{other:?}"),
        };
        let mut names: Vec<String> = KEYS
            .iter()
            .filter(|k| !k.is_secret())
            .map(|k| k.name.to_string())
            .collect();
        names.sort();
        let mut fields = fields;
        fields.sort();
        assert_eq!(
            fields, names,
            "secrets are never serialized; every other field is"
        );
        for key in KEYS {
            // Each key is accepted by the file layer.
            let value = match key.kind {
                Kind::Whole => "7".to_string(),
                Kind::Days => "[1]".to_string(),
                Kind::KeyMap => "{ toggle = \"t\" }".to_string(),
                _ => "\"x\"".to_string(),
            };
            assert!(
                toml::from_str::<Config>(&format!("{} = {value}", key.name)).is_ok(),
                "{}",
                key.name
            );
            assert_eq!(key.flag().is_some(), key.flag && !key.is_secret());
        }
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file() {
        let f = file("campus = \"North\"\nmqtt_url = \"mqtt://file:1\"\ntheme = \"light\"\n");
        let env = env_of(&[
            ("AUTOVOLT_MQTT_URL", "mqtt://env:2"),
            ("AUTOVOLT_THEME", "high-contrast"),
        ]);
        let c = Config::resolve(Some(&f), &env, &flags_of(&[("theme", "dark")])).unwrap();
        assert_eq!(c.campus, "North");
        assert_eq!(c.source("campus"), Source::File(f.path.clone()));
        assert_eq!(c.mqtt_url, "mqtt://env:2");
        assert_eq!(
            c.source("mqtt_url"),
            Source::Env("AUTOVOLT_MQTT_URL".into())
        );
        assert_eq!(c.theme, "dark");
        assert_eq!(c.source("theme"), Source::Flag("--theme".into()));
        assert_eq!(c.timezone, "Asia/Kolkata");
        assert_eq!(c.source("timezone"), Source::Default);
        assert_eq!(c.file(), Some(f.path.as_path()));
    }

    #[test]
    fn every_key_can_be_set_from_the_environment() {
        let env = env_of(&[
            ("AUTOVOLT_CAMPUS", "North"),
            ("AUTOVOLT_MONGODB_URI", "mongodb://ops@db/x"),
            ("AUTOVOLT_MONGODB_PASSWORD", "pw"),
            ("AUTOVOLT_MQTT_URL", "mqtts://broker"),
            ("AUTOVOLT_MQTT_USERNAME", "tech"),
            ("AUTOVOLT_MQTT_PASSWORD", "pw2"),
            ("AUTOVOLT_MQTT_CA_FILE", "/ca.pem"),
            ("AUTOVOLT_MQTT_CLIENT_CERT_FILE", "/c.pem"),
            ("AUTOVOLT_MQTT_CLIENT_KEY_FILE", "/k.pem"),
            ("AUTOVOLT_TIMEZONE", "Europe/Paris"),
            ("AUTOVOLT_STALE_AFTER_SECS", "30"),
            ("AUTOVOLT_OFFLINE_AFTER_SECS", "60"),
            ("AUTOVOLT_TOGGLE_TIMEOUT_SECS", "9"),
            ("AUTOVOLT_AGGREGATE_AT", "01:30"),
            ("AUTOVOLT_LOCK_LEASE_SECS", "30"),
            ("AUTOVOLT_WASTE_NO_MOTION_MINUTES", "20"),
            ("AUTOVOLT_CAMPUS_HOURS", "09:00-17:00"),
            ("AUTOVOLT_CAMPUS_DAYS", "1, 2,3"),
            ("AUTOVOLT_THEME", "light"),
            ("AUTOVOLT_KEYS", "toggle=t, quit=x"),
            ("AUTOVOLT_LOG_FILE", "/var/log/av.log"),
            ("AUTOVOLT_RECONCILE_EVERY_SECS", "60"),
        ]);
        let c = Config::resolve(None, &env, &Flags::new()).unwrap();
        for key in KEYS.iter().filter(|k| !k.name.ends_with("_password_file")) {
            assert_eq!(c.source(key.name), Source::Env(key.env()), "{}", key.name);
        }
        assert_eq!(c.campus_days, vec![1, 2, 3]);
        assert_eq!(c.keys.get("quit").map(String::as_str), Some("x"));
        assert_eq!(c.stale_after_secs, 30);
        assert_eq!(c.mqtt_password.as_ref().map(Secret::expose), Some("pw2"));
        assert_eq!(c.mongodb_connection_uri(), "mongodb://ops:pw@db/x");
    }

    #[test]
    fn bad_values_are_named_by_where_they_were_given() {
        let e = Config::resolve(
            None,
            &env_of(&[("AUTOVOLT_OFFLINE_AFTER_SECS", "soon")]),
            &Flags::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("AUTOVOLT_OFFLINE_AFTER_SECS"), "{e}");
        for (var, value) in [
            ("AUTOVOLT_CAMPUS_DAYS", "1,8"),
            ("AUTOVOLT_KEYS", "toggle"),
            ("AUTOVOLT_LOCK_LEASE_SECS", "-1"),
        ] {
            let e = Config::resolve(None, &env_of(&[(var, value)]), &Flags::new()).unwrap_err();
            assert!(e.to_string().contains(var), "{e}");
        }
        let e = Config::resolve(
            None,
            &env_of(&[("AUTOVOLT_TIMEZONE", "Mars/Olympus")]),
            &Flags::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("timezone"), "{e}");
        assert!(Config::resolve(Some(&file("colour = 1")), &env_of(&[]), &Flags::new()).is_err());
        let e =
            Config::resolve(None, &env_of(&[]), &flags_of(&[("mqtt_password", "x")])).unwrap_err();
        assert!(e.to_string().contains("command line"), "{e}");
    }

    #[test]
    fn an_empty_variable_counts_as_not_set() {
        let c = Config::resolve(
            Some(&file("mqtt_url = \"mqtt://file:1\"")),
            &env_of(&[("AUTOVOLT_MQTT_URL", "")]),
            &Flags::new(),
        )
        .unwrap();
        assert_eq!(c.mqtt_url, "mqtt://file:1");
    }

    #[test]
    fn a_bad_file_is_described_without_its_values() {
        for text in [
            "campus = \"North\"\nmongodb_uri = \"mongodb://u:hunter2@h/db\n",
            "mongodb_uri = mongodb://u:hunter2@h/db\n",
            "lock_lease_secs = \"hunter2\"\n",
            "[mongodb_uri]\nhunter2 = 1\n",
            "mqtt_password = 7\nmqtt_username = \"hunter2\"\n",
        ] {
            let err = Config::resolve(Some(&file(text)), &env_of(&[]), &Flags::new())
                .unwrap_err()
                .to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
        let err = Config::resolve(Some(&file("colour = 1\n")), &env_of(&[]), &Flags::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn passwords_come_from_their_files_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let mqtt = dir.path().join("mqtt");
        let mongo = dir.path().join("mongo");
        std::fs::write(&mqtt, "hunter22\n").unwrap();
        std::fs::write(&mongo, "s3cr3t:/@\n").unwrap();
        let f = file(&format!(
            "mongodb_uri = \"mongodb://ops@db:27017/x?authMechanism=SCRAM-SHA-256\"\nmongodb_password_file = {:?}\nmqtt_url = \"mqtts://b\"\nmqtt_username = \"tech\"\n",
            mongo.display()
        ));
        let env = env_of(&[("AUTOVOLT_MQTT_PASSWORD_FILE", mqtt.to_str().unwrap())]);
        let c = Config::resolve(Some(&f), &env, &Flags::new()).unwrap();
        assert_eq!(
            c.mqtt_password.as_ref().map(Secret::expose),
            Some("hunter22")
        );
        assert_eq!(
            c.source("mqtt_password").to_string(),
            format!(
                "the file {} (named by AUTOVOLT_MQTT_PASSWORD_FILE)",
                mqtt.display()
            )
        );
        assert_eq!(
            c.mongodb_connection_uri(),
            "mongodb://ops:s3cr3t%3A%2F%40@db:27017/x?authMechanism=SCRAM-SHA-256"
        );
        let everything = format!("{c:?} {:?}", c.shown());
        assert!(!everything.contains("hunter22"), "{everything}");
        assert!(!everything.contains("s3cr3t"), "{everything}");
        let shown: BTreeMap<_, _> = c.shown().into_iter().map(|(k, v, _)| (k.name, v)).collect();
        assert_eq!(shown["mqtt_password"], REDACTED);
        assert_eq!(shown["mongodb_password"], REDACTED);
        assert_eq!(shown["mqtt_username"], "tech");
        assert!(shown["mqtt_ca_file"].is_null());

        // The password inside a URI is redacted too.
        let c = Config::resolve(
            None,
            &env_of(&[("AUTOVOLT_MONGODB_URI", "mongodb://ops:hunter22@db/x")]),
            &Flags::new(),
        )
        .unwrap();
        let shown: BTreeMap<_, _> = c.shown().into_iter().map(|(k, v, _)| (k.name, v)).collect();
        assert_eq!(shown["mongodb_uri"], "mongodb://ops:<redacted>@db/x");
    }

    #[test]
    fn settings_that_do_not_fit_together_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "hunter22\n").unwrap();
        let pw = pw.to_str().unwrap();
        let refused = |pairs: &[(&str, &str)], says: &str| {
            let e = Config::resolve(None, &env_of(pairs), &Flags::new())
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{pairs:?}: {e}");
            assert!(!e.contains("hunter22"), "{e}");
        };
        refused(&[("AUTOVOLT_MQTT_PASSWORD", "hunter22")], "no user");
        refused(
            &[
                ("AUTOVOLT_MQTT_USERNAME", "u"),
                ("AUTOVOLT_MQTT_PASSWORD", "hunter22"),
                ("AUTOVOLT_MQTT_PASSWORD_FILE", pw),
            ],
            "both set",
        );
        refused(&[("AUTOVOLT_MQTT_CA_FILE", "/ca.pem")], "not TLS");
        refused(
            &[
                ("AUTOVOLT_MQTT_URL", "mqtts://b"),
                ("AUTOVOLT_MQTT_CLIENT_CERT_FILE", "/c.pem"),
            ],
            "mqtt_client_key_file",
        );
        refused(&[("AUTOVOLT_MONGODB_PASSWORD_FILE", pw)], "names no user");
        refused(
            &[
                ("AUTOVOLT_MONGODB_URI", "mongodb://ops:hunter22@db/x"),
                ("AUTOVOLT_MONGODB_PASSWORD", "other"),
            ],
            "keep one",
        );
        refused(
            &[
                ("AUTOVOLT_MQTT_USERNAME", "u"),
                ("AUTOVOLT_MQTT_PASSWORD_FILE", "/nonexistent/pw"),
            ],
            "cannot read the password file",
        );
    }

    fn layer_value() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[a-z]{1,8}")
    }

    proptest! {
        /// For any text key and any choice of layers setting it, the value is the highest
        /// layer's, and the source says which layer that was.
        #[test]
        fn the_highest_layer_wins(
            name in proptest::sample::select(vec!["campus", "campus_hours", "theme"]),
            in_file in layer_value(),
            in_env in layer_value(),
            in_flag in layer_value(),
        ) {
            // Free-text keys, with and without a flag (the others are checked for their form).
            let key = super::key(name).unwrap();
            let text = in_file.as_ref().map(|v| format!("{} = {v:?}\n", key.name)).unwrap_or_default();
            let f = file(&text);
            let var = key.env();
            let env_value = in_env.clone();
            let env = move |k: &str| if k == var { env_value.clone() } else { None };
            let mut flags = Flags::new();
            if let (Some(v), true) = (&in_flag, key.flag) {
                flags.insert(key.name, v.clone());
            }
            let c = Config::resolve(Some(&f), &env, &flags).unwrap();
            let value = serde_json::to_value(&c).unwrap()[key.name].clone();
            let (expected, source) = match (&in_flag, &in_env, &in_file) {
                (Some(v), _, _) if key.flag => (v.clone(), Source::Flag(key.flag().unwrap())),
                (_, Some(v), _) => (v.clone(), Source::Env(key.env())),
                (_, _, Some(v)) => (v.clone(), Source::File(f.path.clone())),
                _ => (serde_json::to_value(Config::default()).unwrap()[key.name].as_str().unwrap().to_string(), Source::Default),
            };
            prop_assert_eq!(value.as_str(), Some(expected.as_str()));
            prop_assert_eq!(c.source(key.name), source);
        }
    }
}
