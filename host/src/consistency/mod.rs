//! The consistency facade: one `put / remove / get / listen` surface over two
//! kinds of data (Nacos's `DelegateConsistencyService`).
//!
//! - Ephemeral instances live on beats (or a connection) and in memory only:
//!   [`ephemeral`]. On a standalone node a write applies at once; in a
//!   cluster it was routed to the service's responsible member and is
//!   replicated by [`distro`].
//! - Persistent instances and service definitions must survive restarts:
//!   [`persistent`]. On a standalone node they go through a local write-ahead
//!   log in the data directory; in a cluster, through [`raft`].
//!
//! Every write carries the client's [`Deadline`]: a write that cannot be made
//! durable by then fails (retryably, 503) instead of keeping the client
//! waiting, however long it queued or was forwarded before.

pub mod accounts;
pub mod distro;
pub mod ephemeral;
pub mod persistent;
pub mod raft;

use std::sync::Arc;

use tokio::time::Instant;

use crate::clock::now_millis;
use crate::notifier::{ChangeKinds, ChangeListener, Notifier};
use crate::registry::Registry;
pub use crate::registry::{Key, Record, Write};

pub use accounts::{AccountsLog, AccountsStore};
pub use ephemeral::EphemeralStore;
pub use persistent::PersistentStore;
pub use raft::RaftStore;

/// When the client stops waiting for a write: every store answers by then.
pub type Deadline = Instant;

tokio::task_local! {
    /// Members other than this one that will hold an ephemeral write before
    /// its client hears of it: 1 while this member handles a write another
    /// member forwarded (that member merges the answer's record before it
    /// answers), so one fewer peer need confirm it. Set by the forwarded-write
    /// route around each request.
    pub static HELD_ELSEWHERE: usize;
}

/// Where persistent data goes: the local log (standalone) or Raft (cluster).
pub enum PersistentBackend {
    /// A standalone node: the write-ahead log in the data directory.
    Local(PersistentStore),
    /// A cluster member: writes go through the Raft leader.
    Raft(Arc<RaftStore>),
}

impl PersistentBackend {
    async fn write(&self, write: Write, deadline: Deadline) -> Result<(), ConsistencyError> {
        match self {
            PersistentBackend::Local(store) => store.write(write).await,
            PersistentBackend::Raft(raft) => raft.write(write, deadline).await,
        }
    }
}

/// Why a write or a linearizable read failed. [`ConsistencyError::retryable`]
/// tells the front doors which ones the client should simply try again (503).
#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    /// The local log could not be written or synced (HTTP 500).
    #[error("persistent store failed: {0}")]
    Storage(#[from] std::io::Error),
    /// The node stopped before the write was decided (retryable).
    #[error("the node is shutting down")]
    ShuttingDown,
    /// No Raft leader is known (an election is on, or this member is cut off).
    #[error("no Raft leader is reachable ({0}); try again")]
    NoLeader(String),
    /// Not committed by the client's deadline; it may still commit later.
    #[error("write not committed within {0} ms; it may still be applied later")]
    Timeout(u64),
    /// A linearizable read could not catch up with the leader in time.
    #[error("this node could not catch up for a linearizable read: {0}")]
    Lagging(String),
    /// The leader refused or failed the write.
    #[error("{0}")]
    Failed(String),
    /// Applied on this member, but not on a majority of the members by the
    /// client's deadline (they are unreachable); it may still spread.
    #[error("written on this member but not yet on a majority of the members; try again")]
    NotReplicated,
}

impl ConsistencyError {
    /// Whether the client should try again (HTTP 503) rather than treat the
    /// request as failed (HTTP 500).
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ConsistencyError::ShuttingDown
                | ConsistencyError::NoLeader(_)
                | ConsistencyError::Timeout(_)
                | ConsistencyError::Lagging(_)
                | ConsistencyError::NotReplicated
        )
    }
}

/// Applies a write decided by a persistent store (the local log or Raft) to
/// the registry and queues the change for listeners. Returns the new
/// revision if anything visible changed.
pub fn apply(registry: &Registry, notifier: &Notifier, write: Write) -> Option<u64> {
    let now = now_millis();
    let (service, kinds, revision) = match write {
        // A namespace's record changes no service: nobody subscribes to it.
        Write::Put(Record::Namespace(meta)) => return registry.apply_put_namespace(meta),
        Write::Update(Record::Namespace(meta)) => return registry.apply_update_namespace(meta),
        Write::Remove(Key::Namespace(id)) => return registry.apply_remove_namespace(&id),
        Write::Put(Record::Instance { service, instance }) => {
            let revision = registry.apply_put_instance(&service, instance, now);
            (service, ChangeKinds::INSTANCES, revision)
        }
        Write::Update(Record::Instance { service, instance }) => {
            let revision = registry.apply_update_instance(&service, instance, now);
            (service, ChangeKinds::INSTANCES, revision)
        }
        Write::Put(Record::Service(meta)) | Write::Update(Record::Service(meta)) => {
            let service = meta.key.clone();
            let revision = registry.apply_put_service(meta, now);
            (service, ChangeKinds::SERVICE, revision)
        }
        Write::Remove(Key::Instance { service, id, .. }) => {
            let revision = registry.apply_remove_instance(&service, &id, now);
            (service, ChangeKinds::INSTANCES, revision)
        }
        Write::Remove(Key::Service(service)) => {
            let revision = registry.apply_remove_service(&service);
            (service, ChangeKinds::REMOVED, revision)
        }
    };
    if revision.is_some() {
        notifier.notify(&service, kinds);
    }
    revision
}

/// Every persistent record the registry holds: namespace records, explicit
/// service definitions and persistent instances (what a compaction or a
/// Raft snapshot keeps).
pub fn persistent_records(registry: &Registry) -> Vec<Record> {
    let mut records: Vec<Record> = registry
        .namespaces()
        .into_iter()
        .map(Record::Namespace)
        .collect();
    for service in registry.services() {
        let key = service.key();
        let state = service.read_state();
        if state.explicit {
            records.push(Record::Service(state.meta.clone()));
        }
        for (id, slot) in state.instances.iter().filter(|(_, s)| !s.ephemeral) {
            records.push(Record::Instance {
                service: key.clone(),
                instance: slot.to_instance(id),
            });
        }
    }
    records
}

/// The facade the naming layer writes through.
pub struct ConsistencyService {
    registry: Arc<Registry>,
    notifier: Notifier,
    ephemeral: EphemeralStore,
    persistent: PersistentBackend,
}

impl ConsistencyService {
    /// The facade over one registry: `notifier` hears every applied change.
    pub fn new(
        registry: Arc<Registry>,
        notifier: Notifier,
        ephemeral: EphemeralStore,
        persistent: PersistentBackend,
    ) -> Self {
        ConsistencyService {
            registry,
            notifier,
            ephemeral,
            persistent,
        }
    }

    /// Stores a record; returns once it is as durable as its kind requires,
    /// or fails by `deadline`.
    pub async fn put(&self, record: Record, deadline: Deadline) -> Result<(), ConsistencyError> {
        self.write(Write::Put(record), deadline).await
    }

    /// Replaces an instance only if it still exists when the write applies
    /// (see [`Write::Update`]).
    pub async fn update(&self, record: Record, deadline: Deadline) -> Result<(), ConsistencyError> {
        self.write(Write::Update(record), deadline).await
    }

    /// Removes what `key` addresses; removing something absent is not an error.
    pub async fn remove(&self, key: Key, deadline: Deadline) -> Result<(), ConsistencyError> {
        self.write(Write::Remove(key), deadline).await
    }

    /// A write a checker decided (a beat timeout, a probe verdict): ephemeral
    /// ones are not waited on until a majority holds them — no client waits.
    pub async fn write_verdict(
        &self,
        write: Write,
        deadline: Deadline,
    ) -> Result<(), ConsistencyError> {
        if write.is_ephemeral() {
            self.ephemeral.write(write, false, 0);
            Ok(())
        } else {
            self.persistent.write(write, deadline).await
        }
    }

    async fn write(&self, write: Write, deadline: Deadline) -> Result<(), ConsistencyError> {
        if !write.is_ephemeral() {
            return self.persistent.write(write, deadline).await;
        }
        let held_elsewhere = HELD_ELSEWHERE.try_with(|n| *n).unwrap_or(0);
        let Some(replicated) = self.ephemeral.write(write, true, held_elsewhere) else {
            return Ok(());
        };
        if replicated.wait(deadline).await {
            Ok(())
        } else {
            Err(ConsistencyError::NotReplicated)
        }
    }

    /// Makes the next local read linearizable for persistent data: in a
    /// cluster, confirms the Raft leader and waits to apply up to its commit
    /// index, by `deadline`. A standalone node's reads always are.
    pub async fn linearize(&self, deadline: Deadline) -> Result<(), ConsistencyError> {
        match &self.persistent {
            PersistentBackend::Local(_) => Ok(()),
            PersistentBackend::Raft(raft) => raft.linearize(deadline).await,
        }
    }

    /// The current record under `key`, read from this node's registry (not
    /// linearized: see [`Self::linearize`]).
    pub fn get(&self, key: &Key) -> Option<Record> {
        match key {
            Key::Instance { service, id, .. } => {
                self.registry
                    .instance(service, id)
                    .map(|instance| Record::Instance {
                        service: service.clone(),
                        instance,
                    })
            }
            Key::Service(service) => self.registry.service_meta(service).map(Record::Service),
            Key::Namespace(id) => self.registry.namespace(id).map(Record::Namespace),
        }
    }

    /// Adds a listener of applied changes (called off the write path, coalesced).
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.notifier.listen(listener);
    }

    /// The registry the stores apply to.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Forgets this member's copies of the instances held under `lease`
    /// ([`EphemeralStore::forget_lease`]).
    pub fn forget_lease(&self, lease: &crate::registry::model::Lease) {
        self.ephemeral.forget_lease(lease);
    }
}
