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
    /// A `$group` with several `$sum` accumulators fills every one of them (FerretDB 1.24 feeds
    /// only the first; the others see no documents).
    pub group_sums: bool,
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

/// Finds what the server can do without writing anything (a read-only account must be able to
/// connect, and a wall display must send only reads): change streams and several-accumulator
/// `$group` are tried on what exists; transactions follow from the deployment (`hello`); TTL and
/// partial indexes from the server (FerretDB 1.x has neither, and creating one to find out is a
/// write).
pub(super) async fn probe(db: &Database, server: &ServerInfo) -> Capabilities {
    let change_streams = match db.watch().await {
        Ok(stream) => {
            drop(stream);
            true
        }
        Err(e) => {
            tracing::debug!(code = ?super::error::error_code(&e), "change streams unavailable");
            false
        }
    };
    let ferretdb_1 = server.kind == ServerKind::FerretDb && server.version.starts_with("1.");
    let transactions = server.kind == ServerKind::MongoDb && replicated(db).await;
    let group_sums = match group_sums_on(db).await {
        Some(fills_all) => fills_all,
        None => !ferretdb_1,
    };
    Capabilities {
        change_streams,
        transactions,
        ttl_indexes: !ferretdb_1,
        partial_indexes: !ferretdb_1,
        group_sums,
    }
}

/// A replica set member or a `mongos` (where MongoDB has multi-document transactions).
async fn replicated(db: &Database) -> bool {
    match db.run_command(doc! {"hello": 1}).await {
        Ok(hello) => hello.contains_key("setName") || hello.get_str("msg") == Ok("isdbgrid"),
        Err(_) => false,
    }
}

/// Whether a `$group` with two `$sum` accumulators over one existing document fills both; `None`
/// when no collection of the schema holds a document to try it on.
async fn group_sums_on(db: &Database) -> Option<bool> {
    for name in [
        super::collections::MIGRATIONS,
        super::collections::CLASSROOMS,
        super::collections::DEVICES,
    ] {
        let pipeline = vec![
            doc! {"$limit": 1},
            doc! {"$group": {"_id": null, "a": {"$sum": 1}, "b": {"$sum": 1}}},
        ];
        let Ok(cursor) = db
            .collection::<bson::Document>(name)
            .aggregate(pipeline)
            .await
        else {
            continue;
        };
        let Ok(docs) = futures::TryStreamExt::try_collect::<Vec<_>>(cursor).await else {
            continue;
        };
        let Some(d) = docs.first() else { continue };
        let one = |k: &str| match d.get(k) {
            Some(bson::Bson::Int32(n)) => i64::from(*n) == 1,
            Some(bson::Bson::Int64(n)) => *n == 1,
            Some(bson::Bson::Double(n)) => *n == 1.0,
            _ => false,
        };
        return Some(one("a") && one("b"));
    }
    None
}
