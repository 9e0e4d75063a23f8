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
//! - A write on a follower goes to the leader (`/nacre/v1/raft/write`); the
//!   client's request returns after the entry is committed — on a majority's
//!   disks — or fails after `raft.write_timeout_ms` with a clear error.
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
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use openraft::error::RaftError;
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};

use super::{ConsistencyError, Write};
use crate::cluster::{Cluster, Member};
use crate::config::RaftConfig;
use crate::naming::registry::Registry;
use crate::notifier::Notifier;
use proposer::Proposer;

pub use network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};

/// Where a follower sends a write for the leader to propose.
pub const WRITE_PATH: &str = "/nacre/v1/raft/write";
/// Where a follower asks the leader for a read index.
pub const READ_INDEX_PATH: &str = "/nacre/v1/raft/read-index";

/// One entry of the replicated log: writes to persistent data, committed
/// together and applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaftCommand {
    pub writes: Vec<Write>,
}

/// What applying an entry answers (nothing: the write either applied or not).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaftApplied {}

openraft::declare_raft_types!(
    /// Nacre's Raft: log entries are [`RaftCommand`]s, nodes are `ip:port`.
    pub RaftTypes:
        D = RaftCommand,
        R = RaftApplied,
);

/// The leader's answer to a forwarded write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ForwardedWrite {
    /// Committed at this log index.
    Committed(u64),
    /// Not the leader (any more); the leader's id if known.
    NotLeader(Option<u64>),
    Failed(String),
}

/// The leader's answer to a read-index request: the log index a linearizable
/// read must have applied.
#[derive(Debug, Serialize, Deserialize)]
pub enum ReadIndex {
    Index(u64),
    NotLeader(Option<u64>),
    Failed(String),
}

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

/// Raft state for `operator/servers` and metrics.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftStatus {
    pub node_id: u64,
    pub state: String,
    pub term: u64,
    pub leader: Option<String>,
    pub commit_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub last_log_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub members: Vec<String>,
}

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
        registry: Arc<Registry>,
        notifier: Notifier,
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
            state_machine::StateMachine::open(registry, notifier, Arc::clone(&db)).await?;
        let network = network::Network {
            members: Arc::clone(&members),
            client: cluster.client().clone(),
        };
        let raft = Raft::new(id, raft_config, network, log, machine)
            .await
            .context("starting Raft")?;
        if !raft.is_initialized().await.context("reading Raft state")? {
            let voters: BTreeMap<u64, BasicNode> = members
                .ids
                .iter()
                .map(|(i, m)| (*i, BasicNode::new(m.address.to_string())))
                .collect();
            match raft.initialize(voters).await {
                Ok(()) => tracing::info!(node_id = id, "bootstrapped a new Raft cluster"),
                Err(e) => tracing::info!(node_id = id, error = %e, "Raft cluster already formed"),
            }
        }
        let write_timeout = Duration::from_millis(config.write_timeout_ms);
        Ok(Arc::new(RaftStore {
            proposer: Proposer::start(raft.clone(), write_timeout),
            raft,
            db,
            id,
            members,
            cluster,
            write_timeout,
        }))
    }

    pub fn raft(&self) -> &Raft<RaftTypes> {
        &self.raft
    }

    /// Proposes `write` (through the leader) and waits for its commit, at
    /// most `write_timeout_ms`.
    pub async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            let attempt = match self.leader_id() {
                Some(leader) if leader != self.id => self.write_through(leader, &write).await,
                _ => self.write_here(write.clone()).await,
            };
            let retry = match attempt {
                ForwardedWrite::Committed(index) => {
                    // Read-your-writes on this node: apply up to the entry before answering.
                    // It is committed either way: a slow apply is logged, not failed.
                    let left = deadline.saturating_duration_since(Instant::now());
                    let applied = self
                        .raft
                        .wait(Some(left.max(Duration::from_millis(100))))
                        .applied_index_at_least(Some(index), "the client's write")
                        .await;
                    if let Err(e) = applied {
                        tracing::warn!(index, error = %e, "write committed but not yet applied here");
                    }
                    return Ok(());
                }
                ForwardedWrite::Failed(reason) => reason,
                ForwardedWrite::NotLeader(_) => "no leader".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(ConsistencyError::NotCommitted(format!(
                    "write not committed within {} ms ({retry}); it may still be applied later",
                    self.write_timeout.as_millis()
                )));
            }
            // No leader yet (an election is on) or the leader moved: try again shortly.
            let wait =
                Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait).await;
        }
    }

    /// Proposes on this node (batched with other writes, see [`proposer`]);
    /// answers `NotLeader` if it is not the leader.
    pub async fn write_here(&self, write: Write) -> ForwardedWrite {
        self.proposer.propose(write).await
    }

    async fn write_through(&self, leader: u64, write: &Write) -> ForwardedWrite {
        let Some(member) = self.members.member(leader) else {
            return ForwardedWrite::Failed(format!("leader {leader} is not a member"));
        };
        let body = match rmp_serde::to_vec(write) {
            Ok(body) => body,
            Err(e) => return ForwardedWrite::Failed(format!("encoding the write: {e}")),
        };
        match self.cluster.client().post(member, WRITE_PATH, body).await {
            Ok(reply) => rmp_serde::from_slice(&reply).unwrap_or_else(|e| {
                ForwardedWrite::Failed(format!("bad reply from the leader: {e}"))
            }),
            Err(e) => ForwardedWrite::Failed(format!("leader {} unreachable: {e}", member.address)),
        }
    }

    /// The leader's read index: confirms leadership with a quorum and returns
    /// the log index a linearizable read must have applied.
    pub async fn read_index_here(&self) -> ReadIndex {
        match tokio::time::timeout(self.write_timeout, self.raft.ensure_linearizable()).await {
            Err(_) => ReadIndex::Failed("leadership not confirmed in time".into()),
            Ok(Ok(log_id)) => ReadIndex::Index(log_id.map_or(0, |l| l.index)),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                f,
            )))) => ReadIndex::NotLeader(f.leader_id),
            Ok(Err(e)) => ReadIndex::Failed(e.to_string()),
        }
    }

    /// Waits until this node has applied everything committed before the call
    /// (a leader-checked read: ReadIndex through the leader).
    pub async fn linearize(&self) -> Result<(), ConsistencyError> {
        let index = match self.leader_id() {
            Some(leader) if leader != self.id => {
                let Some(member) = self.members.member(leader) else {
                    return Err(ConsistencyError::NotCommitted("unknown leader".into()));
                };
                match self
                    .cluster
                    .client()
                    .post(member, READ_INDEX_PATH, Vec::new())
                    .await
                {
                    Ok(reply) => rmp_serde::from_slice(&reply).unwrap_or_else(|e| {
                        ReadIndex::Failed(format!("bad reply from the leader: {e}"))
                    }),
                    Err(e) => ReadIndex::Failed(format!("leader unreachable: {e}")),
                }
            }
            Some(_) => self.read_index_here().await,
            None => ReadIndex::NotLeader(None),
        };
        let index = match index {
            ReadIndex::Index(index) => index,
            ReadIndex::NotLeader(_) => {
                return Err(ConsistencyError::NotCommitted(
                    "no Raft leader to confirm the read".into(),
                ));
            }
            ReadIndex::Failed(reason) => return Err(ConsistencyError::NotCommitted(reason)),
        };
        self.raft
            .wait(Some(self.write_timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| ConsistencyError::NotCommitted(format!("catching up for the read: {e}")))
    }

    pub fn leader_id(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

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

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "Raft did not shut down cleanly");
        }
    }
}
