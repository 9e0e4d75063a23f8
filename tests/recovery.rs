//! Measurements, not checks: how long a three-member cluster takes to serve
//! again after a member restarts and after a one-member partition heals.
//! Run on demand (they take a minute and print JSON lines):
//!
//! ```sh
//! cargo build -p nacre && cargo test -p nacre-e2e --test recovery -- --ignored --nocapture
//! ```
//!
//! Each figure is taken from the restarted (or healed) member's own answers,
//! polled every 5 ms: until it reports ready, and until its digest equals the
//! others'. docs/CLUSTER.md and docs/BENCHMARKS.md quote them.

use std::time::{Duration, Instant};

use anyhow::Context;
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::naming::{http, register};

const ROUNDS: usize = 5;
const SERVICES: u16 = 20;
const PER_SERVICE: u16 = 10;

/// Registers `SERVICES` × `PER_SERVICE` instances at `ip`, through the members `via` in turn.
async fn populate(cluster: &TestCluster, via: &[usize], ip: &str) -> anyhow::Result<()> {
    for s in 0..SERVICES {
        for i in 0..PER_SERVICE {
            let member = via[usize::from(i) % via.len()];
            register(&cluster.url(member, ""), &format!("svc-{s}"), ip, i + 1).await?;
        }
    }
    Ok(())
}

/// Milliseconds until `i` reports ready, and until its digest equals node `other`'s.
async fn time_to_serve(
    cluster: &TestCluster,
    i: usize,
    other: usize,
) -> anyhow::Result<(u128, u128)> {
    let start = Instant::now();
    let limit = Duration::from_secs(30);
    let mut ready = None;
    loop {
        if ready.is_none() && cluster.servers(i).await.is_ok_and(|s| s["ready"] == true) {
            ready = Some(start.elapsed().as_millis());
        }
        if let Some(ready) = ready {
            let (mine, theirs) = (cluster.digest(i).await?, cluster.digest(other).await?);
            if mine == theirs {
                return Ok((ready, start.elapsed().as_millis()));
            }
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "node {i} did not catch up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn measure_restart_and_heal() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        ..ClusterOptions::default()
    })
    .await?;
    populate(&cluster, &[0, 1, 2], "10.8.0.1").await?;
    cluster.wait_same_data(Duration::from_secs(10)).await?;
    for round in 0..ROUNDS {
        cluster.kill(2).await?;
        // Writes while it is down, through the survivors.
        populate(&cluster, &[0, 1], &format!("10.8.1.{round}")).await?;
        cluster.restart(2).await?;
        let (ready, same) = time_to_serve(&cluster, 2, 0).await?;
        println!(
            r#"{{"event":"restart","round":{round},"ready_ms":{ready},"same_data_ms":{same}}}"#
        );
    }
    for round in 0..ROUNDS {
        cluster.isolate(2);
        let url = cluster.url(2, "/nacos/v1/ns/operator/servers");
        let cut = Instant::now();
        loop {
            let servers: serde_json::Value = http().get(&url).send().await?.json().await?;
            if servers["ready"] == false {
                break;
            }
            anyhow::ensure!(
                cut.elapsed() < Duration::from_secs(10),
                "node 2 kept serving"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let noticed = cut.elapsed().as_millis();
        populate(&cluster, &[0, 1], &format!("10.8.2.{round}")).await?;
        cluster.reconnect(2);
        let (ready, same) = time_to_serve(&cluster, 2, 0)
            .await
            .with_context(|| cluster.log_tail(2))?;
        println!(
            r#"{{"event":"heal","round":{round},"stopped_serving_ms":{noticed},"ready_ms":{ready},"same_data_ms":{same}}}"#
        );
    }
    Ok(())
}
