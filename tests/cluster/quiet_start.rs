//! A healthy cluster start, members started one after the other as an
//! operator does, logs no ERROR and no WARN: members that are not up yet are
//! INFO at most (issue 17). Each node says once, at INFO, what Raft did.

use super::*;

/// The lines of `log` at `level` (`ERROR`, `WARN`), as the text format writes them.
fn at_level<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    let marker = format!(" {level} ");
    log.lines().filter(|l| l.contains(&marker)).collect()
}

#[tokio::test]
async fn a_healthy_start_logs_no_error_and_no_warning() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions {
        one_by_one: true,
        ..ClusterOptions::default()
    })
    .await?;
    // A persistent write commits through Raft: the leader has replicated to
    // a majority, the log's first real entry included.
    let (status, body) = instance_write(
        &cluster.url(0, ""),
        reqwest::Method::POST,
        &[
            ("serviceName", "quiet"),
            ("ip", "10.7.0.1"),
            ("port", "80"),
            ("ephemeral", "false"),
        ],
    )
    .await?;
    ensure!(status == 200, "persistent write: {status} {body}");
    register(&cluster.url(1, ""), "quiet-ephemeral", "10.7.0.2", 80).await?;
    for i in 0..3 {
        let url = cluster.url(i, "");
        wait_for(
            "both instances on every node",
            Duration::from_secs(10),
            || {
                let url = url.clone();
                async move {
                    Ok(hosts(&url, "quiet").await?.len() == 1
                        && hosts(&url, "quiet-ephemeral").await?.len() == 1)
                }
            },
        )
        .await?;
    }
    for i in 0..3 {
        let log = cluster.log(i);
        let errors = at_level(&log, "ERROR");
        let warnings = at_level(&log, "WARN");
        ensure!(
            errors.is_empty() && warnings.is_empty(),
            "node {i} logged {} ERROR and {} WARN lines:\n{}\n{}",
            errors.len(),
            warnings.len(),
            errors.join("\n"),
            warnings.join("\n")
        );
        let raft: Vec<&str> = log.lines().filter(|l| l.contains("Raft: ")).collect();
        ensure!(
            raft.len() == 1 && raft[0].contains(" INFO "),
            "node {i}: one INFO line on what Raft did, got {raft:#?}"
        );
    }
    Ok(())
}
