//! The sync dispatcher (the seed's `TaskDispatcher` + `DataSyncer`): changed
//! services are queued per peer, and one task per peer sends them in batches.
//!
//! - A service waiting in a peer's queue is never queued twice; with it wait
//!   the ids of its changed instances. What is sent is read *at send time*,
//!   so a burst of changes to one service goes out once, in its final state.
//! - Each peer's task remembers the version it last delivered of each service.
//!   From there, only the changed instances go out (a [`ServiceDelta`]); a
//!   service never delivered, with many changes, or that the peer reports it
//!   cannot apply the delta to, goes out whole.
//! - A service that changes again while its batch is in flight is queued once
//!   more, so the peer always ends with the newest version.
//! - A failed batch goes back into the queue and is retried with doubling
//!   waits (up to `sync_retry_max_ms`); one peer being down never holds up the
//!   others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Distro, DistroStats, SYNC_PATH, ServiceDelta, SyncItem, SyncReply};
use crate::cluster::{Cluster, Member};
use crate::naming::model::{InstanceId, ServiceKey};
use crate::naming::registry::FastHash;
use crate::shutdown::Shutdown;

/// First wait after a failed sync.
const FIRST_RETRY: Duration = Duration::from_millis(50);

/// More changed instances than this in one service, and the whole service is
/// sent instead (cheaper to build and to apply than a long delta).
const MAX_DELTA_INSTANCES: usize = 64;

/// What changed in one service since it was last sent to a peer.
#[derive(Debug)]
enum Changes {
    Whole,
    Instances(HashSet<InstanceId, FastHash>),
}

impl Changes {
    fn add(&mut self, id: &InstanceId) {
        if let Changes::Instances(ids) = self {
            if ids.len() >= MAX_DELTA_INSTANCES {
                *self = Changes::Whole;
            } else {
                ids.insert(id.clone());
            }
        }
    }

    fn merge(&mut self, other: Changes) {
        match other {
            Changes::Whole => *self = Changes::Whole,
            Changes::Instances(ids) => {
                for id in &ids {
                    self.add(id);
                }
            }
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
    fn put_back(&self, service: ServiceKey, changes: Changes) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.get_mut(&service) {
            Some(waiting) => waiting.merge(changes),
            None => {
                pending.insert(service, changes);
            }
        }
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
            let mut pending = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
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

/// What one peer's task knows: the version of each service the peer last
/// accepted from this node (the base of the next delta).
type Delivered = HashMap<ServiceKey, u64, FastHash>;

async fn send_loop(distro: Arc<Distro>, queue: Arc<PeerQueue>, mut shutdown: Shutdown) {
    let config = distro.cluster.config().clone();
    let period = Duration::from_millis(config.sync_period_ms);
    let retry_max = Duration::from_millis(config.sync_retry_max_ms);
    let mut retry = FIRST_RETRY;
    let mut delivered = Delivered::default();
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
        let batch: Vec<(ServiceKey, Changes)> = {
            let mut pending = queue.pending.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<ServiceKey> = pending
                .keys()
                .take(config.sync_batch_size)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|key| pending.remove_entry(&key))
                .collect()
        };
        if batch.is_empty() {
            continue;
        }
        let items: Vec<SyncItem> = batch
            .iter()
            .map(|(service, changes)| sync_item(&distro, &delivered, service, changes))
            .collect();
        let sent = match rmp_serde::to_vec(&items) {
            Ok(body) => distro
                .cluster
                .client()
                .post(&queue.peer, SYNC_PATH, body)
                .await
                .map_err(|e| e.to_string())
                .and_then(|reply| {
                    rmp_serde::from_slice::<SyncReply>(&reply)
                        .map_err(|e| format!("unreadable sync reply: {e}"))
                }),
            Err(e) => Err(format!("encoding a sync batch: {e}")),
        };
        match sent {
            Ok(reply) => {
                retry = FIRST_RETRY;
                record_delivery(&distro, &queue, &mut delivered, &items, reply);
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

/// What to send a peer for one queued service: the changed instances when the
/// peer holds a version this node delivered, else the whole service.
fn sync_item(
    distro: &Distro,
    delivered: &Delivered,
    service: &ServiceKey,
    changes: &Changes,
) -> SyncItem {
    if let (Changes::Instances(ids), Some(&base)) = (changes, delivered.get(service))
        && let Some((version, upserts, removed)) = distro.registry.ephemeral_changes(service, ids)
    {
        return SyncItem::Delta(ServiceDelta {
            service: service.clone(),
            base,
            version,
            upserts,
            removed,
        });
    }
    SyncItem::Whole(distro.datum(service))
}

/// Notes what the peer now holds, and queues whole what it could not apply.
fn record_delivery(
    distro: &Distro,
    queue: &PeerQueue,
    delivered: &mut Delivered,
    items: &[SyncItem],
    reply: SyncReply,
) {
    let stale: HashSet<ServiceKey, FastHash> = reply.stale.into_iter().collect();
    let mut deltas = 0;
    for item in items {
        let service = item.service();
        let gone = matches!(item, SyncItem::Whole(datum) if datum.instances.is_empty());
        // No base for the next delta: the peer lacked this one's, or the
        // service is gone from here.
        if stale.contains(service) || gone {
            delivered.remove(service);
            continue;
        }
        deltas += u64::from(matches!(item, SyncItem::Delta(_)));
        delivered.insert(service.clone(), item.version());
    }
    DistroStats::add(&distro.stats.sync_batches, 1);
    DistroStats::add(&distro.stats.synced_services, items.len() as u64);
    DistroStats::add(&distro.stats.synced_deltas, deltas);
    DistroStats::add(&distro.stats.stale_deltas, stale.len() as u64);
    for service in stale {
        queue.put_back(service, Changes::Whole);
    }
}
