//! `GET /nacos/v2/core/loader/current`: the node's gRPC client connections,
//! in the shape of Nacos 2.x's route of that name (connection id →
//! `{abilityTable, metaInfo}`), so the tools operators point at Nacos read it.
//! `{}` when the gRPC door is disabled.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::ApiState;

pub async fn current(State(state): State<ApiState>) -> Response {
    let listing = state
        .grpc
        .as_ref()
        .map_or_else(|| serde_json::json!({}), |g| g.connections_json());
    Json(listing).into_response()
}
