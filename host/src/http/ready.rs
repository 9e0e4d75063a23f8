//! Readiness gate: a cluster member that is not ready (loading its data, or
//! cut off from a majority of the members) answers the naming API with 503
//! instead of from an empty or stale registry. Clients try their next server
//! (every Nacos client walks its server list on a failure). Nacos 1.x does
//! the same on a member without a Raft leader (`TrafficReviseFilter`:
//! "server is DOWN now, please try again later!"). Operator routes always
//! answer, so operators can see why.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;

pub async fn only_when_ready(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let ready = state.cluster.as_ref().is_none_or(|c| c.is_ready());
    let path = request.uri().path();
    if ready || path.starts_with("/operator/") || path.starts_with("/ops/") {
        return next.run(request).await;
    }
    let status = if state.cluster.as_ref().is_some_and(|c| c.is_loaded()) {
        "DOWN"
    } else {
        "STARTING"
    };
    ApiError::Unavailable(format!("server is {status} now, please try again later!"))
        .into_response()
}
