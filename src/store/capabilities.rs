//! What the server can do, found by trying each feature once and reading the error code.

use super::StoreError;
use bson::doc;
use mongodb::Database;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerKind {
    MongoDb,
    FerretDb,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    pub kind: ServerKind,
    /// The server's own version (FerretDB's, not the MongoDB version it emulates).
    pub version: String,
    /// The MongoDB version it reports (the same as `version` on MongoDB).
    pub mongodb_version: String,
    /// FerretDB's backend (`sqlite`, `postgresql`), when it says.
    pub backend: Option<String>,
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ServerKind::MongoDb => write!(f, "MongoDB {}", self.version),
            ServerKind::FerretDb => match &self.backend {
                Some(b) => write!(f, "FerretDB {} ({b})", self.version),
                None => write!(f, "FerretDB {}", self.version),
            },
        }
    }
}

/// Features the application uses only where present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub change_streams: bool,
    pub transactions: bool,
    pub ttl_indexes: bool,
    pub partial_indexes: bool,
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yn = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "change streams: {}, transactions: {}, TTL indexes: {}, partial indexes: {}",
            yn(self.change_streams),
            yn(self.transactions),
            yn(self.ttl_indexes),
            yn(self.partial_indexes)
        )
    }
}

pub(super) async fn server_info(db: &Database) -> Result<ServerInfo, StoreError> {
    let info = db.run_command(doc! {"buildInfo": 1}).await?;
    let mongodb_version = info.get_str("version").unwrap_or("unknown").to_string();
    Ok(match info.get_str("ferretdbVersion") {
        Ok(v) => {
            let backend = info
                .get_document("ferretdbFeatures")
                .ok()
                .and_then(|f| f.get_str("handler").ok().map(str::to_string))
                .filter(|s| !s.is_empty());
            ServerInfo {
                kind: ServerKind::FerretDb,
                version: v.trim_start_matches('v').to_string(),
                mongodb_version,
                backend,
            }
        }
        Err(_) => ServerInfo {
            kind: ServerKind::MongoDb,
            version: mongodb_version.clone(),
            mongodb_version,
            backend: None,
        },
    })
}

const PROBE: &str = "autovolt_capability_probe";

pub(super) async fn probe(db: &Database, _server: &ServerInfo) -> Capabilities {
    let coll = db.collection::<bson::Document>(PROBE);
    let _ = coll
        .insert_one(doc! {"probe": true, "at": bson::DateTime::now()})
        .await;

    let change_streams = match coll.watch().await {
        Ok(stream) => {
            drop(stream);
            true
        }
        Err(e) => {
            tracing::debug!(code = ?super::error::error_code(&e), "change streams unavailable");
            false
        }
    };

    let transactions = probe_transactions(db).await;

    let ttl_indexes = coll
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"at": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .expire_after(std::time::Duration::from_secs(3600))
                        .name("probe_ttl".to_string())
                        .build(),
                )
                .build(),
        )
        .await
        .is_ok();

    let partial_indexes = coll
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"probe": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .partial_filter_expression(doc! {"probe": {"$exists": true}})
                        .name("probe_partial".to_string())
                        .build(),
                )
                .build(),
        )
        .await
        .is_ok();

    let _ = coll.drop().await;
    Capabilities {
        change_streams,
        transactions,
        ttl_indexes,
        partial_indexes,
    }
}

/// A server that accepts transaction fields but ignores them would pass a naive probe, so write in a
/// transaction, abort it, and check that the write is gone.
async fn probe_transactions(db: &Database) -> bool {
    let coll = db.collection::<bson::Document>(PROBE);
    let Ok(mut session) = db.client().start_session().await else {
        return false;
    };
    if session.start_transaction().await.is_err() {
        return false;
    }
    let wrote = coll
        .insert_one(doc! {"txn_probe": true})
        .session(&mut session)
        .await
        .is_ok();
    let aborted = session.abort_transaction().await.is_ok();
    let leaked = coll
        .count_documents(doc! {"txn_probe": true})
        .await
        .unwrap_or(1)
        > 0;
    wrote && aborted && !leaked
}
