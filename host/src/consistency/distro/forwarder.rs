//! Client writes on their way to the responsible member, batched per peer.
//!
//! `http::forward` decides that a request belongs to another member; this
//! sends it there. Under load most writes land on a member that is not
//! responsible (two thirds of them in a three-node cluster), and one HTTP
//! exchange per forwarded write would cost more than the write itself. So
//! each peer has a queue: requests that arrive while earlier ones are on the
//! wire go together in one [`ForwardBatch`], where the owner runs each
//! through its own instance routes, as if the client had called it, and
//! answers every one with the written instance's record. A lone request goes
//! at once, alone.
//!
//! One batch is on the wire to a peer at a time: on a three-node cluster under
//! load, that gave more throughput and a lower p99 than two or four in flight
//! (22.4k against 20.0k and 16.8k writes/s, docs/BENCHMARKS.md). A failure of
//! the batch is the failure of each request in it (the caller retries against
//! the next owner, see `http::forward`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::cluster::{Cluster, Member, PeerError};
use crate::shutdown::Shutdown;
use crate::wire::{ForwardBatch, Forwarded, ForwardedRequest};

/// Requests in one batch, at most.
const MAX_BATCH: usize = 256;

struct Waiting {
    request: ForwardedRequest,
    answer: oneshot::Sender<Result<Forwarded, PeerError>>,
}

/// One queue per peer; see the module documentation.
pub struct Forwarder {
    queues: HashMap<SocketAddr, mpsc::Sender<Waiting>>,
    receivers: std::sync::Mutex<Vec<(Member, mpsc::Receiver<Waiting>)>>,
    /// A batch's size limit in bytes (half the internal message limit).
    max_batch_bytes: usize,
}

impl Forwarder {
    /// A queue for each peer of `cluster`; nothing is sent until the senders run.
    pub fn new(cluster: &Cluster) -> Forwarder {
        let mut queues = HashMap::new();
        let mut receivers = Vec::new();
        for peer in cluster.peers() {
            let (tx, rx) = mpsc::channel(MAX_BATCH * 4);
            queues.insert(peer.address, tx);
            receivers.push((peer, rx));
        }
        Forwarder {
            queues,
            receivers: std::sync::Mutex::new(receivers),
            max_batch_bytes: cluster.config().max_message_bytes / 2,
        }
    }

    /// Starts one batching task per peer.
    pub fn spawn(
        &self,
        cluster: &Arc<Cluster>,
        tasks: &mut tokio::task::JoinSet<()>,
        shutdown: &Shutdown,
    ) {
        let receivers =
            std::mem::take(&mut *self.receivers.lock().unwrap_or_else(|e| e.into_inner()));
        for (peer, rx) in receivers {
            tasks.spawn(batch_loop(
                Arc::clone(cluster),
                peer,
                rx,
                self.max_batch_bytes,
                shutdown.clone(),
            ));
        }
    }

    /// Sends a client's request to `peer` and returns its answer, or fails
    /// as unreachable after `timeout`.
    pub async fn forward(
        &self,
        peer: &Member,
        request: ForwardedRequest,
        timeout: Duration,
    ) -> Result<Forwarded, PeerError> {
        // A request fits a batch: bodies are at most `http.max_body_bytes`,
        // and the configuration keeps that within half an internal message.
        let Some(queue) = self.queues.get(&peer.address) else {
            return Err(PeerError::Protocol(format!(
                "{} is not a peer",
                peer.address
            )));
        };
        let exchange = async {
            let (answer, answered) = oneshot::channel();
            queue
                .send(Waiting { request, answer })
                .await
                .map_err(|_| shutting_down())?;
            answered.await.map_err(|_| shutting_down())?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(PeerError::Unreachable(format!(
                    "no answer within {timeout:?}"
                )))
            })
    }
}

fn shutting_down() -> PeerError {
    PeerError::Unreachable("this node is shutting down".into())
}

async fn batch_loop(
    cluster: Arc<Cluster>,
    peer: Member,
    mut queue: mpsc::Receiver<Waiting>,
    max_bytes: usize,
    mut shutdown: Shutdown,
) {
    loop {
        let first = tokio::select! {
            next = queue.recv() => match next {
                Some(first) => first,
                None => return,
            },
            _ = shutdown.recv() => return,
        };
        // Everything that arrived while the last batch was on the wire.
        let mut bytes = first.request.body.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < max_bytes {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.request.body.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        send_batch(&cluster, &peer, batch).await;
    }
}

async fn send_batch(cluster: &Cluster, peer: &Member, batch: Vec<Waiting>) {
    let (requests, answers): (Vec<ForwardedRequest>, Vec<_>) =
        batch.into_iter().map(|w| (w.request, w.answer)).unzip();
    // The client may have gone meanwhile: nobody to tell then.
    match exchange(cluster, peer, requests).await {
        Ok(replies) => {
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = answer.send(Ok(reply));
            }
        }
        Err(error) => {
            for answer in answers {
                let _ = answer.send(Err(error.clone()));
            }
        }
    }
}

/// One batch to the peer and its answers, one per request, in order.
async fn exchange(
    cluster: &Cluster,
    peer: &Member,
    requests: Vec<ForwardedRequest>,
) -> Result<Vec<Forwarded>, PeerError> {
    let sent = requests.len();
    let replies = cluster
        .client()
        .call(peer, &ForwardBatch { requests })
        .await?
        .replies;
    if replies.len() != sent {
        return Err(PeerError::Protocol(format!(
            "{} answers to {sent} forwarded requests",
            replies.len()
        )));
    }
    Ok(replies)
}
