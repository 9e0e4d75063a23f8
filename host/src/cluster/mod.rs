//! Cluster membership (Nacos's `ServerListManager`): the static member list,
//! each peer's state as this node's probes see it, this node's readiness,
//! and the *view* — the sorted list of ready members that decides which node
//! is responsible for a service. Every node sorts the same way and hashes the
//! same way, so nodes with the same view agree on every service's owner.
//!
//! A member is *ready* when it has loaded its data (`Distro`'s snapshot) and
//! reaches a majority of the members. A member that is not ready is in no
//! view, responsible for nothing, and answers clients 503 (Nacos 1.x does the
//! same on a node without a Raft leader: `TrafficReviseFilter`), so a
//! restarting member never answers from an empty registry and a member cut
//! off from the others never answers from a stale one. A member that loses
//! its majority must load its data again before it is ready again.
//!
//! Members *agree* when every member of this node's view reports the same
//! view. Only then are beat timeouts judged (`health::beat_checker`): while
//! views differ, two members may each think they are responsible and each
//! see only part of the beats (the mass false deletions of
//! alibaba/nacos#1873).
//!
//! - [`members`]: parsing the member list and finding this node in it.
//! - [`peer`]: the authenticated client for the internal API.
//! - [`auth`]: the cluster credential, checked on every internal route.

pub mod auth;
pub mod members;
pub mod peer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::now_millis;
use crate::config::ClusterConfig;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;
use crate::wire::{MemberStatus, StatusRequest};

pub use members::Member;
pub use peer::{PeerClient, PeerError};

/// A member's state as this node sees it (Nacos's `NodeState` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MemberState {
    /// Reachable, but not ready (loading its data, or cut off from a
    /// majority): responsible for nothing.
    Starting,
    /// Reachable and ready.
    Up,
    /// Missed a probe or more, fewer than `down_after_failures`: still in the view.
    Suspicious,
    /// Unreachable: out of the view until a probe succeeds again.
    Down,
}

/// The ready members, sorted: what responsibility is computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The ready members (this node included when it is ready), sorted by address.
    pub healthy: Vec<SocketAddr>,
    /// A hash of `healthy`; two nodes with equal digests agree on every owner.
    pub digest: u64,
    /// Wall-clock ms at which this view replaced the previous one.
    pub changed_at: i64,
}

impl View {
    fn new(healthy: Vec<SocketAddr>) -> View {
        View {
            digest: View::digest_of(&healthy),
            healthy,
            changed_at: now_millis(),
        }
    }

    /// The digest of a sorted member list.
    pub fn digest_of(members: &[SocketAddr]) -> u64 {
        let mut hash = Fnv::new();
        for member in members {
            hash.write(member.to_string().as_bytes());
            hash.write(b",");
        }
        hash.finish()
    }

    /// The member responsible for `service`: the service's stable hash over the
    /// sorted ready members (the seed's `DistroMapper#mapSrv`); `None` when
    /// no member is ready.
    pub fn responsible(&self, service: &ServiceKey) -> Option<SocketAddr> {
        if self.healthy.is_empty() {
            return None;
        }
        let index = service_hash(service) % self.healthy.len() as u64;
        self.healthy.get(index as usize).copied()
    }
}

/// A hash of a service's full name that every node computes the same way.
pub fn service_hash(service: &ServiceKey) -> u64 {
    let mut hash = Fnv::new();
    hash.write(service.namespace.as_bytes());
    hash.write(b"##");
    hash.write(service.group.as_bytes());
    hash.write(b"@@");
    hash.write(service.name.as_bytes());
    hash.finish()
}

/// 64-bit FNV-1a: tiny, stable across processes and versions, good enough to
/// spread service names and to compare data (not an adversarial setting:
/// only members exchange these values).
#[derive(Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    /// The FNV-1a offset basis.
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    /// Hashes `bytes` into the state.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Hashes `value` as its 8 little-endian bytes.
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// The hash of everything written.
    pub fn finish(self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Fnv::new()
    }
}

/// One peer as this node tracks it.
#[derive(Clone, Debug)]
struct PeerState {
    state: MemberState,
    failures: u32,
    /// Whether it has been probed at all since this node started.
    probed: bool,
    /// Wall-clock ms of the last successful probe.
    last_seen: Option<i64>,
    last_error: Option<String>,
    /// The digest of the view it reported last.
    view_digest: Option<u64>,
    /// Its incarnation as it reported it last.
    incarnation: Option<u64>,
    /// Wall-clock ms since which it has been out of this node's view (None while in it).
    out_since: Option<i64>,
}

/// This node's membership: who the members are, how they are, and the view.
pub struct Cluster {
    me: SocketAddr,
    /// When this process started (ms): see [`MemberStatus::incarnation`].
    incarnation: u64,
    /// Every member, sorted by address (this node included).
    members: Vec<Member>,
    peers: Mutex<Vec<(SocketAddr, PeerState)>>,
    view: RwLock<Arc<View>>,
    /// Tells watchers ([`Cluster::watch_view`]) that the view changed.
    view_changes: tokio::sync::watch::Sender<u64>,
    /// This node's data is loaded (since it last had a majority).
    loaded: AtomicBool,
    ready: AtomicBool,
    /// Wall-clock ms since which every member of the view reports the same
    /// view; 0 while they do not.
    agreed_since: AtomicI64,
    client: PeerClient,
    config: ClusterConfig,
}

/// One row of `operator/servers`.
#[derive(Clone, Debug, Serialize)]
pub struct MemberReport {
    /// The member's address as the member list names it.
    pub address: SocketAddr,
    /// `UP`, `STARTING`, `SUSPICIOUS` or `DOWN` (Nacos's `NodeState` names).
    pub state: MemberState,
    /// Whether the row is this node.
    pub is_self: bool,
    /// Probes failed in a row.
    pub failures: u32,
    /// Wall-clock ms of the last successful probe (`None`: never, or this node).
    pub last_seen: Option<i64>,
    /// Why the last probe failed, while it is failing.
    pub last_error: Option<String>,
}

impl Cluster {
    /// Builds the membership from the configured list; `bound` is the address
    /// the node listens on (used to find itself when `self_address` is empty).
    pub fn new(config: &ClusterConfig, bound: SocketAddr) -> anyhow::Result<Arc<Cluster>> {
        let members = members::parse_members(&config.members)?;
        let me = members::find_self(&members, &config.self_address, bound)?;
        let peers = members
            .iter()
            .filter(|m| m.address != me)
            .map(|m| {
                let state = PeerState {
                    state: MemberState::Down,
                    failures: 0,
                    probed: false,
                    last_seen: None,
                    last_error: Some("not probed yet".into()),
                    view_digest: None,
                    incarnation: None,
                    out_since: Some(now_millis()),
                };
                (m.address, state)
            })
            .collect();
        let client = PeerClient::new(config)?;
        if config.secret.is_empty() {
            tracing::warn!(
                "cluster.insecure is set: the internal API accepts requests without a credential"
            );
        }
        Ok(Arc::new(Cluster {
            me,
            incarnation: now_millis() as u64,
            view: RwLock::new(Arc::new(View::new(Vec::new()))),
            view_changes: tokio::sync::watch::Sender::new(0),
            members,
            peers: Mutex::new(peers),
            loaded: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            agreed_since: AtomicI64::new(0),
            client,
            config: config.clone(),
        }))
    }

    /// This node's address as the member list names it.
    pub fn me(&self) -> SocketAddr {
        self.me
    }

    /// This process's incarnation (its start time, ms).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Whether a client connection lease held by `node` in `incarnation` may
    /// still be alive, as far as this member can tell: the node is this one
    /// (in this incarnation), or a peer last seen in that incarnation that has
    /// not been out of the view for longer than `grace_ms`.
    pub fn lease_may_live(&self, node: SocketAddr, incarnation: u64, grace_ms: i64) -> bool {
        if node == self.me {
            return incarnation == self.incarnation;
        }
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let Some((_, peer)) = peers.iter().find(|(a, _)| *a == node) else {
            return false;
        };
        let same = peer.incarnation.is_none_or(|seen| seen == incarnation);
        let away = peer
            .out_since
            .is_some_and(|since| now_millis() - since > grace_ms);
        same && !away
    }

    /// This member's index (from 1) in the sorted member list: the same on
    /// every member, so it names the writer in versions and Raft.
    pub fn index_of(&self, address: SocketAddr) -> Option<u16> {
        self.members
            .iter()
            .position(|m| m.address == address)
            .map(|i| i as u16 + 1)
    }

    /// The client for the internal API (carries the cluster secret).
    pub fn client(&self) -> &PeerClient {
        &self.client
    }

    /// The `[cluster]` configuration the node started with.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Every member other than this node.
    pub fn peers(&self) -> Vec<Member> {
        self.members
            .iter()
            .filter(|m| m.address != self.me)
            .cloned()
            .collect()
    }

    /// The configured member at `address`, this node included; `None` if it is not one.
    pub fn member(&self, address: SocketAddr) -> Option<&Member> {
        self.members.iter().find(|m| m.address == address)
    }

    /// Whether this node is ready: data loaded and a majority reachable.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether every peer has been probed once and a majority of the members
    /// (this node included) answered: the precondition for loading data.
    pub fn reaches_majority(&self) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let probed = peers.iter().all(|(_, p)| p.probed);
        let reachable = 1 + peers
            .iter()
            .filter(|(_, p)| p.state != MemberState::Down)
            .count();
        probed && reachable * 2 > self.members.len()
    }

    /// Whether this node's data is loaded (since it last reached a majority).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Marks this node's data as loaded: it is ready while it reaches a majority.
    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
        self.recompute_view();
    }

    /// A receiver that wakes whenever the view changes.
    pub fn watch_view(&self) -> tokio::sync::watch::Receiver<u64> {
        self.view_changes.subscribe()
    }

    /// The current view (cheap: a shared pointer, replaced whole on change).
    pub fn view(&self) -> Arc<View> {
        Arc::clone(&self.view.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The member responsible for `service` in the current view, if any
    /// member is ready. (Nacre says "responsible" for the member that decides
    /// a service's v1 instances, as Distro does, and keeps "owner" for the
    /// member holding a v2 instance's connection.)
    pub fn responsible(&self, service: &ServiceKey) -> Option<SocketAddr> {
        self.view().responsible(service)
    }

    /// Whether this member is responsible for `service` now.
    pub fn is_responsible(&self, service: &ServiceKey) -> bool {
        self.responsible(service) == Some(self.me)
    }

    /// Since when (wall-clock ms) this node may judge beat timeouts: while it
    /// is ready and every member of its view agrees on the view, from the
    /// later of the view's change and the agreement; `None` otherwise.
    pub fn judging_since(&self) -> Option<i64> {
        let since = self.agreed_since.load(Ordering::Acquire);
        (since > 0 && self.is_ready()).then(|| since.max(self.view().changed_at))
    }

    /// This node's answer to a probe.
    pub fn status(&self) -> MemberStatus {
        MemberStatus {
            address: self.me,
            incarnation: self.incarnation,
            ready: self.is_ready(),
            view: self.view().healthy.clone(),
        }
    }

    /// Every member with its state, for `operator/servers`.
    pub fn report(&self) -> Vec<MemberReport> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        self.members
            .iter()
            .map(|m| match peers.iter().find(|(a, _)| *a == m.address) {
                Some((_, p)) => MemberReport {
                    address: m.address,
                    state: p.state,
                    is_self: false,
                    failures: p.failures,
                    last_seen: p.last_seen,
                    last_error: p.last_error.clone(),
                },
                None => MemberReport {
                    address: m.address,
                    state: if self.is_ready() {
                        MemberState::Up
                    } else {
                        MemberState::Starting
                    },
                    is_self: true,
                    failures: 0,
                    last_seen: Some(now_millis()),
                    last_error: None,
                },
            })
            .collect()
    }

    /// A request to `peer` failed at the transport level: take it out of the
    /// view now rather than at the next probe, so a retry finds the new owner.
    pub fn report_unreachable(&self, peer: SocketAddr, error: &str) {
        let changed = self.update_peer(peer, |p| {
            p.failures = p.failures.max(self.config.down_after_failures);
            p.state = MemberState::Down;
            p.last_error = Some(error.to_string());
        });
        if changed {
            tracing::warn!(%peer, error, "peer unreachable; it leaves the view");
        }
    }

    /// Applies `change` to a peer's state; returns whether the view changed.
    fn update_peer(&self, peer: SocketAddr, change: impl FnOnce(&mut PeerState)) -> bool {
        {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            let Some((_, state)) = peers.iter_mut().find(|(a, _)| *a == peer) else {
                return false;
            };
            change(state);
        }
        self.recompute_view()
    }

    /// Recomputes readiness and the view from the peers' states; returns
    /// whether the view changed.
    fn recompute_view(&self) -> bool {
        let majority = self.reaches_majority();
        if !majority && self.loaded.swap(false, Ordering::AcqRel) {
            tracing::warn!("cut off from a majority of the members: not ready until it reloads");
        }
        let ready = majority && self.is_loaded();
        if self.ready.swap(ready, Ordering::AcqRel) != ready {
            tracing::info!(ready, "readiness changed");
        }
        let mut healthy: Vec<SocketAddr> = {
            let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            let now = now_millis();
            for (_, p) in peers.iter_mut() {
                let in_view = matches!(p.state, MemberState::Up | MemberState::Suspicious);
                match (in_view, p.out_since) {
                    (true, Some(_)) => p.out_since = None,
                    (false, None) => p.out_since = Some(now),
                    _ => {}
                }
            }
            peers
                .iter()
                .filter(|(_, p)| matches!(p.state, MemberState::Up | MemberState::Suspicious))
                .map(|(a, _)| *a)
                .collect()
        };
        if ready {
            healthy.push(self.me);
        }
        healthy.sort_unstable();
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        if view.healthy == healthy {
            return false;
        }
        let next = View::new(healthy);
        tracing::info!(members = ?next.healthy, "cluster view changed");
        let digest = next.digest;
        *view = Arc::new(next);
        drop(view);
        self.view_changes.send_replace(digest);
        self.agreed_since.store(0, Ordering::Release);
        true
    }

    /// Notes whether every member of the view reported this node's view.
    fn recompute_agreement(&self) {
        let view = self.view();
        let agreed = self.is_ready() && {
            let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .iter()
                .filter(|(a, _)| view.healthy.contains(a))
                .all(|(_, p)| p.view_digest == Some(view.digest))
        };
        let since = self.agreed_since.load(Ordering::Acquire);
        if agreed && since == 0 {
            self.agreed_since.store(now_millis(), Ordering::Release);
            tracing::debug!(members = ?view.healthy, "the members agree on the view");
        } else if !agreed && since != 0 {
            self.agreed_since.store(0, Ordering::Release);
            tracing::info!("the members disagree on the view: beat timeouts wait");
        }
    }

    /// Probes every peer each `probe_interval_ms` until shutdown.
    pub async fn run_probes(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.probe_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let mut probes = tokio::task::JoinSet::new();
            for peer in self.peers() {
                let cluster = Arc::clone(&self);
                probes.spawn(async move {
                    let result = cluster.probe(&peer).await;
                    cluster.record_probe(peer.address, result);
                });
            }
            while probes.join_next().await.is_some() {}
            self.recompute_view();
            self.recompute_agreement();
        }
    }

    async fn probe(&self, peer: &Member) -> Result<MemberStatus, PeerError> {
        let status = self.client.call(peer, &StatusRequest {}).await?;
        if status.address != peer.address {
            return Err(PeerError::Protocol(format!(
                "{} answered as {}",
                peer.address, status.address
            )));
        }
        Ok(status)
    }

    fn record_probe(&self, peer: SocketAddr, result: Result<MemberStatus, PeerError>) {
        let down_after = self.config.down_after_failures;
        self.update_peer(peer, |p| {
            p.probed = true;
            match result {
                Ok(status) => {
                    p.failures = 0;
                    p.last_seen = Some(now_millis());
                    p.last_error = None;
                    p.view_digest = Some(View::digest_of(&status.view));
                    p.incarnation = Some(status.incarnation);
                    p.state = if status.ready {
                        MemberState::Up
                    } else {
                        MemberState::Starting
                    };
                }
                Err(e) => {
                    p.failures = p.failures.saturating_add(1);
                    p.last_error = Some(e.to_string());
                    p.view_digest = None;
                    // A down member stays down until a probe succeeds.
                    p.state = if p.failures >= down_after || p.state == MemberState::Down {
                        MemberState::Down
                    } else {
                        MemberState::Suspicious
                    };
                }
            }
        });
    }
}
