//! A write as the stores log, replicate and apply it: a [`Record`] put or a
//! [`Key`] removed. The standalone log and the Raft log store these, so
//! their encoding is part of the on-disk format: add fields only at the end,
//! with `#[serde(default)]`, and variants only at the end.

use serde::{Deserialize, Serialize};

use super::model::{Instance, InstanceId, NamespaceMeta, ServiceKey, ServiceMeta};

/// A value stored through the consistency facade. Its key is derived from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// One instance of `service`.
    Instance {
        /// The service the instance belongs to.
        service: ServiceKey,
        /// The instance, with its id.
        instance: Instance,
    },
    /// A service definition.
    Service(ServiceMeta),
    /// A namespace's record (added after the first release: variants are
    /// appended, never reordered).
    Namespace(NamespaceMeta),
}

/// Addresses one stored value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Key {
    /// One instance of `service`; `ephemeral` says which store holds it.
    Instance {
        /// The service the instance belongs to.
        service: ServiceKey,
        /// The instance's cluster, ip and port.
        id: InstanceId,
        /// Whether it lives in the ephemeral store (Distro) or the persistent one.
        ephemeral: bool,
    },
    /// A service definition.
    Service(ServiceKey),
    /// A namespace's record, by id.
    Namespace(String),
}

/// One write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Write {
    /// Creates or replaces the record.
    Put(Record),
    /// Removes what the key addresses (nothing if it is absent).
    Remove(Key),
    /// Replaces an instance only if it still exists when the write applies:
    /// what read-modify-write changes (health verdicts, patches, marks)
    /// write, so that one racing a deregistration cannot bring the instance
    /// back. A namespace's record likewise (a rename racing a deletion
    /// does not bring it back). A service definition is simply put.
    Update(Record),
}

impl Record {
    /// The key that addresses this record.
    pub fn key(&self) -> Key {
        match self {
            Record::Instance { service, instance } => Key::Instance {
                service: service.clone(),
                id: instance.id.clone(),
                ephemeral: instance.ephemeral,
            },
            Record::Service(meta) => Key::Service(meta.key.clone()),
            Record::Namespace(meta) => Key::Namespace(meta.id.clone()),
        }
    }

    /// Whether the record is an ephemeral instance (Distro's, not the persistent store's).
    pub fn is_ephemeral(&self) -> bool {
        matches!(self, Record::Instance { instance, .. } if instance.ephemeral)
    }
}

impl Key {
    /// Whether the key addresses an ephemeral instance.
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

impl Write {
    /// Whether the write goes to the ephemeral store (Distro) rather than the persistent one.
    pub fn is_ephemeral(&self) -> bool {
        match self {
            Write::Put(record) | Write::Update(record) => record.is_ephemeral(),
            Write::Remove(key) => key.is_ephemeral(),
        }
    }
}
