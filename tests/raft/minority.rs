//! A cut-off minority, and the heal.

use super::*;

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
    // The client's deadline, end to end (1.5 s), not a hang (the margin is
    // for a loaded machine's timers and a debug build).
    ensure!(
        started.elapsed() < Duration::from_millis(3_000),
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

    // The majority elects a leader of its own (the cut-off one was the
    // leader) and commits; a write made before the election is refused
    // (retryable) and made again, as a client does.
    wait_for_value(
        "the majority to commit",
        Duration::from_secs(10),
        || async {
            let (status, body) =
                put_persistent(&cluster.url(majority[0], ""), "split", "10.10.0.3", 3).await?;
            ensure!(
                status == 200 || status == 503,
                "the majority refused a write: {status} {body}"
            );
            Ok((status == 200).then_some(()))
        },
    )
    .await?;
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
