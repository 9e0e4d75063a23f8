//! The sync dispatcher (the seed's `TaskDispatcher` + `DataSyncer`): changed
//! instances are queued per peer, and one task per peer sends them.
//!
//! - A service waiting in a peer's queue is never queued twice; with it wait
//!   the ids of its changed instances (or "all of them" past
//!   [`MAX_LISTED`]). What is sent is read *at send time*: a burst of changes
//!   to one instance goes out once, in its final state, with its version.
//! - A batch leaves as soon as the task is idle: the first change after a
//!   quiet spell is on the wire at once, and changes made while a batch is in
//!   flight go together in the next one (after `sync_period_ms`, if set).
//! - Receivers merge per instance, so any batch applies whatever the peer
//!   holds; nothing is ever "stale".
//! - A failed batch goes back into the queue and is retried with doubling
//!   waits (up to `sync_retry_max_ms`); one peer being down never holds up the
//!   others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Distro, DistroStats};
use crate::cluster::{Cluster, Member};
use crate::registry::FastHash;
use crate::registry::model::{InstanceId, ServiceKey};
use crate::shutdown::Shutdown;
use crate::wire::SyncBatch;

/// First wait after a failed sync.
const FIRST_RETRY: Duration = Duration::from_millis(50);

/// More changed instances than this in one service, and all its records are
/// sent instead of a list (cheaper to track and to read).
const MAX_LISTED: usize = 64;

/// What changed in one service since it was last sent to a peer.
#[derive(Debug)]
enum Changes {
    All,
    Instances(HashSet<InstanceId, FastHash>),
}

impl Changes {
    fn add(&mut self, id: &InstanceId) {
        if let Changes::Instances(ids) = self {
            if ids.len() >= MAX_LISTED {
                *self = Changes::All;
            } else {
                ids.insert(id.clone());
            }
        }
    }

    fn merge(&mut self, other: Changes) {
        match other {
            Changes::All => *self = Changes::All,
            Changes::Instances(ids) => ids.iter().for_each(|id| self.add(id)),
        }
    }
}

/// The services waiting to go to one peer.
struct PeerQueue {
    peer: Member,
    pending: Mutex<HashMap<ServiceKey, Changes, FastHash>>,
    wake: Notify,
}

impl PeerQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, Changes, FastHash>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put_back(&self, service: ServiceKey, changes: Changes) {
        let mut pending = self.lock();
        match pending.get_mut(&service) {
            Some(waiting) => waiting.merge(changes),
            None => {
                pending.insert(service, changes);
            }
        }
    }

    /// Takes up to `max` waiting services.
    fn take(&self, max: usize) -> Vec<(ServiceKey, Changes)> {
        let mut pending = self.lock();
        let keys: Vec<ServiceKey> = pending.keys().take(max).cloned().collect();
        keys.into_iter()
            .filter_map(|key| pending.remove_entry(&key))
            .collect()
    }
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
                    pending: Mutex::new(HashMap::default()),
                    wake: Notify::new(),
                })
            })
            .collect();
        DistroSyncer { queues }
    }

    /// Queues the change of instance `id` of `service` for every peer.
    pub fn queue(&self, service: &ServiceKey, id: &InstanceId) {
        for queue in &self.queues {
            let mut pending = queue.lock();
            match pending.get_mut(service) {
                Some(changes) => changes.add(id),
                None => {
                    let ids = HashSet::from_iter([id.clone()]);
                    pending.insert(service.clone(), Changes::Instances(ids));
                    drop(pending);
                    queue.wake.notify_one();
                }
            }
        }
    }

    /// Services waiting to be sent, over all peers (a metric).
    pub fn backlog(&self) -> usize {
        self.queues.iter().map(|q| q.lock().len()).sum()
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
    let gather = Duration::from_millis(config.sync_period_ms);
    let retry_max = Duration::from_millis(config.sync_retry_max_ms);
    let mut retry = FIRST_RETRY;
    loop {
        if queue.lock().is_empty() {
            tokio::select! {
                _ = queue.wake.notified() => {}
                _ = shutdown.recv() => return,
            }
            if !gather.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(gather) => {}
                    _ = shutdown.recv() => return,
                }
            }
        }
        let batch = queue.take(config.sync_batch_size);
        if batch.is_empty() {
            continue;
        }
        let message = SyncBatch {
            services: batch
                .iter()
                .filter_map(|(service, changes)| {
                    let ids = match changes {
                        Changes::All => None,
                        Changes::Instances(ids) => Some(ids),
                    };
                    distro.registry.ephemeral_records(service, ids)
                })
                .collect(),
        };
        match distro.cluster.client().call(&queue.peer, &message).await {
            Ok(_) => {
                retry = FIRST_RETRY;
                DistroStats::add(&distro.stats.sync_batches, 1);
                DistroStats::add(&distro.stats.synced_services, batch.len() as u64);
            }
            Err(error) => {
                DistroStats::add(&distro.stats.sync_failures, 1);
                tracing::debug!(peer = %queue.peer.address, services = batch.len(), %error, "sync failed; will retry");
                for (service, changes) in batch {
                    queue.put_back(service, changes);
                }
                tokio::select! {
                    _ = tokio::time::sleep(retry) => {}
                    _ = shutdown.recv() => return,
                }
                retry = (retry * 2).min(retry_max);
            }
        }
    }
}
