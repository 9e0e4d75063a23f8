//! `load`: preload instances over services, then measure register, beat and
//! list one after the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::stats::Summary;
use crate::workload::{self, MakeRequest};

pub struct LoadArgs {
    pub addr: SocketAddr,
    pub connections: usize,
    pub duration: Duration,
    pub services: u64,
    pub instances: u64,
    pub ops: Vec<String>,
    pub prefix: String,
}

/// Registers `instances` instances spread over `services` services; fails on any error.
pub async fn preload(
    addr: SocketAddr,
    connections: usize,
    services: u64,
    instances: u64,
    prefix: &str,
) -> anyhow::Result<Summary> {
    let prefix = prefix.to_string();
    let make: MakeRequest =
        Arc::new(move |i| workload::register(&workload::service_name(&prefix, i % services), i));
    let run = workload::run(
        addr,
        connections,
        Duration::from_secs(3600),
        instances,
        make,
    )
    .await;
    let summary = run.recorder.summary(run.elapsed);
    if summary.errors > 0 || summary.ok != instances {
        bail!(
            "preload registered {} of {instances} ({} errors, first: {:?})",
            summary.ok,
            summary.errors,
            summary.first_error
        );
    }
    Ok(summary)
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<Vec<(String, Summary)>> {
    let preloaded = preload(
        args.addr,
        args.connections,
        args.services,
        args.instances,
        &args.prefix,
    )
    .await?;
    eprintln!(
        "preloaded {} instances over {} services at {:.0} req/s",
        args.instances, args.services, preloaded.per_second
    );
    let mut results = Vec::new();
    for op in &args.ops {
        let (services, instances, prefix) = (args.services, args.instances, args.prefix.clone());
        let make: MakeRequest = match op.as_str() {
            // New instances into the existing services.
            "register" => Arc::new(move |i| {
                let n = instances + i;
                workload::register(&workload::service_name(&prefix, n % services), n)
            }),
            // Beats of preloaded instances, in a scattered order.
            "beat" => Arc::new(move |i| {
                let n = (i.wrapping_mul(104_729)) % instances;
                workload::beat(&workload::service_name(&prefix, n % services), n)
            }),
            "list" => Arc::new(move |i| {
                workload::list(&workload::service_name(
                    &prefix,
                    (i.wrapping_mul(7_919)) % services,
                ))
            }),
            other => bail!("unknown operation {other:?} (register, beat, list)"),
        };
        let run = workload::run(args.addr, args.connections, args.duration, u64::MAX, make).await;
        results.push((op.clone(), run.recorder.summary(run.elapsed)));
    }
    Ok(results)
}
