//! `autovolt demo`: everything on one machine. An embedded MQTT broker (rumqttd) on a free port, a
//! private FerretDB (SQLite) unless a MongoDB URI is given, the schema and a seeded campus, the
//! simulated fleet and the collector in this process, then the dashboard. Quitting stops it all.

use crate::collect::{self, CollectorOptions};
use crate::config::Config;
use crate::seed::{self, SeedOptions};
use crate::servers;
use crate::simulate::{self, SimulateOptions};
use crate::store::{Store, StoreError, DEFAULT_SELECTION_TIMEOUT};
use crate::tui::runtime::{self, Options};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The demo campus's size.
pub const DEMO_CLASSROOMS: usize = 12;
pub const DEMO_BOARDS_PER_CLASSROOM: usize = 2;

/// Where the demo keeps its FerretDB data: the XDG state directory, so a second run finds its
/// campus (and its ledger) again.
fn state_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::cache_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("autovolt")
        .join("demo")
}

/// Starts rumqttd on 127.0.0.1:`port` in a thread of its own (it has no stop; it ends with the process).
pub fn start_embedded_broker(port: u16) -> anyhow::Result<()> {
    let text = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 65536
    max_inflight_count = 500
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&text).context("embedded broker configuration")?;
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .context("cannot start the embedded broker's thread")?;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if std::time::Instant::now() > until {
            anyhow::bail!("the embedded broker did not listen on 127.0.0.1:{port} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Days of history a fresh demo campus starts with (billed and aggregated), so that its Trends
/// and month figures have something to show.
const DEMO_HISTORY_DAYS: u64 = 30;

/// Schema and a seeded campus with a month of history (an already seeded database is kept as
/// it is).
pub async fn prepare_database(store: &Store, tz: chrono_tz::Tz) -> anyhow::Result<()> {
    store
        .migrate_up(None, false)
        .await
        .context("migrating the demo database")?;
    let options = SeedOptions {
        classrooms: DEMO_CLASSROOMS,
        devices_per_classroom: DEMO_BOARDS_PER_CLASSROOM,
        seed: Some(2026),
    };
    match seed::seed(store, &options).await {
        Ok(r) => {
            let rows = seed::history(
                store,
                tz,
                DEMO_HISTORY_DAYS,
                crate::domain::dates::now_millis(),
                2026,
            )
            .await
            .context("writing the demo campus's history")?;
            tracing::info!(
                classrooms = r.classrooms,
                devices = r.devices,
                history_rows = rows,
                "demo campus seeded"
            )
        }
        Err(StoreError::Conflict(msg)) => tracing::info!(%msg, "demo campus already there"),
        Err(e) => return Err(e).context("seeding the demo campus"),
    }
    Ok(())
}

pub async fn run(
    config: &Config,
    opts: Options,
    mongodb_uri: Option<String>,
) -> anyhow::Result<()> {
    let _log = runtime::init_file_logging(config)?;
    let tz = config.tz()?;
    let mut config = config.clone();

    let port = servers::free_port().context("no free port for the embedded broker")?;
    start_embedded_broker(port)?;
    config.use_private_broker(
        format!("mqtt://127.0.0.1:{port}"),
        "the demo's embedded broker",
    );

    let mut ferret = None;
    let database = match mongodb_uri {
        Some(uri) => {
            let given = format!(
                "the MongoDB server given by {}",
                config.source("mongodb_uri")
            );
            config.use_database(uri, &given);
            given
        }
        None => {
            let dir = state_dir();
            let p = servers::start_ferretdb(&dir, false).context("starting the demo's FerretDB")?;
            config.use_database(
                format!("mongodb://127.0.0.1:{}/autovolt_demo", p.port()),
                "the demo's private FerretDB",
            );
            ferret = Some(p);
            format!(
                "a private FerretDB 1.24.2 (SQLite, data in {})",
                dir.display()
            )
        }
    };
    eprintln!(
        "autovolt demo: database: {database}; broker: embedded rumqttd at {}",
        config.mqtt_url
    );
    tracing::info!(%database, broker = %config.mqtt_url, "demo starting");

    let store = Store::connect(&config.mongodb_uri, DEFAULT_SELECTION_TIMEOUT)
        .await
        .context("connecting to the demo database")?
        .with_timezone(tz);
    eprintln!("autovolt demo: {} · preparing the campus…", store.server());
    prepare_database(&store, tz).await?;
    config.campus = format!("Demo Campus ({})", store.server());

    let stop = CancellationToken::new();
    let boards = simulate::from_store(&store)
        .await
        .context("reading the demo boards")?;
    let mut sim = SimulateOptions::new(boards, tz);
    // A classroom's day, sped up so that something happens while you watch.
    sim.rate = 20.0;
    sim.report_every = Duration::from_secs(10);
    let (url, shutdown) = (config.mqtt_url.clone(), stop.clone());
    let simulator = tokio::spawn(async move { simulate::run(url, sim, shutdown).await });
    let collector = tokio::spawn(collect::run(
        store.clone(),
        config.mqtt_url.clone(),
        CollectorOptions::new(
            format!("autovolt-demo-collector-{}", std::process::id()),
            tz,
        ),
        Arc::new(crate::clock::SystemClock),
        stop.clone(),
        None,
    ));

    let daily = crate::store::aggregation::spawn_daily_aggregation(
        store.clone(),
        tz,
        &config.aggregate_at,
        Arc::new(crate::clock::SystemClock),
    )
    .context("scheduling the daily aggregation")?;

    let result = runtime::run_dashboard(&config, opts).await;

    daily.abort();
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = simulator.await;
        let _ = collector.await;
    })
    .await;
    store.close().await;
    if let Some(mut p) = ferret {
        p.stop();
    }
    result
}
