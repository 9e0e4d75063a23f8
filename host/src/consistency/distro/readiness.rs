//! Becoming ready, and staying honest about it: a member that is not loaded
//! loads every ready peer's records as soon as it reaches a majority of the
//! members, catches up with Raft (applies everything the leader had
//! committed when it asked), and only then reports ready (see
//! [`crate::cluster`] for what readiness gates). This runs at start-up, and
//! again whenever the member regains a majority after losing it — its data,
//! ephemeral and persistent, may have fallen behind while it was away.
//!
//! Loading merges instance by instance, like every other Distro message, so
//! syncs that arrive meanwhile are never overwritten by an older snapshot.

use std::sync::Arc;
use std::time::Duration;

use super::{Distro, DistroStats};
use crate::cluster::{MemberState, PeerError};
use crate::consistency::{Deadline, RaftStore};
use crate::shutdown::Shutdown;
use crate::wire::SnapshotRequest;

impl Distro {
    /// Loads this member's data whenever it is not loaded and reaches a
    /// majority, until shutdown. With `raft`, persistent data must have
    /// caught up too (a read index through the leader).
    pub async fn keep_loaded(
        self: Arc<Self>,
        raft: Option<Arc<RaftStore>>,
        mut shutdown: Shutdown,
    ) {
        let every = Duration::from_millis((self.cluster.config().probe_interval_ms / 4).max(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.recv() => return,
            }
            if self.cluster.is_loaded() || !self.cluster.reaches_majority() {
                continue;
            }
            let services = match self.load().await {
                Ok(services) => services,
                Err(e) => {
                    tracing::warn!(error = %e, "could not load the members' records; retrying");
                    continue;
                }
            };
            if let Some(raft) = &raft {
                let deadline = Deadline::now()
                    + Duration::from_millis(self.cluster.config().snapshot_timeout_ms);
                let caught_up = tokio::select! {
                    caught_up = raft.linearize(deadline) => caught_up,
                    _ = shutdown.recv() => return,
                };
                if let Err(e) = caught_up {
                    tracing::info!(error = %e, "persistent data not caught up yet; not ready");
                    continue;
                }
            }
            DistroStats::add(&self.stats.loads, 1);
            tracing::info!(services, "loaded the ready members' records");
            self.cluster.set_loaded();
        }
    }

    /// Merges the records of every peer that is ready. With none ready (a
    /// cluster starting together) there is nothing to load. Fails if ready
    /// peers exist but none could be loaded from.
    async fn load(&self) -> Result<usize, PeerError> {
        let ready: Vec<_> = self
            .cluster
            .report()
            .into_iter()
            .filter(|m| !m.is_self && matches!(m.state, MemberState::Up | MemberState::Suspicious))
            .filter_map(|m| self.cluster.member(m.address).cloned())
            .collect();
        let timeout = Duration::from_millis(self.cluster.config().snapshot_timeout_ms);
        let mut loaded = None;
        let mut last_error = None;
        for peer in &ready {
            match self
                .cluster
                .client()
                .call_within(peer, &SnapshotRequest {}, timeout)
                .await
            {
                Ok(records) => {
                    let services = records.services.len();
                    for service in records.services {
                        self.merge(service);
                    }
                    tracing::debug!(peer = %peer.address, services, "loaded a member's records");
                    loaded = Some(loaded.unwrap_or(0).max(services));
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.address, error = %e, "no records from this member");
                    last_error = Some(e);
                }
            }
        }
        match (loaded, last_error) {
            (Some(services), _) => Ok(services),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(0),
        }
    }
}
