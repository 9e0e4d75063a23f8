//! The requests of each operation, and a runner that drives them over N
//! connections until a deadline or a request count, whichever comes first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::client::{Connection, encode};
use crate::stats::Recorder;

/// One request: method, path with query, optional form body.
pub type RequestSpec = (Method, String, Option<String>);

/// Builds request number `i` of a run.
pub type MakeRequest = Arc<dyn Fn(u64) -> RequestSpec + Send + Sync>;

pub const API: &str = "/nacos/v1/ns";

/// The service of preloaded instance `i`.
pub fn service_name(prefix: &str, service: u64) -> String {
    format!("{prefix}-{service}")
}

/// A distinct address for instance number `i`.
pub fn instance_addr(i: u64) -> (String, u16) {
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    (ip, 8080 + (i >> 24) as u16)
}

pub fn register(service: &str, i: u64) -> RequestSpec {
    let (ip, port) = instance_addr(i);
    let form = format!(
        "serviceName={}&ip={ip}&port={port}&weight=1&ephemeral=true",
        encode(service)
    );
    (Method::POST, format!("{API}/instance"), Some(form))
}

/// A beat as the Java client sends it (`BeatInfo` JSON in the `beat` parameter).
pub fn beat(service: &str, i: u64) -> RequestSpec {
    let (ip, port) = instance_addr(i);
    let grouped = format!("DEFAULT_GROUP@@{service}");
    let body = serde_json::json!({
        "port": port, "ip": ip, "weight": 1.0, "serviceName": grouped, "cluster": "DEFAULT",
        "metadata": {}, "scheduled": false, "period": 5000, "stopped": false,
    })
    .to_string();
    let path = format!(
        "{API}/instance/beat?serviceName={}&beat={}",
        encode(&grouped),
        encode(&body)
    );
    (Method::PUT, path, None)
}

pub fn list(service: &str) -> RequestSpec {
    (
        Method::GET,
        format!("{API}/instance/list?serviceName={}", encode(service)),
        None,
    )
}

/// What a run measured: (request index, latency µs) of each success, and failures.
pub struct RunResult {
    pub samples: Vec<(u64, u32)>,
    pub recorder: Recorder,
    pub elapsed: Duration,
}

/// Sends requests `0..max` (or until `duration` passes) over `connections` connections.
pub async fn run(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    max: u64,
    make: MakeRequest,
) -> RunResult {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (next, make) = (Arc::clone(&next), Arc::clone(&make));
        workers.spawn(async move {
            let mut conn = Connection::new(addr);
            let mut samples = Vec::new();
            let mut recorder = Recorder::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    break;
                }
                let (method, path, form) = make(i);
                let sent = Instant::now();
                match conn.send(method, &path, form).await {
                    Ok(_) => {
                        let took = sent.elapsed();
                        recorder.record(took);
                        samples.push((i, took.as_micros().min(u32::MAX as u128) as u32));
                    }
                    Err(e) => recorder.fail(e),
                }
            }
            (samples, recorder)
        });
    }
    let mut samples = Vec::new();
    let mut recorder = Recorder::default();
    while let Some(done) = workers.join_next().await {
        if let Ok((s, r)) = done {
            samples.extend(s);
            recorder.merge(r);
        }
    }
    RunResult {
        samples,
        recorder,
        elapsed: start.elapsed(),
    }
}
