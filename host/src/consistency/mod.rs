//! The consistency facade: one `put / remove / get / listen` surface over two
//! kinds of data (Nacos's `DelegateConsistencyService`).
//!
//! - Ephemeral instances live on beats and in memory only: [`ephemeral`]. On a
//!   standalone node a write applies at once; in a cluster it is routed to the
//!   service's responsible node and replicated by Distro.
//! - Persistent instances and service definitions must survive restarts:
//!   [`persistent`]. On a standalone node they go through a local write-ahead
//!   log in the data directory; in a cluster, through [`raft`].
//!
//! Both end in [`apply`], which changes the registry and tells the notifier, so
//! listeners see one stream of changes whatever the data's kind.

pub mod distro;
pub mod ephemeral;
pub mod persistent;
pub mod raft;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::naming::model::{Instance, InstanceId, ServiceKey, ServiceMeta};
use crate::naming::registry::Registry;
use crate::notifier::{ChangeKinds, ChangeListener, Notifier};

pub use ephemeral::EphemeralStore;
pub use persistent::PersistentStore;
pub use raft::RaftStore;

/// Where persistent data goes: the local log (standalone) or Raft (cluster).
pub enum PersistentBackend {
    Local(PersistentStore),
    Raft(Arc<RaftStore>),
}

impl PersistentBackend {
    async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        match self {
            PersistentBackend::Local(store) => store.write(write).await,
            PersistentBackend::Raft(raft) => raft.write(write).await,
        }
    }
}

/// A value stored through the facade. Its key is derived from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    Instance {
        service: ServiceKey,
        instance: Instance,
    },
    Service(ServiceMeta),
}

/// Addresses one stored value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    Instance {
        service: ServiceKey,
        id: InstanceId,
        ephemeral: bool,
    },
    Service(ServiceKey),
}

/// One write, as stores log, replicate and apply it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Write {
    Put(Record),
    Remove(Key),
}

impl Record {
    pub fn key(&self) -> Key {
        match self {
            Record::Instance { service, instance } => Key::Instance {
                service: service.clone(),
                id: instance.id.clone(),
                ephemeral: instance.ephemeral,
            },
            Record::Service(meta) => Key::Service(meta.key.clone()),
        }
    }
}

impl Key {
    pub fn is_ephemeral(&self) -> bool {
        matches!(
            self,
            Key::Instance {
                ephemeral: true,
                ..
            }
        )
    }
}

impl Record {
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Record::Instance { instance, .. } if instance.ephemeral)
    }
}

impl Write {
    /// The service the write is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Write::Put(Record::Instance { service, .. })
            | Write::Remove(Key::Instance { service, .. }) => service,
            Write::Put(Record::Service(meta)) => &meta.key,
            Write::Remove(Key::Service(service)) => service,
        }
    }

    /// The service and instance the write is about, unless it is about a
    /// service definition.
    pub fn instance(&self) -> Option<(&ServiceKey, &InstanceId)> {
        match self {
            Write::Put(Record::Instance { service, instance }) => Some((service, &instance.id)),
            Write::Remove(Key::Instance { service, id, .. }) => Some((service, id)),
            Write::Put(Record::Service(_)) | Write::Remove(Key::Service(_)) => None,
        }
    }

    fn is_ephemeral(&self) -> bool {
        match self {
            Write::Put(record) => record.is_ephemeral(),
            Write::Remove(key) => key.is_ephemeral(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsistencyError {
    #[error("persistent store failed: {0}")]
    Storage(#[from] std::io::Error),
    #[error("the node is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    NotCommitted(String),
}

/// Applies a write to the registry and queues the change for listeners.
/// Returns the new revision if anything visible changed.
pub fn apply(registry: &Registry, notifier: &Notifier, write: Write) -> Option<u64> {
    let (service, kinds, revision) = match write {
        Write::Put(Record::Instance { service, instance }) => {
            let revision = registry.apply_put_instance(&service, instance);
            (service, ChangeKinds::INSTANCES, revision)
        }
        Write::Put(Record::Service(meta)) => {
            let service = meta.key.clone();
            let revision = registry.apply_put_service(meta);
            (service, ChangeKinds::SERVICE, revision)
        }
        Write::Remove(Key::Instance { service, id, .. }) => {
            let revision = registry.apply_remove_instance(&service, &id);
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

/// Every persistent record the registry holds: explicit service definitions
/// and persistent instances (what a compaction or a Raft snapshot keeps).
pub fn persistent_records(registry: &Registry) -> Vec<Record> {
    let mut records = Vec::new();
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

    /// Stores a record; returns once it is as durable as its kind requires.
    pub async fn put(&self, record: Record) -> Result<(), ConsistencyError> {
        self.write(Write::Put(record)).await
    }

    /// Removes what `key` addresses; removing something absent is not an error.
    pub async fn remove(&self, key: Key) -> Result<(), ConsistencyError> {
        self.write(Write::Remove(key)).await
    }

    async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        if write.is_ephemeral() {
            self.ephemeral.write(write).await
        } else {
            self.persistent.write(write).await
        }
    }

    /// Makes the next local read linearizable for persistent data: in a
    /// cluster, confirms the Raft leader and waits to apply up to its commit
    /// index. A standalone node's reads always are.
    pub async fn linearize(&self) -> Result<(), ConsistencyError> {
        match &self.persistent {
            PersistentBackend::Local(_) => Ok(()),
            PersistentBackend::Raft(raft) => raft.linearize().await,
        }
    }

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
        }
    }

    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.notifier.listen(listener);
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}
