//! The client for the internal API: one typed [`PeerClient::call`] for every
//! message of [`crate::wire`]. Every request carries the cluster secret and
//! the protocol version, has a deadline, and a failure says whether the peer
//! was unreachable (take it out of the view) or answered with a refusal.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use reqwest::{Method, StatusCode};

use super::members::Member;
use crate::config::ClusterConfig;
use crate::wire::{self, MSGPACK, PROTOCOL_HEADER, PROTOCOL_VERSION, Rpc, SECRET_HEADER};

/// Why a call to a peer failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PeerError {
    /// No answer: connection refused or reset, or the deadline passed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer answered with an error status: it is up, but said no.
    #[error("answered {status}: {body}")]
    Refused {
        /// The HTTP status it answered.
        status: StatusCode,
        /// The first 200 characters of its body, as text.
        body: String,
    },
    /// The peer answered something this node cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Sends [`crate::wire`] messages to peers as MessagePack over HTTP, with the
/// cluster secret, the protocol version and `cluster.request_timeout_ms`
/// (connect within at most 1 s). Cheap to clone: connections are pooled.
#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: String,
    timeout: Duration,
}

impl PeerClient {
    /// A client with the deadlines and secret of `config`; fails only if the HTTP
    /// client cannot be built.
    pub fn new(config: &ClusterConfig) -> anyhow::Result<PeerClient> {
        let timeout = Duration::from_millis(config.request_timeout_ms);
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(1)))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .context("building the cluster HTTP client")?;
        Ok(PeerClient {
            http,
            secret: config.secret.clone(),
            timeout,
        })
    }

    /// Sends `request` to `peer` and decodes its answer, within the
    /// configured request timeout.
    pub async fn call<R: Rpc>(&self, peer: &Member, request: &R) -> Result<R::Reply, PeerError> {
        self.call_within(peer, request, self.timeout).await
    }

    /// Sends `request` to every one of `peers` at once and gathers the
    /// answers that come within `timeout`; a member that fails or is late is
    /// left out (logged at debug, naming `what`), as Nacos's aggregating
    /// console reads leave it out.
    pub async fn ask_each<R: Rpc + Clone>(
        &self,
        peers: Vec<Member>,
        request: &R,
        timeout: Duration,
        what: &'static str,
    ) -> Vec<R::Reply> {
        self.ask_all(peers, request, timeout, what)
            .await
            .into_iter()
            .filter_map(|(_, answer)| answer.ok())
            .collect()
    }

    /// [`PeerClient::ask_each`], with each member's answer or why there is
    /// none (failed, or not within `timeout`), for callers that show which
    /// member did not answer. In no particular order.
    pub async fn ask_all<R: Rpc + Clone>(
        &self,
        peers: Vec<Member>,
        request: &R,
        timeout: Duration,
        what: &'static str,
    ) -> Vec<(SocketAddr, Result<R::Reply, PeerError>)> {
        let mut calls = tokio::task::JoinSet::new();
        for peer in peers {
            let client = self.clone();
            let request = request.clone();
            calls.spawn(async move {
                let answer = client.call_within(&peer, &request, timeout).await;
                if let Err(e) = &answer {
                    tracing::debug!(peer = %peer.address, error = %e, "no {what} from a member");
                }
                (peer.address, answer)
            });
        }
        let mut answers = Vec::new();
        while let Some(answer) = calls.join_next().await {
            answers.extend(answer.ok());
        }
        answers
    }

    /// [`PeerClient::call`] with its own deadline (at most the configured
    /// timeout), for callers that answer a client by a deadline of its own.
    pub async fn call_within<R: Rpc>(
        &self,
        peer: &Member,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Reply, PeerError> {
        let body = wire::encode(request)
            .map_err(|e| PeerError::Protocol(format!("encoding {}: {e}", R::PATH)))?;
        let reply = self
            .http
            .request(Method::POST, format!("http://{}{}", peer.dial, R::PATH))
            .timeout(timeout.min(self.timeout))
            .header(SECRET_HEADER, &self.secret)
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION)
            .header(reqwest::header::CONTENT_TYPE, MSGPACK)
            .body(body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(PeerError::Refused {
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        wire::decode(&body)
            .map_err(|e| PeerError::Protocol(format!("unreadable answer to {}: {e}", R::PATH)))
    }
}

fn transport_error(e: reqwest::Error) -> PeerError {
    PeerError::Unreachable(format!("{e:#}"))
}
