//! `autovolt`: parse the command line, load the configuration, dispatch.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "autovolt",
    version,
    about = "AutoVolt control: classroom relays, energy books and a live dashboard"
)]
struct Cli {
    /// Configuration file (default: $XDG_CONFIG_HOME/autovolt/config.toml).
    #[arg(long, global = true, env = "AUTOVOLT_CONFIG")]
    config: Option<PathBuf>,
    /// MongoDB URI; the database is its path (default `autovolt`). Prefer the environment for
    /// URIs with a password, which `ps` would otherwise show.
    #[arg(
        long,
        global = true,
        env = "AUTOVOLT_MONGODB_URI",
        hide_env_values = true
    )]
    mongodb_uri: Option<String>,
    /// MQTT broker, `mqtt://host:port` or `mqtts://host:port`.
    #[arg(long, global = true, env = "AUTOVOLT_MQTT_URL", hide_env_values = true)]
    mqtt_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Data(autovolt::cli::data::DataCommand),
    #[command(flatten)]
    Books(autovolt::cli::books::BooksCommand),
    #[command(flatten)]
    Dashboard(autovolt::cli::dashboard::DashboardCommand),
    #[command(flatten)]
    Live(autovolt::cli::live::LiveCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match autovolt::config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("autovolt: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(uri) = cli.mongodb_uri {
        config.mongodb_uri = uri;
    }
    if let Some(url) = cli.mqtt_url {
        config.mqtt_url = url;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("autovolt: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Some(Command::Data(c)) => autovolt::cli::data::run(c, &config).await,
            Some(Command::Books(c)) => autovolt::cli::books::run(c, &config).await,
            Some(Command::Dashboard(c)) => autovolt::cli::dashboard::run(c, &config).await,
            Some(Command::Live(c)) => autovolt::cli::live::run(c, &config).await,
            None => {
                autovolt::cli::dashboard::dashboard(
                    autovolt::cli::dashboard::DashboardArgs::from_env(),
                    &config,
                )
                .await
            }
        }
    });
    ExitCode::from(code as u8)
}
