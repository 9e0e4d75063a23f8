//! `/nacos/v1/ns/operator/*` and the console health probes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::Params;
use crate::metrics::{Exposition, RenderMetrics};

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
        "push": state.push.state(),
        "grpc": state.grpc.as_ref().map(|g| g.metrics_json()),
    }))
    .into_response()
}

/// `GET /nacre/v1/metrics`: the same figures in Prometheus's text format,
/// each part rendering its own.
pub async fn prometheus(State(state): State<ApiState>) -> Response {
    let mut out = Exposition::default();
    let registry = state.naming.registry();
    out.gauge(
        "nacre_services",
        "Services held by this node.",
        registry.service_count() as f64,
    );
    out.gauge(
        "nacre_instances",
        "Instances held by this node.",
        registry.instance_count() as f64,
    );
    state.system.sample().render_metrics(&mut out);
    state.push.state().render_metrics(&mut out);
    if let Some(raft) = &state.raft {
        raft.status().await.render_metrics(&mut out);
    }
    if let Some(distro) = &state.distro {
        distro.render_metrics(&mut out);
    }
    if let Some(grpc) = &state.grpc {
        grpc.render_metrics(&mut out);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out.into_text(),
    )
        .into_response()
}

/// Each member as this node sees it, in Nacos's member shape (`ip`, `port`,
/// `address`, `state`, `failAccessCnt`, `extendInfo`): this node alone when
/// standalone.
pub(super) fn members(state: &ApiState) -> Vec<serde_json::Value> {
    let Some(cluster) = &state.cluster else {
        return vec![json!({
            "ip": state.advertised.ip().to_string(),
            "port": state.advertised.port(),
            "address": state.advertised.to_string(),
            "state": "UP",
            "failAccessCnt": 0,
            "extendInfo": {
                "site": "unknown",
                "version": env!("CARGO_PKG_VERSION"),
                "standalone": true,
            },
        })];
    };
    let view = cluster.view();
    cluster
        .report()
        .into_iter()
        .map(|m| {
            json!({
                "ip": m.address.ip().to_string(),
                "port": m.address.port(),
                "address": m.address.to_string(),
                "state": m.state,
                "failAccessCnt": m.failures,
                "extendInfo": {
                    "self": m.is_self,
                    "inView": view.healthy.contains(&m.address),
                    "lastRefTime": m.last_seen,
                    "lastError": m.last_error,
                    "version": env!("CARGO_PKG_VERSION"),
                    "standalone": false,
                },
            })
        })
        .collect()
}

/// `GET operator/servers`: the members of this node's cluster, as this node sees them.
pub async fn servers(State(state): State<ApiState>) -> Response {
    let servers = members(&state);
    let Some(cluster) = &state.cluster else {
        return Json(json!({ "servers": servers })).into_response();
    };
    let view = cluster.view();
    let backlog = state.distro.as_ref().map_or(0, |d| d.syncer().backlog());
    let raft = match &state.raft {
        Some(raft) => Some(raft.status().await),
        None => None,
    };
    Json(json!({
        "raft": raft,
        "servers": servers,
        "view": view.healthy.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "viewDigest": format!("{:016x}", view.digest),
        "ready": cluster.is_ready(),
        "syncBacklog": backlog,
    }))
    .into_response()
}

/// `GET operator/push/state`: push counters.
pub async fn push_state(State(state): State<ApiState>) -> Response {
    Json(state.push.state()).into_response()
}

/// `GET /nacre/v1/plugins`: each plugin's state, calls, failures and call times.
pub async fn plugins(State(state): State<ApiState>) -> Response {
    let statuses = state
        .plugins
        .as_ref()
        .map(|p| p.statuses())
        .unwrap_or_default();
    Json(json!({ "plugins": statuses })).into_response()
}

/// `POST /nacre/v1/plugins/reload` (the admin's): brings the loaded plugins
/// in line with the plugin folder now rather than at the next scan
/// (`plugins.reload_interval_ms`): new and changed manifests are loaded,
/// removed ones dropped, as the scan does. Answers `{"changed": bool,
/// "plugins": [...]}` with the list of `GET /nacre/v1/plugins`; without a
/// plugin folder, `changed` is false and the list empty.
pub async fn reload_plugins(State(state): State<ApiState>) -> Response {
    let Some(plugins) = state.plugins.clone() else {
        return Json(json!({ "changed": false, "plugins": [] })).into_response();
    };
    let reloading = Arc::clone(&plugins);
    // Compiling a component is CPU work: off the async workers, as the scan does.
    match tokio::task::spawn_blocking(move || reloading.reload()).await {
        Ok(changed) => {
            Json(json!({ "changed": changed, "plugins": plugins.statuses() })).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "the plugin reload did not finish");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the plugin reload did not finish",
            )
                .into_response()
        }
    }
}

/// `GET /nacos/v1/console/health/{liveness,readiness}`.
pub async fn health_probe() -> &'static str {
    "OK"
}

/// `GET console/health/readiness`: 500 until a cluster node has loaded its snapshot.
pub async fn readiness(State(state): State<ApiState>) -> Response {
    match &state.cluster {
        Some(cluster) if !cluster.is_ready() => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server is STARTING now, please try again later!",
        )
            .into_response(),
        _ => "OK".into_response(),
    }
}
