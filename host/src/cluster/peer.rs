//! The client for the internal API: every request carries the cluster secret,
//! has a deadline, and reports whether a failure was the peer being
//! unreachable (take it out of the view) or the peer refusing (it answered).

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use reqwest::{Method, StatusCode};

use super::auth::SECRET_HEADER;
use super::members::Member;
use crate::config::ClusterConfig;

/// MessagePack bodies on the internal API.
pub const MSGPACK: &str = "application/msgpack";

#[derive(Clone, Debug, thiserror::Error)]
pub enum PeerError {
    /// No answer: connection refused or reset, or the deadline passed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The peer answered with an error status.
    #[error("answered {status}: {body}")]
    Refused { status: StatusCode, body: String },
    /// The peer answered something this node cannot read.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// A client's request as a member passes it on to the responsible member.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ForwardedRequest {
    pub method: String,
    /// Path (under the naming API) and query, as the client sent them.
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// A peer's full answer to a forwarded client request (also on the wire, in
/// a batch: `consistency::distro::forwarder`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Forwarded {
    /// The HTTP status, as a number.
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct PeerClient {
    http: reqwest::Client,
    secret: String,
}

impl PeerClient {
    pub fn new(config: &ClusterConfig) -> anyhow::Result<PeerClient> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .connect_timeout(Duration::from_millis(config.request_timeout_ms.min(1_000)))
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .context("building the cluster HTTP client")?;
        Ok(PeerClient {
            http,
            secret: config.secret.clone(),
        })
    }

    pub async fn get(&self, peer: &Member, path: &str) -> Result<Bytes, PeerError> {
        self.send(peer, Method::GET, path, None).await
    }

    /// POSTs a MessagePack body; returns the reply's body.
    pub async fn post(&self, peer: &Member, path: &str, body: Vec<u8>) -> Result<Bytes, PeerError> {
        self.send(peer, Method::POST, path, Some(body)).await
    }

    async fn send(
        &self,
        peer: &Member,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, PeerError> {
        let url = format!("http://{}{path}", peer.dial);
        let mut request = self
            .http
            .request(method, url)
            .header(SECRET_HEADER, &self.secret);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, MSGPACK)
                .body(body);
        }
        let reply = request.send().await.map_err(transport_error)?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(PeerError::Refused {
                status,
                body: String::from_utf8_lossy(&body).chars().take(200).collect(),
            });
        }
        Ok(body)
    }

    /// Sends a client's request on to the responsible peer, marked as
    /// forwarded so that the peer handles it itself; returns the peer's answer
    /// whatever its status.
    pub async fn forward(
        &self,
        peer: &Member,
        forwarded: ForwardedRequest,
    ) -> Result<Forwarded, PeerError> {
        let url = format!("http://{}{}", peer.dial, forwarded.path_and_query);
        let method = Method::from_bytes(forwarded.method.as_bytes())
            .map_err(|e| PeerError::Protocol(format!("method {}: {e}", forwarded.method)))?;
        let mut request = self
            .http
            .request(method, url)
            .header(SECRET_HEADER, &self.secret)
            .header(FORWARDED_HEADER, "1")
            .body(forwarded.body);
        if let Some(content_type) = forwarded.content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        let reply = request.send().await.map_err(transport_error)?;
        let status = reply.status().as_u16();
        let content_type = reply
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = reply.bytes().await.map_err(transport_error)?;
        Ok(Forwarded {
            status,
            content_type,
            body,
        })
    }
}

/// Marks a client request that a member forwarded to the responsible node.
pub const FORWARDED_HEADER: &str = "x-nacre-forwarded";

fn transport_error(e: reqwest::Error) -> PeerError {
    PeerError::Unreachable(format!("{e:#}"))
}
