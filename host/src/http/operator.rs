//! `/nacos/v1/ns/operator/*` and the console health probes.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::Params;
use crate::consistency::distro::DistroStats;

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

/// `GET /nacre/v1/metrics`: the same figures in Prometheus's text format.
pub async fn prometheus(State(state): State<ApiState>) -> Response {
    let registry = state.naming.registry();
    let push = state.push.state();
    let sample = state.system.sample();
    let mut figures: Vec<(&str, &str, &str, f64)> = vec![
        (
            "nacre_services",
            "gauge",
            "Services held by this node.",
            registry.service_count() as f64,
        ),
        (
            "nacre_instances",
            "gauge",
            "Instances held by this node.",
            registry.instance_count() as f64,
        ),
        (
            "nacre_push_subscribers",
            "gauge",
            "Live UDP push subscribers.",
            push.subscribers as f64,
        ),
        (
            "nacre_push_pending_acks",
            "gauge",
            "Pushes sent and not yet acknowledged.",
            push.pending_acks as f64,
        ),
        (
            "nacre_push_total",
            "counter",
            "Pushes sent to a subscriber (first sends).",
            push.total as f64,
        ),
        (
            "nacre_push_succeeded_total",
            "counter",
            "Pushes acknowledged by their subscriber.",
            push.succeed as f64,
        ),
        (
            "nacre_push_failed_total",
            "counter",
            "Pushes never acknowledged or impossible to send.",
            push.failed as f64,
        ),
        (
            "nacre_push_retransmits_total",
            "counter",
            "Retransmissions of unacknowledged pushes.",
            push.retransmits as f64,
        ),
        (
            "nacre_push_bad_packets_total",
            "counter",
            "Packets on the push socket that were not acks.",
            push.bad_packets as f64,
        ),
        (
            "nacre_push_unmatched_acks_total",
            "counter",
            "Acks that matched no pending push (late, duplicate or spoofed).",
            push.unmatched_acks as f64,
        ),
        (
            "nacre_push_zombies_dropped_total",
            "counter",
            "Subscribers dropped for not refreshing.",
            push.zombies_dropped as f64,
        ),
        (
            "nacre_process_resident_bytes",
            "gauge",
            "Resident memory of this process.",
            sample.rss_bytes as f64,
        ),
        (
            "nacre_system_load1",
            "gauge",
            "One-minute load average of the machine.",
            sample.load,
        ),
    ];
    if let Some(raft) = &state.raft {
        let status = raft.status().await;
        let index = |i: Option<u64>| i.map_or(0.0, |i| i as f64);
        figures.extend([
            (
                "nacre_raft_term",
                "gauge",
                "Current Raft term.",
                status.term as f64,
            ),
            (
                "nacre_raft_is_leader",
                "gauge",
                "1 if this member is the Raft leader.",
                f64::from(u8::from(status.state == "LEADER")),
            ),
            (
                "nacre_raft_has_leader",
                "gauge",
                "1 if this member knows a Raft leader.",
                f64::from(u8::from(status.leader.is_some())),
            ),
            (
                "nacre_raft_commit_index",
                "gauge",
                "Highest log index known committed.",
                index(status.commit_index),
            ),
            (
                "nacre_raft_last_applied",
                "gauge",
                "Highest log index applied to the registry.",
                index(status.last_applied),
            ),
            (
                "nacre_raft_last_log_index",
                "gauge",
                "Highest log index in this member's log.",
                index(status.last_log_index),
            ),
            (
                "nacre_raft_snapshot_index",
                "gauge",
                "Log index of the last snapshot.",
                index(status.snapshot_index),
            ),
        ]);
    }
    if let (Some(cluster), Some(distro)) = (&state.cluster, &state.distro) {
        let s = &distro.stats;
        let get = DistroStats::get;
        figures.extend([
            (
                "nacre_cluster_ready",
                "gauge",
                "1 once this member has loaded its snapshot.",
                f64::from(u8::from(cluster.is_ready())),
            ),
            (
                "nacre_cluster_view_members",
                "gauge",
                "Healthy members in this node's view.",
                cluster.view().healthy.len() as f64,
            ),
            (
                "nacre_distro_sync_backlog",
                "gauge",
                "Services waiting to be sent to peers.",
                distro.syncer().backlog() as f64,
            ),
            (
                "nacre_distro_forwarded_total",
                "counter",
                "Client requests sent on to the responsible member.",
                get(&s.forwarded) as f64,
            ),
            (
                "nacre_distro_forward_retries_total",
                "counter",
                "Forwards retried after the owner was unreachable.",
                get(&s.forward_retries) as f64,
            ),
            (
                "nacre_distro_sync_batches_total",
                "counter",
                "Sync batches delivered to peers.",
                get(&s.sync_batches) as f64,
            ),
            (
                "nacre_distro_synced_services_total",
                "counter",
                "Services in delivered sync batches.",
                get(&s.synced_services) as f64,
            ),
            (
                "nacre_distro_sync_failures_total",
                "counter",
                "Sync batches that failed and were queued again.",
                get(&s.sync_failures) as f64,
            ),
            (
                "nacre_distro_applied_from_peers_total",
                "counter",
                "Services received from peers in which something visible changed.",
                get(&s.applied_from_peers) as f64,
            ),
            (
                "nacre_distro_repaired_fetched_total",
                "counter",
                "Services fetched from their owner by checksum repair.",
                get(&s.repaired_fetched) as f64,
            ),
            (
                "nacre_distro_repaired_returned_total",
                "counter",
                "Services whose newer records checksum repair sent back to their owner.",
                get(&s.repaired_returned) as f64,
            ),
            (
                "nacre_distro_tombstones_forgotten_total",
                "counter",
                "Tombstones of deleted instances forgotten after cluster.tombstone_ttl_ms.",
                get(&s.tombstones_forgotten) as f64,
            ),
            (
                "nacre_distro_loads_total",
                "counter",
                "Times this node loaded its peers' records to become ready.",
                get(&s.loads) as f64,
            ),
        ]);
    }
    let mut text = String::new();
    for (name, kind, help, value) in figures {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    if let Some(grpc) = &state.grpc {
        text.push_str(&grpc.prometheus_text());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
        .into_response()
}

/// `GET operator/servers`: the members of this node's cluster, as this node sees them.
pub async fn servers(State(state): State<ApiState>) -> Response {
    let Some(cluster) = &state.cluster else {
        let address = state.advertised.to_string();
        return Json(json!({
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
        .into_response();
    };
    let view = cluster.view();
    let servers: Vec<_> = cluster
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
        .collect();
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
