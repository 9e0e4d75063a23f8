//! Concurrent writers through failures, checked as a history.

use super::*;

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
    let leader = wait_leader(&cluster, Duration::from_secs(10)).await?;
    // Writes that timed out may still commit; compare once every member
    // has applied all the leader has committed.
    cluster
        .wait_raft_applied(leader, Duration::from_secs(10))
        .await?;

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
