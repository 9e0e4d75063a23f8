//! kill -9 of a member while clients keep beating through the survivors.

use std::sync::{Arc, Mutex, PoisonError};

use super::*;

/// kill -9 of one node: its services get new owners, registrations and beats
/// through the survivors keep working without a failed request, and no
/// instance that kept beating is deleted — while an instance that stopped
/// beating, in the same services, is. Then the node restarts, loads a
/// snapshot and all three agree.
#[tokio::test]
async fn a_killed_node_loses_nothing_that_keeps_beating_and_rejoins() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let env = [
        ("NACRE_HEALTH_BEAT_TIMEOUT_MS", "1500"),
        ("NACRE_HEALTH_DELETE_TIMEOUT_MS", "3000"),
        ("NACRE_HEALTH_CHECK_PERIOD_MS", "200"),
        ("NACRE_CLUSTER_CHECKSUM_INTERVAL_MS", "500"),
    ];
    let mut cluster = TestCluster::start(ClusterOptions::default().with_env(&env)).await?;
    let services: Vec<String> = (0..12).map(|n| format!("kept-{n}")).collect();
    for (n, service) in services.iter().enumerate() {
        let via = cluster.url(n % 3, "");
        register(&via, service, "10.2.0.1", 9000).await?;
        // The control: same service (same owner), never beats.
        register(&via, service, "10.2.0.2", 9000).await?;
    }
    let survivors = [cluster.url(0, ""), cluster.url(1, "")];

    // Beat every kept instance through the survivors, round-robin, while node 2 dies.
    // It keeps beating until the end: once it stops, the kept instances are
    // deleted a delete timeout later, which a slow restart could outlast.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let beater = {
        let services = services.clone();
        let survivors = survivors.clone();
        let failed = Arc::clone(&failed);
        tokio::spawn(async move {
            let mut turn = 0usize;
            while !*stop_rx.borrow() {
                for service in &services {
                    turn += 1;
                    let url = &survivors[turn % 2];
                    let failure = match beat(url, service, "10.2.0.1", 9000).await {
                        Ok(10200) => continue,
                        Ok(code) => format!("{service}: code {code}"),
                        Err(e) => format!("{service}: {e:#}"),
                    };
                    failed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(failure);
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    // Beat for longer than the delete timeout first: beats for the services
    // node 2 is responsible for are forwarded to it, so the survivors' own
    // last-beat times for those instances are older than the delete timeout
    // when node 2 dies. Only the new owner's grace keeps them alive
    // (alibaba/nacos#1873).
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    cluster.kill(2).await?;

    // Registrations through the survivors keep working right away.
    for n in 0..12u16 {
        let service = format!("after-kill-{n}");
        register(&survivors[usize::from(n) % 2], &service, "10.3.0.1", n + 1).await?;
        let other = &survivors[(usize::from(n) + 1) % 2];
        let want = format!("10.3.0.1:{}", n + 1);
        wait_for(
            &format!("{service} on the other survivor"),
            Duration::from_secs(3),
            || async { Ok(hosts(other, &service).await?.contains(&want)) },
        )
        .await?;
    }
    // The view drops the dead node.
    let dead = cluster.addrs[2].to_string();
    for i in 0..2 {
        wait_for(
            &format!("node {i} to drop node 2"),
            Duration::from_secs(5),
            || async {
                let servers = cluster.servers(i).await?;
                Ok(!servers["view"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|a| a == &Value::String(dead.clone()))))
            },
        )
        .await?;
    }
    // Every control instance is deleted by its (possibly new) owner...
    for service in &services {
        let url = survivors[0].clone();
        wait_for(
            &format!("control instance of {service} to be deleted"),
            Duration::from_secs(15),
            || async { Ok(!hosts(&url, service).await?.contains("10.2.0.2:9000")) },
        )
        .await
        .with_context(|| cluster.log_tail(0))?;
    }
    // ...while every instance that kept beating is still there, on both survivors.
    for service in &services {
        for url in &survivors {
            let listed = hosts(url, service).await?;
            ensure!(
                listed.contains("10.2.0.1:9000"),
                "{service} lost its beating instance on {url}: {listed:?}"
            );
        }
    }
    // Not one beat through the survivors failed while node 2 was dead. (The
    // beats during its rejoin only keep the instances alive; they are not
    // judged.)
    let failures = failed
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    ensure!(
        failures.is_empty(),
        "{} beats failed: {failures:?}",
        failures.len()
    );

    // The killed node comes back, loads a snapshot, and all three agree.
    cluster.restart(2).await?;
    cluster.wait_converged(Duration::from_secs(15)).await?;
    let agreed = cluster.wait_same_data(Duration::from_secs(10)).await?;
    for service in &services {
        let key = format!("public##DEFAULT_GROUP@@{service}");
        ensure!(agreed.get(&key).is_some(), "{key} missing from {agreed}");
    }
    for service in &services {
        ensure!(
            hosts(&cluster.url(2, ""), service)
                .await?
                .contains("10.2.0.1:9000")
        );
    }
    let _ = stop_tx.send(true);
    beater.await?;
    Ok(())
}
