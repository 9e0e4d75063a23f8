//! A write as the stores log, replicate and apply it: a [`Record`] put or a
//! [`Key`] removed. The standalone log and the Raft log store these, so
//! their encoding is part of the on-disk format: add fields only at the end,
//! with `#[serde(default)]`.

use serde::{Deserialize, Serialize};

use super::model::{Instance, InstanceId, ServiceKey, ServiceMeta};

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
    /// back. A service definition is simply put.
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
    /// The service the write is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Write::Put(Record::Instance { service, .. })
            | Write::Update(Record::Instance { service, .. })
            | Write::Remove(Key::Instance { service, .. }) => service,
            Write::Put(Record::Service(meta)) | Write::Update(Record::Service(meta)) => &meta.key,
            Write::Remove(Key::Service(service)) => service,
        }
    }

    /// The service and instance the write is about, unless it is about a
    /// service definition.
    pub fn instance(&self) -> Option<(&ServiceKey, &InstanceId)> {
        match self {
            Write::Put(Record::Instance { service, instance })
            | Write::Update(Record::Instance { service, instance }) => {
                Some((service, &instance.id))
            }
            Write::Remove(Key::Instance { service, id, .. }) => Some((service, id)),
            Write::Put(Record::Service(_))
            | Write::Update(Record::Service(_))
            | Write::Remove(Key::Service(_)) => None,
        }
    }

    /// Whether the write goes to the ephemeral store (Distro) rather than the persistent one.
    pub fn is_ephemeral(&self) -> bool {
        match self {
            Write::Put(record) | Write::Update(record) => record.is_ephemeral(),
            Write::Remove(key) => key.is_ephemeral(),
        }
    }
}
