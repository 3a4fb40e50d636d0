//! The dashboard commands: `autovolt` / `autovolt tui` and `autovolt demo`.

use super::exit::{Failure, OK};
use super::{confirm, Ctx};
use crate::config::Source;
use crate::domain::uri::redacted_uri;
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

    /// The session's options; its operator is the command line's (`--as`, AUTOVOLT_OPERATOR,
    /// `$USER`, …), who acts when the database has no users.
    fn options(&self, ctx: &Ctx) -> Result<Options, Failure> {
        Ok(Options {
            read_only: self.read_only,
            ascii: self.ascii,
            operator: ctx.actor()?,
        })
    }
}

#[derive(Args, Debug, Clone, Default)]
pub struct DemoArgs {
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// Do not ask before writing the simulated campus into the database AUTOVOLT_MONGODB_URI
    /// names (for scripts); the demo's own FerretDB needs no asking.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Subcommand, Debug)]
pub enum DashboardCommand {
    /// The live dashboard (also what `autovolt` alone opens).
    Tui(DashboardArgs),
    /// Everything on one machine: embedded broker, a private FerretDB (unless AUTOVOLT_MONGODB_URI
    /// is set: then it asks first), a seeded campus, the simulated fleet, the collector and the
    /// dashboard.
    Demo(DemoArgs),
}

impl DashboardCommand {
    /// The options of this command that are configuration keys (`--theme`).
    pub fn config_flags(&self) -> Option<(&'static str, String)> {
        match self {
            DashboardCommand::Tui(a) | DashboardCommand::Demo(DemoArgs { dashboard: a, .. }) => {
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
            // Only a URI the user gave replaces the demo's own FerretDB; the demo did not create
            // that database, so it writes its simulated campus there only when told to.
            let uri = (config.source("mongodb_uri") != Source::Default)
                .then(|| config.mongodb_connection_uri());
            let foreign = uri.as_deref().map(|u| {
                format!(
                    "{}, given by {}",
                    redacted_uri(u),
                    config.source("mongodb_uri")
                )
            });
            // Nothing runs without a terminal: say so first, with the question it would ask.
            if let Err(why) = crate::tui::terminal::available("the demo") {
                let asks = match &foreign {
                    Some(db) => {
                        format!("; on one it asks before writing into {db} (--yes: without asking)")
                    }
                    None => String::new(),
                };
                return Err(Failure::unusable(format!("{why}{asks}")));
            }
            if let Some(db) = &foreign {
                confirm(
                    &format!(
                        "write the demo's simulated campus (boards, telemetry, a demo collector) into {db}, instead of the demo's own FerretDB"
                    ),
                    args.yes,
                )?;
            }
            super::demo::run(config, args.dashboard.options(ctx)?, uri)
                .await
                .map(|()| OK)
                .map_err(|e| Failure::unusable(format!("demo: {e:#}")))
        }
    }
}

/// Opens the dashboard; errors after the terminal is restored go to stderr.
pub async fn dashboard(args: DashboardArgs, ctx: &Ctx) -> Result<i32, Failure> {
    // Without a terminal it stops before it starts anything (exit 2, one line).
    crate::tui::terminal::available("the dashboard").map_err(Failure::unusable)?;
    runtime::run(&ctx.config, args.options(ctx)?)
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
