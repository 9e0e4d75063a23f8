//! Distro: the AP store of ephemeral instances across a cluster (the seed's
//! `DistroConsistencyServiceImpl`).
//!
//! - Every node holds every service's ephemeral instances in memory.
//! - Each service has one *responsible* node ([`Cluster::owner`]); client
//!   writes and beats for it are forwarded there (`http::forward`), so one
//!   node decides each service's state and runs its beat checks.
//! - The node that applies a write raises the service's *version* (a clock
//!   reading, or one past the last version) and queues the changed instance
//!   for every peer ([`syncer::DistroSyncer`], the seed's `TaskDispatcher` +
//!   `DataSyncer`). A peer keeps a whole copy only if it is newer than what it
//!   holds, and a delta (the changed instances) only if it holds exactly the
//!   version the delta starts from; otherwise it asks for the whole service.
//! - Each node periodically sends the checksums of the services it is
//!   responsible for; a peer fetches what differs and drops what the owner no
//!   longer has ([`repair`], the seed's `onReceiveChecksums`).
//! - A starting node loads a full snapshot from a ready peer before it reports
//!   ready or takes responsibility for anything ([`Distro::load_snapshot`]).
//!
//! The unit of replication is a [`ServiceDatum`]: all ephemeral instances of
//! one service with the version they were written at, or a [`ServiceDelta`]
//! between two versions (Nacos 1.x always sends the whole service; with a few
//! hundred instances per service that is most of a cluster's sync work).

pub mod forwarder;
pub mod repair;
pub mod syncer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cluster::{Cluster, Fnv, PeerError};
use crate::naming::model::{Instance, InstanceId, ServiceKey};
use crate::naming::registry::{DeltaOutcome, Registry};
use crate::notifier::{ChangeKinds, Notifier};
use crate::shutdown::Shutdown;

pub use forwarder::Forwarder;
pub use syncer::DistroSyncer;

/// Internal routes of Distro.
pub const SYNC_PATH: &str = "/nacre/v1/distro/sync";
pub const CHECKSUMS_PATH: &str = "/nacre/v1/distro/checksums";
pub const DATA_PATH: &str = "/nacre/v1/distro/data";
pub const SNAPSHOT_PATH: &str = "/nacre/v1/distro/snapshot";
pub const DIGEST_PATH: &str = "/nacre/v1/distro/digest";

/// The ephemeral instances of one service at one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDatum {
    pub service: ServiceKey,
    pub version: u64,
    pub instances: Vec<Instance>,
}

impl ServiceDatum {
    /// A checksum of what clients can see (beat times left out), equal on
    /// every node that holds the same instances.
    pub fn checksum(&self) -> u64 {
        checksum(&self.instances)
    }
}

/// The changes that take one service from version `base` to `version`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceDelta {
    pub service: ServiceKey,
    pub base: u64,
    pub version: u64,
    /// Instances added or changed, as they are at `version`.
    pub upserts: Vec<Instance>,
    pub removed: Vec<InstanceId>,
}

/// One entry of a sync batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SyncItem {
    Whole(ServiceDatum),
    Delta(ServiceDelta),
}

impl SyncItem {
    pub fn service(&self) -> &ServiceKey {
        match self {
            SyncItem::Whole(datum) => &datum.service,
            SyncItem::Delta(delta) => &delta.service,
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            SyncItem::Whole(datum) => datum.version,
            SyncItem::Delta(delta) => delta.version,
        }
    }
}

/// A peer's answer to a sync batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReply {
    /// Entries that changed something on the peer.
    pub applied: usize,
    /// Deltas the peer could not apply (it does not hold their base): send
    /// these services whole.
    pub stale: Vec<ServiceKey>,
}

/// Checksum of a sorted instance list; beat times are not data.
pub fn checksum(instances: &[Instance]) -> u64 {
    let mut hash = Fnv::new();
    for i in instances {
        hash.write(i.id.cluster.as_bytes());
        hash.write(b"\0");
        hash.write(i.id.ip.as_bytes());
        hash.write(b"\0");
        hash.write_u64(u64::from(i.id.port));
        hash.write_u64(i.weight.to_bits());
        hash.write(&[
            u8::from(i.healthy),
            u8::from(i.enabled),
            u8::from(i.ephemeral),
            u8::from(i.marked),
        ]);
        for (k, v) in &i.metadata {
            hash.write(k.as_bytes());
            hash.write(b"=");
            hash.write(v.as_bytes());
            hash.write(b"\0");
        }
        hash.write(b"\n");
    }
    hash.finish()
}

/// Microseconds since the Unix epoch: the clock part of versions.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Counters of this node's Distro traffic (for metrics).
#[derive(Default)]
pub struct DistroStats {
    /// Client requests sent on to the responsible node.
    pub forwarded: AtomicU64,
    /// Forwards that found the owner unreachable and were retried.
    pub forward_retries: AtomicU64,
    /// Sync batches delivered to peers, the services in them, and how many
    /// of those went as deltas.
    pub sync_batches: AtomicU64,
    pub synced_services: AtomicU64,
    pub synced_deltas: AtomicU64,
    /// Deltas a peer could not apply (sent again whole).
    pub stale_deltas: AtomicU64,
    /// Sync batches that failed (and were queued again).
    pub sync_failures: AtomicU64,
    /// Services from peers' syncs that were newer and applied.
    pub applied_from_peers: AtomicU64,
    /// Services fetched or dropped by checksum repair.
    pub repaired_fetched: AtomicU64,
    pub repaired_dropped: AtomicU64,
}

impl DistroStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

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
    pub stats: DistroStats,
    /// Bounds the client requests being forwarded at once (`http::forward`).
    pub forward_slots: tokio::sync::Semaphore,
}

impl Distro {
    pub fn new(cluster: Arc<Cluster>, registry: Arc<Registry>, notifier: Notifier) -> Arc<Distro> {
        let syncer = DistroSyncer::new(&cluster);
        let forwarder = Forwarder::new(&cluster);
        let forward_slots = tokio::sync::Semaphore::new(cluster.config().max_forwards_in_flight);
        Arc::new(Distro {
            cluster,
            registry,
            notifier,
            syncer,
            forwarder,
            stats: DistroStats::default(),
            forward_slots,
        })
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub fn syncer(&self) -> &DistroSyncer {
        &self.syncer
    }

    pub fn forwarder(&self) -> &Forwarder {
        &self.forwarder
    }

    /// A local write changed instance `id` of `service`: give the service a
    /// new version and queue the change for every peer.
    pub fn changed(&self, service: &ServiceKey, id: &InstanceId) {
        self.registry.bump_ephemeral_version(service, now_micros());
        self.syncer.queue(service, id);
    }

    /// The current datum of a service; a service this node does not have is
    /// an empty datum at the current time (so a peer that still has it drops it).
    pub fn datum(&self, service: &ServiceKey) -> ServiceDatum {
        match self.registry.ephemeral_instances(service) {
            Some((version, instances)) => ServiceDatum {
                service: service.clone(),
                version,
                instances,
            },
            None => ServiceDatum {
                service: service.clone(),
                version: now_micros(),
                instances: Vec::new(),
            },
        }
    }

    /// Applies a peer's copy: kept only if newer, unless `force` (repair from
    /// the responsible node). Returns whether anything visible changed.
    pub fn apply_remote(&self, datum: ServiceDatum, force: bool) -> bool {
        let ServiceDatum {
            service,
            version,
            instances,
        } = datum;
        let changed = self
            .registry
            .replace_ephemeral(&service, version, instances, force)
            .is_some();
        if changed {
            self.notifier.notify(&service, ChangeKinds::INSTANCES);
        }
        changed
    }

    /// Applies one entry of a peer's sync batch: a whole service only if
    /// newer, a delta only onto its base. Returns whether anything visible
    /// changed; a delta this node cannot apply is `Err` with its service, to
    /// be asked for whole.
    pub fn apply_sync_item(&self, item: SyncItem) -> Result<bool, ServiceKey> {
        let delta = match item {
            SyncItem::Whole(datum) => return Ok(self.apply_remote(datum, false)),
            SyncItem::Delta(delta) => delta,
        };
        let outcome = self.registry.apply_ephemeral_delta(
            &delta.service,
            delta.base,
            delta.version,
            delta.upserts,
            &delta.removed,
        );
        match outcome {
            DeltaOutcome::Applied { changed } => {
                if changed {
                    self.notifier.notify(&delta.service, ChangeKinds::INSTANCES);
                }
                Ok(changed)
            }
            DeltaOutcome::Stale => Err(delta.service),
        }
    }

    /// Every service with ephemeral instances (for snapshots).
    pub fn snapshot(&self) -> Vec<ServiceDatum> {
        self.registry
            .services()
            .into_iter()
            .map(|s| self.datum(s.key()))
            .filter(|d| !d.instances.is_empty())
            .collect()
    }

    /// Loads a full snapshot from the first ready peer, then marks this node
    /// ready. When no peer is ready (a cluster starting together) there is
    /// nothing to load; the node is ready once every peer was asked. Gives up
    /// waiting for a slow peer after `snapshot_timeout_ms`.
    pub async fn load_snapshot(&self, mut shutdown: Shutdown) {
        let deadline =
            Instant::now() + Duration::from_millis(self.cluster.config().snapshot_timeout_ms);
        let peers = self.cluster.peers();
        'rounds: loop {
            let mut all_answered = true;
            for peer in &peers {
                match self.cluster.client().get(peer, SNAPSHOT_PATH).await {
                    Ok(body) => match rmp_serde::from_slice::<Vec<ServiceDatum>>(&body) {
                        Ok(data) => {
                            let services = data.len();
                            for datum in data {
                                self.apply_remote(datum, true);
                            }
                            tracing::info!(peer = %peer.address, services, "loaded snapshot");
                            break 'rounds;
                        }
                        Err(e) => {
                            tracing::warn!(peer = %peer.address, error = %e, "unreadable snapshot");
                            all_answered = false;
                        }
                    },
                    // Answered, but not ready itself: it has nothing to give.
                    Err(PeerError::Refused { status, .. })
                        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE => {}
                    Err(PeerError::Unreachable(_)) => {}
                    Err(e) => {
                        tracing::warn!(peer = %peer.address, error = %e, "snapshot refused");
                        all_answered = false;
                    }
                }
            }
            if all_answered {
                tracing::info!("no ready peer to load a snapshot from; starting empty");
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!("could not load a snapshot in time; starting with what is here");
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.recv() => return,
            }
        }
        self.cluster.set_ready();
    }
}
