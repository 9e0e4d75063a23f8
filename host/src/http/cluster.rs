//! The cluster-internal API: one route per message of [`crate::wire`], each a
//! handler that takes the decoded request and returns its reply. Every route
//! requires the cluster credential and this node's protocol version
//! ([`require_member`]): a request without them is refused before any
//! handler runs.

use std::future::Future;
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
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use tower::ServiceExt;

use super::ApiState;
use super::error::ApiError;
use super::forward::credential_ok;
use super::params::{Params, is_form};
use crate::consistency::distro::{Distro, DistroStats};
use crate::consistency::raft::Proposed;
use crate::consistency::{HELD_ELSEWHERE, RaftStore};
use crate::wire::{
    self, Checksums, FetchRecords, ForwardBatch, ForwardReplies, Forwarded, ForwardedRequest,
    MSGPACK, PROTOCOL_HEADER, PROTOCOL_VERSION, ProposeAccountChange, ProposeWrite,
    RaftStatusQuery, RaftTypes, ReadIndexRequest, Records, Rpc, SnapshotRequest, StatusRequest,
    SubscribersQuery, SyncBatch, SyncReply,
};

/// Where operators and tests read each service's checksum on this node (JSON).
pub const DIGEST_PATH: &str = "/nacre/v1/distro/digest";

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
    let router = Router::new().route(DIGEST_PATH, get(digest));
    let router = rpc(router, |state, _: StatusRequest| async move {
        Ok(distro(&state)?.cluster().status())
    });
    let router = rpc(router, sync);
    let router = rpc(router, checksums);
    let router = rpc(router, fetch);
    let router = rpc(router, snapshot);
    let router = rpc(
        router,
        |state, r: AppendEntriesRequest<RaftTypes>| async move {
            Ok(raft_of(&state)?.raft().append_entries(r).await)
        },
    );
    let router = rpc(router, |state, r: VoteRequest<u64>| async move {
        Ok(raft_of(&state)?.raft().vote(r).await)
    });
    let router = rpc(
        router,
        |state, r: InstallSnapshotRequest<RaftTypes>| async move {
            Ok(raft_of(&state)?.raft().install_snapshot(r).await)
        },
    );
    let router = rpc(router, |state, _: RaftStatusQuery| async move {
        Ok(raft_of(&state)?.status().await)
    });
    let router = rpc(router, |state, query: crate::wire::FeedQuery| async move {
        Ok(crate::console::member_feed(&state.console, &query))
    });
    let router = rpc(router, |state, query: SubscribersQuery| async move {
        Ok(super::subscribers::local(&state, &query))
    });
    let router = rpc(router, propose);
    let router = rpc(router, propose_account_change);
    let router = rpc(router, read_index);
    router
        .route(
            ForwardBatch::PATH,
            post(forwarded_writes).layer(Extension(InstanceWrites(instance_writes))),
        )
        .layer(DefaultBodyLimit::max(max))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_member,
        ))
}

/// Registers the handler of one message: the body is decoded as `R`, the
/// handler's reply encoded back.
fn rpc<R, F, Fut>(router: Router<ApiState>, handler: F) -> Router<ApiState>
where
    R: Rpc,
    F: Fn(ApiState, R) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<R::Reply, ApiError>> + Send + 'static,
{
    router.route(
        R::PATH,
        post(
            move |State(state): State<ApiState>, body: Bytes| async move {
                let request: R = decode(&body)?;
                let reply = handler(state, request).await?;
                Ok::<Response, ApiError>(msgpack(&reply))
            },
        ),
    )
}

async fn require_member(State(state): State<ApiState>, request: Request, next: Next) -> Response {
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
    let version = request
        .headers()
        .get(PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    if request.uri().path() != DIGEST_PATH && version != Some(PROTOCOL_VERSION) {
        return ApiError::Conflict(format!(
            "this member speaks internal protocol {PROTOCOL_VERSION}, the request {}: run the same Nacre version on every member",
            version.map_or_else(|| "none".to_string(), |v| v.to_string())
        ))
        .into_response();
    }
    next.run(request).await
}

fn msgpack<T: serde::Serialize>(value: &T) -> Response {
    match wire::encode(value) {
        Ok(body) => ([(header::CONTENT_TYPE, MSGPACK)], body).into_response(),
        Err(e) => ApiError::Internal(format!("encoding a reply: {e}")).into_response(),
    }
}

fn decode<T: Rpc>(body: &[u8]) -> Result<T, ApiError> {
    wire::decode(body).map_err(|e| ApiError::BadRequest(format!("malformed {}: {e}", T::PATH)))
}

fn distro(state: &ApiState) -> Result<&Arc<Distro>, ApiError> {
    state
        .distro
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this node is not part of a cluster".into()))
}

fn raft_of(state: &ApiState) -> Result<&Arc<RaftStore>, ApiError> {
    state
        .raft
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this node is not part of a cluster".into()))
}

/// A peer's changed records: merged instance by instance.
async fn sync(state: ApiState, batch: SyncBatch) -> Result<SyncReply, ApiError> {
    let distro = distro(&state)?;
    let applied = batch
        .services
        .into_iter()
        .map(|records| distro.merge(records))
        .filter(|changed| *changed)
        .count();
    DistroStats::add(&distro.stats.applied_from_peers, applied as u64);
    Ok(SyncReply { applied })
}

/// A peer's checksums: queued for this node's repair task, so the sender
/// never waits on this node's fetches. Answers whether they were queued (a
/// full queue drops them: the next round brings fresh ones).
async fn checksums(state: ApiState, checksums: Checksums) -> Result<bool, ApiError> {
    let distro = distro(&state)?;
    if distro.cluster().member(checksums.from).is_none() {
        return Err(ApiError::BadRequest(format!(
            "checksums from {}, which is not a member",
            checksums.from
        )));
    }
    Ok(distro.queue_repair(checksums))
}

/// This node's records of the services a peer asks for.
async fn fetch(state: ApiState, request: FetchRecords) -> Result<Records, ApiError> {
    let distro = distro(&state)?;
    Ok(Records {
        services: request.services.iter().map(|k| distro.records(k)).collect(),
    })
}

/// Everything this node holds, for a loading peer; 503 until this node is
/// ready itself (it would hand out an incomplete copy).
async fn snapshot(state: ApiState, _: SnapshotRequest) -> Result<Records, ApiError> {
    let distro = distro(&state)?;
    if !distro.cluster().is_ready() {
        return Err(ApiError::Unavailable(
            "this node is not ready itself".into(),
        ));
    }
    Ok(Records {
        services: distro.snapshot(),
    })
}

/// A follower's write for this node (if leader) to propose and commit.
async fn propose(state: ApiState, request: ProposeWrite) -> Result<wire::ForwardedWrite, ApiError> {
    let deadline = deadline_in(request.deadline_ms);
    let write = Proposed::Registry(request.write);
    Ok(raft_of(&state)?.write_here(write, deadline).await)
}

/// A follower's change to the auth tables, proposed here if this node leads.
async fn propose_account_change(
    state: ApiState,
    request: ProposeAccountChange,
) -> Result<wire::ForwardedWrite, ApiError> {
    let deadline = deadline_in(request.deadline_ms);
    let change = Proposed::Accounts(request.change);
    Ok(raft_of(&state)?.write_here(change, deadline).await)
}

/// A follower's request for a read index (this node confirms it still leads).
async fn read_index(
    state: ApiState,
    request: ReadIndexRequest,
) -> Result<wire::ReadIndex, ApiError> {
    let deadline = deadline_in(request.deadline_ms);
    Ok(raft_of(&state)?.read_index_here(deadline).await)
}

/// The deadline a peer passed on: what is left of its client's wait.
fn deadline_in(ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_millis(ms)
}

/// The checksum of every service's ephemeral instances on this node (JSON):
/// members that agree have equal digests. For operators and tests.
async fn digest(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let distro = distro(&state)?;
    let registry = state.naming.registry();
    let services: std::collections::BTreeMap<String, String> = registry
        .services()
        .iter()
        .map(|s| (s.key(), registry.ephemeral_checksum(s.key())))
        .filter(|(_, sum)| *sum != 0)
        .map(|(key, sum)| (key.to_string(), format!("{sum:016x}")))
        .collect();
    Ok(axum::Json(serde_json::json!({
        "node": distro.cluster().me().to_string(),
        "ready": distro.cluster().is_ready(),
        "services": services,
    }))
    .into_response())
}

/// The instance routes, as the handler of forwarded writes calls them.
#[derive(Clone)]
struct InstanceWrites(Router);

/// Client writes a peer forwarded because this node is responsible for their
/// services: each runs through the instance routes as if the client had sent
/// it here, one after the other, and every answer goes back, in order, with
/// the written instance's record.
async fn forwarded_writes(
    State(state): State<ApiState>,
    Extension(InstanceWrites(app)): Extension<InstanceWrites>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let batch: ForwardBatch = decode(&body)?;
    let distro = distro(&state)?;
    if !distro.cluster().is_ready() {
        return Err(ApiError::Unavailable(
            "this member is not ready: it is responsible for nothing".into(),
        ));
    }
    let limit = state.limits.max_body_bytes.max(64 * 1024);
    // The requests run together, so their waits for replication overlap
    // rather than add up. Requests in one batch came from different clients
    // at the same time (a client waits for its answer before its next
    // write), so no order among them is owed.
    let answers = batch.requests.into_iter().map(|mut forwarded| {
        if let Some(copy) = forwarded.records.take() {
            distro.merge(copy);
        }
        let written = written_instance(&forwarded);
        let request = client_request(forwarded, connect_info.as_ref());
        let (app, state) = (app.clone(), &state);
        async move {
            // The forwarding member holds the write before its client hears
            // of it: one member fewer to wait for.
            let handled = HELD_ELSEWHERE.scope(1, async move {
                match request {
                    Ok(request) => Ok(app.oneshot(request).await),
                    Err(e) => Err(e),
                }
            });
            let response = match handled.await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(e) => ApiError::BadRequest(format!("malformed forwarded request: {e}"))
                    .into_response(),
            };
            let mut reply = forwarded_answer(response, limit).await;
            if let Some((service, id)) = written {
                let ids = std::iter::once(id).collect();
                reply.records = state
                    .naming
                    .registry()
                    .ephemeral_records(&service, Some(&ids));
            }
            reply
        }
    });
    let replies = futures_util::future::join_all(answers).await;
    Ok(msgpack(&ForwardReplies { replies }))
}

/// The instance a forwarded write addresses, if its parameters name one.
fn written_instance(
    forwarded: &ForwardedRequest,
) -> Option<(
    crate::registry::model::ServiceKey,
    crate::registry::model::InstanceId,
)> {
    let query = forwarded
        .path_and_query
        .split_once('?')
        .map_or("", |(_, q)| q);
    let form: &[u8] = if is_form(forwarded.content_type.as_deref()) {
        &forwarded.body
    } else {
        &[]
    };
    let params = Params::from_query_and_form(query, form);
    Some((params.service_key().ok()?, params.instance_id().ok()?))
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
        records: None,
    }
}
