//! Ephemeral data: instances that live on beats (or a connection) and in
//! memory only.
//!
//! A write applies at once, with a version later than anything this node
//! knows of the instance (see [`crate::registry::replica`]). In a cluster a
//! v1 client's write has already been routed to the service's responsible
//! member (`http::forward`); a Nacos 2.x connection's instances are written
//! by the member holding the connection (see `distro::leases`). Either way
//! the changed instance is queued for every peer ([`super::distro`]).

use std::sync::Arc;

use super::Write;
use super::distro::{Distro, Replicated};
use crate::clock;
use crate::notifier::{ChangeKinds, Notifier};
use crate::registry::model::{Lease, Stamp};
use crate::registry::{Key, Record, Registry};

/// Writes ephemeral instances to the registry at once and, in a cluster,
/// queues them for the peers.
pub struct EphemeralStore {
    registry: Arc<Registry>,
    notifier: Notifier,
    distro: Option<Arc<Distro>>,
    /// `cluster.ack_after_majority`: clients hear of a write once it is on a
    /// majority of the members.
    ack_after_majority: bool,
}

impl EphemeralStore {
    /// A standalone node's store: nothing to replicate.
    pub fn standalone(registry: Arc<Registry>, notifier: Notifier) -> Self {
        EphemeralStore {
            registry,
            notifier,
            distro: None,
            ack_after_majority: false,
        }
    }

    /// A cluster member's store: writes are replicated by `distro`.
    pub fn clustered(registry: Arc<Registry>, notifier: Notifier, distro: Arc<Distro>) -> Self {
        let ack_after_majority = distro.cluster().config().ack_after_majority;
        EphemeralStore {
            registry,
            notifier,
            distro: Some(distro),
            ack_after_majority,
        }
    }

    /// Applies an ephemeral write here and queues it for the peers. With
    /// `acknowledged` (a client's write, and `cluster.ack_after_majority`),
    /// returns what to wait on before the write is on a majority, counting
    /// `held_elsewhere` other members that hold it without a sync.
    pub fn write(
        &self,
        write: Write,
        acknowledged: bool,
        held_elsewhere: usize,
    ) -> Option<Arc<Replicated>> {
        let stamp = match &self.distro {
            Some(distro) => distro.stamp(),
            None => Stamp {
                millis: clock::now_millis(),
                micros: clock::now_micros(),
                node: 0,
            },
        };
        let (service, id, written) = match write {
            Write::Put(Record::Instance { service, instance }) => {
                let id = instance.id.clone();
                let written = self.registry.put_ephemeral(&service, instance, stamp);
                (service, id, written)
            }
            Write::Update(Record::Instance { service, instance }) => {
                let id = instance.id.clone();
                let written = self.registry.update_ephemeral(&service, instance, stamp);
                (service, id, written)
            }
            Write::Remove(Key::Instance { service, id, .. }) => {
                let written = self.registry.remove_ephemeral(&service, &id, stamp);
                (service, id, written)
            }
            // Service definitions and namespace records are persistent
            // data: they never come here.
            Write::Put(Record::Service(_) | Record::Namespace(_))
            | Write::Update(Record::Service(_) | Record::Namespace(_))
            | Write::Remove(Key::Service(_) | Key::Namespace(_)) => return None,
        };
        if written.revision.is_some() {
            self.notifier.notify(&service, ChangeKinds::INSTANCES);
        }
        let distro = self.distro.as_ref().filter(|_| written.replicate)?;
        distro.changed(
            &service,
            &id,
            acknowledged && self.ack_after_majority,
            held_elsewhere,
        )
    }

    /// Forgets, on this member only, the instances held under `lease`: no
    /// tombstone, nothing replicated. For the connections a member closes
    /// while it is not ready: the other members forget their copies by
    /// themselves once this one has been out of their view for
    /// `cluster.lease_grace_ms`, and a tombstone written here could outrank
    /// the client's registration through another member at the heal.
    pub fn forget_lease(&self, lease: &Lease) {
        let changed = self
            .registry
            .forget_leased(|held| held == lease, clock::now_millis());
        for service in changed {
            self.notifier.notify(&service, ChangeKinds::INSTANCES);
        }
    }
}
