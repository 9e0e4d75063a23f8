//! `/nacos/v1/ns/operator/*` and the console health probes.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::Params;

/// `GET operator/switches`.
pub async fn switches(State(state): State<ApiState>) -> Response {
    Json(state.naming.switches().get()).into_response()
}

/// `PUT operator/switches?entry=..&value=..`.
pub async fn update_switch(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let entry = params.required("entry")?;
    let value = params.required("value")?;
    state.naming.switches().update(entry, value)?;
    tracing::info!(entry, value, "switch updated");
    Ok("ok")
}

/// `GET operator/metrics`: counts and load of this node.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let registry = state.naming.registry();
    let services = registry.service_count();
    let instances = registry.instance_count();
    let sample = state.system.sample();
    // A standalone node is responsible for everything it holds.
    Json(json!({
        "status": "UP",
        "serviceCount": services,
        "instanceCount": instances,
        "responsibleServiceCount": services,
        "responsibleInstanceCount": instances,
        "load": sample.load,
        "mem": sample.mem,
        "cpu": sample.cpu,
    }))
    .into_response()
}

/// `GET operator/servers`: the members of this node's cluster.
pub async fn servers(State(state): State<ApiState>) -> Response {
    let address = state.advertised.to_string();
    Json(json!({
        "servers": [{
            "ip": state.advertised.ip().to_string(),
            "port": state.advertised.port(),
            "address": address,
            "state": "UP",
            "failAccessCnt": 0,
            "extendInfo": {
                "site": "unknown",
                "version": env!("CARGO_PKG_VERSION"),
                "standalone": true,
            },
        }]
    }))
    .into_response()
}

/// `GET operator/push/state`: push counters.
pub async fn push_state(State(state): State<ApiState>) -> Response {
    Json(state.push.state()).into_response()
}

/// `GET /nacos/v1/console/health/{liveness,readiness}`.
pub async fn health_probe() -> &'static str {
    "OK"
}
