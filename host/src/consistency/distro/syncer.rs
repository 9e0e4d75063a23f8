//! The sync dispatcher (the seed's `TaskDispatcher` + `DataSyncer`): changed
//! instances are queued per peer, and one task per peer sends them.
//!
//! - A service waiting in a peer's queue is never queued twice; with it wait
//!   the ids of its changed instances (or "all of them" past
//!   `MAX_LISTED`). What is sent is read *at send time*: a burst of changes
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
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A client's write waiting to be on a majority of the members: each peer
/// that accepts a batch holding it confirms once.
pub struct Replicated {
    /// Peers that still have to confirm.
    missing: AtomicUsize,
    done: Notify,
}

impl Replicated {
    /// A write that needs `peers` confirmations.
    pub fn new(peers: usize) -> Arc<Replicated> {
        Arc::new(Replicated {
            missing: AtomicUsize::new(peers),
            done: Notify::new(),
        })
    }

    fn confirm(&self) {
        let before = self
            .missing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.done.notify_waiters();
        }
    }

    /// Waits until enough peers confirmed; `false` if `deadline` came first.
    pub async fn wait(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.missing.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return self.missing.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// One service waiting to go to a peer: what changed, and the writes
/// waiting for this peer to confirm it.
struct Waiting {
    changes: Changes,
    acks: Vec<Arc<Replicated>>,
}

impl Waiting {
    fn merge(&mut self, other: Waiting) {
        self.changes.merge(other.changes);
        self.acks.extend(other.acks);
    }
}

/// The services waiting to go to one peer.
struct PeerQueue {
    peer: Member,
    pending: Mutex<HashMap<ServiceKey, Waiting, FastHash>>,
    wake: Notify,
}

impl PeerQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, Waiting, FastHash>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn put_back(&self, service: ServiceKey, waiting: Waiting) {
        let mut pending = self.lock();
        match pending.get_mut(&service) {
            Some(queued) => queued.merge(waiting),
            None => {
                pending.insert(service, waiting);
            }
        }
    }

    /// Takes up to `max` waiting services.
    fn take(&self, max: usize) -> Vec<(ServiceKey, Waiting)> {
        let mut pending = self.lock();
        let keys: Vec<ServiceKey> = pending.keys().take(max).cloned().collect();
        keys.into_iter()
            .filter_map(|key| pending.remove_entry(&key))
            .collect()
    }
}

/// One queue per peer of the services whose ephemeral records changed, sent
/// in batches ([`crate::wire::SyncBatch`]).
pub struct DistroSyncer {
    queues: Vec<Arc<PeerQueue>>,
}

impl DistroSyncer {
    /// An empty queue for each peer of `cluster`.
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

    /// Queues the change of instance `id` of `service` for every peer; each
    /// peer that accepts it confirms `ack`, if given.
    pub fn queue(&self, service: &ServiceKey, id: &InstanceId, ack: Option<&Arc<Replicated>>) {
        for queue in &self.queues {
            let mut pending = queue.lock();
            match pending.get_mut(service) {
                Some(waiting) => {
                    waiting.changes.add(id);
                    waiting.acks.extend(ack.cloned());
                }
                None => {
                    let waiting = Waiting {
                        changes: Changes::Instances(HashSet::from_iter([id.clone()])),
                        acks: ack.cloned().into_iter().collect(),
                    };
                    pending.insert(service.clone(), waiting);
                    drop(pending);
                    queue.wake.notify_one();
                }
            }
        }
    }

    /// Peers to hear from before a write is on a majority of the members.
    pub fn majority_of_peers(&self) -> usize {
        // n members: a majority is n / 2 + 1, so n / 2 peers besides this one.
        self.queues.len().div_ceil(2)
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
                .filter_map(|(service, waiting)| {
                    let ids = match &waiting.changes {
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
                for (_, waiting) in &batch {
                    waiting.acks.iter().for_each(|ack| ack.confirm());
                }
            }
            Err(error) => {
                DistroStats::add(&distro.stats.sync_failures, 1);
                tracing::debug!(peer = %queue.peer.address, services = batch.len(), %error, "sync failed; will retry");
                for (service, waiting) in batch {
                    queue.put_back(service, waiting);
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
