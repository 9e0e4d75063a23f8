//! Instances of Nacos 2.x client connections across the cluster: each lives
//! as long as its connection, on the member holding it ("its node"). That
//! member writes and deletes them with authority and Distro replicates them
//! like any other instance; the other members only hold copies, which they
//! forget (without tombstones) when the node has been out of their view for
//! `lease_grace_ms`, or when it came back as a new incarnation (a restarted
//! process has none of its predecessor's connections). A member announces
//! its own connections' instances again whenever it becomes ready and
//! whenever a member joins its view, so a member that forgot them while it
//! could not see this one gets them back.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::Distro;
use crate::clock::now_millis;
use crate::notifier::ChangeKinds;
use crate::registry::model::Lease;
use crate::shutdown::Shutdown;

impl Distro {
    /// Forgets dead connections' copies and announces this member's own,
    /// every probe interval, until shutdown.
    pub async fn run_leases(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = Duration::from_millis(self.cluster.config().probe_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: HashSet<std::net::SocketAddr> = HashSet::new();
        let mut was_ready = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let ready = self.cluster.is_ready();
            if !ready {
                was_ready = false;
                continue;
            }
            self.forget_dead_leases();
            let view: HashSet<_> = self.cluster.view().healthy.iter().copied().collect();
            let joined = view.iter().any(|member| !seen.contains(member));
            if !was_ready || joined {
                self.announce_own_leases();
            }
            seen = view;
            was_ready = true;
        }
    }

    /// Forgets the copies of instances whose connection cannot be alive.
    pub fn forget_dead_leases(&self) -> usize {
        let changed = self
            .registry
            .forget_leased(|lease| !self.lease_may_live(lease), now_millis());
        for service in &changed {
            self.notifier.notify(service, ChangeKinds::INSTANCES);
        }
        if !changed.is_empty() {
            tracing::info!(
                services = changed.len(),
                "forgot instances of connections held by members gone"
            );
        }
        changed.len()
    }

    /// Queues every instance of this member's own live connections for every peer.
    pub fn announce_own_leases(&self) {
        let me = self.cluster.me();
        let incarnation = self.cluster.incarnation();
        let own = |lease: &Lease| matches!(lease, Lease::Connection { node, incarnation: i, .. } if *node == me && *i == incarnation);
        for (service, ids) in self.registry.leased(own) {
            for id in &ids {
                self.syncer.queue(&service, id);
            }
        }
    }
}
