//! This node's figures over the last minutes, for the console's metrics
//! page (r-nacos's monitoring page; no Grafana needed for the basics): a
//! task samples them every [`SAMPLE_EVERY`] into a ring of [`KEPT`]
//! samples (ten minutes).
//!
//! `GET /nacre/v1/console/metrics` → `{"everyMs": 5000, "samples":
//! [{"at","services","instances","healthy","cpu","mem","rssBytes",
//! "pushes","pushFailures","retransmits","subscribers","changes",
//! "grpcConnections","grpcSubscriptions","grpcPushes","grpcPushFailures",
//! "grpcResent"}]}`, oldest first. `cpu` is a share of one core, `mem` of
//! the machine's memory; `pushes`, `pushFailures`, `retransmits`,
//! `changes`, `grpcPushes`, `grpcPushFailures` and `grpcResent` are counts
//! since the previous sample (the first three UDP's, the last three
//! gRPC's); the gRPC figures are 0 with `grpc.enabled = false`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::Console;
use crate::clock::now_millis;
use crate::grpc::GrpcDoor;
use crate::grpc::stats::GrpcFigures;
use crate::push::PushService;
use crate::registry::Registry;
use crate::shutdown::Shutdown;
use crate::system_stats::SystemStats;

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// How many samples are kept (ten minutes' worth).
pub const KEPT: usize = 120;

/// One sample.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When, ms since the epoch.
    pub at: i64,
    /// Services clients see.
    pub services: usize,
    /// Instances, healthy or not.
    pub instances: usize,
    /// Healthy instances.
    pub healthy: usize,
    /// CPU used since the previous sample, as a share of one core.
    pub cpu: f64,
    /// Resident memory as a share of the machine's.
    pub mem: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// UDP pushes sent since the previous sample.
    pub pushes: u64,
    /// UDP pushes failed or unacknowledged since the previous sample.
    pub push_failures: u64,
    /// UDP retransmits since the previous sample.
    pub retransmits: u64,
    /// UDP subscribers held now.
    pub subscribers: usize,
    /// Change-feed entries since the previous sample.
    pub changes: u64,
    /// gRPC connections set up, now.
    pub grpc_connections: usize,
    /// gRPC subscriptions (connection and service) held now.
    pub grpc_subscriptions: usize,
    /// gRPC pushes sent since the previous sample (resends included).
    pub grpc_pushes: u64,
    /// gRPC pushes failed since the previous sample.
    pub grpc_push_failures: u64,
    /// gRPC pushes sent again for lack of an ack since the previous sample.
    pub grpc_resent: u64,
}

/// The ring of samples.
#[derive(Default)]
pub struct MetricsHistory {
    samples: Mutex<VecDeque<Sample>>,
}

/// Running totals, to turn counters into per-interval figures.
#[derive(Default)]
struct Totals {
    pushes: u64,
    failures: u64,
    retransmits: u64,
    changes: u64,
    grpc: GrpcFigures,
}

impl MetricsHistory {
    /// Samples `registry`, `push` and the gRPC door (when it runs) until
    /// shutdown (the first sample now).
    pub async fn run(
        self: Arc<Self>,
        (registry, push, grpc): (Arc<Registry>, PushService, Option<Arc<GrpcDoor>>),
        mut shutdown: Shutdown,
    ) {
        let system = SystemStats::new();
        let mut totals = Totals::default();
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => self.take(&registry, (&push, grpc.as_deref()), &system, &mut totals),
                () = shutdown.recv() => return,
            }
        }
    }

    fn take(
        &self,
        registry: &Registry,
        (push, grpc): (&PushService, Option<&GrpcDoor>),
        system: &SystemStats,
        totals: &mut Totals,
    ) {
        let (mut instances, mut healthy) = (0, 0);
        for service in registry.services() {
            let state = service.read_state();
            instances += state.instances.len();
            healthy += state.instances.values().filter(|s| s.healthy).count();
        }
        let figures = system.sample();
        let pushed = push.state();
        let changes = registry.feed().recorded();
        let grpc = grpc.map(GrpcDoor::figures).unwrap_or_default();
        let sample = Sample {
            at: now_millis(),
            services: registry.service_count(),
            instances,
            healthy,
            cpu: figures.cpu,
            mem: figures.mem,
            rss_bytes: figures.rss_bytes,
            pushes: pushed.total.saturating_sub(totals.pushes),
            push_failures: pushed.failed.saturating_sub(totals.failures),
            retransmits: pushed.retransmits.saturating_sub(totals.retransmits),
            subscribers: pushed.subscribers,
            changes: changes.saturating_sub(totals.changes),
            grpc_connections: grpc.connections,
            grpc_subscriptions: grpc.subscriptions,
            grpc_pushes: grpc.pushes.saturating_sub(totals.grpc.pushes),
            grpc_push_failures: grpc.failed.saturating_sub(totals.grpc.failed),
            grpc_resent: grpc.resent.saturating_sub(totals.grpc.resent),
        };
        *totals = Totals {
            pushes: pushed.total,
            failures: pushed.failed,
            retransmits: pushed.retransmits,
            changes,
            grpc,
        };
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples kept, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().cloned().collect()
    }
}

/// `GET /nacre/v1/console/metrics` (see the module's documentation).
pub(super) async fn recent(State(console): State<Console>) -> Response {
    Json(json!({
        "everyMs": SAMPLE_EVERY.as_millis() as u64,
        "samples": console.history.samples(),
    }))
    .into_response()
}
