//! Commands on the data layer: health (more arrive with migrations, seeding, backup).

use crate::config::Config;
use crate::store::{Store, DEFAULT_SELECTION_TIMEOUT};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DataCommand {
    /// On-call check: reachability, latency, server, capabilities. Exit 0 OK / 1 warning / 2 critical.
    Health {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: DataCommand, config: &Config) -> i32 {
    super::init_stderr_logging();
    match command {
        DataCommand::Health { json } => {
            let store = match Store::connect(&config.mongodb_uri, DEFAULT_SELECTION_TIMEOUT).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("autovolt: {e}");
                    return e.exit_code();
                }
            };
            let latency = store
                .ping()
                .await
                .map(|d| d.as_secs_f64() * 1000.0)
                .unwrap_or(f64::NAN);
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "server": store.server().to_string(),
                        "ping_ms": latency,
                        "capabilities": store.capabilities().to_string(),
                    })
                );
            } else {
                println!(
                    "MongoDB  ● {latency:.1} ms  {}  ·  {}",
                    store.server(),
                    store.capabilities()
                );
            }
            0
        }
    }
}
