//! The sync dispatcher (the seed's `TaskDispatcher` + `DataSyncer`): changed
//! services are queued per peer, and one task per peer sends them in batches.
//!
//! - A service waiting in a peer's queue is never queued twice; what is sent
//!   is the service's data *at send time*, so a burst of changes to one
//!   service goes out once, in its final state.
//! - A service that changes again while its batch is in flight is queued once
//!   more, so the peer always ends with the newest version.
//! - A failed batch goes back into the queue and is retried with doubling
//!   waits (up to `sync_retry_max_ms`); one peer being down never holds up the
//!   others.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Distro, DistroStats, SYNC_PATH, ServiceDatum};
use crate::cluster::{Cluster, Member};
use crate::naming::model::ServiceKey;
use crate::naming::registry::FastHash;
use crate::shutdown::Shutdown;

/// First wait after a failed sync.
const FIRST_RETRY: Duration = Duration::from_millis(50);

/// The services waiting to go to one peer.
struct PeerQueue {
    peer: Member,
    pending: Mutex<HashSet<ServiceKey, FastHash>>,
    wake: Notify,
}

pub struct DistroSyncer {
    queues: Vec<Arc<PeerQueue>>,
}

impl DistroSyncer {
    pub fn new(cluster: &Cluster) -> DistroSyncer {
        let queues = cluster
            .peers()
            .into_iter()
            .map(|peer| {
                Arc::new(PeerQueue {
                    peer,
                    pending: Mutex::new(HashSet::default()),
                    wake: Notify::new(),
                })
            })
            .collect();
        DistroSyncer { queues }
    }

    /// Queues `service` for every peer.
    pub fn queue(&self, service: &ServiceKey) {
        for queue in &self.queues {
            let added = queue
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(service.clone());
            if added {
                queue.wake.notify_one();
            }
        }
    }

    /// Services waiting to be sent, over all peers (a metric).
    pub fn backlog(&self) -> usize {
        self.queues
            .iter()
            .map(|q| q.pending.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Starts one sending task per peer.
    pub fn spawn(distro: &Arc<Distro>, tasks: &mut tokio::task::JoinSet<()>, shutdown: &Shutdown) {
        for queue in &distro.syncer.queues {
            tasks.spawn(send_loop(
                Arc::clone(distro),
                Arc::clone(queue),
                shutdown.clone(),
            ));
        }
    }
}

async fn send_loop(distro: Arc<Distro>, queue: Arc<PeerQueue>, mut shutdown: Shutdown) {
    let config = distro.cluster.config().clone();
    let period = Duration::from_millis(config.sync_period_ms);
    let retry_max = Duration::from_millis(config.sync_retry_max_ms);
    let mut retry = FIRST_RETRY;
    loop {
        let empty = queue
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if empty {
            tokio::select! {
                _ = queue.wake.notified() => {}
                _ = shutdown.recv() => return,
            }
            // Let a burst gather for one period, then send it as one batch.
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.recv() => return,
            }
        }
        let batch: Vec<ServiceKey> = {
            let mut pending = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            let take: Vec<ServiceKey> = pending
                .iter()
                .take(config.sync_batch_size)
                .cloned()
                .collect();
            for key in &take {
                pending.remove(key);
            }
            take
        };
        if batch.is_empty() {
            continue;
        }
        let data: Vec<ServiceDatum> = batch.iter().map(|key| distro.datum(key)).collect();
        let sent = match rmp_serde::to_vec(&data) {
            Ok(body) => distro
                .cluster
                .client()
                .post(&queue.peer, SYNC_PATH, body)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("encoding a sync batch: {e}")),
        };
        match sent {
            Ok(_) => {
                retry = FIRST_RETRY;
                DistroStats::add(&distro.stats.sync_batches, 1);
                DistroStats::add(&distro.stats.synced_services, batch.len() as u64);
            }
            Err(error) => {
                DistroStats::add(&distro.stats.sync_failures, 1);
                tracing::debug!(peer = %queue.peer.address, services = batch.len(), %error, "sync failed; will retry");
                queue
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(batch);
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.recv() => return,
                }
                retry = (retry * 2).min(retry_max);
            }
        }
    }
}
