//! `nacre-bench`: a load generator for any Nacos-v1-compatible naming server
//! (Nacre, rnacos, Nacos itself), so figures can be taken side by side.
//!
//! Every run is bounded in time and request count and talks only to the URL
//! it is given. Failed requests are counted, never fatal: the worker
//! reconnects and carries on, and the report says how many failed and why.

mod client;
mod convergence;
mod grpc;
mod load;
mod memory;
mod one_service;
mod persistent;
mod push;
mod server_cpu;
mod stats;
mod workload;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The client shares the machine with the server it measures: mimalloc
/// (the node's allocator too) keeps its per-request allocations cheap, the
/// same for every server it drives.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nacre-bench",
    version,
    about = "Load generator for Nacos-v1-compatible naming servers"
)]
struct Cli {
    /// Base URL of the server, e.g. http://127.0.0.1:8848. Several, comma-separated, are the
    /// members of a cluster: `load` spreads its connections over them, `convergence` writes on
    /// one and reads on another; other commands use the first
    #[arg(long, global = true, default_value = "http://127.0.0.1:8848")]
    url: String,
    /// Also print one JSON object per result on stdout
    #[arg(long, global = true)]
    json: bool,
    /// Send this token as `accessToken` with every HTTP request (a server with auth on)
    #[arg(long, global = true)]
    access_token: Option<String>,
    /// Send `username` and this user's `password` with every HTTP request, as npm
    /// nacos-naming does (a server with auth on); the password comes from BENCH_PASSWORD
    #[arg(long, global = true)]
    username: Option<String>,
    /// The server's process id (same machine): `load` and `grpc` then also report the
    /// server's CPU per request (µs, from /proc/<pid>/stat) for each operation
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preload instances over services, then measure register, beat and list.
    Load {
        /// Concurrent connections (one task each)
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per operation
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Services to preload
        #[arg(long, default_value_t = 1000)]
        services: u64,
        /// Instances to preload, spread round-robin over the services
        #[arg(long, default_value_t = 10000)]
        instances: u64,
        /// Operations to measure, in order
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "register,beat,list"
        )]
        ops: Vec<load::Op>,
        /// Prefix of the service names (use a fresh one per run against the same server)
        #[arg(long, default_value = "bench-svc")]
        prefix: String,
        /// Most requests per operation (the count bound next to --duration)
        #[arg(long, default_value_t = 10_000_000)]
        max_requests: u64,
        /// Most seconds the preload may take
        #[arg(long, default_value_t = 600)]
        preload_timeout: u64,
    },
    /// Register many instances into one service; compare first and last registrations.
    OneService {
        /// Instances to register
        #[arg(long, default_value_t = 50000)]
        total: u64,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Registrations in each of the first and last windows
        #[arg(long, default_value_t = 1000)]
        window: u64,
        #[arg(long, default_value = "bench-one")]
        service: String,
        /// Most seconds the registrations may take
        #[arg(long, default_value_t = 600)]
        timeout: u64,
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
    /// Nacos 2.x gRPC: requests per second over N client connections.
    Grpc {
        /// Client connections (one worker each)
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Seconds per operation
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Services the requests spread over (preloaded with one instance each for queries)
        #[arg(long, default_value_t = 100)]
        services: u64,
        /// Operations to measure, in order
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "register,query"
        )]
        ops: Vec<grpc::Op>,
        /// Prefix of the service names
        #[arg(long, default_value = "bench-grpc")]
        prefix: String,
        /// gRPC port; 0 means the HTTP port of --url + 1000, as clients assume
        #[arg(long, default_value_t = 0)]
        grpc_port: u16,
    },
    /// Nacos 2.x gRPC: time from a change to each subscriber's push.
    GrpcPush {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Changes made, one per interval
        #[arg(long, default_value_t = 50)]
        changes: u64,
        /// Milliseconds between changes (above every server's merge window)
        #[arg(long, default_value_t = 700)]
        interval_ms: u64,
        #[arg(long, default_value = "bench-grpc-push")]
        service: String,
        #[arg(long, default_value_t = 0)]
        grpc_port: u16,
    },
    /// Nacos 2.x gRPC: connections a server holds, and its memory per idle connection.
    GrpcConnections {
        /// Process id of the server (its VmRSS is read from /proc/<pid>/status)
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        /// Connections opened at once
        #[arg(long, default_value_t = 200)]
        parallel: usize,
        /// Most seconds to wait for the server's RSS to stop moving
        #[arg(long, default_value_t = 10)]
        settle: u64,
        #[arg(long, default_value_t = 0)]
        grpc_port: u16,
    },
    /// Resident memory per registered instance of a server process.
    Memory {
        /// Process id of the server (its VmRSS is read from /proc/<pid>/status)
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
        /// Most seconds the registrations may take
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Most seconds to wait for the server's RSS to stop moving
        #[arg(long, default_value_t = 10)]
        settle: u64,
    },
    /// Time from a write on one member until another member lists it (give
    /// the members as --url a,b,c).
    Convergence {
        /// Writes to time (one at a time)
        #[arg(long, default_value_t = 1000)]
        samples: u64,
        /// Most milliseconds one write may take to show up on the other member
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
        /// Most seconds the whole run may take
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
        #[arg(long, default_value = "bench-convergence")]
        service: String,
    },
    /// Persistent (Raft) writes on a cluster: latency, throughput, and the
    /// time from killing the leader to the next committed write.
    Persistent {
        /// Every member's base URL, comma-separated (overrides --url)
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        /// Writes, one at a time, for the latency figures
        #[arg(long, default_value_t = 500)]
        samples: u64,
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds of the throughput run
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Most writes of the throughput run
        #[arg(long, default_value_t = 1_000_000)]
        max_writes: u64,
        /// The members' process ids, in the order of --members: kill -9 the
        /// leader and time the next committed write (skipped without them)
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        #[arg(long, default_value = "bench-raft")]
        service: String,
    },
}

/// The socket address of an `http://host[:port][/]` base URL. Paths are
/// refused rather than ignored: every request path is `/nacos/v1/ns/...`.
fn resolve(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("http://")
        .context("only http:// URLs are supported")?;
    let hostport = rest.strip_suffix('/').unwrap_or(rest);
    if hostport.contains('/') {
        bail!("give the server's base URL without a path (requests go to /nacos/v1/ns/...)");
    }
    let with_port = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.ends_with(']'))
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("resolving {with_port}"))?
        .next()
        .with_context(|| format!("{with_port} has no address"))
}

/// Refuses zero sizes up front (they would divide by zero or measure nothing).
fn positive(values: &[(&str, u64)]) -> anyhow::Result<()> {
    for (name, value) in values {
        if *value == 0 {
            bail!("--{name} must be positive");
        }
    }
    Ok(())
}

/// The gRPC address of a server whose HTTP API is at `http`.
fn grpc_target(http: SocketAddr, grpc_port: u16) -> anyhow::Result<SocketAddr> {
    let port = match grpc_port {
        0 => http
            .port()
            .checked_add(1000)
            .context("the HTTP port + 1000 is above 65535: give --grpc-port")?,
        p => p,
    };
    Ok(SocketAddr::new(http.ip(), port))
}

/// The `grpc` command: connect, preload, then each operation in turn.
async fn run_grpc(
    target: SocketAddr,
    connections: usize,
    duration: u64,
    services: u64,
    ops: &[grpc::Op],
    prefix: &str,
    (json, url, server_pid): (bool, &str, Option<u32>),
) -> anyhow::Result<()> {
    let (mut conns, failures) = grpc::open_many(target, connections, 64).await;
    if conns.is_empty() {
        bail!(
            "no gRPC connection to {target}: {}",
            failures.first_error.unwrap_or_default()
        );
    }
    grpc::preload(&mut conns, services, prefix).await?;
    for op in ops {
        let before = server_pid.map(server_cpu::used).transpose()?;
        let mut s = grpc::throughput(
            std::mem::take(&mut conns),
            *op,
            services,
            prefix,
            Duration::from_secs(duration),
        )
        .await;
        if let (Some(pid), Some(before)) = (server_pid, before) {
            s.server_cpu_us = server_cpu::per_request(server_cpu::used(pid)? - before, s.ok);
        }
        println!(
            "gRPC {op:?}: {:.0} req/s over {connections} connections, p50 {} µs, p99 {} µs ({} ok, {} failed{}){}",
            s.per_second,
            s.p50_us,
            s.p99_us,
            s.ok,
            s.errors,
            s.first_error
                .as_deref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default(),
            s.server_cpu_us
                .map(|us| format!(", server CPU {us:.1} µs per request"))
                .unwrap_or_default()
        );
        if json {
            println!(
                "{}",
                serde_json::json!({"op": format!("grpc-{op:?}").to_lowercase(), "per_second": s.per_second,
                    "p50_us": s.p50_us, "p99_us": s.p99_us, "ok": s.ok, "errors": s.errors,
                    "connections": connections, "url": url, "server_cpu_us": s.server_cpu_us})
            );
        }
        // Each operation gets fresh connections (the previous workers kept theirs).
        let (fresh, _) = grpc::open_many(target, connections, 64).await;
        conns = fresh;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    // The node's reason (nacre::huge_pages): the bench's own burst of
    // pushes read must not stall on zeroing huge pages, whichever server
    // it drives.
    let _ = nacre::huge_pages::turn_off();
    // `{:#}` prints the error and its causes on one line; returning the error
    // from main would print its Debug form, backtrace included when
    // RUST_BACKTRACE is set.
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match (&cli.access_token, &cli.username) {
        (Some(token), _) => {
            client::set_credential(format!("accessToken={}", client::encode(token)))
        }
        (None, Some(user)) => {
            let password = std::env::var("BENCH_PASSWORD")
                .context("--username needs the password in BENCH_PASSWORD")?;
            client::set_credential(format!(
                "username={}&password={}",
                client::encode(user),
                client::encode(&password)
            ));
        }
        (None, None) => {}
    }
    let addrs: Vec<SocketAddr> = cli
        .url
        .split(',')
        .map(resolve)
        .collect::<anyhow::Result<_>>()?;
    let addr = addrs[0];
    match cli.command {
        Command::Load {
            connections,
            duration,
            services,
            instances,
            ops,
            prefix,
            max_requests,
            preload_timeout,
        } => {
            positive(&[
                ("connections", connections as u64),
                ("duration", duration),
                ("services", services),
                ("instances", instances),
                ("max-requests", max_requests),
                ("preload-timeout", preload_timeout),
            ])?;
            let args = load::LoadArgs {
                addrs: addrs.clone(),
                connections,
                duration: Duration::from_secs(duration),
                services,
                instances,
                ops,
                prefix,
                max_requests,
                preload_timeout: Duration::from_secs(preload_timeout),
                server_pid: cli.server_pid,
            };
            let results = load::run(&args).await?;
            load::print(&results, &args, &cli.url, cli.json);
        }
        Command::OneService {
            total,
            connections,
            window,
            service,
            timeout,
        } => {
            positive(&[
                ("total", total),
                ("connections", connections as u64),
                ("timeout", timeout),
            ])?;
            let r = one_service::run(
                addr,
                connections,
                total,
                window,
                &service,
                Duration::from_secs(timeout),
            )
            .await?;
            one_service::print(&r, window, &cli.url, cli.json);
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
        Command::Grpc {
            connections,
            duration,
            services,
            ops,
            prefix,
            grpc_port,
        } => {
            positive(&[
                ("connections", connections as u64),
                ("duration", duration),
                ("services", services),
            ])?;
            let target = grpc_target(addr, grpc_port)?;
            run_grpc(
                target,
                connections,
                duration,
                services,
                &ops,
                &prefix,
                (cli.json, &cli.url, cli.server_pid),
            )
            .await?;
        }
        Command::GrpcPush {
            subscribers,
            changes,
            interval_ms,
            service,
            grpc_port,
        } => {
            positive(&[("subscribers", subscribers as u64), ("changes", changes)])?;
            let target = grpc_target(addr, grpc_port)?;
            let r = grpc::push_latency(
                target,
                subscribers,
                changes,
                Duration::from_millis(interval_ms),
                &service,
            )
            .await?;
            println!(
                "gRPC push: {} subscribers ({} refused), {} changes: {} pushes timed, {} missed; change-to-push p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                r.subscribers,
                r.refused,
                r.changes,
                r.received,
                r.missed,
                f64::from(r.p50_us) / 1000.0,
                f64::from(r.p99_us) / 1000.0,
                f64::from(r.max_us) / 1000.0
            );
            println!(
                "  each change's own p99: median {:.2} ms, slowest change {:.2} ms",
                f64::from(r.change_p99_median_us) / 1000.0,
                f64::from(r.change_p99_max_us) / 1000.0
            );
            if let Some(why) = &r.refused_because {
                println!("  the first refused subscriber: {why}");
            }
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"op": "grpc-push", "subscribers": r.subscribers, "refused": r.refused, "refused_because": r.refused_because, "changes": r.changes,
                        "received": r.received, "missed": r.missed, "p50_us": r.p50_us,
                        "p99_us": r.p99_us, "max_us": r.max_us,
                        "change_p99_median_us": r.change_p99_median_us,
                        "change_p99_max_us": r.change_p99_max_us, "url": cli.url})
                );
            }
        }
        Command::GrpcConnections {
            pid,
            count,
            parallel,
            settle,
            grpc_port,
        } => {
            positive(&[("count", count as u64), ("parallel", parallel as u64)])?;
            let target = grpc_target(addr, grpc_port)?;
            let (before, _, _) = memory::settle(pid, Duration::from_secs(settle)).await?;
            let started = std::time::Instant::now();
            let (conns, failures) = grpc::open_many(target, count, parallel).await;
            let opened_in = started.elapsed();
            let (after, _, settled) = memory::settle(pid, Duration::from_secs(settle)).await?;
            let mut held = 0;
            let mut conns = conns;
            for conn in &mut conns {
                if conn
                    .expect_ok("HealthCheckRequest", grpc::BARE.into())
                    .await
                    .is_ok()
                {
                    held += 1;
                }
            }
            let per = after.saturating_sub(before) as f64 / conns.len().max(1) as f64;
            println!(
                "gRPC connections: {held} of {count} held and answering ({} failed to open, first error: {}); opened in {:.1} s; RSS {:.1} MiB -> {:.1} MiB{}: {:.1} KiB per connection",
                failures.errors,
                failures.first_error.as_deref().unwrap_or("none"),
                opened_in.as_secs_f64(),
                before as f64 / 1048576.0,
                after as f64 / 1048576.0,
                if settled { "" } else { " (not settled)" },
                per / 1024.0
            );
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"op": "grpc-connections", "count": count, "held": held,
                        "failed": failures.errors, "rss_before": before, "rss_after": after,
                        "bytes_per_connection": per, "url": cli.url})
                );
            }
        }
        Command::Memory {
            pid,
            instances,
            services,
            connections,
            prefix,
            timeout,
            settle,
        } => {
            positive(&[
                ("instances", instances),
                ("services", services),
                ("connections", connections as u64),
                ("timeout", timeout),
            ])?;
            let args = memory::MemoryArgs {
                addr,
                pid,
                connections,
                services,
                instances,
                prefix,
                timeout: Duration::from_secs(timeout),
                settle: Duration::from_secs(settle),
            };
            let r = memory::run(&args).await?;
            memory::print(&r, &cli.url, cli.json);
        }
        Command::Convergence {
            samples,
            timeout_ms,
            max_seconds,
            service,
        } => {
            positive(&[
                ("samples", samples),
                ("timeout-ms", timeout_ms),
                ("max-seconds", max_seconds),
            ])?;
            let args = convergence::ConvergenceArgs {
                addrs: addrs.clone(),
                samples,
                timeout: Duration::from_millis(timeout_ms),
                total: Duration::from_secs(max_seconds),
                service,
            };
            let s = convergence::run(&args).await?;
            println!(
                "write on one member until listed on the next: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} ok, {} failed)",
                f64::from(s.p50_us) / 1000.0,
                f64::from(s.p99_us) / 1000.0,
                f64::from(s.max_us) / 1000.0,
                s.ok,
                s.errors
            );
            if let Some(e) = &s.first_error {
                eprintln!("first error: {e}");
            }
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"op": "convergence", "ok": s.ok, "errors": s.errors,
                        "p50_us": s.p50_us, "p99_us": s.p99_us, "max_us": s.max_us, "url": cli.url})
                );
            }
        }
        Command::Persistent {
            members,
            samples,
            connections,
            duration,
            max_writes,
            pids,
            service,
        } => {
            positive(&[
                ("samples", samples),
                ("connections", connections as u64),
                ("duration", duration),
                ("max-writes", max_writes),
            ])?;
            let addrs: Vec<SocketAddr> = if members.is_empty() {
                vec![addr]
            } else {
                members
                    .iter()
                    .map(|m| resolve(m))
                    .collect::<anyhow::Result<_>>()?
            };
            let latency = persistent::latency(&addrs, samples, &service).await;
            let throughput = persistent::throughput(
                &addrs,
                connections,
                Duration::from_secs(duration),
                max_writes,
                &service,
            )
            .await;
            println!(
                "persistent writes on {} members: one at a time p50 {} µs, p99 {} µs ({} ok, {} failed); {} writers: {:.0} writes/s, p50 {} µs, p99 {} µs ({} failed)",
                addrs.len(),
                latency.p50_us,
                latency.p99_us,
                latency.ok,
                latency.errors,
                connections,
                throughput.per_second,
                throughput.p50_us,
                throughput.p99_us,
                throughput.errors
            );
            let failover = if pids.is_empty() {
                None
            } else {
                let f =
                    persistent::failover(&addrs, &pids, &service, Duration::from_secs(30)).await?;
                println!(
                    "killed leader {}: next write committed {} ms after the kill ({} writes failed meanwhile)",
                    f.killed,
                    f.first_commit.as_millis(),
                    f.failed_writes
                );
                Some(f)
            };
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "members": addrs.len(),
                        "latency_p50_us": latency.p50_us, "latency_p99_us": latency.p99_us,
                        "latency_errors": latency.errors,
                        "connections": connections, "per_second": throughput.per_second,
                        "throughput_p50_us": throughput.p50_us, "throughput_p99_us": throughput.p99_us,
                        "throughput_errors": throughput.errors,
                        "failover_ms": failover.as_ref().map(|f| f.first_commit.as_millis() as u64),
                    })
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_base_urls() {
        let a = "127.0.0.1:8848".parse::<SocketAddr>().ok();
        assert_eq!(resolve("http://127.0.0.1:8848").ok(), a);
        assert_eq!(resolve("http://127.0.0.1:8848/").ok(), a);
        assert_eq!(
            resolve("http://127.0.0.1").ok(),
            "127.0.0.1:80".parse().ok()
        );
        assert_eq!(resolve("http://[::1]:8848").ok(), "[::1]:8848".parse().ok());
        assert!(resolve("https://127.0.0.1:8848").is_err());
        assert!(resolve("http://127.0.0.1:8848/nacos").is_err());
    }

    #[test]
    fn cli_accepts_url_before_or_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "nacre-bench",
            "load",
            "--url",
            "http://127.0.0.1:1",
            "--ops",
            "beat,list",
            "--json",
        ]);
        let cli = cli.ok();
        assert!(
            cli.as_ref()
                .is_some_and(|c| c.url == "http://127.0.0.1:1" && c.json)
        );
        assert!(matches!(
            cli.map(|c| c.command),
            Some(Command::Load { ops, .. }) if ops == [load::Op::Beat, load::Op::List]
        ));
        assert!(Cli::try_parse_from(["nacre-bench", "load", "--ops", "nope"]).is_err());
        assert!(Cli::try_parse_from(["nacre-bench", "--url", "http://h:1", "one-service"]).is_ok());
    }
}
