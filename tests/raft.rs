//! Raft: persistent instances on a three-process cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::naming::{hosts, instance_write, instances, wait_for};
use reqwest::Method;
use serde_json::Value;

/// One cluster test at a time (several processes each, two cores).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn options(extra: &[(&str, &str)], proxied: bool) -> ClusterOptions {
    let mut env: Vec<(String, String)> = vec![
        ("NACRE_RAFT_HEARTBEAT_INTERVAL_MS".into(), "50".into()),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MIN_MS".into(), "300".into()),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MAX_MS".into(), "600".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ClusterOptions {
        proxied,
        env,
        ..ClusterOptions::default()
    }
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
    let start = Instant::now();
    loop {
        let mut leaders = BTreeSet::new();
        let mut all = true;
        for i in 0..cluster.addrs.len() {
            if !cluster.is_running(i) {
                continue;
            }
            match raft_status(cluster, i)
                .await
                .ok()
                .and_then(|r| r["leader"].as_str().map(String::from))
            {
                Some(leader) => {
                    leaders.insert(leader);
                }
                None => all = false,
            }
        }
        if all && leaders.len() == 1 {
            let leader = leaders.into_iter().next().unwrap_or_default();
            if let Some(index) = cluster.addrs.iter().position(|a| a.to_string() == leader)
                && cluster.is_running(index)
            {
                return Ok(index);
            }
        }
        ensure!(start.elapsed() < limit, "no agreed leader within {limit:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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

/// A persistent instance written through any node is on all three, and the
/// nodes agree on one leader and one term.
#[tokio::test]
async fn a_persistent_write_on_any_node_reaches_all() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(options(&[], false)).await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;
    let mut want = BTreeSet::new();
    for n in 0..9u16 {
        let via = usize::from(n) % 3;
        let (status, body) =
            put_persistent(&cluster.url(via, ""), "db", "10.8.0.1", 5000 + n).await?;
        ensure!(
            status == 200 && body == "ok",
            "write via node {via}: {status} {body}"
        );
        want.insert(format!("10.8.0.1:{}", 5000 + n));
        // The writing node has applied it when the write returns.
        ensure!(
            hosts(&cluster.url(via, ""), "db")
                .await?
                .contains(&format!("10.8.0.1:{}", 5000 + n))
        );
    }
    for i in 0..3 {
        wait_listed(&cluster, i, "db", &want).await?;
    }
    // A linearizable read on any node sees a write made through another at once.
    for n in 0..3u16 {
        let (writer, reader) = (usize::from(n), usize::from(n + 1) % 3);
        let port = 6000 + n;
        let (status, _) = put_persistent(&cluster.url(writer, ""), "db", "10.8.0.2", port).await?;
        ensure!(status == 200);
        let reply: Value = nacre_e2e::naming::http()
            .get(cluster.url(reader, "/nacos/v1/ns/instance/list"))
            .query(&[("serviceName", "db"), ("linearizable", "true")])
            .send()
            .await?
            .json()
            .await?;
        let listed = reply["hosts"].as_array().is_some_and(|hosts| {
            hosts
                .iter()
                .any(|h| h["ip"] == "10.8.0.2" && h["port"] == port)
        });
        ensure!(
            listed,
            "linearizable read on node {reader} missed a write via node {writer}"
        );
    }
    let mut terms = BTreeSet::new();
    for i in 0..3 {
        let raft = raft_status(&cluster, i).await?;
        terms.insert(raft["term"].as_u64().unwrap_or(0));
        ensure!(
            raft["members"].as_array().map(Vec::len) == Some(3),
            "{raft}"
        );
    }
    ensure!(terms.len() == 1, "terms differ: {terms:?}");
    Ok(())
}

/// kill -9 of the leader: a new leader within a few election timeouts, and
/// writes continue; then all three nodes are killed and restarted and every
/// acknowledged write is still there.
#[tokio::test]
async fn leader_loss_and_full_restart_lose_no_acknowledged_write() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    // Snapshots every few entries: the log is compacted during the test, the
    // killed leader catches up from a snapshot, and the restart loads one.
    let mut cluster = TestCluster::start(options(
        &[
            ("NACRE_RAFT_SNAPSHOT_EVERY_ENTRIES", "4"),
            ("NACRE_RAFT_LOG_ENTRIES_KEPT_AFTER_SNAPSHOT", "1"),
        ],
        false,
    ))
    .await?;
    let leader = wait_leader(&cluster, Duration::from_secs(10)).await?;
    let mut acked = BTreeSet::new();
    for n in 0..5u16 {
        let (status, body) = put_persistent(
            &cluster.url(usize::from(n) % 3, ""),
            "kept",
            "10.9.0.1",
            n + 1,
        )
        .await?;
        ensure!(status == 200, "{status} {body}");
        acked.insert(format!("10.9.0.1:{}", n + 1));
    }

    let killed_at = Instant::now();
    cluster.kill(leader).await?;
    let new_leader = wait_leader(&cluster, Duration::from_secs(5)).await?;
    let elected_in = killed_at.elapsed();
    ensure!(new_leader != leader);
    // Election timeouts are 300-600 ms here: "a few" of them.
    ensure!(
        elected_in < Duration::from_secs(3),
        "new leader after {elected_in:?}"
    );
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for n in 5..10u16 {
        let via = survivors[usize::from(n) % 2];
        let (status, body) =
            put_persistent(&cluster.url(via, ""), "kept", "10.9.0.1", n + 1).await?;
        ensure!(
            status == 200,
            "write after failover via {via}: {status} {body}"
        );
        acked.insert(format!("10.9.0.1:{}", n + 1));
    }

    for i in 0..3 {
        cluster.kill(i).await?;
    }
    for i in 0..3 {
        cluster.restart(i).await?;
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;
    for i in 0..3 {
        wait_listed(&cluster, i, "kept", &acked)
            .await
            .with_context(|| cluster.log_tail(i))?;
        let raft = raft_status(&cluster, i).await?;
        ensure!(
            raft["snapshotIndex"].as_u64().is_some_and(|s| s > 0),
            "no snapshot on node {i}: {raft}"
        );
    }
    Ok(())
}

/// A minority cut off at the network level cannot commit, and says so by the
/// client's deadline (retryable, 503); once it notices it is cut off it
/// serves no reads at all; the majority commits; after the heal the minority
/// has the majority's writes.
#[tokio::test]
async fn a_cut_off_minority_cannot_commit_and_converges_after_the_heal() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster =
        TestCluster::start(options(&[("NACRE_RAFT_WRITE_TIMEOUT_MS", "1500")], true)).await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;
    let (status, _) = put_persistent(&cluster.url(0, ""), "split", "10.10.0.1", 1).await?;
    ensure!(status == 200);
    for i in 0..3 {
        wait_listed(
            &cluster,
            i,
            "split",
            &BTreeSet::from(["10.10.0.1:1".to_string()]),
        )
        .await?;
    }

    // Cut off whichever node; take the current leader, the harder case.
    let minority = wait_leader(&cluster, Duration::from_secs(5)).await?;
    let majority: Vec<usize> = (0..3).filter(|i| *i != minority).collect();
    cluster.isolate(minority);
    let started = Instant::now();
    let (status, body) =
        put_persistent(&cluster.url(minority, ""), "split", "10.10.0.2", 2).await?;
    ensure!(status == 503, "the minority committed? {status} {body}");
    ensure!(
        body.contains("not committed") || body.contains("try again"),
        "unclear error: {body}"
    );
    // The client's deadline, end to end (1.5 s), and not much more.
    ensure!(
        started.elapsed() < Duration::from_millis(2_000),
        "the refusal took {:?}",
        started.elapsed()
    );

    // Cut off from the majority, the node serves no reads, plain or
    // linearizable: clients go to another server.
    let read = |linearizable: &'static str| {
        nacre_e2e::naming::http()
            .get(cluster.url(minority, "/nacos/v1/ns/instance/list"))
            .query(&[("serviceName", "split"), ("linearizable", linearizable)])
            .send()
    };
    wait_for(
        "the minority to stop serving",
        Duration::from_secs(5),
        || async { Ok(read("false").await?.status() == 503) },
    )
    .await?;
    ensure!(read("true").await?.status() == 503);

    let (status, body) =
        put_persistent(&cluster.url(majority[0], ""), "split", "10.10.0.3", 3).await?;
    ensure!(
        status == 200,
        "the majority could not commit: {status} {body}"
    );
    let majority_view = BTreeSet::from(["10.10.0.1:1".to_string(), "10.10.0.3:3".to_string()]);
    for i in &majority {
        wait_listed(&cluster, *i, "split", &majority_view).await?;
    }

    cluster.reconnect(minority);
    // The refused write was never committed: after the heal every node holds
    // the majority's history, the minority included.
    for i in 0..3 {
        wait_listed(&cluster, i, "split", &majority_view)
            .await
            .with_context(|| cluster.log_tail(i))?;
    }
    Ok(())
}

/// What one client operation came to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    /// The node said it failed.
    Failed,
    /// No answer (the node died): it may or may not have happened.
    Unknown,
}

/// Concurrent writers through every node while leaders are killed and
/// restarted; then a checker verifies the history (in the spirit of Jepsen's
/// set and register tests): every acknowledged registration is present on
/// every node, nothing appears that nobody wrote, and the register's final
/// weight is one some client wrote.
#[tokio::test]
async fn concurrent_writers_through_failures_keep_a_valid_history() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster =
        TestCluster::start(options(&[("NACRE_RAFT_WRITE_TIMEOUT_MS", "2000")], false)).await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;
    // The register: one persistent instance whose weight writers overwrite.
    let (status, body) = put_persistent(&cluster.url(0, ""), "register", "10.11.0.1", 1).await?;
    ensure!(status == 200, "{status} {body}");

    let urls: Vec<String> = (0..3).map(|i| cluster.url(i, "")).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4u16 {
        let urls = urls.clone();
        let stop = stop_rx.clone();
        writers.spawn(async move {
            let mut history: Vec<(String, Outcome)> = Vec::new();
            let mut weights: Vec<(u32, Outcome)> = Vec::new();
            let mut n = 0u16;
            while !*stop.borrow() && n < 400 {
                n += 1;
                let url = &urls[usize::from(n + writer) % urls.len()];
                // A set element: a new persistent instance.
                let member = format!("10.12.{writer}.{}:{}", n % 250, n);
                let (ip, port) = member.split_once(':').unwrap_or_default();
                let port: u16 = port.parse().unwrap_or(1);
                let outcome = match put_persistent(url, "set", ip, port).await {
                    Ok((200, _)) => Outcome::Ok,
                    Ok((500, _)) | Ok((503, _)) => Outcome::Failed,
                    Ok((status, body)) => panic!("unexpected reply {status} {body}"),
                    Err(_) => Outcome::Unknown,
                };
                history.push((member, outcome));
                // A register write: the weight carries writer and sequence.
                let weight = u32::from(writer) * 1000 + u32::from(n);
                let w = format!("{}", f64::from(weight) / 100.0);
                let outcome = match instance_write(
                    url,
                    Method::PUT,
                    &[
                        ("serviceName", "register"),
                        ("ip", "10.11.0.1"),
                        ("port", "1"),
                        ("ephemeral", "false"),
                        ("weight", &w),
                    ],
                )
                .await
                {
                    Ok((200, _)) => Outcome::Ok,
                    Ok((400, _)) | Ok((500, _)) | Ok((503, _)) => Outcome::Failed,
                    Ok((status, body)) => panic!("unexpected reply {status} {body}"),
                    Err(_) => Outcome::Unknown,
                };
                weights.push((weight, outcome));
            }
            (history, weights)
        });
    }

    // The nemesis: kill the leader, wait, restart it; twice.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let leader = wait_leader(&cluster, Duration::from_secs(10)).await?;
        cluster.kill(leader).await?;
        wait_leader(&cluster, Duration::from_secs(10)).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.restart(leader).await?;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let _ = stop_tx.send(true);
    let mut set_history = Vec::new();
    let mut register_history = Vec::new();
    while let Some(done) = writers.join_next().await {
        let (set, register) = done?;
        set_history.extend(set);
        register_history.extend(register);
    }
    cluster.wait_converged(Duration::from_secs(20)).await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;

    let acked: BTreeSet<String> = set_history
        .iter()
        .filter(|(_, o)| *o == Outcome::Ok)
        .map(|(m, _)| m.clone())
        .collect();
    let attempted: BTreeSet<String> = set_history.iter().map(|(m, _)| m.clone()).collect();
    ensure!(
        acked.len() > 20,
        "too few successful writes to judge: {}",
        acked.len()
    );
    // Every node converges to one final set.
    let mut finals = BTreeMap::new();
    for i in 0..3 {
        let url = cluster.url(i, "");
        // Settled: the set stops changing and holds every acknowledged write.
        wait_for(
            &format!("node {i} to hold every acknowledged write"),
            Duration::from_secs(10),
            || async { Ok(hosts(&url, "set").await?.is_superset(&acked)) },
        )
        .await
        .with_context(|| cluster.log_tail(i))?;
        finals.insert(i, hosts(&url, "set").await?);
    }
    let first = finals.get(&0).cloned().unwrap_or_default();
    for (i, set) in &finals {
        ensure!(set == &first, "node {i} differs from node 0");
        let phantoms: Vec<&String> = set.difference(&attempted).collect();
        ensure!(
            phantoms.is_empty(),
            "node {i} holds values nobody wrote: {phantoms:?}"
        );
    }
    // The register's final value was written by someone, and is the same everywhere.
    let written: BTreeSet<u32> = register_history.iter().map(|(w, _)| *w).collect();
    let mut final_weights = BTreeSet::new();
    for i in 0..3 {
        let list = instances(&cluster.url(i, ""), "register").await?;
        let weight = list
            .first()
            .and_then(|h| h["weight"].as_f64())
            .context("register instance missing")?;
        final_weights.insert((weight * 100.0).round() as u32);
    }
    ensure!(
        final_weights.len() == 1,
        "nodes disagree on the register: {final_weights:?}"
    );
    let value = final_weights.into_iter().next().unwrap_or(0);
    ensure!(
        value == 100 || written.contains(&value),
        "register holds {value}, which nobody wrote"
    );
    let outcomes = |o: Outcome| set_history.iter().filter(|(_, x)| *x == o).count();
    eprintln!(
        "history: {} ok, {} failed, {} unknown set writes; {} register writes",
        outcomes(Outcome::Ok),
        outcomes(Outcome::Failed),
        outcomes(Outcome::Unknown),
        register_history.len()
    );
    Ok(())
}

/// Persistent instances are probed by the node responsible for their service
/// (TCP by default), and the verdict reaches every node through Raft.
#[tokio::test]
async fn probe_verdicts_reach_every_node() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(options(
        &[
            ("NACRE_HEALTH_PROBE_ENABLED", "true"),
            ("NACRE_HEALTH_PROBE_INTERVAL_MS", "100"),
            ("NACRE_HEALTH_PROBE_TIMEOUT_MS", "500"),
        ],
        false,
    ))
    .await?;
    wait_leader(&cluster, Duration::from_secs(10)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let (status, body) = put_persistent(&cluster.url(1, ""), "probed", "127.0.0.1", port).await?;
    ensure!(status == 200, "{status} {body}");
    // The instance's own record (instance/list would show it healthy: with
    // every instance down, Nacos's protect threshold returns them all).
    let health = |i: usize| {
        let url = format!("{}/nacos/v1/ns/instance", cluster.url(i, ""));
        let port = port.to_string();
        async move {
            let reply = nacre_e2e::naming::http()
                .get(url)
                .query(&[
                    ("serviceName", "probed"),
                    ("ip", "127.0.0.1"),
                    ("port", port.as_str()),
                ])
                .send()
                .await?;
            if reply.status() != 200 {
                return Ok(None);
            }
            let reply: Value = reply.json().await?;
            Ok::<_, anyhow::Error>(reply["healthy"].as_bool())
        }
    };
    for i in 0..3 {
        wait_for(
            &format!("node {i} to have the instance, healthy"),
            Duration::from_secs(5),
            || async { Ok(health(i).await? == Some(true)) },
        )
        .await?;
    }
    accepting.abort();
    for i in 0..3 {
        wait_for(
            &format!("node {i} to see the instance unhealthy"),
            Duration::from_secs(10),
            || async { Ok(health(i).await? == Some(false)) },
        )
        .await
        .with_context(|| {
            format!(
                "{}\n{}\n{}",
                cluster.log_tail(0),
                cluster.log_tail(1),
                cluster.log_tail(2)
            )
        })?;
    }
    Ok(())
}
