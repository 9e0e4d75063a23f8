//! The Rust Nacos SDK (crates.io `nacos-sdk` 0.8, gRPC, the Go/Rust style of
//! setup: legacy abilities, no wait for the SetupAck), unchanged, against a
//! node: every naming call, a client dropped, a client process killed with
//! -9, and a node restart that its clients ride out by reconnecting.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use common::{Events, LIMIT, addrs, client, hold};
use nacos_sdk::api::error::Error as SdkError;
use nacos_sdk::api::naming::ServiceInstance;
use nacre_e2e::TestNode;
use nacre_e2e::naming::{hosts, wait_hosts};

fn instance(port: i32) -> ServiceInstance {
    ServiceInstance {
        ip: "127.0.0.1".into(),
        port,
        ..Default::default()
    }
}

/// `ip:port` of each instance a v1 HTTP client lists (another client's view).
async fn listed(addr: &str, service: &str) -> anyhow::Result<Vec<String>> {
    Ok(hosts(&format!("http://{addr}"), service)
        .await?
        .into_iter()
        .collect())
}

async fn wait_listed(
    addr: &str,
    service: &str,
    expected: &[&str],
    limit: Duration,
) -> anyhow::Result<()> {
    wait_hosts(&format!("http://{addr}"), service, expected, limit).await
}

#[tokio::test]
async fn rust_sdk_naming_over_grpc() -> anyhow::Result<()> {
    let node = TestNode::start(|_| {}).await?;
    let addr = node.address();
    let (a, b, watcher) = (
        client(&addr).await?,
        client(&addr).await?,
        client(&addr).await?,
    );
    let svc = || "rs-orders".to_string();

    // Register and list.
    a.register_instance(svc(), None, instance(8001)).await?;
    wait_listed(&addr, "rs-orders", &["127.0.0.1:8001"], LIMIT).await?;
    let all = watcher
        .get_all_instances(svc(), None, vec![], false)
        .await?;
    ensure!(addrs(&all) == ["127.0.0.1:8001"], "{all:?}");

    // Subscribe: the listener hears of another client's registration.
    let events = Arc::new(Events::default());
    watcher
        .subscribe(svc(), None, vec![], events.clone())
        .await?;
    b.register_instance(svc(), None, instance(8002)).await?;
    events
        .wait_for(&["127.0.0.1:8001", "127.0.0.1:8002"])
        .await?;

    // Deregister.
    a.deregister_instance(svc(), None, instance(8001)).await?;
    events.wait_for(&["127.0.0.1:8002"]).await?;

    // Batch register, then batch "deregister" by sending the rest.
    let batch = vec![instance(8101), instance(8102), instance(8103)];
    a.batch_register_instance("rs-batch".into(), None, batch)
        .await?;
    wait_listed(
        &addr,
        "rs-batch",
        &["127.0.0.1:8101", "127.0.0.1:8102", "127.0.0.1:8103"],
        LIMIT,
    )
    .await?;
    a.batch_register_instance("rs-batch".into(), None, vec![instance(8101)])
        .await?;
    wait_listed(&addr, "rs-batch", &["127.0.0.1:8101"], LIMIT).await?;

    // A persistent instance (PersistentInstanceRequest), kept past its client.
    let persistent = ServiceInstance {
        ephemeral: false,
        ..instance(8201)
    };
    b.register_instance("rs-db".into(), None, persistent.clone())
        .await?;
    wait_listed(&addr, "rs-db", &["127.0.0.1:8201"], LIMIT).await?;

    // Invalid input: answered with errorCode 400, nothing registered.
    let bad = ServiceInstance {
        cluster_name: Some("bad cluster".into()),
        ..instance(8301)
    };
    // (The SDK reports the typed failure as text carrying the codes.)
    match a.register_instance("rs-bad".into(), None, bad).await {
        Err(SdkError::ErrResult(m)) if m.contains("error_code=400") => {
            ensure!(m.contains("'clusterName'"), "{m}")
        }
        other => anyhow::bail!("a bad cluster name got {other:?}"),
    }
    ensure!(listed(&addr, "rs-bad").await?.is_empty());

    // Service list paging.
    for i in 0..3 {
        b.register_instance(format!("rs-page-{i}"), None, instance(8400 + i))
            .await?;
    }
    let mut names = Vec::new();
    let mut total = 0;
    for page in 1..=4 {
        let (page_names, count) = watcher.get_service_list(page, 2, None).await?;
        total = count;
        names.extend(page_names);
    }
    ensure!(
        total == 6 && names.len() == 6,
        "count {total}, names {names:?}"
    );
    ensure!(
        (0..3).all(|i| names.contains(&format!("rs-page-{i}"))),
        "{names:?}"
    );

    // Unsubscribe: no more events.
    watcher
        .unsubscribe(svc(), None, vec![], events.clone())
        .await?;
    let before = events.count();
    a.register_instance(svc(), None, instance(8003)).await?;
    wait_listed(
        &addr,
        "rs-orders",
        &["127.0.0.1:8002", "127.0.0.1:8003"],
        LIMIT,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(events.count() == before, "events after unsubscribe");

    // A persistent instance is deregistered by address, by any client.
    a.deregister_instance("rs-db".into(), None, persistent)
        .await?;
    wait_listed(&addr, "rs-db", &[], LIMIT).await?;
    Ok(())
}

#[tokio::test]
async fn rust_client_killed_with_sigkill_disappears() -> anyhow::Result<()> {
    let node = TestNode::start(|_| {}).await?;
    let addr = node.address();
    let held = hold(&addr, "rs-killed", 8501, true).await?;
    wait_listed(&addr, "rs-killed", &["127.0.0.1:8501"], LIMIT).await?;
    held.kill().await?;
    wait_listed(&addr, "rs-killed", &[], Duration::from_secs(5)).await
}

/// A client process that exits without deregistering (the Rust SDK has no
/// shutdown; its connection closes with the process): its instance goes.
#[tokio::test]
async fn rust_client_closed_without_deregistering_disappears() -> anyhow::Result<()> {
    let node = TestNode::start(|_| {}).await?;
    let addr = node.address();
    let held = hold(&addr, "rs-closed", 8551, false).await?;
    wait_listed(&addr, "rs-closed", &["127.0.0.1:8551"], LIMIT).await?;
    held.finish(LIMIT).await?;
    wait_listed(&addr, "rs-closed", &[], Duration::from_secs(5)).await
}

/// A node restart: its clients see the transport close, reconnect to the
/// node once it is back, and their redo registers their instances again.
#[tokio::test]
async fn clients_reconnect_and_redo_after_a_node_restart() -> anyhow::Result<()> {
    let first = TestNode::start(|_| {}).await?;
    let addr = first.address();
    let held = hold(&addr, "rs-restart", 8601, true).await?;
    wait_listed(&addr, "rs-restart", &["127.0.0.1:8601"], LIMIT).await?;

    let again = first.restart().await?;
    ensure!(
        listed(&addr, "rs-restart").await?.is_empty(),
        "ephemeral data came back by itself"
    );
    wait_listed(
        &addr,
        "rs-restart",
        &["127.0.0.1:8601"],
        Duration::from_secs(30),
    )
    .await?;
    held.finish(LIMIT).await?;
    wait_listed(&addr, "rs-restart", &[], LIMIT).await?;
    again.node.shutdown().await;
    Ok(())
}
