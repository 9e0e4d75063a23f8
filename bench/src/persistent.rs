//! Persistent (Raft) writes against a cluster: the latency of one write at a
//! time, throughput with many writers, and the time from killing the leader
//! to the first write committed after it.
//!
//! Writes are `POST /nacos/v1/ns/instance` with `ephemeral=false`, each a new
//! instance (unique ip:port), spread over the given members.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use serde_json::Value;

use crate::client::{Connection, encode};
use crate::stats::{Recorder, Summary};

/// The form of one persistent registration; `n` makes it unique.
fn write_form(service: &str, n: u64) -> String {
    let ip = format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    let port = 1 + (n >> 24) % 60_000;
    format!(
        "serviceName={}&ip={ip}&port={port}&ephemeral=false",
        encode(service)
    )
}

const PATH: &str = "/nacos/v1/ns/instance";

/// One write at a time, rotating over the members: commit latency.
pub async fn latency(addrs: &[SocketAddr], samples: u64, service: &str) -> Summary {
    let mut connections: Vec<Connection> = addrs.iter().map(|a| Connection::new(*a)).collect();
    let mut recorder = Recorder::default();
    let started = Instant::now();
    for n in 0..samples {
        let index = (n as usize) % connections.len();
        let begin = Instant::now();
        match connections[index]
            .send(Method::POST, PATH, Some(write_form(service, n)))
            .await
        {
            Ok(_) => recorder.record(begin.elapsed()),
            Err(e) => recorder.fail(e),
        }
    }
    recorder.summary(started.elapsed())
}

/// `connections` writers, each on its own connection to one member (round
/// robin over members), for `duration` (bounded by `max_writes` in all).
pub async fn throughput(
    addrs: &[SocketAddr],
    connections: usize,
    duration: Duration,
    max_writes: u64,
    service: &str,
) -> Summary {
    let started = Instant::now();
    let deadline = started + duration;
    let per_worker = (max_writes / connections as u64).max(1);
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections {
        let addr = addrs[worker % addrs.len()];
        let service = service.to_string();
        workers.spawn(async move {
            let mut connection = Connection::new(addr);
            let mut recorder = Recorder::default();
            // Offset far from the latency run's numbers.
            let base = 1_000_000 + worker as u64 * per_worker;
            for i in 0..per_worker {
                if Instant::now() >= deadline {
                    break;
                }
                let begin = Instant::now();
                match connection
                    .send(Method::POST, PATH, Some(write_form(&service, base + i)))
                    .await
                {
                    Ok(_) => recorder.record(begin.elapsed()),
                    Err(e) => recorder.fail(e),
                }
            }
            recorder
        });
    }
    let mut all = Recorder::default();
    while let Some(done) = workers.join_next().await {
        if let Ok(recorder) = done {
            all.merge(recorder);
        }
    }
    all.summary(started.elapsed())
}

/// The Raft leader as the members see it: its index in `addrs`.
async fn leader(addrs: &[SocketAddr]) -> anyhow::Result<usize> {
    for addr in addrs {
        let mut connection = Connection::new(*addr);
        let Ok(body) = connection
            .send(Method::GET, "/nacos/v1/ns/operator/servers", None)
            .await
        else {
            continue;
        };
        let servers: Value = serde_json::from_slice(&body).context("operator/servers")?;
        if let Some(leader) = servers["raft"]["leader"].as_str() {
            return addrs
                .iter()
                .position(|a| a.to_string() == leader)
                .context("the leader is not among the given members");
        }
    }
    bail!("no member knows a Raft leader")
}

pub struct Failover {
    pub killed: SocketAddr,
    /// From the kill to the end of the first write committed after it.
    pub first_commit: Duration,
    /// Writes that failed in between.
    pub failed_writes: u64,
}

/// Kills the leader (`kill -9` of its pid, `pids` in the order of `addrs`)
/// and measures until a write sent through a survivor after the kill commits.
pub async fn failover(
    addrs: &[SocketAddr],
    pids: &[u32],
    service: &str,
    limit: Duration,
) -> anyhow::Result<Failover> {
    if pids.len() != addrs.len() {
        bail!("give one pid per member, in the order of --url");
    }
    let leader = leader(addrs).await?;
    let survivor = addrs[(leader + 1) % addrs.len()];
    let mut connection = Connection::new(survivor);
    // Warm the connection so the measurement has no connect in it.
    connection
        .send(Method::POST, PATH, Some(write_form(service, 5_000_000)))
        .await
        .context("a write before the kill failed")?;
    let status = std::process::Command::new("kill")
        .args(["-9", &pids[leader].to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("kill -9 {} failed", pids[leader]);
    }
    let killed_at = Instant::now();
    let mut failed_writes = 0;
    let mut n = 5_000_001;
    loop {
        if killed_at.elapsed() > limit {
            bail!("no write committed within {limit:?} of the kill");
        }
        n += 1;
        match connection
            .send(Method::POST, PATH, Some(write_form(service, n)))
            .await
        {
            Ok(_) => {
                return Ok(Failover {
                    killed: addrs[leader],
                    first_commit: killed_at.elapsed(),
                    failed_writes,
                });
            }
            Err(_) => failed_writes += 1,
        }
    }
}
