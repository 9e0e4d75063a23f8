//! Distro: the AP store of ephemeral instances across a cluster (the seed's
//! `DistroConsistencyServiceImpl`).
//!
//! - Every member holds every service's ephemeral instances in memory.
//! - Each service has one *responsible* member ([`Cluster::responsible`]): client
//!   writes and beats for it are forwarded there (`http::forward`, batched by
//!   [`forwarder`]), so one member decides each service's state and runs its
//!   beat checks.
//! - The member that applies a write gives the instance a new version and
//!   queues it for every peer ([`syncer`], the seed's `TaskDispatcher` +
//!   `DataSyncer`). Peers merge what they receive instance by instance, the
//!   newer version winning; a deletion is a tombstone with a version of its
//!   own (see [`crate::registry::replica`]). So no copy of a service ever
//!   deletes an instance a member knows to be newer, and a deletion survives
//!   a partition's heal. Tombstones are forgotten after `tombstone_ttl_ms`.
//! - Each member periodically sends the checksums of the services it is
//!   responsible for; a peer that differs fetches the owner's records,
//!   merges them, and sends back what it holds newer ([`repair`], the seed's
//!   `onReceiveChecksums`).
//! - A member is ready only once it has loaded every ready peer's records
//!   and reaches a majority of the members ([`readiness`]); until then it is
//!   in no view and answers clients 503.
//! - Instances of Nacos 2.x client connections are written by the member
//!   holding the connection, whatever the service, and forgotten by the
//!   others when that member is gone ([`leases`]).

pub mod forwarder;
pub mod leases;
pub mod readiness;
pub mod repair;
pub mod syncer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{self, now_millis};
use crate::cluster::Cluster;
use crate::notifier::{ChangeKinds, Notifier};
use crate::registry::model::{InstanceId, Lease, ServiceKey, Stamp};
use crate::registry::{Registry, ServiceRecords};
use crate::shutdown::Shutdown;
use crate::wire::Checksums;

pub use forwarder::Forwarder;
pub use syncer::{DistroSyncer, Replicated};

/// Counters of this node's Distro traffic (for metrics).
#[derive(Default)]
pub struct DistroStats {
    /// Client requests sent on to the responsible node.
    pub forwarded: AtomicU64,
    /// Forwards that found the owner unreachable and were retried.
    pub forward_retries: AtomicU64,
    /// Sync batches delivered to peers, and the services in them.
    pub sync_batches: AtomicU64,
    /// Services in those batches.
    pub synced_services: AtomicU64,
    /// Sync batches that failed (and were queued again).
    pub sync_failures: AtomicU64,
    /// Services from peers' syncs in which something visible changed.
    pub applied_from_peers: AtomicU64,
    /// Services fetched from their owner by checksum repair, and services
    /// whose newer records were sent back to it.
    pub repaired_fetched: AtomicU64,
    /// Services whose newer records were sent back to their owner.
    pub repaired_returned: AtomicU64,
    /// Tombstones forgotten after `tombstone_ttl_ms`.
    pub tombstones_forgotten: AtomicU64,
    /// Times this node loaded its peers' records to become ready.
    pub loads: AtomicU64,
}

impl DistroStats {
    /// Adds `n` to one of the counters above.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads one of the counters above.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// This node's side of Distro.
pub struct Distro {
    cluster: Arc<Cluster>,
    registry: Arc<Registry>,
    notifier: Notifier,
    syncer: DistroSyncer,
    forwarder: Forwarder,
    /// This node's index among the members: the writer part of versions.
    node: u16,
    /// Counters for metrics.
    pub stats: DistroStats,
    /// Bounds the client requests being forwarded at once (`http::forward`).
    pub forward_slots: tokio::sync::Semaphore,
    /// Peers' checksums waiting for the repair task (bounded: a full queue
    /// drops a round, the next one brings fresh checksums).
    repairs: tokio::sync::mpsc::Sender<Checksums>,
    repairs_waiting: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Checksums>>>,
    /// Writes this node forwarded and got the record of, lately, by the
    /// member that took them: if that member leaves the view, its sync may
    /// not have left, so this node sends them on itself ([`Distro::hand_off`]).
    forwarded: std::sync::Mutex<std::collections::VecDeque<ForwardedWrite>>,
}

/// One write this node forwarded (see [`Distro::note_forwarded`]).
struct ForwardedWrite {
    at: std::time::Instant,
    responsible: std::net::SocketAddr,
    service: ServiceKey,
    id: InstanceId,
}

/// Forwarded writes remembered, at most: beyond it the oldest are dropped.
const FORWARDED_KEPT: usize = 16 * 1024;

impl Distro {
    /// Distro for this member, with a sync and a forward queue per peer; the node
    /// spawns its tasks (`run_repairs`, the queues' senders, ...) itself.
    pub fn new(cluster: Arc<Cluster>, registry: Arc<Registry>, notifier: Notifier) -> Arc<Distro> {
        let syncer = DistroSyncer::new(&cluster);
        let forwarder = Forwarder::new(&cluster);
        let forward_slots = tokio::sync::Semaphore::new(cluster.config().max_forwards_in_flight);
        let node = cluster.index_of(cluster.me()).unwrap_or(0);
        let (repairs, waiting) = tokio::sync::mpsc::channel(cluster.peers().len() * 2 + 1);
        Arc::new(Distro {
            repairs,
            repairs_waiting: std::sync::Mutex::new(Some(waiting)),
            forwarded: std::sync::Mutex::new(std::collections::VecDeque::new()),
            cluster,
            registry,
            notifier,
            syncer,
            forwarder,
            node,
            stats: DistroStats::default(),
            forward_slots,
        })
    }

    /// The membership Distro replicates across.
    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    /// The per-peer queues of changes waiting to be synced.
    pub fn syncer(&self) -> &DistroSyncer {
        &self.syncer
    }

    /// The per-peer queues of client requests forwarded to the responsible member.
    pub fn forwarder(&self) -> &Forwarder {
        &self.forwarder
    }

    /// The stamp of a write made on this node now.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            millis: now_millis(),
            micros: clock::now_micros(),
            node: self.node,
        }
    }

    /// A local write changed instance `id` of `service`: queue it for every
    /// peer. With `acknowledged`, returns what to wait on before the write is
    /// on a majority of the members (`None` if this member and the
    /// `held_elsewhere` members that hold it already are one).
    pub fn changed(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        acknowledged: bool,
        held_elsewhere: usize,
    ) -> Option<Arc<Replicated>> {
        let peers = self
            .syncer
            .majority_of_peers()
            .saturating_sub(held_elsewhere);
        let ack = (acknowledged && peers > 0).then(|| Replicated::new(peers));
        self.syncer.queue(service, id, ack.as_ref());
        ack
    }

    /// Merges a peer's records of one service. Returns whether anything a
    /// client can see changed.
    pub fn merge(&self, records: ServiceRecords) -> bool {
        let service = records.service.clone();
        let changed = self
            .registry
            .merge_ephemeral(records, now_millis(), |lease| self.lease_may_live(lease))
            .is_some();
        if changed {
            self.notifier.notify(&service, ChangeKinds::INSTANCES);
        }
        changed
    }

    /// Whether an instance with this lease may be alive: beats are judged by
    /// the beat checker; a connection lives while its node (in that
    /// incarnation) has not been out of this node's view for longer than
    /// `lease_grace_ms`.
    pub fn lease_may_live(&self, lease: &Lease) -> bool {
        match lease {
            Lease::Beat => true,
            Lease::Connection {
                node, incarnation, ..
            } => self.cluster.lease_may_live(
                *node,
                *incarnation,
                self.cluster.config().lease_grace_ms as i64,
            ),
        }
    }

    /// This node's records (live instances and tombstones) of a service;
    /// empty if it holds none.
    pub fn records(&self, service: &ServiceKey) -> ServiceRecords {
        self.registry
            .ephemeral_records(service, None)
            .unwrap_or_else(|| ServiceRecords {
                service: service.clone(),
                ..ServiceRecords::default()
            })
    }

    /// Every service's records, for a peer that is loading.
    pub fn snapshot(&self) -> Vec<ServiceRecords> {
        self.registry
            .services()
            .into_iter()
            .filter_map(|s| self.registry.ephemeral_records(s.key(), None))
            .filter(|r| !r.instances.is_empty() || !r.tombstones.is_empty())
            .collect()
    }

    /// Notes that `responsible` took a write this node forwarded, whose
    /// record (merged here) is `records`. Kept for `request_timeout_ms`: the
    /// time within which `responsible`'s own sync leaves, or fails.
    pub fn note_forwarded(&self, responsible: std::net::SocketAddr, records: &ServiceRecords) {
        let now = std::time::Instant::now();
        let horizon = Duration::from_millis(self.cluster.config().request_timeout_ms);
        let mut kept = self.forwarded.lock().unwrap_or_else(|e| e.into_inner());
        while kept
            .front()
            .is_some_and(|w| now.duration_since(w.at) > horizon || kept.len() >= FORWARDED_KEPT)
        {
            kept.pop_front();
        }
        let written = records.instances.iter().map(|i| &i.id);
        let deleted = records.tombstones.iter().map(|t| &t.id);
        for id in written.chain(deleted) {
            kept.push_back(ForwardedWrite {
                at: now,
                responsible,
                service: records.service.clone(),
                id: id.clone(),
            });
        }
    }

    /// Members left the view: the writes this node forwarded to them lately
    /// are queued for every peer, so the members now responsible hold them
    /// even if the members that took them died before their sync left.
    pub fn hand_off(&self, left: &[std::net::SocketAddr]) {
        if left.is_empty() {
            return;
        }
        let handed: Vec<(ServiceKey, InstanceId)> = {
            let mut kept = self.forwarded.lock().unwrap_or_else(|e| e.into_inner());
            let (gone, stay): (Vec<_>, Vec<_>) =
                kept.drain(..).partition(|w| left.contains(&w.responsible));
            kept.extend(stay);
            gone.into_iter().map(|w| (w.service, w.id)).collect()
        };
        if !handed.is_empty() {
            tracing::info!(
                writes = handed.len(),
                ?left,
                "handing off writes forwarded to members that left"
            );
        }
        for (service, id) in &handed {
            self.syncer.queue(service, id, None);
        }
    }

    /// Queues a peer's checksums for the repair task; `false` if the queue
    /// is full (this round is dropped).
    pub fn queue_repair(&self, checksums: Checksums) -> bool {
        self.repairs.try_send(checksums).is_ok()
    }

    /// Acts on queued checksums one round at a time, until shutdown.
    pub async fn run_repairs(self: Arc<Self>, mut shutdown: Shutdown) {
        let taken = self
            .repairs_waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(mut queue) = taken else {
            return;
        };
        loop {
            let checksums = tokio::select! {
                next = queue.recv() => match next {
                    Some(checksums) => checksums,
                    None => return,
                },
                _ = shutdown.recv() => return,
            };
            let from = checksums.from;
            let repaired = tokio::select! {
                repaired = self.on_checksums(checksums) => repaired,
                _ = shutdown.recv() => return,
            };
            if let Err(e) = repaired {
                tracing::debug!(%from, error = %e, "checksum repair failed");
            }
        }
    }

    /// Forgets tombstones older than `tombstone_ttl_ms`, every checksum
    /// interval, until shutdown.
    pub async fn forget_old_tombstones(self: Arc<Self>, mut shutdown: Shutdown) {
        let config = self.cluster.config();
        let ttl = config.tombstone_ttl_ms as i64;
        let mut tick = tokio::time::interval(Duration::from_millis(config.checksum_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let forgotten = self.registry.forget_tombstones(now_millis() - ttl);
            DistroStats::add(&self.stats.tombstones_forgotten, forgotten as u64);
        }
    }
}

impl crate::metrics::RenderMetrics for Distro {
    fn render_metrics(&self, out: &mut crate::metrics::Exposition) {
        let s = &self.stats;
        let get = DistroStats::get;
        out.gauge(
            "nacre_cluster_ready",
            "1 while this member has loaded its data and reaches a majority.",
            f64::from(u8::from(self.cluster.is_ready())),
        );
        out.gauge(
            "nacre_cluster_view_members",
            "Ready members in this node's view.",
            self.cluster.view().healthy.len() as f64,
        );
        out.gauge(
            "nacre_cluster_view_agreed",
            "1 while every member of the view reports the same view (beat timeouts are judged).",
            f64::from(u8::from(self.cluster.judging_since().is_some())),
        );
        out.gauge(
            "nacre_distro_sync_backlog",
            "Services waiting to be sent to peers.",
            self.syncer.backlog() as f64,
        );
        let counters = [
            (
                "nacre_distro_forwarded_total",
                "Client requests sent on to the responsible member.",
                &s.forwarded,
            ),
            (
                "nacre_distro_forward_retries_total",
                "Forwards retried after the responsible member was unreachable.",
                &s.forward_retries,
            ),
            (
                "nacre_distro_sync_batches_total",
                "Sync batches delivered to peers.",
                &s.sync_batches,
            ),
            (
                "nacre_distro_synced_services_total",
                "Services in delivered sync batches.",
                &s.synced_services,
            ),
            (
                "nacre_distro_sync_failures_total",
                "Sync batches that failed and were queued again.",
                &s.sync_failures,
            ),
            (
                "nacre_distro_applied_from_peers_total",
                "Services received from peers in which something visible changed.",
                &s.applied_from_peers,
            ),
            (
                "nacre_distro_repaired_fetched_total",
                "Services fetched from their responsible member by checksum repair.",
                &s.repaired_fetched,
            ),
            (
                "nacre_distro_repaired_returned_total",
                "Services whose newer records checksum repair sent back to their responsible member.",
                &s.repaired_returned,
            ),
            (
                "nacre_distro_tombstones_forgotten_total",
                "Tombstones of deleted instances forgotten after cluster.tombstone_ttl_ms.",
                &s.tombstones_forgotten,
            ),
            (
                "nacre_distro_loads_total",
                "Times this node loaded its peers' records to become ready.",
                &s.loads,
            ),
        ];
        for (name, help, counter) in counters {
            out.counter(name, help, get(counter));
        }
    }
}
