//! Group commit on the leader: writes that arrive while an entry is being
//! committed wait, and go into the next entry together.
//!
//! openraft appends, replicates and persists every `client_write` as its own
//! entry: one disk sync per write on every member. Under concurrent writers
//! that caps throughput at the disk's sync rate. The proposer keeps one entry
//! in flight and batches whatever queued meanwhile, so a burst of N writes
//! costs about one round of syncs instead of N, and a lone write is proposed
//! at once, as before.

use std::time::Duration;

use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};

use super::{ForwardedWrite, RaftCommand, RaftTypes};
use crate::consistency::Write;

/// Most writes in one log entry.
pub const MAX_BATCH: usize = 256;

/// Most writes waiting for an entry; beyond it a write fails at once
/// instead of queueing without bound.
const MAX_QUEUED: usize = 16 * MAX_BATCH;

type Proposal = (Write, oneshot::Sender<ForwardedWrite>);

/// Hands writes to the proposing task; cheap to clone.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts the proposing task; it ends when the last `Proposer` is dropped.
    pub fn start(raft: Raft<RaftTypes>, commit_timeout: Duration) -> Proposer {
        let (queue, proposals) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(propose_batches(raft, proposals, commit_timeout));
        Proposer { queue }
    }

    /// Proposes `write` in the next entry and waits for that entry's commit.
    pub async fn propose(&self, write: Write) -> ForwardedWrite {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send((write, reply)) {
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
        answer
            .await
            .unwrap_or_else(|_| ForwardedWrite::Failed("Raft is shutting down".into()))
    }
}

async fn propose_batches(
    raft: Raft<RaftTypes>,
    mut proposals: mpsc::Receiver<Proposal>,
    commit_timeout: Duration,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while proposals.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (writes, replies): (Vec<Write>, Vec<_>) = batch.drain(..).unzip();
        let count = writes.len();
        let outcome = commit(&raft, RaftCommand { writes }, commit_timeout).await;
        tracing::trace!(writes = count, ?outcome, "proposed a batch");
        for reply in replies {
            // A writer that gave up no longer listens; nothing to tell it.
            let _ = reply.send(outcome.clone());
        }
    }
}

async fn commit(raft: &Raft<RaftTypes>, command: RaftCommand, timeout: Duration) -> ForwardedWrite {
    match tokio::time::timeout(timeout, raft.client_write(command)).await {
        Err(_) => ForwardedWrite::Failed("commit timed out".into()),
        Ok(Ok(reply)) => ForwardedWrite::Committed(reply.log_id.index),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            ForwardedWrite::NotLeader(f.leader_id)
        }
        Ok(Err(e)) => ForwardedWrite::Failed(e.to_string()),
    }
}
