//! Leader loss and full restarts.

use super::*;

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
