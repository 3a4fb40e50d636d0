//! The last stage of a batch: its telemetry inserted, then its messages acknowledged, in the order
//! they arrived. Up to `depth` batches are in this stage at once, so that the next batch is
//! processed (relay transitions in arrival order, one batch after the other) while earlier ones
//! commit. A batch whose insert never succeeds is never acknowledged: the broker delivers it again,
//! and processing it again is idempotent.

use super::process::Processed;
use super::Committed;
use crate::clock::Clock;
use crate::domain::Instant;
use crate::store::{Store, StoreError};
use rumqttc::{AsyncClient, Publish};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Whether the database is failing, shared by every stage that writes.
#[derive(Debug, Default, Clone)]
pub(super) struct DatabaseHealth {
    pub down_since: Option<Instant>,
    pub outages: i64,
    /// The last error, without secrets.
    pub last_error: Option<String>,
}

pub(super) type SharedHealth = Arc<Mutex<DatabaseHealth>>;

pub(super) fn note_failure(health: &SharedHealth, now: Instant, e: &StoreError) {
    let text = e.to_string();
    let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
    if h.down_since.is_none() {
        h.down_since = Some(now);
        h.outages += 1;
        tracing::error!("the database failed: {text}; holding messages at the broker (unacknowledged) and retrying");
    } else {
        tracing::debug!("the database still fails: {text}");
    }
    h.last_error = Some(text.chars().take(300).collect());
}

/// Notes a success; true when it ends an outage.
pub(super) fn note_success(health: &SharedHealth, now: Instant) -> bool {
    let mut h = health.lock().unwrap_or_else(|p| p.into_inner());
    match h.down_since.take() {
        Some(since) => {
            tracing::info!(
                "the database is back after {} s; acknowledging again",
                (now - since).num_seconds()
            );
            true
        }
        None => false,
    }
}

/// The wait between attempts while the database fails: 200 ms, doubling up to 5 s.
pub(super) struct Backoff(Duration);

impl Backoff {
    pub fn new() -> Backoff {
        Backoff(Duration::from_millis(200))
    }

    /// Notes a failed attempt and waits before the next; false if shutdown came first.
    pub async fn failed(
        &mut self,
        health: &SharedHealth,
        now: Instant,
        e: &StoreError,
        shutdown: &CancellationToken,
    ) -> bool {
        note_failure(health, now, e);
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(self.0) => {}
        }
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        true
    }
}

/// Counters of what the commit stage finished.
#[derive(Debug, Default)]
pub(super) struct CommitCounts {
    /// Messages committed and acknowledged.
    pub committed: AtomicI64,
    pub telemetry_inserted: AtomicU64,
}

struct Pending {
    insert: tokio::task::JoinHandle<Option<u64>>,
    publishes: Vec<Publish>,
    committed: i64,
    payloads: Vec<Vec<u8>>,
    _permit: OwnedSemaphorePermit,
}

pub(super) struct Committer {
    store: Store,
    health: SharedHealth,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    permits: Arc<Semaphore>,
    queue: mpsc::UnboundedSender<Pending>,
    acker: tokio::task::JoinHandle<()>,
    observed: bool,
    pub counts: Arc<CommitCounts>,
}

impl Committer {
    pub fn new(
        store: Store,
        client: AsyncClient,
        depth: usize,
        health: SharedHealth,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        on_commit: Option<mpsc::UnboundedSender<Committed>>,
    ) -> Committer {
        let (queue, mut rx) = mpsc::unbounded_channel::<Pending>();
        let counts = Arc::new(CommitCounts::default());
        let observed = on_commit.is_some();
        let acker = {
            let counts = counts.clone();
            tokio::spawn(async move {
                while let Some(p) = rx.recv().await {
                    // Not committed (shutdown during an outage): left unacknowledged.
                    let Ok(Some(inserted)) = p.insert.await else {
                        continue;
                    };
                    for publish in &p.publishes {
                        if let Err(e) = client.ack(publish).await {
                            tracing::warn!("cannot acknowledge a message (the broker will deliver it again): {e}");
                        }
                    }
                    counts.committed.fetch_add(p.committed, Ordering::Relaxed);
                    counts
                        .telemetry_inserted
                        .fetch_add(inserted, Ordering::Relaxed);
                    if let Some(tx) = &on_commit {
                        let _ = tx.send(Committed {
                            payloads: p.payloads,
                            at: std::time::Instant::now(),
                        });
                    }
                }
            })
        };
        Committer {
            store,
            health,
            clock,
            shutdown,
            permits: Arc::new(Semaphore::new(depth.max(1))),
            queue,
            acker,
            observed,
            counts,
        }
    }

    /// Starts committing a processed batch; waits while `depth` batches already are.
    pub async fn submit(&self, processed: Processed, publishes: Vec<Publish>) {
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let payloads = if self.observed {
            publishes.iter().map(|p| p.payload.to_vec()).collect()
        } else {
            Vec::new()
        };
        let (store, health, clock, shutdown) = (
            self.store.clone(),
            self.health.clone(),
            self.clock.clone(),
            self.shutdown.clone(),
        );
        let telemetry = processed.telemetry;
        let insert = tokio::spawn(async move {
            let mut backoff = Backoff::new();
            loop {
                match store.insert_telemetry(&telemetry).await {
                    Ok(n) => {
                        note_success(&health, clock.now());
                        return Some(n);
                    }
                    Err(e) => {
                        if !backoff.failed(&health, clock.now(), &e, &shutdown).await {
                            return None;
                        }
                    }
                }
            }
        });
        let _ = self.queue.send(Pending {
            insert,
            publishes,
            committed: processed.committed,
            payloads,
            _permit: permit,
        });
    }

    /// Waits for every submitted batch to be committed and acknowledged (or, after a shutdown
    /// during an outage, given up unacknowledged).
    pub async fn finish(self) {
        drop(self.queue);
        let _ = self.acker.await;
    }
}
