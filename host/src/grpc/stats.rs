//! What operators see of the gRPC door: counters, connection counts per
//! client version and per namespace (in `operator/metrics` and Prometheus),
//! and the v2-style listing of connections
//! (`GET /nacos/v2/core/loader/current`, Nacos's shape: connection id →
//! `{abilityTable, metaInfo}`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

use super::GrpcDoor;
use crate::metrics::{Exposition, RenderMetrics};

/// Counters of the gRPC door since start.
#[derive(Default)]
pub struct GrpcStats {
    /// `NotifySubscriberRequest`s queued to a client (resends included).
    pub pushes_sent: AtomicU64,
    /// Pushes a client acknowledged.
    pub pushes_acked: AtomicU64,
    /// Pushes sent again after no ack within the ack timeout.
    pub pushes_resent: AtomicU64,
    /// Pushes refused by a full send queue, or answered with an error.
    pub pushes_failed: AtomicU64,
    /// Acks that matched no pending push (late or duplicate).
    pub acks_unmatched: AtomicU64,
    /// `ClientDetectionRequest`s sent to idle connections.
    pub probes_sent: AtomicU64,
    /// Connections closed at accept: the node held `grpc.max_connections`.
    pub refused_over_limit: AtomicU64,
    /// Connections closed for not answering a probe (or never setting up).
    pub closed_unresponsive: AtomicU64,
    /// Connections closed for not reading their pushes.
    pub closed_stalled: AtomicU64,
    /// Connections sent elsewhere because this cluster member was not ready.
    pub closed_not_ready: AtomicU64,
    /// Requests answered with an `ErrorResponse` (301, 302, 502).
    pub protocol_errors: AtomicU64,
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Connection counts by client version and by namespace.
struct Census {
    total: usize,
    registered: usize,
    by_version: BTreeMap<String, usize>,
    by_namespace: BTreeMap<String, usize>,
}

/// The gRPC figures the console's metrics history samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcFigures {
    /// Connections set up (transports not yet set up are left out).
    pub connections: usize,
    /// Subscriptions held: one per connection and service.
    pub subscriptions: usize,
    /// Pushes sent since start (resends included).
    pub pushes: u64,
    /// Pushes failed since start.
    pub failed: u64,
    /// Pushes sent again for lack of an ack since start.
    pub resent: u64,
}

impl GrpcDoor {
    /// The figures of [`GrpcFigures`], now.
    pub fn figures(&self) -> GrpcFigures {
        let s = &self.stats;
        let connections = self
            .connections
            .all()
            .iter()
            .filter(|conn| conn.is_registered())
            .count();
        GrpcFigures {
            connections,
            subscriptions: self.push.count(),
            pushes: get(&s.pushes_sent),
            failed: get(&s.pushes_failed),
            resent: get(&s.pushes_resent),
        }
    }

    fn census(&self) -> Census {
        let mut census = Census {
            total: 0,
            registered: 0,
            by_version: BTreeMap::new(),
            by_namespace: BTreeMap::new(),
        };
        for conn in self.connections.all() {
            census.total += 1;
            if let Some(client) = conn.client().filter(|_| !conn.is_released()) {
                census.registered += 1;
                *census.by_version.entry(client.version.clone()).or_default() += 1;
                *census
                    .by_namespace
                    .entry(client.namespace.clone())
                    .or_default() += 1;
            }
        }
        census
    }

    /// The `grpc` object of `operator/metrics`.
    pub fn metrics_json(&self) -> Value {
        let census = self.census();
        let s = &self.stats;
        json!({
            "port": self.addr.port(),
            "connections": census.registered,
            "transports": census.total,
            "connectionsByClientVersion": census.by_version,
            "connectionsByNamespace": census.by_namespace,
            "subscriptions": self.push.count(),
            "push": {
                "sent": get(&s.pushes_sent),
                "acked": get(&s.pushes_acked),
                "resent": get(&s.pushes_resent),
                "failed": get(&s.pushes_failed),
                "unmatchedAcks": get(&s.acks_unmatched),
            },
            "probesSent": get(&s.probes_sent),
            "refusedOverLimit": get(&s.refused_over_limit),
            "closedUnresponsive": get(&s.closed_unresponsive),
            "closedStalled": get(&s.closed_stalled),
            "closedNotReady": get(&s.closed_not_ready),
            "protocolErrors": get(&s.protocol_errors),
        })
    }

    /// Every connection in Nacos's `loader/current` shape.
    pub fn connections_json(&self) -> Value {
        let mut all = serde_json::Map::new();
        for conn in self.connections.all() {
            let Some(client) = conn.client().filter(|_| !conn.is_released()) else {
                continue;
            };
            all.insert(
                conn.id.to_string(),
                json!({
                    "abilityTable": {},
                    "metaInfo": {
                        "connectType": "GRPC",
                        "connectionId": conn.id.as_ref(),
                        "clientIp": client.ip,
                        "remoteIp": conn.remote.ip().to_string(),
                        "remotePort": conn.remote.port(),
                        "localPort": conn.local_port,
                        "version": client.version,
                        "namespaceId": client.namespace,
                        "tenant": client.namespace,
                        "appName": client.app,
                        "labels": client.labels,
                        "createTime": conn.created,
                        "lastActiveTime": conn.last_active(),
                        "clientType": client.labels.get("source").cloned().unwrap_or_default(),
                    },
                }),
            );
        }
        Value::Object(all)
    }
}

impl RenderMetrics for GrpcDoor {
    fn render_metrics(&self, out: &mut Exposition) {
        let census = self.census();
        let s = &self.stats;
        out.gauge(
            "nacre_grpc_connections",
            "gRPC client connections set up.",
            census.registered as f64,
        );
        out.gauge(
            "nacre_grpc_transports",
            "gRPC transports open, set up or not.",
            census.total as f64,
        );
        out.gauge(
            "nacre_grpc_subscriptions",
            "Service subscriptions of gRPC connections.",
            self.push.count() as f64,
        );
        for (name, help, counter) in [
            (
                "nacre_grpc_push_sent_total",
                "Pushes queued to gRPC clients, resends included.",
                &s.pushes_sent,
            ),
            (
                "nacre_grpc_push_acked_total",
                "Pushes acknowledged by gRPC clients.",
                &s.pushes_acked,
            ),
            (
                "nacre_grpc_push_resent_total",
                "Pushes sent again after no ack in time.",
                &s.pushes_resent,
            ),
            (
                "nacre_grpc_push_failed_total",
                "Pushes refused by a full send queue or answered with an error.",
                &s.pushes_failed,
            ),
            (
                "nacre_grpc_probes_total",
                "Detection requests sent to idle gRPC connections.",
                &s.probes_sent,
            ),
            (
                "nacre_grpc_refused_total",
                "gRPC connections refused over grpc.max_connections.",
                &s.refused_over_limit,
            ),
            (
                "nacre_grpc_closed_unresponsive_total",
                "gRPC connections closed for not answering.",
                &s.closed_unresponsive,
            ),
            (
                "nacre_grpc_closed_stalled_total",
                "gRPC connections closed for not reading.",
                &s.closed_stalled,
            ),
            (
                "nacre_grpc_closed_not_ready_total",
                "gRPC connections sent to another member while this one was not ready.",
                &s.closed_not_ready,
            ),
            (
                "nacre_grpc_protocol_errors_total",
                "gRPC requests answered with an ErrorResponse.",
                &s.protocol_errors,
            ),
        ] {
            out.counter(name, help, get(counter));
        }
        out.labelled_gauge(
            "nacre_grpc_connections_by_client_version",
            "gRPC connections per client version.",
            "version",
            census
                .by_version
                .iter()
                .map(|(k, v)| (k.as_str(), *v as f64)),
        );
        out.labelled_gauge(
            "nacre_grpc_connections_by_namespace",
            "gRPC connections per namespace.",
            "namespace",
            census
                .by_namespace
                .iter()
                .map(|(k, v)| (k.as_str(), *v as f64)),
        );
    }
}
