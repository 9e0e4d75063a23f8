//! Group commit on the leader: writes that arrive while an entry is being
//! committed wait, and go into the next entry together.
//!
//! openraft appends, replicates and persists every `client_write` as its own
//! entry: one disk sync per write on every member. Under concurrent writers
//! that caps throughput at the disk's sync rate. The proposer keeps one entry
//! in flight and batches whatever queued meanwhile, so a burst of N writes
//! costs about one round of syncs instead of N, and a lone write is proposed
//! at once, as before.
//!
//! Each write keeps its client's deadline through the queue: one whose
//! deadline passed while it waited is not proposed at all, a batch is given
//! until the latest deadline among its writes, and each writer stops waiting
//! at its own deadline (the entry may still commit afterwards).

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::accounts::AccountChange;
use crate::consistency::{Deadline, Write};
use crate::shutdown::Shutdown;
use crate::wire::{ForwardedWrite, RaftCommand, RaftTypes};

/// Most writes in one log entry.
pub const MAX_BATCH: usize = 256;

/// Most writes waiting for an entry; beyond it a write fails at once
/// instead of queueing without bound.
const MAX_QUEUED: usize = 16 * MAX_BATCH;

/// What a log entry carries: a write to the registry's persistent data, or
/// a change to the auth tables.
#[derive(Clone, Debug)]
pub enum Proposed {
    /// A persistent instance or service definition.
    Registry(Write),
    /// Users, roles, permissions, signing keys.
    Accounts(AccountChange),
}

struct Proposal {
    write: Proposed,
    deadline: Deadline,
    reply: oneshot::Sender<ForwardedWrite>,
}

/// Hands writes to the proposing task; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts the proposing task in `tasks`; it ends at shutdown, after
    /// answering every write it holds.
    pub fn start(
        raft: Raft<RaftTypes>,
        tasks: &mut tokio::task::JoinSet<()>,
        shutdown: Shutdown,
    ) -> Proposer {
        let (queue, proposals) = mpsc::channel(MAX_QUEUED);
        tasks.spawn(propose_batches(raft, proposals, shutdown));
        Proposer { queue }
    }

    /// Proposes `write` in the next entry and waits for that entry's commit,
    /// until `deadline`.
    pub async fn propose(&self, write: Proposed, deadline: Deadline) -> ForwardedWrite {
        let (reply, answer) = oneshot::channel();
        let proposal = Proposal {
            write,
            deadline,
            reply,
        };
        match self.queue.try_send(proposal) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return ForwardedWrite::Failed(format!(
                    "the leader has {MAX_QUEUED} writes waiting to be proposed"
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return ForwardedWrite::Failed("Raft is shutting down".into());
            }
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Err(_) => ForwardedWrite::TimedOut,
            Ok(answer) => {
                answer.unwrap_or_else(|_| ForwardedWrite::Failed("Raft is shutting down".into()))
            }
        }
    }
}

async fn propose_batches(
    raft: Raft<RaftTypes>,
    mut proposals: mpsc::Receiver<Proposal>,
    mut shutdown: Shutdown,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = tokio::select! {
            received = proposals.recv_many(&mut batch, MAX_BATCH) => received,
            _ = shutdown.recv() => 0,
        };
        if received == 0 {
            break;
        }
        let now = Instant::now();
        let (live, expired): (Vec<Proposal>, Vec<Proposal>) =
            batch.drain(..).partition(|p| p.deadline > now);
        for proposal in expired {
            let _ = proposal.reply.send(ForwardedWrite::TimedOut);
        }
        let Some(deadline) = live.iter().map(|p| p.deadline).max() else {
            continue;
        };
        let mut command = RaftCommand {
            writes: Vec::with_capacity(live.len()),
            accounts: Vec::new(),
        };
        let mut replies = Vec::with_capacity(live.len());
        for proposal in live {
            match proposal.write {
                Proposed::Registry(write) => command.writes.push(write),
                Proposed::Accounts(change) => command.accounts.push(change),
            }
            replies.push(proposal.reply);
        }
        let count = replies.len();
        let outcome = commit(&raft, command, deadline).await;
        tracing::trace!(writes = count, ?outcome, "proposed a batch");
        for reply in replies {
            // A writer that gave up no longer listens; nothing to tell it.
            let _ = reply.send(outcome.clone());
        }
    }
    // Shutting down: whoever still waits is told so, nobody waits for nothing.
    proposals.close();
    while let Some(proposal) = proposals.recv().await {
        let _ = proposal
            .reply
            .send(ForwardedWrite::Failed("Raft is shutting down".into()));
    }
}

async fn commit(
    raft: &Raft<RaftTypes>,
    command: RaftCommand,
    deadline: Deadline,
) -> ForwardedWrite {
    match tokio::time::timeout_at(deadline, raft.client_write(command)).await {
        Err(_) => ForwardedWrite::TimedOut,
        Ok(Ok(reply)) => ForwardedWrite::Committed(reply.log_id.index),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            ForwardedWrite::NotLeader(f.leader_id)
        }
        Ok(Err(e)) => ForwardedWrite::Failed(e.to_string()),
    }
}
