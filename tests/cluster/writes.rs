//! Writes through any member, listed by all.

use super::*;

/// A write to any node is listed by all three, quickly.
#[tokio::test]
async fn a_write_to_any_node_is_listed_by_all() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    for n in 0..30u16 {
        let via = usize::from(n) % 3;
        register(
            &cluster.url(via, ""),
            &format!("svc-{n}"),
            "10.1.0.1",
            8000 + n,
        )
        .await?;
    }
    for n in 0..30u16 {
        let service = format!("svc-{n}");
        let want = format!("10.1.0.1:{}", 8000 + n);
        for i in 0..3 {
            let url = cluster.url(i, "");
            wait_for(
                &format!("{service} on node {i}"),
                Duration::from_secs(3),
                || async { Ok(hosts(&url, &service).await?.contains(&want)) },
            )
            .await?;
        }
    }
    // A second instance in each service, through another node: the owner
    // sends peers only what changed (a delta onto what they hold).
    for n in 0..30u16 {
        let via = (usize::from(n) + 1) % 3;
        register(&cluster.url(via, ""), &format!("svc-{n}"), "10.1.0.2", 9000).await?;
    }
    for n in 0..30u16 {
        let service = format!("svc-{n}");
        let want = BTreeSet::from([format!("10.1.0.1:{}", 8000 + n), "10.1.0.2:9000".into()]);
        for i in 0..3 {
            let url = cluster.url(i, "");
            wait_for(
                &format!("both instances of {service} on node {i}"),
                Duration::from_secs(3),
                || async { Ok(hosts(&url, &service).await? == want) },
            )
            .await?;
        }
    }
    // A request the owner refuses comes back to the client as the owner said
    // it, through whichever node it was sent to.
    for i in 0..3 {
        let reply = http()
            .post(cluster.url(i, "/nacos/v1/ns/instance"))
            .form(&[
                ("serviceName", "svc-1"),
                ("ip", "10.1.0.3"),
                ("port", "1"),
                ("weight", "heavy"),
            ])
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await?;
        ensure!(
            status == 400 && body.contains("weight"),
            "via node {i}: {status} {body}"
        );
    }
    // Every node's view of the data is the same.
    let agreed = cluster.wait_same_data(Duration::from_secs(5)).await?;
    ensure!(agreed.as_object().map(|o| o.len()) == Some(30), "{agreed}");
    // And each member shows the others as up.
    let servers = cluster.servers(0).await?;
    let states: Vec<&str> = servers["servers"]
        .as_array()
        .context("servers")?
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    ensure!(states == ["UP", "UP", "UP"], "{servers}");
    // The traffic shows in the metrics.
    let metrics = reqwest::get(cluster.url(1, "/nacre/v1/metrics"))
        .await?
        .text()
        .await?;
    let figure = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<f64>().ok())
    };
    ensure!(
        figure("nacre_cluster_view_members") == Some(3.0),
        "{metrics}"
    );
    ensure!(
        figure("nacre_distro_synced_services_total").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    ensure!(
        figure("nacre_distro_forwarded_total").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    Ok(())
}
