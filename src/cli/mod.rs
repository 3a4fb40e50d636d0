//! The command line: one grammar for every subcommand, input checked before any work, and one
//! function for the exit codes (see [`exit`]).
//!
//! The subcommands are grouped by what they work on; each group parses its own arguments.

pub mod books;
pub mod dashboard;
pub mod data;
pub mod demo;
pub mod exit;
pub mod export;
pub mod firmware;
pub mod generate;
pub mod input;
pub mod live;
pub mod schedule;
pub mod settings;
mod switch_log;
pub mod users;

use crate::config::Config;
use crate::domain::Actor;
use crate::store::{Store, StoreError, DEFAULT_SELECTION_TIMEOUT};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use exit::Failure;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "autovolt",
    version = env!("AUTOVOLT_VERSION"),
    about = "AutoVolt control: classroom relays, energy books and a live dashboard",
    after_help = "Exit codes: 0 all well, 1 found or refused something, 2 a server or the input cannot be used."
)]
pub struct Cli {
    /// Configuration file (default: $XDG_CONFIG_HOME/autovolt/config.toml).
    #[arg(long, global = true, env = "AUTOVOLT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub config_flags: settings::ConfigFlags,
    /// Print the result as JSON (one document on stdout) for scripts.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who acts, for the activity log (default: $USER, else $LOGNAME, else the system account).
    #[arg(long = "as", value_name = "NAME", global = true, env = "AUTOVOLT_OPERATOR", value_parser = input::name)]
    pub operator: Option<String>,
    /// Say more: the full cause of an error, and informational logs.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Log lines on stderr as text, or as one JSON object a line (for a log collector).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t,
        env = "AUTOVOLT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Data(data::DataCommand),
    #[command(flatten)]
    Books(books::BooksCommand),
    #[command(flatten)]
    Dashboard(dashboard::DashboardCommand),
    #[command(flatten)]
    Live(live::LiveCommand),
    #[command(flatten)]
    Generate(generate::GenerateCommand),
    #[command(flatten)]
    Settings(settings::SettingsCommand),
    #[command(flatten)]
    Schedule(schedule::ScheduleCommand),
    #[command(flatten)]
    Users(users::UsersCommand),
    #[command(flatten)]
    Firmware(firmware::FirmwareCommand),
    #[command(flatten)]
    Export(export::ExportCommand),
}

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Parses the command line and checks what can be checked without a server. `Err` carries the
/// exit code and the message clap or the checks gave (help and `--version` are code 0).
pub fn parse<I, T>(args: I) -> Result<Cli, Failure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let matches = Cli::command().try_get_matches_from(args).map_err(|e| {
        let code = if e.use_stderr() { exit::UNUSABLE } else { 0 };
        // What was typed is echoed, but never a control character a terminal would act on.
        let message = e
            .render()
            .to_string()
            .chars()
            .map(|c| match c {
                '\n' => c.to_string(),
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect();
        Failure {
            code,
            message,
            detail: None,
            from_clap: true,
        }
    })?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| Failure::unusable(e.to_string()))?;
    if cli.command.is_none() && cli.json {
        return Err(Failure::unusable(
            "--json is for commands that print a result; `autovolt` alone opens the dashboard",
        ));
    }
    if let Some(c) = &cli.command {
        match c {
            Command::Books(b) => b.check()?,
            Command::Data(d) => d.check()?,
            Command::Export(e) => e.check()?,
            Command::Users(u) => u.check()?,
            Command::Firmware(f) => f.check()?,
            Command::Live(_)
            | Command::Dashboard(_)
            | Command::Generate(_)
            | Command::Settings(_)
            | Command::Schedule(_) => {}
        }
        if cli.json && !c.speaks_json() {
            return Err(Failure::unusable(
                "--json is for commands that print a result; the dashboard does not",
            ));
        }
    }
    Ok(cli)
}

impl Cli {
    /// The configuration keys this command line sets.
    pub fn flags(&self) -> crate::config::Flags {
        let mut flags = self.config_flags.to_flags();
        if let Some(Command::Dashboard(d)) = &self.command {
            flags.extend(d.config_flags());
        }
        flags
    }
}

impl Command {
    fn speaks_json(&self) -> bool {
        match self {
            Command::Dashboard(_) | Command::Generate(_) => false,
            // The daemons' result is the summary they print when they stop.
            Command::Data(_)
            | Command::Books(_)
            | Command::Live(_)
            | Command::Settings(_)
            | Command::Schedule(_)
            | Command::Users(_)
            | Command::Firmware(_)
            | Command::Export(_) => true,
        }
    }

    fn is_daemon(&self) -> bool {
        matches!(self, Command::Live(l) if l.is_daemon())
    }
}

/// What every command is given: the configuration and how to speak.
pub struct Ctx {
    pub config: Config,
    pub json: bool,
    pub verbose: bool,
    /// `--as`, as typed (checked again, with its fallbacks, by [`Ctx::operator`]).
    pub operator: Option<String>,
}

impl Ctx {
    pub fn tz(&self) -> Result<chrono_tz::Tz, Failure> {
        self.config.tz().map_err(Failure::from)
    }

    /// Who acts: `--as`, else `$USER`, `$LOGNAME`, the system account.
    pub fn operator(&self) -> Result<String, Failure> {
        input::operator(self.operator.clone()).map_err(Failure::from)
    }

    /// Who acts from the command line: the operator's name, with the database's own authority
    /// (whoever holds its credentials can write it directly anyway).
    pub fn actor(&self) -> Result<Actor, Failure> {
        self.operator().map(Actor::at_database)
    }

    /// How to get into the broker, from the configuration.
    pub fn broker_access(&self) -> crate::mqtt::connection::BrokerAccess {
        self.config.broker_access()
    }

    /// Connects, saying where the URI (and the password, if it has its own key) came from when
    /// that fails.
    pub async fn connect(&self) -> Result<Store, Failure> {
        let uri = self.config.mongodb_connection_uri();
        let tz = self.config.tz().unwrap_or(crate::store::DEFAULT_TIMEZONE);
        Store::connect(&uri, DEFAULT_SELECTION_TIMEOUT)
            .await
            .map(|s| {
                s.with_lock_lease(self.config.lock_lease())
                    .with_timezone(tz)
            })
            .map_err(|e| {
                let mut f = Failure::from(e);
                let password = match self.config.mongodb_password {
                    Some(_) => format!(
                        "; the password comes from {}",
                        self.config.source("mongodb_password")
                    ),
                    None => String::new(),
                };
                f.message = format!(
                    "{} (the URI comes from {}{password})",
                    f.message,
                    self.config.source("mongodb_uri")
                );
                f
            })
    }

    /// Connects to a database that has a schema: a database at version 0 (never migrated, or a
    /// typo in its name) is named as such, before anything reads or writes it.
    pub async fn open(&self) -> Result<Store, Failure> {
        let store = self.connect().await?;
        match store.require_schema().await {
            Ok(_) => Ok(store),
            Err(e) => {
                store.close().await;
                let no_schema = matches!(e, StoreError::NoSchema { .. });
                let mut f = Failure::from(e);
                if no_schema {
                    f.message = format!(
                        "{} (the URI comes from {})",
                        f.message,
                        self.config.source("mongodb_uri")
                    );
                }
                Err(f)
            }
        }
    }

    /// Prints a result: `json` with `--json`, else the text.
    pub fn show(&self, json: serde_json::Value, text: impl FnOnce() -> String) {
        let out = if self.json {
            serde_json::to_string_pretty(&json).unwrap_or_else(|_| "null".into())
        } else {
            text()
        };
        if !out.is_empty() {
            say(&out);
        }
    }

    /// A time as people here read it: campus time, with the zone named.
    pub fn time(&self, t: crate::domain::Instant) -> String {
        let tz = self.config.tz().unwrap_or(chrono_tz::Asia::Kolkata);
        crate::domain::dates::campus_time(t, tz)
    }
}

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn say(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Asks before something that cannot be undone. On a terminal the person answers; elsewhere
/// `--yes` must have been given. A "no" is a refusal (exit 1).
pub fn confirm(question: &str, yes: bool) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(Failure::unusable(format!(
            "{question}: not on a terminal, so nothing was done; add --yes to go ahead"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::refused("not confirmed; nothing was done"))
    }
}

/// Logs to stderr: the daemons at `info`, one-shot commands at `warn` (`-v`: `info`), unless
/// `RUST_LOG` says otherwise; as text (colour only on a terminal) or as JSON lines.
pub fn init_stderr_logging(daemon: bool, verbose: bool, format: LogFormat) {
    let default = if daemon || verbose {
        "info,rumqttc=warn,mongodb=warn"
    } else {
        "warn,rumqttc=error,mongodb=error"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(format == LogFormat::Text && std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => logger.try_init(),
        // The event's fields at the top level, where log collectors look for them.
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The whole program: parse, load the configuration, run, and turn the outcome into an exit code.
pub fn main<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse(args) {
        Ok(c) => c,
        Err(f) => return exit::finish(Err(f), false),
    };
    let verbose = cli.verbose;
    // Generated from the grammar alone: no configuration to load, nothing to connect to.
    if let Some(Command::Generate(g)) = &cli.command {
        return exit::finish(generate::write(g, &mut std::io::stdout().lock()), verbose);
    }
    let config = match Config::load(cli.config.as_deref(), &cli.flags()) {
        Ok(c) => c,
        Err(e) => return exit::finish(Err(e.into()), verbose),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            return exit::finish(
                Err(Failure::unusable(format!(
                    "cannot start the async runtime: {e}"
                ))),
                verbose,
            )
        }
    };
    if let Some(c) = &cli.command {
        if !matches!(c, Command::Dashboard(_)) {
            init_stderr_logging(c.is_daemon(), verbose, cli.log_format);
        }
    }
    let ctx = Ctx {
        config,
        json: cli.json,
        verbose,
        operator: cli.operator,
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Data(c)) => data::run(c, &ctx).await,
            Some(Command::Books(c)) => books::run(c, &ctx).await,
            Some(Command::Dashboard(c)) => dashboard::run(c, &ctx).await,
            Some(Command::Live(c)) => live::run(c, &ctx).await,
            Some(Command::Generate(g)) => generate::write(&g, &mut std::io::stdout().lock()),
            Some(Command::Settings(c)) => settings::run(c, &ctx).await,
            Some(Command::Schedule(c)) => schedule::run(c, &ctx).await,
            Some(Command::Users(c)) => users::run(c, &ctx).await,
            Some(Command::Firmware(c)) => firmware::run(c, &ctx).await,
            Some(Command::Export(c)) => export::run(c, &ctx).await,
            None => dashboard::dashboard(dashboard::DashboardArgs::from_env(), &ctx).await,
        }
    });
    // Background tasks (the driver's monitors) stop here, not while the runtime is dropped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    exit::finish(result, verbose)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Words the parser knows, so that generated command lines reach the commands' own checks.
    const WORDS: &[&str] = &[
        "health",
        "migrate",
        "up",
        "down",
        "status",
        "unlock",
        "seed",
        "backup",
        "restore",
        "prune-telemetry",
        "devices",
        "list",
        "unregistered",
        "tariff",
        "set",
        "show",
        "history",
        "cancel",
        "aggregate",
        "audit",
        "toggle",
        "rejected",
        "replay",
        "simulate",
        "collect",
        "tui",
        "demo",
        "--json",
        "--as",
        "--yes",
        "--from",
        "--to",
        "--date",
        "--month",
        "--yesterday",
        "--scope",
        "--note",
        "--classrooms",
        "--devices-per-classroom",
        "--seed",
        "--older-than-days",
        "--dry-run",
        "--out",
        "--drop",
        "--limit",
        "--device",
        "--switch",
        "--on",
        "--off",
        "--devices",
        "--rate",
        "--report-secs",
        "--classroom",
        "--break-lock",
        "--group",
        "--metrics",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "completions",
        "bash",
        "man",
        "-v",
        "7.50",
        "0",
        "1e-300",
        "4294967295",
        "-1",
        "2026-12-01",
        "0001-01-01",
        "9999-12-31",
        "2026-13",
        "global",
        "classroom:CS-101",
        "device:AA:BB:CC:DD:EE:FF",
        "\u{1b}[31m",
        "",
        " ",
    ];

    fn arg() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => proptest::sample::select(WORDS).prop_map(str::to_string),
            1 => ".{0,12}",
            1 => "[0-9]{1,25}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever is typed: no panic, and either a command line whose values are all within
        /// their ranges or exit 2 with a message (0 only for help and the version).
        #[test]
        fn no_command_line_panics_or_goes_unanswered(args in proptest::collection::vec(arg(), 0..7)) {
            let argv = std::iter::once("autovolt".to_string()).chain(args);
            match parse(argv) {
                Ok(cli) => {
                    if let Some(Command::Data(data::DataCommand::Seed { classrooms, devices_per_classroom, .. })) = &cli.command {
                        prop_assert!(*classrooms <= input::MAX_SEED_CLASSROOMS);
                        prop_assert!(*devices_per_classroom <= input::MAX_SEED_BOARDS_PER_CLASSROOM);
                    }
                    if let Some(op) = &cli.operator {
                        prop_assert!(!op.is_empty() && !op.chars().any(char::is_control));
                    }
                }
                Err(f) => {
                    prop_assert!(!f.message.trim().is_empty());
                    prop_assert!(f.code == exit::UNUSABLE || (f.code == 0 && f.from_clap));
                }
            }
        }
    }

    #[test]
    fn the_documented_mistakes_are_refused_before_any_work() {
        let refused = |args: &[&str]| {
            let argv = std::iter::once("autovolt").chain(args.iter().copied());
            match parse(argv) {
                Ok(c) => panic!("{args:?} was accepted: {c:?}"),
                Err(f) => {
                    assert_eq!(f.code, exit::UNUSABLE, "{args:?}: {}", f.message);
                    f.message
                }
            }
        };
        refused(&["prune-telemetry", "--older-than-days", "4294967295"]);
        refused(&["prune-telemetry", "--older-than-days", "0"]);
        refused(&[
            "seed",
            "--classrooms",
            "100000",
            "--devices-per-classroom",
            "1000",
        ]);
        refused(&["aggregate", "--from", "0001-01-01", "--to", "9999-12-31"]);
        refused(&["aggregate", "--from", "2026-12-02", "--to", "2026-12-01"]);
        refused(&["aggregate", "--from", "2000-01-01", "--to", "2026-12-01"]);
        refused(&["tariff", "set", "1e-300"]);
        refused(&["tariff", "set", "7.125"]);
        for raw in ["\u{1b}[31mred", "a\u{7}b", "x\ry", "\u{9b}31m"] {
            let m = refused(&["tariff", "set", "8", "--as", raw]);
            assert!(
                !m.chars().any(|c| c.is_control() && c != '\n'),
                "no control character is echoed raw: {m:?}"
            );
        }
        refused(&["tariff", "set", "8", "--note", "a\u{7}bell"]);
        refused(&["tariff", "set", "8", "--from", "9999-12-31"]);
        refused(&[
            "toggle",
            "--device",
            "AA:BB:CC:DD:EE:FF",
            "--switch",
            "x",
            "--on",
            "--json",
            "--as",
            "",
        ]);
        refused(&["tui", "--json"]);
        refused(&["--json"]);
        refused(&["collect", "--metrics", "localhost:9464"]);
        refused(&["collect", "--metrics", "127.0.0.1"]);
        refused(&["collect", "--log-format", "xml"]);
        refused(&["completions", "tcsh"]);
        assert!(parse(["autovolt", "collect", "--json", "--metrics", "[::1]:0"]).is_ok());
        assert!(parse(["autovolt", "tariff", "set", "7.50", "--as", "priya"]).is_ok());
    }
}
