//! Raft: persistent instances on a three-process cluster.

mod history;
mod minority;
mod probes;
mod restart;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::naming::{hosts, instance_write, instances};
use nacre_e2e::wait::{wait_for, wait_for_value};
use reqwest::Method;
use serde_json::Value;

/// One cluster test at a time (several processes each, two cores).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(extra: &[(&str, &str)], proxied: bool) -> ClusterOptions {
    ClusterOptions {
        proxied,
        ..ClusterOptions::default()
    }
    .with_env(&[
        ("NACRE_RAFT_HEARTBEAT_INTERVAL_MS", "50"),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MIN_MS", "300"),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MAX_MS", "600"),
    ])
    .with_env(extra)
}

/// Registers a persistent instance; returns the status and body.
async fn put_persistent(
    url: &str,
    service: &str,
    ip: &str,
    port: u16,
) -> anyhow::Result<(u16, String)> {
    let port = port.to_string();
    instance_write(
        url,
        Method::POST,
        &[
            ("serviceName", service),
            ("ip", ip),
            ("port", &port),
            ("ephemeral", "false"),
        ],
    )
    .await
}

/// The Raft part of node `i`'s `operator/servers`.
async fn raft_status(cluster: &TestCluster, i: usize) -> anyhow::Result<Value> {
    Ok(cluster.servers(i).await?["raft"].clone())
}

/// Waits until every running node names the same leader; returns its index.
async fn wait_leader(cluster: &TestCluster, limit: Duration) -> anyhow::Result<usize> {
    wait_for_value(
        "every running node to name the same leader",
        limit,
        || async {
            let mut named = BTreeSet::new();
            for i in (0..cluster.addrs.len()).filter(|i| cluster.is_running(*i)) {
                let status = raft_status(cluster, i).await?;
                let name = status["leader"].as_str();
                named.insert(
                    name.context(format!("node {i} knows no leader"))?
                        .to_string(),
                );
            }
            ensure!(named.len() == 1, "they name {named:?}");
            let index = cluster
                .addrs
                .iter()
                .position(|a| named.contains(&a.to_string()))
                .filter(|i| cluster.is_running(*i));
            ensure!(
                index.is_some(),
                "the leader they name, {named:?}, is not running"
            );
            Ok(index)
        },
    )
    .await
}

/// Waits until node `i` lists exactly `want` for `service`.
async fn wait_listed(
    cluster: &TestCluster,
    i: usize,
    service: &str,
    want: &BTreeSet<String>,
) -> anyhow::Result<()> {
    let url = cluster.url(i, "");
    wait_for(
        &format!("node {i} to list {want:?} for {service}"),
        Duration::from_secs(10),
        || async { Ok(&hosts(&url, service).await? == want) },
    )
    .await
}
