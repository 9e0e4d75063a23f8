//! `memory`: resident memory a server spends per registered instance.
//!
//! (VmRSS after − VmRSS before) / instances, read from `/proc/<pid>/status`.
//! The run sends no beats, so it must finish well within the server's delete
//! timeout (30 s by default), or its checker must be off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Connection;
use crate::load;
use crate::workload;

/// How often the settle loop samples VmRSS.
const SETTLE_POLL: Duration = Duration::from_millis(500);

pub struct MemoryArgs {
    pub addr: SocketAddr,
    pub pid: u32,
    pub connections: usize,
    pub services: u64,
    pub instances: u64,
    pub prefix: String,
    /// Time bound of the registrations.
    pub timeout: Duration,
    /// Upper bound of the wait for RSS to stop moving.
    pub settle: Duration,
}

pub struct MemoryResult {
    pub instances: u64,
    pub services_checked: usize,
    pub rss_before: u64,
    pub rss_after: u64,
    pub register_per_second: f64,
    /// How long the settle loop waited, and whether RSS did stop moving.
    pub settled_after: Duration,
    pub settled: bool,
    pub bytes_per_instance: f64,
}

/// VmRSS of a process, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is the server's pid right?)"))?;
    parse_vm_rss(&status).context("no VmRSS line in /proc/<pid>/status")
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Waits (at most `bound`) until two consecutive samples of VmRSS, taken
/// [`SETTLE_POLL`] apart, differ by no more than 0.5% (at least 256 KiB):
/// servers apply registrations asynchronously and allocators release memory
/// late, so an immediate reading can be off by megabytes.
pub async fn settle(pid: u32, bound: Duration) -> anyhow::Result<(u64, Duration, bool)> {
    let start = Instant::now();
    let mut previous = rss_bytes(pid)?;
    let mut steady = 0;
    while start.elapsed() < bound {
        tokio::time::sleep(SETTLE_POLL).await;
        let now = rss_bytes(pid)?;
        let tolerance = (now / 200).max(256 * 1024);
        if now.abs_diff(previous) <= tolerance {
            steady += 1;
            if steady >= 2 {
                return Ok((now, start.elapsed(), true));
            }
        } else {
            steady = 0;
        }
        previous = now;
    }
    Ok((previous, start.elapsed(), false))
}

/// A few services spread over the range (first, quartiles, last), without repeats.
fn sample_services(services: u64) -> Vec<u64> {
    let mut picked: Vec<u64> = [
        0,
        services / 4,
        services / 2,
        services * 3 / 4,
        services - 1,
    ]
    .into_iter()
    .collect();
    picked.dedup();
    picked
}

pub async fn run(args: &MemoryArgs) -> anyhow::Result<MemoryResult> {
    let rss_before = rss_bytes(args.pid)?;
    let loaded = load::preload(
        &[args.addr],
        args.connections,
        args.services,
        args.instances,
        &args.prefix,
        args.timeout,
    )
    .await;
    if loaded.ok != args.instances {
        bail!(
            "registered {} of {} instances ({} errors, first: {})",
            loaded.ok,
            args.instances,
            loaded.errors,
            loaded.first_error.as_deref().unwrap_or("none: timed out")
        );
    }
    // The server answered "ok"; check that a few services really list their share.
    let mut conn = Connection::new(args.addr);
    let checked = sample_services(args.services);
    for &service in &checked {
        let name = workload::service_name(&args.prefix, service);
        let (method, path, _) = workload::list(&name);
        let body = conn
            .send(method, &path, None)
            .await
            .with_context(|| format!("listing {name}"))?;
        let list: serde_json::Value =
            serde_json::from_slice(&body).with_context(|| format!("parsing the list of {name}"))?;
        let got = list["hosts"].as_array().map_or(0, Vec::len) as u64;
        let expected = workload::instances_in(service, args.services, args.instances);
        if got != expected {
            bail!("{name} lists {got} instances, expected {expected}");
        }
    }
    let (rss_after, settled_after, settled) = settle(args.pid, args.settle).await?;
    Ok(MemoryResult {
        instances: args.instances,
        services_checked: checked.len(),
        rss_before,
        rss_after,
        register_per_second: loaded.per_second,
        settled_after,
        settled,
        bytes_per_instance: rss_after.saturating_sub(rss_before) as f64 / args.instances as f64,
    })
}

pub fn print(r: &MemoryResult, url: &str, json: bool) {
    println!(
        "{} instances registered at {:.0} req/s ({} services checked); RSS {:.1} MiB -> {:.1} MiB ({} after {:.1} s); {:.0} bytes per instance",
        r.instances,
        r.register_per_second,
        r.services_checked,
        r.rss_before as f64 / 1_048_576.0,
        r.rss_after as f64 / 1_048_576.0,
        if r.settled { "settled" } else { "still moving" },
        r.settled_after.as_secs_f64(),
        r.bytes_per_instance
    );
    if json {
        println!(
            "{}",
            serde_json::json!({
                "instances": r.instances, "rss_before": r.rss_before, "rss_after": r.rss_after,
                "bytes_per_instance": r.bytes_per_instance, "register_per_second": r.register_per_second,
                "settled": r.settled, "settle_s": r.settled_after.as_secs_f64(),
                "services_checked": r.services_checked, "url": url,
            })
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\trnacos\nVmPeak:\t  1000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_bytes(std::process::id()).is_ok_and(|b| b > 0));
    }

    #[test]
    fn sampled_services_are_in_range_and_distinct() {
        assert_eq!(sample_services(1), [0]);
        assert_eq!(sample_services(2), [0, 1]);
        assert_eq!(sample_services(1000), [0, 250, 500, 750, 999]);
    }
}
