//! Raft: the CP store of persistent instances and service definitions in a
//! cluster, on the `openraft` crate (the seed's `RaftCore#signalPublish`, but
//! a real Raft: a replicated log, terms, elections that a stale node cannot
//! win).
//!
//! - Members are Raft voters; a member's node id is its position (from 1) in
//!   the sorted member list, the same on every member.
//! - A fresh cluster bootstraps itself: every member initializes with the
//!   full member list (openraft accepts the same initial config on several
//!   nodes).
//! - A write on a follower goes to the leader ([`ProposeWrite`]); the
//!   client's request returns after the entry is committed — on a majority's
//!   disks — or fails by the client's deadline (`raft.write_timeout_ms` from
//!   the moment its request arrived, queueing and forwarding included) with
//!   a retryable error.
//! - Reads come from the local state machine (see docs/DESIGN-RAFT.md for
//!   what that guarantees); [`RaftStore::linearize`] gives a leader-checked read.
//!
//! - Writes that reach the leader while an entry is being committed go into
//!   the next entry together ([`proposer`]): one round of disk syncs per
//!   batch, not per write.
//!
//! Files: [`log_store`] (log and vote in redb), [`state_machine`] (applying
//! entries to the registry, snapshots), [`network`] (RPCs between members),
//! [`proposer`] (group commit on the leader).

pub mod log_store;
pub mod network;
pub mod proposer;
pub mod state_machine;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openraft::error::RaftError;
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use tokio::time::Instant;

use super::{ConsistencyError, Deadline, Write};
use crate::accounts::{AccountChange, SharedTables};
use crate::cluster::{Cluster, Member};
use crate::config::RaftConfig;
use crate::notifier::Notifier;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::wire::{
    ForwardedWrite, ProposeAccountChange, ProposeWrite, RaftTypes, ReadIndex, ReadIndexRequest,
};
pub use proposer::Proposed;
use proposer::Proposer;

/// Node ids and the members they stand for.
pub struct RaftMembers {
    ids: Vec<(u64, Member)>,
}

impl RaftMembers {
    fn new(cluster: &Cluster) -> RaftMembers {
        let mut all: Vec<Member> = cluster.peers();
        if let Some(me) = cluster.member(cluster.me()) {
            all.push(me.clone());
        }
        all.sort_unstable_by_key(|m| m.address);
        RaftMembers {
            ids: all
                .into_iter()
                .enumerate()
                .map(|(i, m)| (i as u64 + 1, m))
                .collect(),
        }
    }

    /// The member with Raft id `id` (ids are 1-based, in address order).
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.ids.iter().find(|(i, _)| *i == id).map(|(_, m)| m)
    }

    fn id_of(&self, address: std::net::SocketAddr) -> Option<u64> {
        self.ids
            .iter()
            .find(|(_, m)| m.address == address)
            .map(|(i, _)| *i)
    }
}

/// Raft state for `operator/servers`, metrics and the console (a wire
/// message: the console asks every member for its own).
pub use crate::wire::RaftStatus;

/// A cluster's persistent store: writes are proposed to the Raft leader (from a
/// follower, forwarded to it), applied to the registry once committed.
pub struct RaftStore {
    raft: Raft<RaftTypes>,
    db: Arc<redb::Database>,
    id: u64,
    members: Arc<RaftMembers>,
    cluster: Arc<Cluster>,
    proposer: Proposer,
    write_timeout: Duration,
}

impl RaftStore {
    /// Opens the log and state machine under `data_dir`, starts Raft and
    /// bootstraps the cluster if this member has never been part of one.
    pub async fn open(
        cluster: Arc<Cluster>,
        config: &RaftConfig,
        data_dir: &Path,
        (registry, notifier, accounts): (Arc<Registry>, Notifier, SharedTables),
        (tasks, shutdown): (&mut tokio::task::JoinSet<()>, &Shutdown),
    ) -> anyhow::Result<Arc<RaftStore>> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        let path = data_dir.join("raft.redb");
        let db = Arc::new(
            redb::Database::create(&path)
                .with_context(|| format!("opening the Raft store {}", path.display()))?,
        );
        let members = Arc::new(RaftMembers::new(&cluster));
        let id = members
            .id_of(cluster.me())
            .context("this node is not among its own members")?;
        let raft_config = openraft::Config {
            cluster_name: "nacre".into(),
            heartbeat_interval: config.heartbeat_interval_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
            max_in_snapshot_log_to_keep: config.log_entries_kept_after_snapshot,
            ..Default::default()
        };
        let raft_config = Arc::new(raft_config.validate().context("invalid raft settings")?);
        let log = log_store::LogStore::new(Arc::clone(&db));
        let machine =
            state_machine::StateMachine::open(registry, notifier, accounts, Arc::clone(&db))
                .await?;
        let network = network::Network {
            members: Arc::clone(&members),
            client: cluster.client().clone(),
        };
        let raft = Raft::new(id, raft_config, network, log, machine)
            .await
            .context("starting Raft")?;
        let voters = members.ids.len();
        if raft.is_initialized().await.context("reading Raft state")? {
            tracing::info!(node_id = id, path = %path.display(), "Raft: resuming from this member's log");
        } else {
            let initial: BTreeMap<u64, BasicNode> = members
                .ids
                .iter()
                .map(|(i, m)| (*i, BasicNode::new(m.address.to_string())))
                .collect();
            // Every fresh member proposes the same membership; openraft
            // accepts it on each, and the first election picks the leader.
            match raft.initialize(initial).await {
                Ok(()) => tracing::info!(
                    node_id = id,
                    voters,
                    "Raft: no log yet; joining the cluster's Raft group with every member as a voter (a leader is elected once a majority is up)"
                ),
                Err(e) => tracing::info!(
                    node_id = id,
                    voters,
                    reason = %e,
                    "Raft: no log yet, but another member reached this one first; following the group it formed"
                ),
            }
        }
        let write_timeout = Duration::from_millis(config.write_timeout_ms);
        Ok(Arc::new(RaftStore {
            proposer: Proposer::start(raft.clone(), tasks, shutdown.clone()),
            raft,
            db,
            id,
            members,
            cluster,
            write_timeout,
        }))
    }

    /// The openraft handle, for the internal routes that carry its RPCs.
    pub fn raft(&self) -> &Raft<RaftTypes> {
        &self.raft
    }

    /// Proposes `write` (through the leader) and waits for its commit, until
    /// `deadline`.
    pub async fn write(&self, write: Write, deadline: Deadline) -> Result<(), ConsistencyError> {
        self.propose(Proposed::Registry(write), deadline).await
    }

    /// Proposes a change to the auth tables (through the leader) and waits
    /// for its commit and its apply on this member, until `deadline`.
    pub async fn write_accounts(
        &self,
        change: AccountChange,
        deadline: Deadline,
    ) -> Result<(), ConsistencyError> {
        self.propose(Proposed::Accounts(change), deadline).await
    }

    async fn propose(&self, write: Proposed, deadline: Deadline) -> Result<(), ConsistencyError> {
        loop {
            let attempt = match self.leader_id() {
                Some(leader) if leader != self.id => {
                    self.write_through(leader, &write, deadline).await
                }
                _ => self.write_here(write.clone(), deadline).await,
            };
            let reason = match attempt {
                ForwardedWrite::Committed(index) => {
                    self.await_applied(index, deadline).await;
                    return Ok(());
                }
                ForwardedWrite::TimedOut => return Err(self.timed_out()),
                ForwardedWrite::Failed(reason) => reason,
                ForwardedWrite::NotLeader(_) => "no leader".to_string(),
            };
            // No leader yet (an election is on) or the leader moved: try again shortly.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ConsistencyError::NoLeader(reason));
            }
            tokio::time::sleep(Duration::from_millis(50).min(left)).await;
        }
    }

    fn timed_out(&self) -> ConsistencyError {
        ConsistencyError::Timeout(self.write_timeout.as_millis() as u64)
    }

    /// Read-your-writes on this node: waits (until `deadline`, at least a
    /// moment) to apply up to `index` before answering. The entry is committed
    /// either way: a slow apply is logged, not failed.
    async fn await_applied(&self, index: u64, deadline: Deadline) {
        let left = deadline.saturating_duration_since(Instant::now());
        let applied = self
            .raft
            .wait(Some(left.max(Duration::from_millis(100))))
            .applied_index_at_least(Some(index), "the client's write")
            .await;
        if let Err(e) = applied {
            tracing::warn!(index, error = %e, "write committed but not yet applied here");
        }
    }

    /// Proposes on this node (batched with other writes, see [`proposer`]);
    /// answers `NotLeader` if it is not the leader, `TimedOut` at `deadline`.
    pub async fn write_here(&self, write: Proposed, deadline: Deadline) -> ForwardedWrite {
        self.proposer.propose(write, deadline).await
    }

    async fn write_through(
        &self,
        leader: u64,
        write: &Proposed,
        deadline: Deadline,
    ) -> ForwardedWrite {
        let Some(member) = self.members.member(leader) else {
            return ForwardedWrite::Failed(format!("leader {leader} is not a member"));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return ForwardedWrite::TimedOut;
        }
        let deadline_ms = left.as_millis() as u64;
        let client = self.cluster.client();
        let answer = match write {
            Proposed::Registry(write) => {
                let request = ProposeWrite {
                    write: write.clone(),
                    deadline_ms,
                };
                client.call_within(member, &request, left).await
            }
            Proposed::Accounts(change) => {
                let request = ProposeAccountChange {
                    change: change.clone(),
                    deadline_ms,
                };
                client.call_within(member, &request, left).await
            }
        };
        match answer {
            Ok(answer) => answer,
            Err(_) if Instant::now() >= deadline => ForwardedWrite::TimedOut,
            Err(e) => ForwardedWrite::Failed(format!("leader {} unreachable: {e}", member.address)),
        }
    }

    /// The leader's read index: confirms leadership with a quorum (by
    /// `deadline`) and returns the log index a linearizable read must have
    /// applied.
    pub async fn read_index_here(&self, deadline: Deadline) -> ReadIndex {
        match tokio::time::timeout_at(deadline, self.raft.ensure_linearizable()).await {
            Err(_) => ReadIndex::TimedOut,
            Ok(Ok(log_id)) => ReadIndex::Index(log_id.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                f,
            )))) => ReadIndex::NotLeader(f.leader_id),
            Ok(Err(e)) => ReadIndex::Failed(e.to_string()),
        }
    }

    /// Waits until this node has applied everything committed before the call
    /// (a leader-checked read: ReadIndex through the leader), by `deadline`.
    pub async fn linearize(&self, deadline: Deadline) -> Result<(), ConsistencyError> {
        let index = match self.leader_id() {
            Some(leader) if leader != self.id => self.read_index_through(leader, deadline).await,
            Some(_) => self.read_index_here(deadline).await,
            None => ReadIndex::NotLeader(None),
        };
        let index = match index {
            ReadIndex::Index(index) => index,
            ReadIndex::NotLeader(_) => {
                return Err(ConsistencyError::NoLeader(
                    "no leader to confirm the read".into(),
                ));
            }
            ReadIndex::TimedOut => return Err(self.timed_out()),
            ReadIndex::Failed(reason) => return Err(ConsistencyError::NoLeader(reason)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| ConsistencyError::Lagging(e.to_string()))
    }

    async fn read_index_through(&self, leader: u64, deadline: Deadline) -> ReadIndex {
        let Some(member) = self.members.member(leader) else {
            return ReadIndex::Failed(format!("leader {leader} is not a member"));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let request = ReadIndexRequest {
            deadline_ms: left.as_millis() as u64,
        };
        match self
            .cluster
            .client()
            .call_within(member, &request, left)
            .await
        {
            Ok(answer) => answer,
            Err(_) if Instant::now() >= deadline => ReadIndex::TimedOut,
            Err(e) => ReadIndex::Failed(format!("leader unreachable: {e}")),
        }
    }

    /// The leader's Raft id, as this member last heard.
    pub fn leader_id(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this member is the Raft leader right now.
    pub fn is_leader(&self) -> bool {
        self.leader_id() == Some(self.id)
    }

    /// The state for `operator/servers` and metrics (reads the committed index from disk).
    pub async fn status(&self) -> RaftStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let committed = log_store::blocking(&self.db, log_store::read_committed)
            .await
            .ok()
            .flatten();
        let name = |id: u64| {
            self.members
                .member(id)
                .map_or_else(|| id.to_string(), |m| m.address.to_string())
        };
        RaftStatus {
            node_id: self.id,
            state: match metrics.state {
                ServerState::Leader => "LEADER",
                ServerState::Follower => "FOLLOWER",
                ServerState::Candidate => "CANDIDATE",
                ServerState::Learner => "LEARNER",
                ServerState::Shutdown => "SHUTDOWN",
            }
            .to_string(),
            term: metrics.current_term,
            leader: metrics.current_leader.map(name),
            commit_index: committed.map(|l| l.index),
            last_applied: metrics.last_applied.map(|l| l.index),
            last_log_index: metrics.last_log_index,
            snapshot_index: metrics.snapshot.map(|l| l.index),
            members: metrics
                .membership_config
                .membership()
                .voter_ids()
                .map(name)
                .collect(),
        }
    }

    /// Stops Raft's tasks; a failure is logged, not returned.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not shut down cleanly");
        }
    }
}

impl crate::metrics::RenderMetrics for RaftStatus {
    fn render_metrics(&self, out: &mut crate::metrics::Exposition) {
        let index = |i: Option<u64>| i.map_or(0.0, |i| i as f64);
        out.gauge("nacre_raft_term", "Current Raft term.", self.term as f64);
        out.gauge(
            "nacre_raft_is_leader",
            "1 if this member is the Raft leader.",
            f64::from(u8::from(self.state == "LEADER")),
        );
        out.gauge(
            "nacre_raft_has_leader",
            "1 if this member knows a Raft leader.",
            f64::from(u8::from(self.leader.is_some())),
        );
        out.gauge(
            "nacre_raft_commit_index",
            "Highest log index known committed.",
            index(self.commit_index),
        );
        out.gauge(
            "nacre_raft_last_applied",
            "Highest log index applied to the registry.",
            index(self.last_applied),
        );
        out.gauge(
            "nacre_raft_last_log_index",
            "Highest log index in this member's log.",
            index(self.last_log_index),
        );
        out.gauge(
            "nacre_raft_snapshot_index",
            "Log index of the last snapshot.",
            index(self.snapshot_index),
        );
    }
}
