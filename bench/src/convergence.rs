//! `convergence`: how long a write on one cluster member takes to be listed
//! by another. Each sample registers a new instance through member `i` and
//! polls `instance/list` on member `i + 1` until the instance is there; the
//! time runs from sending the write to the first listing that has it.
//! Samples rotate over the members, so writes land on owners and non-owners
//! alike (a non-owner forwards), and each instance is deregistered after.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use serde_json::Value;

use crate::client::{Connection, encode};
use crate::stats::{Recorder, Summary};
use crate::workload::instance_addr;

const INSTANCE: &str = "/nacos/v1/ns/instance";

/// Pause between two polls of the reading member.
const POLL_EVERY: Duration = Duration::from_micros(500);

pub struct ConvergenceArgs {
    pub addrs: Vec<SocketAddr>,
    pub samples: u64,
    /// Most time one sample may take before it counts as a failure.
    pub timeout: Duration,
    /// Most time the whole run may take.
    pub total: Duration,
    pub service: String,
}

/// Whether an `instance/list` reply lists `ip:port`.
fn lists(body: &[u8], ip: &str, port: u16) -> anyhow::Result<bool> {
    let reply: Value = serde_json::from_slice(body).context("instance/list reply is not JSON")?;
    let hosts = reply["hosts"]
        .as_array()
        .context("instance/list reply has no hosts")?;
    Ok(hosts
        .iter()
        .any(|h| h["ip"].as_str() == Some(ip) && h["port"].as_u64() == Some(u64::from(port))))
}

pub async fn run(args: &ConvergenceArgs) -> anyhow::Result<Summary> {
    if args.addrs.len() < 2 {
        bail!("give at least two members (comma-separated --url) to measure convergence");
    }
    let members = args.addrs.len();
    let mut connections: Vec<Connection> = args.addrs.iter().map(|a| Connection::new(*a)).collect();
    let mut readers: Vec<Connection> = args.addrs.iter().map(|a| Connection::new(*a)).collect();
    let service = encode(&args.service);
    let list_path = format!("{INSTANCE}/list?serviceName={service}");
    let mut recorder = Recorder::default();
    let started = Instant::now();
    for n in 0..args.samples {
        if started.elapsed() > args.total {
            break;
        }
        let (writer, reader) = ((n as usize) % members, (n as usize + 1) % members);
        // Far from the load run's instance numbers, distinct per sample.
        let (ip, port) = instance_addr(3_000_000_000 + n);
        let form = format!("serviceName={service}&ip={ip}&port={port}&ephemeral=true");
        let sent = Instant::now();
        if let Err(e) = connections[writer]
            .send(Method::POST, INSTANCE, Some(form.clone()))
            .await
        {
            recorder.fail(e.context("register"));
            continue;
        }
        let seen = loop {
            match readers[reader].send(Method::GET, &list_path, None).await {
                Ok(body) => match lists(&body, &ip, port) {
                    Ok(true) => break Ok(sent.elapsed()),
                    Ok(false) => {}
                    Err(e) => break Err(e),
                },
                // Before the first sync the service may not exist there yet.
                Err(_) if sent.elapsed() < args.timeout => {}
                Err(e) => break Err(e),
            }
            if sent.elapsed() > args.timeout {
                break Err(anyhow::anyhow!(
                    "not listed on the other member within {:?}",
                    args.timeout
                ));
            }
            tokio::time::sleep(POLL_EVERY).await;
        };
        match seen {
            Ok(took) => recorder.record(took),
            Err(e) => recorder.fail(e),
        }
        let _ = connections[writer]
            .send(Method::DELETE, &format!("{INSTANCE}?{form}"), None)
            .await;
    }
    Ok(recorder.summary(started.elapsed()))
}
