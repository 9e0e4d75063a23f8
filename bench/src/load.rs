//! `load`: preload instances over services, then measure register, beat and
//! list one after the other, each for the same duration over the same number
//! of connections, so the figures of two servers can be set side by side.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::server_cpu;
use crate::stats::Summary;
use crate::workload::{self, MakeRequest, Plan};

/// An operation `load` can measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// `POST instance`: new instances into the preloaded services.
    Register,
    /// `PUT instance/beat`: Java-client beats of random preloaded instances.
    Beat,
    /// `GET instance/list` of random preloaded services.
    List,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Register => "register",
            Op::Beat => "beat",
            Op::List => "list",
        })
    }
}

pub struct LoadArgs {
    /// Where the connections go, round-robin (the members of a cluster).
    pub addrs: Vec<SocketAddr>,
    pub connections: usize,
    pub duration: Duration,
    pub services: u64,
    pub instances: u64,
    pub ops: Vec<Op>,
    pub prefix: String,
    /// Count bound of each measured operation.
    pub max_requests: u64,
    /// Time bound of the preload.
    pub preload_timeout: Duration,
    /// The server's process, whose CPU per request each operation reports.
    pub server_pid: Option<u32>,
}

/// Registers `instances` instances spread round-robin over `services`
/// services, as fast as `connections` connections go, within `timeout`.
/// Failures are counted in the summary, not fatal: the caller decides.
pub async fn preload(
    addrs: &[SocketAddr],
    connections: usize,
    services: u64,
    instances: u64,
    prefix: &str,
    timeout: Duration,
) -> Summary {
    let prefix = prefix.to_string();
    let make: MakeRequest = Arc::new(move |i, _| {
        let service = workload::service_name(&prefix, workload::service_of(i, services));
        workload::register(&service, i)
    });
    let plan = Plan {
        connections,
        duration: timeout,
        max: instances,
        keep_samples: false,
    };
    let run = workload::run(addrs, &plan, make).await;
    run.recorder.summary(run.elapsed)
}

/// The requests of one measured operation.
fn requests(op: Op, args: &LoadArgs) -> MakeRequest {
    let (services, instances, prefix) = (args.services, args.instances, args.prefix.clone());
    match op {
        // Indices past the preloaded ones: every registration is a new instance.
        Op::Register => Arc::new(move |i, _| {
            let n = instances + i;
            let service = workload::service_name(&prefix, workload::service_of(n, services));
            workload::register(&service, n)
        }),
        Op::Beat => Arc::new(move |_, rng| {
            let n = rng.below(instances);
            let service = workload::service_name(&prefix, workload::service_of(n, services));
            workload::beat(&service, n)
        }),
        Op::List => Arc::new(move |_, rng| {
            workload::list(&workload::service_name(&prefix, rng.below(services)))
        }),
    }
}

pub async fn run(args: &LoadArgs) -> anyhow::Result<Vec<(Op, Summary)>> {
    let preloaded = preload(
        &args.addrs,
        args.connections,
        args.services,
        args.instances,
        &args.prefix,
        args.preload_timeout,
    )
    .await;
    if preloaded.ok == 0 {
        bail!(
            "preload registered no instance ({} errors, first: {})",
            preloaded.errors,
            preloaded.first_error.as_deref().unwrap_or("none")
        );
    }
    eprintln!(
        "preloaded {} of {} instances over {} services at {:.0} req/s ({} errors{})",
        preloaded.ok,
        args.instances,
        args.services,
        preloaded.per_second,
        preloaded.errors,
        preloaded
            .first_error
            .as_deref()
            .map(|e| format!(", first: {e}"))
            .unwrap_or_default()
    );
    let mut results = Vec::new();
    for &op in &args.ops {
        let plan = Plan {
            connections: args.connections,
            duration: args.duration,
            max: args.max_requests,
            keep_samples: false,
        };
        let before = args.server_pid.map(server_cpu::used).transpose()?;
        let run = workload::run(&args.addrs, &plan, requests(op, args)).await;
        let mut summary = run.recorder.summary(run.elapsed);
        if let (Some(pid), Some(before)) = (args.server_pid, before) {
            summary.server_cpu_us =
                server_cpu::per_request(server_cpu::used(pid)? - before, summary.ok);
        }
        results.push((op, summary));
    }
    Ok(results)
}

/// The human table on stdout (first errors on stderr), and with `json` one
/// JSON object per operation.
pub fn print(results: &[(Op, Summary)], args: &LoadArgs, url: &str, json: bool) {
    println!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "op", "req/s", "ok", "mean µs", "p50 µs", "p99 µs", "max µs", "errors"
    );
    for (op, s) in results {
        println!(
            "{:<10} {:>10.0} {:>10} {:>10.0} {:>10} {:>10} {:>10} {:>8}",
            op.to_string(),
            s.per_second,
            s.ok,
            s.mean_us,
            s.p50_us,
            s.p99_us,
            s.max_us,
            s.errors
        );
        if let Some(us) = s.server_cpu_us {
            println!("{:<10} server CPU {us:.1} µs per request", op.to_string());
        }
        if let Some(e) = &s.first_error {
            eprintln!("{op}: first error: {e}");
        }
    }
    if json {
        for (op, s) in results {
            println!(
                "{}",
                serde_json::json!({
                    "op": op.to_string(), "per_second": s.per_second, "ok": s.ok, "errors": s.errors,
                    "mean_us": s.mean_us, "p50_us": s.p50_us, "p99_us": s.p99_us, "max_us": s.max_us,
                    "connections": args.connections, "duration_s": args.duration.as_secs_f64(),
                    "services": args.services, "instances": args.instances, "url": url,
                    "server_cpu_us": s.server_cpu_us,
                })
            );
        }
    }
}
