//! A one-member partition and its heal.

use super::*;

/// A one-node partition at the connection level: the cut-off node stops
/// serving (it cannot tell whether it is the one cut off), the majority
/// serves on; after the heal the cut-off node loads again before it serves,
/// and every node holds the majority's writes, deregistrations included.
#[tokio::test]
async fn a_partition_heals_to_the_same_data_everywhere() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = [
        ("NACRE_HEALTH_BEAT_TIMEOUT_MS", "5000"),
        ("NACRE_HEALTH_DELETE_TIMEOUT_MS", "10000"),
        ("NACRE_HEALTH_CHECK_PERIOD_MS", "200"),
        ("NACRE_CLUSTER_CHECKSUM_INTERVAL_MS", "300"),
    ];
    let cluster = TestCluster::start(
        ClusterOptions {
            proxied: true,
            ..ClusterOptions::default()
        }
        .with_env(&env),
    )
    .await?;
    for n in 0..9u16 {
        register(
            &cluster.url(usize::from(n) % 3, ""),
            &format!("before-{n}"),
            "10.4.0.1",
            n + 1,
        )
        .await?;
    }
    cluster.wait_same_data(Duration::from_secs(5)).await?;

    cluster.isolate(2);
    // Both sides notice: node 2, cut off from the majority, is not ready and
    // responsible for nothing; nodes 0 and 1 carry on together.
    wait_for("node 2 to stop serving", Duration::from_secs(5), || async {
        let servers = cluster.servers(2).await?;
        Ok(servers["ready"] == false && servers["view"] == serde_json::json!([]))
    })
    .await?;
    wait_for("node 0 to drop node 2", Duration::from_secs(5), || async {
        Ok(cluster.servers(0).await?["view"].as_array().map(Vec::len) == Some(2))
    })
    .await?;
    // Node 2 answers no list and takes no write: clients go to another server.
    let list = http()
        .get(cluster.url(2, "/nacos/v1/ns/instance/list?serviceName=before-0"))
        .send()
        .await?;
    ensure!(
        list.status() == 503,
        "list on the cut-off node: {}",
        list.status()
    );
    let write = http()
        .post(cluster.url(2, "/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", "minority"),
            ("ip", "10.6.0.1"),
            ("port", "1"),
        ])
        .send()
        .await?;
    ensure!(
        write.status() == 503,
        "write on the cut-off node: {}",
        write.status()
    );
    // The majority registers and deregisters meanwhile.
    let mut written = Vec::new();
    for n in 0..6u16 {
        let service = format!("majority-{n}");
        register(
            &cluster.url(usize::from(n) % 2, ""),
            &service,
            "10.5.0.1",
            n + 1,
        )
        .await?;
        written.push((service, "10.5.0.1".to_string(), n + 1));
    }
    let mut removed = Vec::new();
    for n in 0..3u16 {
        let service = format!("before-{n}");
        let reply = http()
            .delete(cluster.url(usize::from(n) % 2, "/nacos/v1/ns/instance"))
            .query(&[
                ("serviceName", service.as_str()),
                ("ip", "10.4.0.1"),
                ("port", &(n + 1).to_string()),
            ])
            .send()
            .await?;
        ensure!(reply.status() == 200, "deregister: {}", reply.status());
        removed.push((service, "10.4.0.1".to_string(), n + 1));
    }
    for n in 3..9u16 {
        written.push((format!("before-{n}"), "10.4.0.1".to_string(), n + 1));
    }

    // After the heal node 2 loads again before it answers, and every member
    // holds the majority's writes — the deregistrations included.
    cluster.reconnect(2);
    cluster.wait_converged(Duration::from_secs(10)).await?;
    for i in 0..3 {
        let url = cluster.url(i, "");
        for (service, ip, port) in &written {
            ensure!(
                hosts(&url, service)
                    .await?
                    .contains(&format!("{ip}:{port}")),
                "node {i} lacks {service} {ip}:{port}"
            );
        }
        for (service, ip, port) in &removed {
            ensure!(
                !hosts(&url, service)
                    .await?
                    .contains(&format!("{ip}:{port}")),
                "node {i} still lists deregistered {service} {ip}:{port}"
            );
        }
    }
    let agreed = cluster.wait_same_data(Duration::from_secs(10)).await?;
    ensure!(
        agreed.as_object().is_some_and(|o| o.len() == written.len()),
        "{agreed}"
    );
    Ok(())
}
