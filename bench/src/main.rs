//! `nacre-bench`: a load generator for any Nacos-v1-compatible naming server.
//!
//! Every run is bounded in time and request count and talks only to the URL
//! it is given.

mod client;
mod load;
mod memory;
mod one_service;
mod push;
mod stats;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nacre-bench",
    about = "Load generator for Nacos-v1-compatible naming servers"
)]
struct Cli {
    /// Base URL of the server, e.g. http://127.0.0.1:8848
    #[arg(long, global = true, default_value = "http://127.0.0.1:8848")]
    url: String,
    /// Print results as JSON lines too
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preload instances over services, then measure register, beat and list.
    Load {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per operation
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 1000)]
        services: u64,
        #[arg(long, default_value_t = 10000)]
        instances: u64,
        /// Operations to measure, in order
        #[arg(long, value_delimiter = ',', default_value = "register,beat,list")]
        ops: Vec<String>,
        /// Prefix of the service names (use a fresh one per run against the same server)
        #[arg(long, default_value = "bench-svc")]
        prefix: String,
    },
    /// Register many instances into one service; compare first and last registrations.
    OneService {
        #[arg(long, default_value_t = 50000)]
        total: u64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 1000)]
        window: u64,
        #[arg(long, default_value = "bench-one")]
        service: String,
    },
    /// Change-to-receive latency of UDP pushes to many subscribers.
    Push {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[arg(long, default_value_t = 100)]
        services: u64,
        /// Changes per second made by the writer
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Seconds of writing
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value = "bench-push")]
        prefix: String,
    },
    /// Resident memory per registered instance of a server process.
    Memory {
        /// Process id of the server
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 100000)]
        instances: u64,
        #[arg(long, default_value_t = 1000)]
        services: u64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value = "bench-mem")]
        prefix: String,
    },
}

fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let hostport = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?
        .trim_end_matches('/');
    hostport
        .to_socket_addrs()
        .with_context(|| format!("resolving {hostport}"))?
        .next()
        .context("no address")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let addr = resolve(&cli.url)?;
    match cli.command {
        Command::Load {
            connections,
            duration,
            services,
            instances,
            ops,
            prefix,
        } => {
            let args = load::LoadArgs {
                addr,
                connections,
                duration: Duration::from_secs(duration),
                services,
                instances,
                ops,
                prefix,
            };
            let results = load::run(&args).await?;
            println!(
                "{:<10} {:>12} {:>10} {:>10} {:>10} {:>8}",
                "op", "req/s", "p50 µs", "p99 µs", "max µs", "errors"
            );
            for (op, s) in &results {
                println!(
                    "{op:<10} {:>12.0} {:>10} {:>10} {:>10} {:>8}",
                    s.per_second, s.p50_us, s.p99_us, s.max_us, s.errors
                );
                if let Some(e) = &s.first_error {
                    eprintln!("{op}: first error: {e}");
                }
                if cli.json {
                    println!(
                        "{}",
                        serde_json::json!({"op": op, "per_second": s.per_second, "p50_us": s.p50_us, "p99_us": s.p99_us,
                            "max_us": s.max_us, "ok": s.ok, "errors": s.errors, "url": cli.url})
                    );
                }
            }
        }
        Command::OneService {
            total,
            connections,
            window,
            service,
        } => {
            let r = one_service::run(addr, connections, total, window, &service).await?;
            let ratio = r.last.mean_us / r.first.mean_us.max(1e-9);
            println!(
                "{} instances into one service at {:.0} req/s; first {window}: mean {:.0} µs p50 {} µs; last {window}: mean {:.0} µs p50 {} µs; last/first {ratio:.2}",
                r.total,
                r.per_second,
                r.first.mean_us,
                r.first.p50_us,
                r.last.mean_us,
                r.last.p50_us
            );
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"total": r.total, "per_second": r.per_second, "first_mean_us": r.first.mean_us,
                        "last_mean_us": r.last.mean_us, "ratio": ratio, "url": cli.url})
                );
            }
        }
        Command::Push {
            subscribers,
            services,
            rate,
            duration,
            prefix,
        } => {
            let r = push::run(
                addr,
                subscribers,
                services,
                rate,
                Duration::from_secs(duration),
                &prefix,
            )
            .await?;
            println!(
                "{} subscribers, {} changes: {} pushes ({:.0}/s); change-to-receive p50 {} µs, p99 {} µs, max {} µs; missed {}",
                r.subscribers,
                r.changes,
                r.pushes,
                r.pushes_per_second,
                r.p50_us,
                r.p99_us,
                r.max_us,
                r.missed
            );
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"subscribers": r.subscribers, "changes": r.changes, "pushes": r.pushes,
                        "pushes_per_second": r.pushes_per_second, "p50_us": r.p50_us, "p99_us": r.p99_us,
                        "max_us": r.max_us, "missed": r.missed, "url": cli.url})
                );
            }
        }
        Command::Memory {
            pid,
            instances,
            services,
            connections,
            prefix,
        } => {
            let r = memory::run(addr, pid, connections, services, instances, &prefix).await?;
            println!(
                "{} instances: RSS {:.1} MiB -> {:.1} MiB, {:.0} bytes per instance",
                r.instances,
                r.rss_before as f64 / 1048576.0,
                r.rss_after as f64 / 1048576.0,
                r.bytes_per_instance
            );
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"instances": r.instances, "rss_before": r.rss_before, "rss_after": r.rss_after,
                        "bytes_per_instance": r.bytes_per_instance, "url": cli.url})
                );
            }
        }
    }
    Ok(())
}
