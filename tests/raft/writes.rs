//! Persistent writes through any member, listed by all.

use super::*;

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
    // Every member knows all three and they agree on the term (read one
    // after another, so an election in between is waited out).
    wait_for(
        "one term on all three members",
        Duration::from_secs(5),
        || async {
            let mut terms = BTreeSet::new();
            for i in 0..3 {
                let raft = raft_status(&cluster, i).await?;
                terms.insert(raft["term"].as_u64().unwrap_or(0));
                ensure!(
                    raft["members"].as_array().map(Vec::len) == Some(3),
                    "{raft}"
                );
            }
            Ok(terms.len() == 1)
        },
    )
    .await?;
    Ok(())
}
