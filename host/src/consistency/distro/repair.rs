//! The checksum round (the seed's `DataSyncer` timer + `onReceiveChecksums`):
//! every `checksum_interval_ms` each node tells its peers the checksum of
//! every service it is responsible for. A peer fetches the services whose
//! checksum differs and drops the ones the owner no longer has.
//!
//! Two guards keep repair from doing harm:
//! - a service changed on the peer after the checksums were taken (its
//!   version is newer than `taken_at`) is left alone: newer data is already
//!   on its way;
//! - services are only dropped when both nodes have the same view, so they
//!   agree that the sender really is the owner.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{DATA_PATH, Distro, DistroStats, ServiceDatum, checksum, now_micros};
use crate::naming::model::ServiceKey;
use crate::shutdown::Shutdown;

/// One node's checksums of the services it is responsible for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checksums {
    pub from: SocketAddr,
    /// The sender's view digest when it took the checksums.
    pub view_digest: u64,
    /// Clock reading (µs) when the checksums were taken.
    pub taken_at: u64,
    pub services: Vec<(ServiceKey, u64)>,
}

impl Distro {
    /// The checksums of every service this node is responsible for.
    pub fn checksums(&self) -> Checksums {
        let view = self.cluster.view();
        let me = self.cluster.me();
        let taken_at = now_micros();
        let services = self
            .registry
            .services()
            .into_iter()
            .filter(|s| view.owner(s.key()) == Some(me))
            .filter_map(|s| {
                let (_, instances) = self.registry.ephemeral_instances(s.key())?;
                (!instances.is_empty()).then(|| (s.key().clone(), checksum(&instances)))
            })
            .collect();
        Checksums {
            from: me,
            view_digest: view.digest,
            taken_at,
            services,
        }
    }

    /// Sends this node's checksums to every healthy peer each interval.
    pub async fn run_checksum_rounds(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = Duration::from_millis(self.cluster.config().checksum_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            if !self.cluster.is_ready() {
                continue;
            }
            let checksums = self.checksums();
            let body = match rmp_serde::to_vec(&checksums) {
                Ok(body) => body,
                Err(e) => {
                    tracing::error!(error = %e, "encoding checksums");
                    continue;
                }
            };
            let view = self.cluster.view();
            for peer in self.cluster.peers() {
                if !view.healthy.contains(&peer.address) {
                    continue;
                }
                let result = self
                    .cluster
                    .client()
                    .post(&peer, super::CHECKSUMS_PATH, body.clone())
                    .await;
                if let Err(e) = result {
                    tracing::debug!(peer = %peer.address, error = %e, "checksums not delivered");
                }
            }
        }
    }

    /// Acts on a peer's checksums: fetches what differs, drops what the owner
    /// no longer has. Returns (fetched, dropped) counts.
    pub async fn on_checksums(&self, checksums: Checksums) -> anyhow::Result<(usize, usize)> {
        let Some(owner) = self.cluster.member(checksums.from).cloned() else {
            anyhow::bail!("checksums from {} which is not a member", checksums.from);
        };
        if owner.address == self.cluster.me() {
            anyhow::bail!("checksums claiming to come from this node");
        }
        // Changed here after the checksums were taken: leave it, newer data is
        // on its way. Only recent versions count: one far beyond the owner's
        // clock (skew, or a bad write) must not shield a copy from repair.
        let horizon = checksums.taken_at.saturating_add(
            self.cluster
                .config()
                .checksum_interval_ms
                .saturating_mul(1_000),
        );
        let changed_since = |version: u64| version > checksums.taken_at && version <= horizon;
        let newer_here = |key: &ServiceKey| {
            self.registry
                .ephemeral_instances(key)
                .is_some_and(|(version, _)| changed_since(version))
        };
        let mut stale = Vec::new();
        let mut listed = HashSet::with_capacity(checksums.services.len());
        for (key, sum) in &checksums.services {
            listed.insert(key);
            let here = self
                .registry
                .ephemeral_instances(key)
                .map(|(_, instances)| checksum(&instances));
            if here != Some(*sum) && !newer_here(key) {
                stale.push(key.clone());
            }
        }
        let mut fetched = 0;
        for chunk in stale.chunks(self.cluster.config().sync_batch_size) {
            let body = rmp_serde::to_vec(chunk)?;
            let reply = self.cluster.client().post(&owner, DATA_PATH, body).await?;
            let data: Vec<ServiceDatum> = rmp_serde::from_slice(&reply)?;
            for datum in data {
                if chunk.contains(&datum.service) && !newer_here(&datum.service) {
                    self.apply_remote(datum, true);
                    fetched += 1;
                }
            }
        }
        let mut dropped = 0;
        let view = self.cluster.view();
        if view.digest == checksums.view_digest {
            for service in self.registry.services() {
                let key = service.key();
                if listed.contains(key) || view.owner(key) != Some(owner.address) {
                    continue;
                }
                let Some((version, instances)) = self.registry.ephemeral_instances(key) else {
                    continue;
                };
                if instances.is_empty() || changed_since(version) {
                    continue;
                }
                let empty = ServiceDatum {
                    service: key.clone(),
                    version,
                    instances: Vec::new(),
                };
                if self.apply_remote(empty, true) {
                    dropped += 1;
                }
            }
        }
        DistroStats::add(&self.stats.repaired_fetched, fetched as u64);
        DistroStats::add(&self.stats.repaired_dropped, dropped as u64);
        if fetched > 0 || dropped > 0 {
            tracing::info!(owner = %owner.address, fetched, dropped, "checksum round repaired services");
        }
        Ok((fetched, dropped))
    }
}
