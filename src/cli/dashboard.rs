//! The dashboard commands: `autovolt` / `autovolt tui` and `autovolt demo`.

use super::exit::{Failure, OK};
use super::Ctx;
use crate::config::Source;
use crate::tui::runtime::{self, Options};
use clap::{Args, Subcommand};

#[derive(Args, Debug, Clone, Default)]
pub struct DashboardArgs {
    /// Watch only: never send a relay command, a tariff or an aggregation (wall displays).
    #[arg(long, env = "AUTOVOLT_READ_ONLY")]
    pub read_only: bool,
    /// Colour theme: dark, light, high-contrast, or a path to a theme TOML file (the `theme`
    /// key, also AUTOVOLT_THEME).
    #[arg(long)]
    pub theme: Option<String>,
    /// ASCII symbols and borders only, for old consoles.
    #[arg(long, env = "AUTOVOLT_ASCII")]
    pub ascii: bool,
}

impl DashboardArgs {
    /// The options from the environment alone, for `autovolt` without a subcommand.
    pub fn from_env() -> DashboardArgs {
        use clap::FromArgMatches;
        DashboardArgs::augment_args(clap::Command::new("autovolt"))
            .try_get_matches_from(["autovolt"])
            .ok()
            .and_then(|m| DashboardArgs::from_arg_matches(&m).ok())
            .unwrap_or_default()
    }

    fn options(&self) -> Options {
        Options {
            read_only: self.read_only,
            ascii: self.ascii,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DashboardCommand {
    /// The live dashboard (also what `autovolt` alone opens).
    Tui(DashboardArgs),
    /// Everything on one machine: embedded broker, a private FerretDB (unless AUTOVOLT_MONGODB_URI
    /// is set), a seeded campus, the simulated fleet, the collector and the dashboard.
    Demo(DashboardArgs),
}

impl DashboardCommand {
    /// The options of this command that are configuration keys (`--theme`).
    pub fn config_flags(&self) -> Option<(&'static str, String)> {
        match self {
            DashboardCommand::Tui(a) | DashboardCommand::Demo(a) => {
                a.theme.clone().map(|t| ("theme", t))
            }
        }
    }
}

pub async fn run(command: DashboardCommand, ctx: &Ctx) -> Result<i32, Failure> {
    let config = &ctx.config;
    match command {
        DashboardCommand::Tui(args) => dashboard(args, ctx).await,
        DashboardCommand::Demo(args) => {
            // Only a URI the user gave replaces the demo's own FerretDB.
            let uri = (config.source("mongodb_uri") != Source::Default)
                .then(|| config.mongodb_connection_uri());
            crate::tui::demo::run(config, args.options(), uri)
                .await
                .map(|()| OK)
                .map_err(|e| Failure::unusable(format!("demo: {e:#}")))
        }
    }
}

/// Opens the dashboard; errors after the terminal is restored go to stderr.
pub async fn dashboard(args: DashboardArgs, ctx: &Ctx) -> Result<i32, Failure> {
    runtime::run(&ctx.config, args.options())
        .await
        .map(|()| OK)
        .map_err(|e| Failure::unusable(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bare_command_reads_the_environment() {
        std::env::set_var("AUTOVOLT_READ_ONLY", "true");
        std::env::set_var("AUTOVOLT_ASCII", "false");
        let args = DashboardArgs::from_env();
        std::env::remove_var("AUTOVOLT_READ_ONLY");
        std::env::remove_var("AUTOVOLT_ASCII");
        assert!(args.read_only);
        assert!(!args.ascii);
        assert!(!DashboardArgs::from_env().read_only);
    }
}
