//! The configuration on the command line: the flags that set configuration keys, and
//! `autovolt config show`, which prints the effective configuration, where each value came from,
//! and no secret.

use super::exit::{Failure, OK};
use super::Ctx;
use crate::config::{Flags, Source};
use crate::domain::secret::REDACTED;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

/// Flags that set configuration keys, for every command. Each beats the key's environment
/// variable and the config file. There is no flag for a password: `ps` would show it.
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigFlags {
    /// MongoDB URI (`mongodb_uri`); the database is its path (default `autovolt`). Give the
    /// password with AUTOVOLT_MONGODB_PASSWORD_FILE rather than in a URI here.
    #[arg(long, global = true, value_name = "URI")]
    pub mongodb_uri: Option<String>,
    /// File holding the password of the URI's user (`mongodb_password_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub mongodb_password_file: Option<PathBuf>,
    /// MQTT broker, `mqtt://host:port` or `mqtts://host:port` (`mqtt_url`).
    #[arg(long, global = true, value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// User name at the broker (`mqtt_username`).
    #[arg(long, global = true, value_name = "NAME")]
    pub mqtt_username: Option<String>,
    /// File holding that user's password (`mqtt_password_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM file of the CA that signed the broker's certificate (`mqtt_ca_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// PEM client certificate for brokers that require one (`mqtt_client_cert_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub mqtt_client_cert_file: Option<PathBuf>,
    /// PEM key of that certificate (`mqtt_client_key_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub mqtt_client_key_file: Option<PathBuf>,
    /// Where the dashboard writes its log (`log_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

impl ConfigFlags {
    /// The keys these flags set, for [`crate::config::Config::resolve`].
    pub fn to_flags(&self) -> Flags {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        [
            ("mongodb_uri", self.mongodb_uri.clone()),
            ("mongodb_password_file", path(&self.mongodb_password_file)),
            ("mqtt_url", self.mqtt_url.clone()),
            ("mqtt_username", self.mqtt_username.clone()),
            ("mqtt_password_file", path(&self.mqtt_password_file)),
            ("mqtt_ca_file", path(&self.mqtt_ca_file)),
            ("mqtt_client_cert_file", path(&self.mqtt_client_cert_file)),
            ("mqtt_client_key_file", path(&self.mqtt_client_key_file)),
            ("log_file", path(&self.log_file)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// The configuration: every key, its value and where it came from.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the effective configuration: each key's value (passwords as <redacted>) and which
    /// layer set it (a flag, the environment, the config file, or the default).
    Show,
}

pub async fn run(command: SettingsCommand, ctx: &Ctx) -> Result<i32, Failure> {
    match command {
        SettingsCommand::Config {
            action: ConfigAction::Show,
        } => {
            show(ctx);
            Ok(OK)
        }
    }
}

fn show(ctx: &Ctx) {
    let config = &ctx.config;
    let file = match config.file() {
        Some(p) => json!({"path": p.display().to_string(), "read": true}),
        None => json!({
            "path": crate::config::default_path().map(|p| p.display().to_string()),
            "read": false,
        }),
    };
    let shown = config.shown();
    let keys: Vec<_> = shown
        .iter()
        .map(|(key, value, source)| {
            json!({
                "key": key.name,
                "value": value,
                "source": source.to_string(),
                "layer": layer(source),
                "env": key.env(),
                "flag": key.flag(),
                "secret": key.is_secret(),
            })
        })
        .collect();
    ctx.show(json!({"config_file": file, "keys": keys}), || {
        let mut lines = vec![match config.file() {
            Some(p) => format!("# config file: {}", p.display()),
            None => match crate::config::default_path() {
                Some(p) => format!("# config file: none ({} does not exist)", p.display()),
                None => "# config file: none".to_string(),
            },
        }];
        let width = shown
            .iter()
            .map(|(k, _, _)| k.name.len())
            .max()
            .unwrap_or(0);
        for (key, value, source) in &shown {
            let name = key.name;
            lines.push(match toml_text(value) {
                Some(v) => format!("{name:width$} = {v}  # {source}"),
                None => format!("# {name:width$} is not set"),
            });
        }
        lines.join("\n")
    });
}

/// Which layer a source is, in one word for scripts.
fn layer(source: &Source) -> &'static str {
    match source {
        Source::Default => "default",
        Source::File(_) => "file",
        Source::Env(_) => "env",
        Source::Flag(_) => "flag",
        Source::ReadFrom { named_by, .. } => layer(named_by),
        Source::Program(_) => "program",
    }
}

/// A value as TOML would write it (`None` when unset).
fn toml_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s == REDACTED => Some(REDACTED.to_string()),
        v => toml::Value::try_from(v).ok().map(|t| t.to_string()),
    }
}
