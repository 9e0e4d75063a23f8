//! The requests of each operation, and a runner that drives them over N
//! connections until a deadline or a request count, whichever comes first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::Method;

use crate::client::{Connection, encode};
use crate::stats::Recorder;

/// One request: method, path with query, optional form body.
pub type RequestSpec = (Method, String, Option<String>);

/// Builds request number `i` of a run; the worker's own RNG picks random targets.
pub type MakeRequest = Arc<dyn Fn(u64, &mut Rng) -> RequestSpec + Send + Sync>;

pub const API: &str = "/nacos/v1/ns";

/// After a failed request a worker waits this long before the next one, so a
/// dead server costs a bounded number of connection attempts per second
/// instead of a hot loop that would starve the other workers.
const FAILURE_BACKOFF: Duration = Duration::from_millis(10);

/// A small, fast PRNG (wyrand, as in `fastrand`): one per worker, so picking a
/// random service costs a few nanoseconds and no lock, and adds no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// Seeds from the clock, so repeated runs do not replay the same order.
    pub fn from_clock(stream: u64) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng::new(nanos ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is negligible for
    /// the sizes used here). `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The name of service number `service`.
pub fn service_name(prefix: &str, service: u64) -> String {
    format!("{prefix}-{service}")
}

/// The service preloaded instance `i` belongs to (round-robin).
pub fn service_of(i: u64, services: u64) -> u64 {
    i % services
}

/// How many of instances `0..instances` belong to `service` (round-robin).
pub fn instances_in(service: u64, services: u64, instances: u64) -> u64 {
    instances / services + u64::from(service < instances % services)
}

/// A distinct address for instance number `i`: 10.x.y.z, with the port
/// changing every 2^24 instances so addresses never repeat.
pub fn instance_addr(i: u64) -> (String, u16) {
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    (ip, 8080 + ((i >> 24) & 0x3fff) as u16)
}

/// `POST instance` as the open API documents it (form body).
pub fn register(service: &str, i: u64) -> RequestSpec {
    let (ip, port) = instance_addr(i);
    let form = format!(
        "serviceName={}&ip={ip}&port={port}&weight=1&ephemeral=true",
        encode(service)
    );
    (Method::POST, format!("{API}/instance"), Some(form))
}

/// A beat as the Java 1.4 client sends it: `namespaceId`, `serviceName`
/// (grouped), `clusterName`, `ip` and `port` in the query, and its `BeatInfo`
/// JSON as the `beat` form field of the body.
pub fn beat(service: &str, i: u64) -> RequestSpec {
    let (ip, port) = instance_addr(i);
    let grouped = format!("DEFAULT_GROUP@@{service}");
    let info = serde_json::json!({
        "port": port, "ip": ip, "weight": 1.0, "serviceName": grouped, "cluster": "DEFAULT",
        "metadata": {}, "scheduled": false, "period": 5000, "stopped": false,
    })
    .to_string();
    let path = format!(
        "{API}/instance/beat?namespaceId=public&serviceName={}&clusterName=DEFAULT&ip={ip}&port={port}",
        encode(&grouped)
    );
    (Method::PUT, path, Some(format!("beat={}", encode(&info))))
}

pub fn list(service: &str) -> RequestSpec {
    (
        Method::GET,
        format!("{API}/instance/list?serviceName={}", encode(service)),
        None,
    )
}

/// Bounds and shape of one run.
pub struct Plan {
    pub connections: usize,
    /// Wall-clock bound: no request is started after this.
    pub duration: Duration,
    /// Count bound: request indices `0..max`.
    pub max: u64,
    /// Keep one [`Sample`] per success (needed to look at windows of indices).
    pub keep_samples: bool,
}

/// One successful request: its index, when it was sent (µs after the start of
/// the run) and how long it took (µs).
#[derive(Clone, Copy)]
pub struct Sample {
    pub index: u64,
    pub sent_us: u64,
    pub took_us: u32,
}

/// What a run measured.
pub struct RunResult {
    pub samples: Vec<Sample>,
    pub recorder: Recorder,
    pub elapsed: Duration,
}

/// Sends requests `0..plan.max` (or until `plan.duration` passes) over
/// `plan.connections` connections, each a task with its own keep-alive
/// connection, spread round-robin over `addrs` (several members of a
/// cluster, or one server). Indices come from one shared counter, so together
/// the workers send each index once, in roughly ascending order.
pub async fn run(addrs: &[SocketAddr], plan: &Plan, make: MakeRequest) -> RunResult {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let (max, keep_samples) = (plan.max, plan.keep_samples);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..plan.connections.max(1) {
        let (next, make) = (Arc::clone(&next), Arc::clone(&make));
        let addr = addrs[worker % addrs.len()];
        workers.spawn(async move {
            let mut conn = Connection::new(addr);
            let mut rng = Rng::from_clock(worker as u64);
            let mut samples = Vec::new();
            let mut recorder = Recorder::default();
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    break;
                }
                let (method, path, form) = make(i, &mut rng);
                let sent = Instant::now();
                match conn.send(method, &path, form).await {
                    Ok(_) => {
                        let took = sent.elapsed();
                        recorder.record(took);
                        if keep_samples {
                            samples.push(Sample {
                                index: i,
                                sent_us: sent.duration_since(start).as_micros() as u64,
                                took_us: took.as_micros().min(u32::MAX as u128) as u32,
                            });
                        }
                    }
                    Err(e) => {
                        recorder.fail(e);
                        tokio::time::sleep(FAILURE_BACKOFF).await;
                    }
                }
            }
            (samples, recorder)
        });
    }
    let mut samples = Vec::new();
    let mut recorder = Recorder::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok((s, r)) => {
                samples.extend(s);
                recorder.merge(r);
            }
            Err(e) => recorder.fail(anyhow::anyhow!("worker task failed: {e}")),
        }
    }
    RunResult {
        samples,
        recorder,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(42);
        let mut seen = [false; 10];
        for _ in 0..10_000 {
            let v = rng.below(10);
            assert!(v < 10);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn round_robin_counts_add_up() {
        let (services, instances) = (7, 100);
        let total: u64 = (0..services)
            .map(|s| instances_in(s, services, instances))
            .sum();
        assert_eq!(total, instances);
        for s in 0..services {
            let counted = (0..instances)
                .filter(|i| service_of(*i, services) == s)
                .count() as u64;
            assert_eq!(instances_in(s, services, instances), counted);
        }
    }

    #[test]
    fn addresses_are_distinct() {
        assert_eq!(instance_addr(0), ("10.0.0.0".into(), 8080));
        assert_eq!(instance_addr(65_793), ("10.1.1.1".into(), 8080));
        assert_eq!(instance_addr(1 << 24), ("10.0.0.0".into(), 8081));
    }

    #[test]
    fn beat_looks_like_the_java_client() {
        let (method, path, body) = beat("bench-svc-1", 1);
        assert_eq!(method, Method::PUT);
        assert!(path.contains("serviceName=DEFAULT_GROUP%40%40bench-svc-1"));
        assert!(path.contains("&ip=10.0.0.1&port=8080"));
        let body = body.unwrap_or_default();
        let json = body.strip_prefix("beat=").unwrap_or_default();
        let decoded = percent_decode(json);
        let info: serde_json::Value = serde_json::from_str(&decoded).unwrap_or_default();
        assert_eq!(info["serviceName"], "DEFAULT_GROUP@@bench-svc-1");
        assert_eq!(info["ip"], "10.0.0.1");
        assert_eq!(info["port"], 8080);
        assert_eq!(info["period"], 5000);
    }

    fn percent_decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
