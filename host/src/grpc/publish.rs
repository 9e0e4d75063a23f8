//! Every effect a connection has on the registry goes through here:
//! [`Publisher::publish`], [`Publisher::unpublish`] and [`Publisher::release`],
//! Nacos 2.x's "one publication per service per connection" (NACOS-V2.md §5).
//!
//! They are built on the naming operations (register and deregister through
//! [`ServiceManager`], instances leased to the connection with
//! [`Lease::Connection`]). In a cluster these are local writes of the member
//! holding the connection, which Distro replicates; the other members only
//! forget their copies when that member is gone (`distro::leases`). Nothing
//! else in the gRPC door writes to the registry.
//!
//! Rules:
//! - a register or a batch replaces what the connection published in that
//!   service; a deregister removes it, whatever ip and port it names;
//! - an instance is removed only while this connection still holds its
//!   lease: a client that reconnected and registered again on a new
//!   connection keeps its instance when the old connection goes;
//! - writes to one service are serialised here (a lock per stripe of
//!   services), so "still holds its lease" cannot change between the check
//!   and the removal, and a publication racing its connection's release is
//!   either released with it or refused.

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::connection::Connection;
use crate::naming::{NamingError, ServiceManager};
use crate::notifier::Notifier;
use crate::registry::feed::{Cause, Door};
use crate::registry::model::{Instance, InstanceId, Lease, ServiceKey};
use crate::registry::{FastHash, Registry};

/// The change feed's cause of a client's own request on this door.
pub(crate) const FROM_CLIENT: Cause = Cause::Client { door: Door::Grpc };

/// Locks serialising the writes of connections per service.
const STRIPES: usize = 64;

/// Applies connections' publications to the registry.
pub struct Publisher {
    naming: Arc<ServiceManager>,
    /// Holds a service's change events while a publication changes in
    /// several writes (see [`Notifier::hold`]).
    notifier: Notifier,
    /// This node and its incarnation, named in the leases it hands out.
    node: SocketAddr,
    incarnation: u64,
    stripes: Vec<Mutex<()>>,
    hasher: FastHash,
}

/// Why a publication was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The connection was released while the request was on its way.
    #[error("connection is unregistered")]
    Released,
    /// The naming operation refused it (bad parameter, or a store that
    /// could not take the write in time).
    #[error(transparent)]
    Naming(#[from] NamingError),
}

impl Publisher {
    /// A publisher writing through `naming` (whose change events go through
    /// `notifier`), naming this member (`node`, as
    /// in `cluster.members`, and its `incarnation`) in the leases it hands out.
    pub fn new(
        naming: Arc<ServiceManager>,
        notifier: Notifier,
        node: SocketAddr,
        incarnation: u64,
    ) -> Publisher {
        Publisher {
            naming,
            notifier,
            node,
            incarnation,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: FastHash::default(),
        }
    }

    fn stripe(&self, service: &ServiceKey) -> &Mutex<()> {
        &self.stripes[(self.hasher.hash_one(service) as usize) % STRIPES]
    }

    fn lease(&self, conn: &Connection) -> Lease {
        Lease::Connection {
            node: self.node,
            incarnation: self.incarnation,
            connection: conn.id.to_string(),
        }
    }

    /// Makes `instances` the connection's publication in `service`,
    /// replacing what it published there before. The instances must be
    /// ephemeral and the service must not be persistent.
    pub async fn publish(
        &self,
        conn: &Connection,
        service: ServiceKey,
        instances: Vec<Instance>,
    ) -> Result<(), PublishError> {
        let _serial = self.stripe(&service).lock().await;
        if conn.is_released() {
            return Err(PublishError::Released);
        }
        if let Some(clash) = kind_clash(self.naming.registry(), &service, true) {
            return Err(NamingError::InvalidParam(clash).into());
        }
        let lease = self.lease(conn);
        let previous = conn
            .holdings()
            .publications
            .get(&service)
            .cloned()
            .unwrap_or_default();
        // Subscribers see the publication replaced, not the new instances
        // beside the old ones for a moment (and then a second push). A
        // publication of one write (the same address again) needs no hold.
        let stale: Vec<&InstanceId> = previous
            .iter()
            .filter(|id| !instances.iter().any(|i| &i.id == *id))
            .collect();
        let _whole = (instances.len() + stale.len() > 1).then(|| self.notifier.hold(&service));
        let mut published = Vec::with_capacity(instances.len());
        for mut instance in instances {
            instance.lease = lease.clone();
            published.push(instance.id.clone());
            if let Err(e) = self
                .naming
                .register_instance(service.clone(), instance, FROM_CLIENT)
                .await
            {
                // Keep track of what did land, so a release removes it.
                self.record(conn, &service, &previous, &published);
                return Err(e.into());
            }
        }
        for id in stale {
            self.remove_if_leased(&service, id, &lease, FROM_CLIENT)
                .await?;
        }
        conn.holdings()
            .publications
            .insert(service.clone(), published);
        Ok(())
    }

    /// Records a partial publication: what it wrote plus what it replaced.
    fn record(
        &self,
        conn: &Connection,
        service: &ServiceKey,
        previous: &[InstanceId],
        written: &[InstanceId],
    ) {
        let mut ids = previous.to_vec();
        ids.extend(written.iter().filter(|id| !previous.contains(id)).cloned());
        conn.holdings().publications.insert(service.clone(), ids);
    }

    /// Removes the connection's publication in `service`, if any, at its
    /// client's request.
    pub async fn unpublish(
        &self,
        conn: &Connection,
        service: &ServiceKey,
    ) -> Result<(), PublishError> {
        self.withdraw(conn, service, FROM_CLIENT).await
    }

    /// Removes the connection's publication in `service`, if any, because of `cause`.
    async fn withdraw(
        &self,
        conn: &Connection,
        service: &ServiceKey,
        cause: Cause,
    ) -> Result<(), PublishError> {
        let _serial = self.stripe(service).lock().await;
        let Some(ids) = conn.holdings().publications.remove(service) else {
            return Ok(());
        };
        // A batch's instances leave together: one push, not one per instance.
        let _whole = (ids.len() > 1).then(|| self.notifier.hold(service));
        let lease = self.lease(conn);
        for id in &ids {
            self.remove_if_leased(service, id, &lease, cause.clone())
                .await?;
        }
        Ok(())
    }

    /// Removes everything the connection published, once: the connection
    /// closed, was closed by the node, or its client vanished. Its
    /// subscriptions are the push side's to drop.
    ///
    /// On a cluster member that is not `ready` (it lost its majority) the
    /// instances are only forgotten here, not deleted: the other members
    /// forget their copies by themselves once this member has been out of
    /// their view for `cluster.lease_grace_ms`, and a deletion replicated at
    /// the heal could outrank the registration the client has made through
    /// another member meanwhile (docs/DESIGN-V2.md, "Cluster").
    pub async fn release(&self, conn: &Connection, ready: bool) {
        if !conn.mark_released() {
            return;
        }
        if !ready {
            // Serialised with publications as deletions are: a publication
            // that got its stripe first has landed and is forgotten too.
            let services: Vec<ServiceKey> = conn.holdings().publications.keys().cloned().collect();
            for service in &services {
                let _serial = self.stripe(service).lock().await;
                conn.holdings().publications.remove(service);
            }
            self.naming.forget_lease(&self.lease(conn));
            return;
        }
        let services: Vec<ServiceKey> = conn.holdings().publications.keys().cloned().collect();
        for service in services {
            if let Err(e) = self.withdraw(conn, &service, Cause::ConnectionClosed).await {
                tracing::warn!(connection = %conn.id, %service, error = %e,
                    "could not remove a closed connection's instances");
            }
        }
    }

    async fn remove_if_leased(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        lease: &Lease,
        cause: Cause,
    ) -> Result<(), NamingError> {
        let held = self
            .naming
            .registry()
            .instance(service, id)
            .is_some_and(|i| &i.lease == lease);
        if held {
            self.naming
                .deregister_instance(service.clone(), id.clone(), true, cause)
                .await?;
        }
        Ok(())
    }
}

/// Nacos 2.x fixes a service's kind with its first instance: the message
/// refusing an instance of the other kind, if `service` holds one
/// (NACOS-V2.md §5: "Current service ... is persistent service, can't
/// register ephemeral instance.").
pub fn kind_clash(registry: &Registry, service: &ServiceKey, ephemeral: bool) -> Option<String> {
    let found = registry.service(service)?;
    let clash = found
        .read_state()
        .instances
        .values()
        .any(|slot| slot.ephemeral != ephemeral);
    clash.then(|| {
        let (is, want) = if ephemeral {
            ("persistent", "ephemeral")
        } else {
            ("ephemeral", "persistent")
        };
        format!(
            "Current service {} is {is} service, can't register {want} instance.",
            service.grouped_name()
        )
    })
}
