//! The checksum round (the seed's `DataSyncer` timer + `onReceiveChecksums`):
//! every `checksum_interval_ms` each ready member tells its peers the
//! checksum of every service it is responsible for. A peer whose checksum
//! differs — or that holds instances of a service of that owner the owner
//! did not list — fetches the owner's records (tombstones included) and
//! merges them, then sends back whatever it holds that is newer than the
//! owner's copy. Both directions merge per instance, so repair only ever
//! moves a member towards the newest version of each instance: it cannot
//! delete what a member knows to be newer, and it carries an acknowledged
//! write to a new owner that never got it (its old owner died before its
//! sync left, but the member that forwarded the client's request holds it).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Distro, DistroStats};
use crate::cluster::MemberState;
use crate::registry::ServiceRecords;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;
use crate::wire::{Checksums, FetchRecords, SyncBatch};

impl Distro {
    /// The checksums of every service this node is responsible for.
    pub fn checksums(&self) -> Checksums {
        let view = self.cluster.view();
        let me = self.cluster.me();
        let services = self
            .registry
            .services()
            .into_iter()
            .filter(|s| view.responsible(s.key()) == Some(me))
            .filter_map(|s| {
                let sum = self.registry.ephemeral_checksum(s.key());
                (sum != 0).then(|| (s.key().clone(), sum))
            })
            .collect();
        Checksums {
            from: me,
            view_digest: view.digest,
            services,
        }
    }

    /// Sends this node's checksums to every reachable peer each interval,
    /// and at once when the view changes (responsibility moved: the new
    /// responsible members learn now what they lack), while it is ready.
    /// A view change also hands off the writes this node forwarded to a
    /// member that left (see [`Distro::hand_off`]).
    pub async fn run_checksum_rounds(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = Duration::from_millis(self.cluster.config().checksum_interval_ms);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut views = self.cluster.watch_view();
        let mut last_view = self.cluster.view();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                changed = views.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let view = self.cluster.view();
                    let left: Vec<_> = last_view
                        .healthy
                        .iter()
                        .filter(|m| !view.healthy.contains(m))
                        .copied()
                        .collect();
                    self.hand_off(&left);
                    last_view = view;
                }
                _ = shutdown.recv() => return,
            }
            if !self.cluster.is_ready() {
                continue;
            }
            let checksums = self.checksums();
            for member in self.cluster.report() {
                if member.is_self || member.state == MemberState::Down {
                    continue;
                }
                let Some(peer) = self.cluster.member(member.address) else {
                    continue;
                };
                if let Err(e) = self.cluster.client().call(peer, &checksums).await {
                    tracing::debug!(peer = %peer.address, error = %e, "checksums not delivered");
                }
            }
        }
    }

    /// Acts on a peer's checksums: fetches and merges what differs, sends
    /// back what is newer here. Returns (fetched, returned) service counts.
    pub async fn on_checksums(&self, checksums: Checksums) -> anyhow::Result<(usize, usize)> {
        let Some(responsible) = self.cluster.member(checksums.from).cloned() else {
            anyhow::bail!("checksums from {} which is not a member", checksums.from);
        };
        if responsible.address == self.cluster.me() {
            anyhow::bail!("checksums claiming to come from this node");
        }
        let differing = self.differing(&checksums);
        let (mut fetched, mut returned) = (0, 0);
        for chunk in differing.chunks(self.cluster.config().sync_batch_size.max(1)) {
            let request = FetchRecords {
                services: chunk.to_vec(),
            };
            let theirs = self.cluster.client().call(&responsible, &request).await?;
            let mut newer_here = Vec::new();
            for records in theirs.services {
                if !chunk.contains(&records.service) {
                    continue;
                }
                self.merge(records.clone());
                fetched += 1;
                if let Some(newer) = self.newer_than(&records) {
                    newer_here.push(newer);
                }
            }
            if !newer_here.is_empty() {
                returned += newer_here.len();
                let batch = SyncBatch {
                    services: newer_here,
                };
                self.cluster.client().call(&responsible, &batch).await?;
            }
        }
        DistroStats::add(&self.stats.repaired_fetched, fetched as u64);
        DistroStats::add(&self.stats.repaired_returned, returned as u64);
        if returned > 0 {
            tracing::info!(responsible = %responsible.address, fetched, returned, "checksum round: sent the responsible member records it lacked");
        }
        Ok((fetched, returned))
    }

    /// The services to compare with the owner: those whose checksum differs,
    /// and — when both nodes have the same view, so agree who the owner is —
    /// those this node holds instances of that the owner did not list.
    fn differing(&self, checksums: &Checksums) -> Vec<ServiceKey> {
        let listed: HashSet<&ServiceKey> = checksums.services.iter().map(|(k, _)| k).collect();
        let mut differing: Vec<ServiceKey> = checksums
            .services
            .iter()
            .filter(|(key, sum)| self.registry.ephemeral_checksum(key) != *sum)
            .map(|(key, _)| key.clone())
            .collect();
        let view = self.cluster.view();
        if view.digest == checksums.view_digest {
            for service in self.registry.services() {
                let key = service.key();
                if !listed.contains(key)
                    && view.responsible(key) == Some(checksums.from)
                    && self.registry.ephemeral_checksum(key) != 0
                {
                    differing.push(key.clone());
                }
            }
        }
        differing
    }

    /// What this node holds of a service that is newer than `theirs`.
    fn newer_than(&self, theirs: &ServiceRecords) -> Option<ServiceRecords> {
        self.registry
            .ephemeral_records(&theirs.service, None)?
            .newer_than(theirs)
    }
}
