//! Probe verdicts of persistent instances.

use super::*;

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
