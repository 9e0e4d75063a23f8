//! `memory`: resident memory a server spends per registered instance.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::client::Connection;
use crate::load;
use crate::workload;

pub struct MemoryResult {
    pub instances: u64,
    pub rss_before: u64,
    pub rss_after: u64,
    pub bytes_per_instance: f64,
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: u64 = line["VmRSS:".len()..]
        .split_whitespace()
        .next()
        .context("empty VmRSS")?
        .parse()?;
    Ok(kib * 1024)
}

pub async fn run(
    addr: SocketAddr,
    pid: u32,
    connections: usize,
    services: u64,
    instances: u64,
    prefix: &str,
) -> anyhow::Result<MemoryResult> {
    let rss_before = rss_bytes(pid)?;
    load::preload(addr, connections, services, instances, prefix).await?;
    // Check a few services really hold their share of the instances.
    let mut conn = Connection::new(addr);
    for service in [0, services / 2, services - 1] {
        let (method, path, _) = workload::list(&workload::service_name(prefix, service));
        let body = conn.send(method, &path, None).await?;
        let list: serde_json::Value = serde_json::from_slice(&body)?;
        let expected = (0..instances).filter(|i| i % services == service).count();
        let got = list["hosts"].as_array().map_or(0, Vec::len);
        if got != expected {
            bail!("service {service} lists {got} instances, expected {expected}");
        }
    }
    // Let allocator and background work settle before reading the figure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = rss_bytes(pid)?;
    Ok(MemoryResult {
        instances,
        rss_before,
        rss_after,
        bytes_per_instance: rss_after.saturating_sub(rss_before) as f64 / instances as f64,
    })
}
