//! Configuration: a TOML file in the XDG config directory, overridden by `AUTOVOLT_*` environment
//! variables, overridden by command-line flags. A missing file is not an error.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the commands read. Field names are the TOML keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The campus's name, shown in the dashboard's header.
    pub campus: String,
    /// `mongodb://…`; the database is the URI's path (default `autovolt`).
    pub mongodb_uri: String,
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub mqtt_url: String,
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
    pub keys: std::collections::BTreeMap<String, String>,
    /// Where the dashboard writes its log (default: the XDG state directory).
    pub log_file: Option<PathBuf>,
    /// Seconds between two reconciliations of a dashboard's totals with the ledger (stretched so
    /// that reconciling takes at most 5 % of the time).
    pub reconcile_every_secs: u64,
    /// Where `mongodb_uri` came from ("the default", "AUTOVOLT_MONGODB_URI", …), for errors.
    #[serde(skip)]
    pub mongodb_uri_source: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            campus: "Main Campus".into(),
            mongodb_uri: "mongodb://127.0.0.1:27017/autovolt".into(),
            mqtt_url: "mqtt://127.0.0.1:1883".into(),
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
            mongodb_uri_source: "the default".into(),
        }
    }
}

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
    let message = e.message().lines().next().unwrap_or_default();
    // "invalid type: string \"hunter2\", expected u64": keep only what was expected.
    let message = match message.split_once(", expected ") {
        Some((found, expected)) if found.starts_with("invalid") => {
            format!("the value has the wrong type; expected {expected}")
        }
        _ if message.contains('"')
            || message.contains('`') && !message.starts_with("unknown field") =>
        {
            "not valid TOML here".to_string()
        }
        _ => message.to_string(),
    };
    format!("{at}{message}")
}

/// The default config file: `$XDG_CONFIG_HOME/autovolt/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autovolt").join("config.toml"))
}

impl Config {
    /// Loads the file (if any), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path.map(Path::to_path_buf).or_else(default_path) {
            Some(p) if p.exists() => Self::from_file(&p)?,
            Some(p) if path.is_some() => {
                return Err(ConfigError::Read {
                    path: p,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                })
            }
            _ => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.check()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_message(&text, &e),
        })?;
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("mongodb_uri"))
        {
            config.mongodb_uri_source = format!("the config file {}", path.display());
        }
        Ok(config)
    }

    /// Applies `AUTOVOLT_*` variables (read through `get`, so tests need not touch the process).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn num(name: &str, v: &str) -> Result<u64, ConfigError> {
            v.trim().parse().map_err(|_| ConfigError::Value {
                name: name.into(),
                value: v.into(),
                rule: "must be a whole number".into(),
            })
        }
        if let Some(v) = get("AUTOVOLT_CAMPUS") {
            self.campus = v;
        }
        if let Some(v) = get("AUTOVOLT_MONGODB_URI") {
            self.mongodb_uri = v;
            self.mongodb_uri_source = "AUTOVOLT_MONGODB_URI".into();
        }
        if let Some(v) = get("AUTOVOLT_MQTT_URL") {
            self.mqtt_url = v;
        }
        if let Some(v) = get("AUTOVOLT_TIMEZONE") {
            self.timezone = v;
        }
        if let Some(v) = get("AUTOVOLT_THEME") {
            self.theme = v;
        }
        if let Some(v) = get("AUTOVOLT_OFFLINE_AFTER_SECS") {
            self.offline_after_secs = num("AUTOVOLT_OFFLINE_AFTER_SECS", &v)?;
        }
        if let Some(v) = get("AUTOVOLT_TOGGLE_TIMEOUT_SECS") {
            self.toggle_timeout_secs = num("AUTOVOLT_TOGGLE_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("AUTOVOLT_LOCK_LEASE_SECS") {
            self.lock_lease_secs = num("AUTOVOLT_LOCK_LEASE_SECS", &v)?;
        }
        if let Some(v) = get("AUTOVOLT_LOG_FILE") {
            self.log_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("AUTOVOLT_RECONCILE_EVERY_SECS") {
            self.reconcile_every_secs = num("AUTOVOLT_RECONCILE_EVERY_SECS", &v)?;
        }
        Ok(())
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
        Ok(())
    }

    /// How long a lock stays held without renewal.
    pub fn lock_lease(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lock_lease_secs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file() {
        let mut c: Config =
            toml::from_str("campus = \"North\"\nmqtt_url = \"mqtt://a:1\"").unwrap();
        assert_eq!(c.campus, "North");
        assert_eq!(c.timezone, "Asia/Kolkata");
        c.apply_env(|k| (k == "AUTOVOLT_MQTT_URL").then(|| "mqtt://b:2".to_string()))
            .unwrap();
        assert_eq!(c.mqtt_url, "mqtt://b:2");
        assert_eq!(c.campus, "North");
    }

    #[test]
    fn bad_values_are_named() {
        let mut c = Config::default();
        let err = c
            .apply_env(|k| (k == "AUTOVOLT_OFFLINE_AFTER_SECS").then(|| "soon".into()))
            .unwrap_err();
        assert!(err.to_string().contains("AUTOVOLT_OFFLINE_AFTER_SECS"));
        c.timezone = "Mars/Olympus".into();
        assert!(c.check().unwrap_err().to_string().contains("timezone"));
        assert!(toml::from_str::<Config>("colour = 1").is_err());
    }

    #[test]
    fn a_bad_file_is_described_without_its_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for text in [
            "campus = \"North\"\nmongodb_uri = \"mongodb://u:hunter2@h/db\n",
            "mongodb_uri = mongodb://u:hunter2@h/db\n",
            "lock_lease_secs = \"hunter2\"\n",
            "[mongodb_uri]\nhunter2 = 1\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Config::from_file(&path).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
        std::fs::write(&path, "colour = 1\n").unwrap();
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
        std::fs::write(&path, "mongodb_uri = \"mongodb://h/x\"\n").unwrap();
        assert!(Config::from_file(&path)
            .unwrap()
            .mongodb_uri_source
            .contains("config file"));
    }
}
