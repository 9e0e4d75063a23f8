//! The cluster-internal API: membership probes and Distro's sync, checksum,
//! data and snapshot routes. MessagePack bodies; every route requires the
//! cluster credential ([`require_credential`]), and a request without it
//! gets 401 before any handler runs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use http_body_util::BodyExt;
use serde::Serialize;
use tower::ServiceExt;

use super::ApiState;
use super::error::ApiError;
use super::forward::credential_ok;
use crate::cluster::STATUS_PATH;
use crate::cluster::peer::{Forwarded, ForwardedRequest, MSGPACK};
use crate::consistency::Write;
use crate::consistency::distro::forwarder::FORWARD_PATH;
use crate::consistency::distro::repair::Checksums;
use crate::consistency::distro::{
    CHECKSUMS_PATH, DATA_PATH, DIGEST_PATH, Distro, DistroStats, SNAPSHOT_PATH, SYNC_PATH,
    ServiceDatum, SyncItem, SyncReply,
};
use crate::consistency::raft::{self, RaftStore};
use crate::naming::model::ServiceKey;

/// The internal routes, when the node is part of a cluster.
pub fn routes(state: &ApiState) -> Router<ApiState> {
    let max = state
        .cluster
        .as_ref()
        .map_or(1024 * 1024, |c| c.config().max_message_bytes);
    // What a forwarded client request runs through here: the instance routes,
    // without the forwarding in front of them.
    let instance_writes = Router::new()
        .nest(super::NS, super::instance_write_routes())
        .with_state(state.clone());
    Router::new()
        .route(STATUS_PATH, get(status))
        .route(SYNC_PATH, post(sync))
        .route(
            FORWARD_PATH,
            post(forwarded_writes).layer(Extension(InstanceWrites(instance_writes))),
        )
        .route(CHECKSUMS_PATH, post(checksums))
        .route(DATA_PATH, post(data))
        .route(SNAPSHOT_PATH, get(snapshot))
        .route(DIGEST_PATH, get(digest))
        .route(raft::APPEND_PATH, post(raft_append))
        .route(raft::VOTE_PATH, post(raft_vote))
        .route(raft::SNAPSHOT_PATH, post(raft_snapshot))
        .route(raft::WRITE_PATH, post(raft_write))
        .route(raft::READ_INDEX_PATH, post(raft_read_index))
        .layer(DefaultBodyLimit::max(max))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_credential,
        ))
}

async fn require_credential(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(cluster) = &state.cluster else {
        return ApiError::NotFound("this node is not part of a cluster".into()).into_response();
    };
    if !credential_ok(&cluster.config().secret, request.headers()) {
        tracing::warn!(
            path = request.uri().path(),
            "internal request without a valid cluster credential"
        );
        return ApiError::Unauthorized("a valid cluster credential is required".into())
            .into_response();
    }
    next.run(request).await
}

fn msgpack<T: Serialize>(value: &T) -> Response {
    match rmp_serde::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, MSGPACK)], body).into_response(),
        Err(e) => ApiError::Internal(format!("encoding a reply: {e}")).into_response(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    rmp_serde::from_slice(body).map_err(|e| ApiError::BadRequest(format!("malformed {what}: {e}")))
}

fn distro(state: &ApiState) -> Result<&Arc<Distro>, ApiError> {
    state
        .distro
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this node is not part of a cluster".into()))
}

async fn status(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    Ok(msgpack(&distro.cluster().status()))
}

/// A peer's batch of changed services: whole services kept only if newer,
/// deltas applied only onto their base; the others are named in the reply.
async fn sync(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    let items: Vec<SyncItem> = decode(&body, "sync batch")?;
    let mut reply = SyncReply::default();
    for item in items {
        match distro.apply_sync_item(item) {
            Ok(changed) => reply.applied += usize::from(changed),
            Err(service) => reply.stale.push(service),
        }
    }
    DistroStats::add(&distro.stats.applied_from_peers, reply.applied as u64);
    Ok(msgpack(&reply))
}

/// The instance routes, as the handler of forwarded writes calls them.
#[derive(Clone)]
struct InstanceWrites(Router);

/// Client writes a peer forwarded because this node is responsible for their
/// services: each runs through the instance routes as if the client had sent
/// it here, one after the other, and every answer goes back, in order.
async fn forwarded_writes(
    State(state): State<ApiState>,
    Extension(InstanceWrites(app)): Extension<InstanceWrites>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let requests: Vec<ForwardedRequest> = decode(&body, "forwarded requests")?;
    let limit = state.limits.max_body_bytes.max(64 * 1024);
    let mut answers = Vec::with_capacity(requests.len());
    for forwarded in requests {
        let response = match client_request(forwarded, connect_info.as_ref()) {
            Ok(request) => match app.clone().oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Err(e) => {
                ApiError::BadRequest(format!("malformed forwarded request: {e}")).into_response()
            }
        };
        answers.push(forwarded_answer(response, limit).await);
    }
    Ok(msgpack(&answers))
}

/// A forwarded request as the client sent it to the forwarding member.
fn client_request(
    forwarded: ForwardedRequest,
    connect_info: Option<&Extension<ConnectInfo<SocketAddr>>>,
) -> Result<Request, axum::http::Error> {
    let mut request = Request::builder()
        .method(forwarded.method.as_str())
        .uri(forwarded.path_and_query.as_str());
    if let Some(content_type) = &forwarded.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    if let Some(Extension(connect_info)) = connect_info {
        request = request.extension(*connect_info);
    }
    request.body(Body::from(forwarded.body))
}

async fn forwarded_answer(response: Response, limit: usize) -> Forwarded {
    let (parts, body) = response.into_parts();
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => Bytes::from(format!("caused: unreadable answer: {e};")),
    };
    Forwarded {
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    }
}

/// A peer's checksums: repaired in the background, so the sender never waits
/// on this node's fetches.
async fn checksums(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let distro = Arc::clone(distro(&state)?);
    let checksums: Checksums = decode(&body, "checksums")?;
    if distro.cluster().member(checksums.from).is_none() {
        return Err(ApiError::BadRequest(format!(
            "checksums from {}, which is not a member",
            checksums.from
        )));
    }
    tokio::spawn(async move {
        let from = checksums.from;
        if let Err(e) = distro.on_checksums(checksums).await {
            tracing::warn!(%from, error = %e, "checksum repair failed");
        }
    });
    Ok(msgpack(&true))
}

/// The current data of the services a peer asks for.
async fn data(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    let keys: Vec<ServiceKey> = decode(&body, "service list")?;
    let data: Vec<ServiceDatum> = keys.iter().map(|k| distro.datum(k)).collect();
    Ok(msgpack(&data))
}

/// Everything this node holds, for a starting peer; 503 until this node is
/// ready itself (it would hand out an incomplete copy).
async fn snapshot(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    if !distro.cluster().is_ready() {
        return Err(ApiError::Unavailable(
            "this node is still loading its own snapshot".into(),
        ));
    }
    Ok(msgpack(&distro.snapshot()))
}

/// The checksum of every service's ephemeral instances on this node (JSON):
/// nodes that agree have equal digests. For operators and tests.
async fn digest(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    let services: std::collections::BTreeMap<String, String> = distro
        .snapshot()
        .iter()
        .map(|d| (d.service.to_string(), format!("{:016x}", d.checksum())))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "node": distro.cluster().me().to_string(),
        "ready": distro.cluster().is_ready(),
        "services": services,
    }))
    .into_response())
}

fn raft_of(state: &ApiState) -> Result<&Arc<RaftStore>, ApiError> {
    state
        .raft
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this node is not part of a cluster".into()))
}

/// openraft's AppendEntries from the leader.
async fn raft_append(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let raft = raft_of(&state)?;
    let request = decode(&body, "append-entries request")?;
    Ok(msgpack(&raft.raft().append_entries(request).await))
}

/// openraft's RequestVote from a candidate.
async fn raft_vote(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let raft = raft_of(&state)?;
    let request = decode(&body, "vote request")?;
    Ok(msgpack(&raft.raft().vote(request).await))
}

/// openraft's InstallSnapshot (one chunk) from the leader.
async fn raft_snapshot(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let raft = raft_of(&state)?;
    let request = decode(&body, "install-snapshot request")?;
    Ok(msgpack(&raft.raft().install_snapshot(request).await))
}

/// A follower's write for this node (if leader) to propose and commit.
async fn raft_write(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let raft = raft_of(&state)?;
    let write: Write = decode(&body, "raft write")?;
    Ok(msgpack(&raft.write_here(write).await))
}

/// A follower's request for a read index (this node confirms it still leads).
async fn raft_read_index(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let raft = raft_of(&state)?;
    Ok(msgpack(&raft.read_index_here().await))
}
