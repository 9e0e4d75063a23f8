//! Routing client writes to the responsible member (Nacos's `DistroFilter`).
//!
//! In a cluster, a register, deregister, update, patch, health mark or beat
//! of an ephemeral instance is handled by the member responsible for its
//! service. This middleware sits in front of those routes: when another
//! member is responsible it sends the request on, marked as forwarded, and
//! returns that member's answer unchanged, so the client never notices. A
//! forwarded request arrives on the internal route (`ForwardBatch`, with the
//! cluster credential) and is handled where it lands, never forwarded twice.
//!
//! When the responsible member cannot be reached it leaves this node's view
//! at once and the request is tried again against the next responsible
//! member (possibly this node), so a dead member costs a client one slow
//! request, not a lost write. All attempts together end by the client's
//! deadline (`cluster.request_timeout_ms`).
//!
//! The responsible member's answer carries the written instance's record,
//! which this node merges before it answers the client: an acknowledged
//! forwarded write is on two members even if the responsible one dies
//! before its own sync leaves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use tokio::time::Instant;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, is_form};
use crate::cluster::{Cluster, PeerError, auth};
use crate::consistency::distro::{Distro, DistroStats};
use crate::registry::model::{InstanceId, ServiceKey};
use crate::wire::{Forwarded, ForwardedRequest, SECRET_HEADER};

/// Responsible members tried before the request fails (each failure shrinks the view).
const ATTEMPTS: usize = 3;

/// The middleware in front of the instance write routes.
pub async fn route_to_responsible(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    // A node is in a cluster with both, or standalone with neither.
    let (Some(cluster), Some(distro)) = (state.cluster.clone(), state.distro.clone()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let body = match read_body(body, state.limits.max_body_bytes).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let handle_here = |parts, body| next.run(Request::from_parts(parts, Body::from(body)));
    // Requests this node cannot place (bad parameters) or that are not about
    // ephemeral data are handled here; the handler answers bad input.
    let Some((service, instance)) = ephemeral_target(&parts, &body) else {
        return handle_here(parts, body).await;
    };
    if cluster.is_responsible(&service) {
        return handle_here(parts, body).await;
    }
    // A slow member must not pile up requests here without bound (Nacos's
    // whole cluster once stalled on forwarded beats, alibaba/nacos#6967).
    let Ok(_slot) = distro.forward_slots.try_acquire() else {
        return ApiError::Unavailable(
            "too many requests are being forwarded to other members; try again".into(),
        )
        .into_response();
    };
    let request = ForwardedRequest {
        method: parts.method.to_string(),
        // These routes are nested under the naming API's prefix, which the
        // nested router has stripped from the URI.
        path_and_query: format!(
            "{}{}",
            super::NS,
            parts.uri.path_and_query().map_or("", |p| p.as_str())
        ),
        content_type: content_type(&parts.headers),
        body: body.clone(),
        records: instance.and_then(|id| {
            let ids = std::iter::once(id).collect();
            state
                .naming
                .registry()
                .ephemeral_records(&service, Some(&ids))
        }),
    };
    match forward_with_retries(&cluster, &distro, &service, request).await {
        Some(response) => response,
        // This node became responsible while trying.
        None if cluster.is_responsible(&service) => handle_here(parts, body).await,
        None => ApiError::Unavailable(format!(
            "no reachable node is responsible for {service}; try again"
        ))
        .into_response(),
    }
}

/// The request body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::BodyTooLarge(limit))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The service (and instance, if named) a write about ephemeral data
/// addresses, if its parameters name one.
fn ephemeral_target(parts: &Parts, body: &Bytes) -> Option<(ServiceKey, Option<InstanceId>)> {
    let form: &[u8] = if is_form(content_type(&parts.headers).as_deref()) {
        body
    } else {
        &[]
    };
    let params = Params::from_query_and_form(parts.uri.query().unwrap_or(""), form);
    let persistent = params.flag("ephemeral").ok().flatten() == Some(false);
    let service = params.service_key().ok().filter(|_| !persistent)?;
    Some((service, params.instance_id().ok()))
}

/// Sends the request to the responsible member, trying the next one when it
/// is unreachable, until the client's deadline. `None` when no other member
/// is responsible any more (this node may be).
async fn forward_with_retries(
    cluster: &Arc<Cluster>,
    distro: &Distro,
    service: &ServiceKey,
    request: ForwardedRequest,
) -> Option<Response> {
    let deadline = Instant::now() + Duration::from_millis(cluster.config().request_timeout_ms);
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            DistroStats::add(&distro.stats.forward_retries, 1);
        }
        let responsible = cluster.responsible(service)?;
        if responsible == cluster.me() {
            return None;
        }
        let member = cluster.member(responsible).cloned()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        DistroStats::add(&distro.stats.forwarded, 1);
        match distro
            .forwarder()
            .forward(&member, request.clone(), left)
            .await
        {
            Ok(reply) => return Some(response_of(distro, responsible, reply)),
            Err(PeerError::Unreachable(error)) => cluster.report_unreachable(responsible, &error),
            Err(e) => {
                tracing::warn!(%responsible, error = %e, "forwarding to the responsible node failed");
                return Some(
                    ApiError::Unavailable(format!(
                        "the node responsible for {service} ({responsible}) failed: {e}"
                    ))
                    .into_response(),
                );
            }
        }
    }
    Some(
        ApiError::Unavailable(format!(
            "no reachable node answered for {service} in time; try again"
        ))
        .into_response(),
    )
}

/// The client's answer: the responsible node's, as it gave it, once the
/// written record it carries is merged here.
fn response_of(distro: &Distro, responsible: SocketAddr, mut reply: Forwarded) -> Response {
    if let Some(records) = reply.records.take() {
        distro.note_forwarded(responsible, &records);
        distro.merge(records);
    }
    let Ok(status) = StatusCode::from_u16(reply.status) else {
        return ApiError::Unavailable(format!(
            "the responsible node answered with status {}",
            reply.status
        ))
        .into_response();
    };
    let mut response = (status, reply.body).into_response();
    if let Some(ct) = reply.content_type.and_then(|ct| ct.parse().ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

/// Whether a request carries the cluster credential.
pub fn credential_ok(secret: &str, headers: &HeaderMap) -> bool {
    auth::accepts(secret, headers.get(SECRET_HEADER).map(|v| v.as_bytes()))
}
