//! The subcommands, grouped by what they work on. Each group parses its own arguments and returns
//! the process exit code (0 OK, 1 a problem found or refused, 2 a server or the input unusable).

pub mod books;
pub mod dashboard;
pub mod data;
pub mod live;

/// Logs to stderr for the daemons and one-shot commands (`RUST_LOG` filters; default `info`).
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,rumqttc=warn,mongodb=warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
