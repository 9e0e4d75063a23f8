//! Checksum repair after a member died with its sync queue.

use super::*;

/// What sync missed, the checksum rounds repair: a member holding a copy that
/// differs from the owner's gets the owner's, and a service the owner does not
/// have is dropped (the seed's `onReceiveChecksums`).
#[tokio::test]
async fn checksum_rounds_repair_what_sync_missed() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        env: vec![("NACRE_CLUSTER_CHECKSUM_INTERVAL_MS".into(), "300".into())],
        ..ClusterOptions::default()
    })
    .await?;
    // A service node 1 is responsible for, also while it sees only node 2.
    let name = (0..200)
        .map(|n| format!("repaired-{n}"))
        .find(|name| cluster.owner_of(name) == 1 && cluster.owner_among(name, &[1, 2]) == 1)
        .context("a service node 1 is responsible for")?;
    // Node 1 cannot reach node 0: its writes reach node 2 only, and wait in
    // node 1's queue for node 0 — until node 1 dies and the queue with it.
    cluster.cut_link(1, 0, true);
    register(&cluster.url(1, ""), &name, "10.7.0.1", 1).await?;
    register(&cluster.url(1, ""), &name, "10.7.0.2", 1).await?;
    let url = cluster.url(2, "");
    wait_for("node 2 to have both", Duration::from_secs(5), || async {
        Ok(hosts(&url, &name).await?.len() == 2)
    })
    .await?;
    ensure!(hosts(&cluster.url(0, ""), &name).await?.is_empty());
    cluster.kill(1).await?;
    let url = cluster.url(0, "");
    wait_for("node 0 to be repaired", Duration::from_secs(8), || async {
        Ok(hosts(&url, &name).await.unwrap_or_default().len() == 2)
    })
    .await
    .with_context(|| cluster.log_tail(0))?;
    // By a fetch from the new owner (node 2), or by node 2 sending the new
    // owner (node 0) what it lacked. Either side counts its repair after the
    // round that made it, a moment after node 0 lists the instances.
    wait_for("a repair to be counted", Duration::from_secs(5), || async {
        let repaired = metric(&cluster, 0, "nacre_distro_repaired_fetched_total").await?
            + metric(&cluster, 2, "nacre_distro_repaired_returned_total").await?;
        Ok(repaired > 0.0)
    })
    .await?;
    Ok(())
}

/// One figure of node `i`'s Prometheus metrics.
async fn metric(cluster: &TestCluster, i: usize, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(cluster.url(i, "/nacre/v1/metrics"))
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .with_context(|| format!("{name} not in node {i}'s metrics"))
}
