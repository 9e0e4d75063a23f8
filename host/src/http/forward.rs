//! Routing client writes to the responsible node (Nacos's `DistroFilter`).
//!
//! In a cluster, a register, deregister, update, patch, health mark or beat
//! of an ephemeral instance is handled by the node responsible for its
//! service. This middleware sits in front of those routes: when another
//! member is responsible it sends the request on, marked as forwarded, and
//! returns that member's answer unchanged, so the client never notices. A
//! forwarded request is handled where it lands (never forwarded twice), and
//! only if it carries the cluster credential.
//!
//! When the owner cannot be reached it leaves this node's view at once and
//! the request is tried again against the new owner (possibly this node), so
//! a dead member costs a client one slow request, not a lost write. All
//! attempts together end by the client's deadline (`request_timeout_ms`).
//!
//! The owner's answer carries the written instance's record, which this node
//! merges before it answers the client: an acknowledged forwarded write is
//! on two members even if the owner dies before its own sync leaves.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use tokio::time::Instant;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, is_form};
use crate::cluster::PeerError;
use crate::cluster::auth;
use crate::consistency::distro::{Distro, DistroStats};
use crate::wire::{FORWARDED_HEADER, Forwarded, ForwardedRequest, SECRET_HEADER};

/// Owners tried before the request fails (each failure shrinks the view).
const ATTEMPTS: usize = 3;

pub async fn route_to_owner(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    // A node is in a cluster with both, or standalone with neither.
    let (Some(cluster), Some(distro)) = (state.cluster.clone(), state.distro.clone()) else {
        return next.run(request).await;
    };
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    if request.headers().contains_key(FORWARDED_HEADER) {
        if !credential_ok(&cluster.config().secret, request.headers()) {
            return ApiError::Unauthorized(
                "forwarded request without a valid cluster credential".into(),
            )
            .into_response();
        }
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let limit = state.limits.max_body_bytes;
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return ApiError::BodyTooLarge(limit).into_response();
        }
        Err(e) => {
            return ApiError::BadRequest(format!("could not read the request body: {e}"))
                .into_response();
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let query = parts.uri.query().unwrap_or("");
    let form: &[u8] = if is_form(content_type.as_deref()) {
        &body
    } else {
        &[]
    };
    let params = Params::from_query_and_form(query, form);
    // Requests this node cannot place (bad parameters) or that are not about
    // ephemeral data are handled here; the handler answers bad input.
    let service = match params.service_key() {
        Ok(service) if params.flag("ephemeral").ok().flatten() != Some(false) => service,
        _ => return next.run(Request::from_parts(parts, Body::from(body))).await,
    };
    // These routes are nested under the naming API's prefix, which the nested
    // router has stripped from the URI.
    let path_and_query = format!(
        "{}{}",
        super::NS,
        parts.uri.path_and_query().map_or("", |p| p.as_str())
    );
    if cluster.is_responsible(&service) {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    }
    let deadline = Instant::now() + Duration::from_millis(cluster.config().request_timeout_ms);
    // A slow owner must not pile up requests here without bound (Nacos's
    // whole cluster once stalled on forwarded beats, alibaba/nacos#6967).
    let Ok(_slot) = distro.forward_slots.try_acquire() else {
        return ApiError::Unavailable(
            "too many requests are being forwarded to other members; try again".into(),
        )
        .into_response();
    };
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            DistroStats::add(&distro.stats.forward_retries, 1);
        }
        let Some(owner) = cluster.owner(&service) else {
            break;
        };
        if owner == cluster.me() {
            break;
        }
        let Some(member) = cluster.member(owner).cloned() else {
            break;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        DistroStats::add(&distro.stats.forwarded, 1);
        let request = ForwardedRequest {
            method: parts.method.to_string(),
            path_and_query: path_and_query.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
        };
        match distro
            .forwarder()
            .forward(&cluster, &member, request, left)
            .await
        {
            Ok(reply) => return response_of(&distro, reply),
            Err(PeerError::Unreachable(error)) => cluster.report_unreachable(owner, &error),
            Err(e) => {
                tracing::warn!(%owner, error = %e, "forwarding to the responsible node failed");
                return ApiError::Unavailable(format!(
                    "the node responsible for {service} ({owner}) failed: {e}"
                ))
                .into_response();
            }
        }
    }
    if cluster.is_responsible(&service) {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    }
    ApiError::Unavailable(format!(
        "no reachable node is responsible for {service}; try again"
    ))
    .into_response()
}

/// The client's answer: the responsible node's, as it gave it, once the
/// written record it carries is merged here.
fn response_of(distro: &Distro, mut reply: Forwarded) -> Response {
    if let Some(records) = reply.records.take() {
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
