//! The console-facing endpoints of issue 14 on a three-process cluster:
//! subscribers gathered from every member, and the new instance writes
//! (`instance/metadata/batch`, `PUT health`) routed to the responsible member
//! like every other instance write (Nacos's `@CanDistro`).

use std::time::Duration;

use anyhow::{Context, ensure};
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::naming::{http, instances, register};
use nacre_e2e::wait::wait_for;
use serde_json::Value;
use tokio::net::UdpSocket;

const LIMIT: Duration = Duration::from_secs(20);

/// Each test starts three processes; one cluster at a time on a small machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn get_json(url: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    let reply = http().get(url).query(query).send().await?;
    let status = reply.status();
    let text = reply.text().await?;
    ensure!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).with_context(|| format!("{url}: {text}"))
}

/// Lists `service` on node `i` as a push-capable Java client on `socket`.
async fn subscribe(
    cluster: &TestCluster,
    i: usize,
    service: &str,
    socket: &UdpSocket,
) -> anyhow::Result<()> {
    let port = socket.local_addr()?.port().to_string();
    let reply = http()
        .get(cluster.url(i, "/nacos/v1/ns/instance/list"))
        .query(&[
            ("serviceName", service),
            ("udpPort", &port),
            ("clientIP", "127.0.0.1"),
        ])
        .header("User-Agent", "Nacos-Java-Client:v1.4.1")
        .send()
        .await?;
    ensure!(
        reply.status().is_success(),
        "list on node {i}: {}",
        reply.status()
    );
    Ok(())
}

/// `service/subscribers` on any member lists every member's subscribers
/// (`aggregation` defaults to true: Nacos's `SubscribeManager` asks each
/// member), and only its own with `aggregation=false`; each with its push
/// figures as the member holding it counts them.
#[tokio::test]
async fn subscribers_are_gathered_from_every_member() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions {
        env: vec![("NACRE_PUSH_ENABLED".into(), "true".into())],
        ..ClusterOptions::default()
    })
    .await?;
    let first = UdpSocket::bind("127.0.0.1:0").await?;
    let second = UdpSocket::bind("127.0.0.1:0").await?;
    subscribe(&cluster, 0, "orders", &first).await?;
    subscribe(&cluster, 1, "orders", &second).await?;
    let url = cluster.url(2, "/nacos/v1/ns/service/subscribers");
    let all = get_json(&url, &[("serviceName", "orders")]).await?;
    let mut ports: Vec<u64> = all["subscribers"]
        .as_array()
        .context("subscribers")?
        .iter()
        .filter_map(|s| s["port"].as_u64())
        .collect();
    ports.sort_unstable();
    let mut expected = vec![
        u64::from(first.local_addr()?.port()),
        u64::from(second.local_addr()?.port()),
    ];
    expected.sort_unstable();
    ensure!(ports == expected, "subscribers from node 2: {all}");
    ensure!(all["count"] == 2, "{all}");
    let own = get_json(&url, &[("serviceName", "orders"), ("aggregation", "false")]).await?;
    ensure!(
        own["count"] == 0,
        "node 2 holds no subscriber itself: {own}"
    );
    // Each subscriber's own push figures come from the member holding it: a
    // change is pushed by node 0 and node 1 to theirs (which never ack here).
    register(&cluster.url(2, ""), "orders", "10.1.0.1", 8080).await?;
    wait_for("every subscriber's push counted", LIMIT, || async {
        let all = get_json(&url, &[("serviceName", "orders")]).await?;
        let subscribers = all["subscribers"].as_array().context("subscribers")?;
        Ok::<bool, anyhow::Error>(
            subscribers.len() == 2
                && subscribers.iter().all(|s| {
                    s["push"]["pushes"].as_u64() >= Some(1) && s["push"]["lastPushAt"].is_i64()
                }),
        )
    })
    .await?;
    Ok(())
}

/// A metadata batch and an operator's health mark sent to a member that is
/// not responsible for the service reach the responsible one, and every
/// member then shows the change.
#[tokio::test]
async fn new_instance_writes_are_routed_to_the_responsible_member() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let owner = cluster.owner_of("orders");
    let other = (owner + 1) % 3;
    register(&cluster.url(owner, ""), "orders", "10.2.0.1", 8080).await?;
    // A healthy neighbour keeps the service above its protect threshold, so
    // the instance marked unhealthy below is listed as such.
    register(&cluster.url(owner, ""), "orders", "10.2.0.2", 8080).await?;
    let reply = http()
        .put(cluster.url(other, "/nacos/v1/ns/instance/metadata/batch"))
        .form(&[
            ("serviceName", "orders"),
            ("consistencyType", "ephemeral"),
            ("metadata", "zone=z1"),
        ])
        .send()
        .await?;
    let text = reply.text().await?;
    ensure!(
        text.contains("10.2.0.1:8080:unknown:DEFAULT:ephemeral"),
        "metadata batch via node {other}: {text}"
    );
    let cluster_put = http()
        .put(cluster.url(other, "/nacos/v1/ns/cluster"))
        .form(&[
            ("serviceName", "orders"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ])
        .send()
        .await?;
    ensure!(
        cluster_put.status().is_success(),
        "PUT cluster: {}",
        cluster_put.text().await?
    );
    // The cluster's checker is persistent data (Raft): wait until the owner has it.
    wait_for("the owner sees checker NONE", LIMIT, || async {
        let detail = get_json(
            &cluster.url(owner, "/nacos/v1/ns/catalog/service"),
            &[("serviceName", "orders")],
        )
        .await?;
        Ok(detail["clusters"][0]["healthChecker"]["type"] == "NONE")
    })
    .await?;
    let health = http()
        .put(cluster.url(other, "/nacos/v1/ns/health/instance"))
        .form(&[
            ("serviceName", "orders"),
            ("ip", "10.2.0.1"),
            ("port", "8080"),
            ("healthy", "false"),
        ])
        .send()
        .await?;
    ensure!(
        health.status().is_success(),
        "PUT health via node {other}: {}",
        health.text().await?
    );
    for i in 0..3 {
        wait_for(&format!("node {i} shows the changes"), LIMIT, || async {
            let list = instances(&cluster.url(i, ""), "orders").await?;
            Ok(list.iter().any(|h| {
                h["ip"] == "10.2.0.1"
                    && h["metadata"]["zone"] == "z1"
                    && h["healthy"] == false
                    && h["marked"] == true
            }))
        })
        .await?;
    }
    Ok(())
}

/// The web console's change feed and overrides come from every member: a
/// registration and an edit sent to a member that is not responsible are
/// decided (and recorded) by the responsible one, and a third member's
/// console shows both, naming the member that decided.
#[tokio::test]
async fn the_console_feed_gathers_every_member() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let owner = cluster.owner_of("orders");
    let sender = (owner + 1) % 3;
    let viewer = (owner + 2) % 3;
    register(&cluster.url(sender, ""), "orders", "10.3.0.1", 8080).await?;
    let reply = http()
        .patch(cluster.url(sender, "/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", "orders"),
            ("ip", "10.3.0.1"),
            ("port", "8080"),
            ("enabled", "false"),
        ])
        .send()
        .await?;
    ensure!(reply.status().is_success(), "edit: {}", reply.status());
    let feed_url = cluster.url(viewer, "/nacre/v1/console/feed");
    let feed = get_json(&feed_url, &[("serviceName", "orders")]).await?;
    let whats: Vec<&str> = feed["changes"]
        .as_array()
        .context("changes")?
        .iter()
        .filter_map(|c| c["what"].as_str())
        .collect();
    ensure!(whats == ["edited", "registered"], "{feed}");
    let decider = cluster.addrs[owner].to_string();
    ensure!(feed["changes"][0]["node"] == decider.as_str(), "{feed}");
    let instances_url = cluster.url(viewer, "/nacre/v1/console/instances");
    wait_for("the instance on the viewing member", LIMIT, || async {
        let found = get_json(&instances_url, &[("serviceName", "orders")]).await?;
        Ok::<bool, anyhow::Error>(found["list"][0]["override"]["enabled"] == false)
    })
    .await?;
    Ok(())
}

/// The live stream of a member shows changes another member decided: the
/// registration is replicated to it, and its notifier tells the stream.
#[tokio::test]
async fn the_live_stream_shows_changes_decided_elsewhere() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let owner = cluster.owner_of("payments");
    let viewer = (owner + 1) % 3;
    let mut stream = http()
        .get(cluster.url(viewer, "/nacre/v1/console/events"))
        .send()
        .await?;
    ensure!(stream.status().is_success(), "events: {}", stream.status());
    register(&cluster.url(owner, ""), "payments", "10.4.0.1", 8080).await?;
    let mut seen = String::new();
    let found = tokio::time::timeout(LIMIT, async {
        while !(seen.contains("event: service") && seen.contains("\"payments\"")) {
            match stream.chunk().await {
                Ok(Some(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return false,
            }
        }
        true
    })
    .await;
    ensure!(
        found == Ok(true),
        "no service event for payments; read {seen:?}"
    );
    Ok(())
}

/// Node `viewer`'s cluster page: each member's row, by address.
async fn members_seen_by(cluster: &TestCluster, viewer: usize) -> anyhow::Result<Vec<Value>> {
    let page = get_json(&cluster.url(viewer, "/nacre/v1/console/cluster"), &[]).await?;
    let members = page["members"].as_array().context("members")?.clone();
    ensure!(members.len() == 3, "{page}");
    Ok(members)
}

/// The cluster page shows each member's own Raft state (state, term, leader,
/// commit and applied index), asked of that member: every member agrees on
/// the term and the leader, each member's indexes move when a persistent
/// write commits, and a member that hangs (SIGSTOP) is shown as not
/// answering, within the console's 2 s bound.
#[tokio::test]
async fn the_cluster_page_shows_each_members_raft_state() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    let viewer = 0;
    // Every member answers for itself, and all name one leader in one term.
    let agreed =
        nacre_e2e::wait::wait_for_value("one leader and term on every row", LIMIT, || async {
            let members = members_seen_by(&cluster, viewer).await?;
            let rafts: Vec<&Value> = members.iter().map(|m| &m["raft"]).collect();
            let leaders = rafts.iter().filter(|r| r["state"] == "LEADER").count();
            let one_view = rafts
                .iter()
                .all(|r| r["term"] == rafts[0]["term"] && r["leader"] == rafts[0]["leader"]);
            Ok((leaders == 1 && one_view && rafts[0]["leader"].is_string()).then_some(members))
        })
        .await?;
    for member in &agreed {
        ensure!(member["raftError"].is_null(), "{member}");
        let own = member["address"].as_str().context("address")?;
        ensure!(
            (member["raft"]["state"] == "LEADER") == (member["raft"]["leader"] == own),
            "a member is the leader exactly when it says so: {member}"
        );
    }
    let applied_before: Vec<u64> = agreed
        .iter()
        .map(|m| m["raft"]["lastApplied"].as_u64().unwrap_or(0))
        .collect();

    // A persistent instance goes through Raft: every member's own indexes move.
    let reply = http()
        .post(cluster.url(viewer, "/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", "stored"),
            ("ip", "10.5.0.1"),
            ("port", "8080"),
            ("ephemeral", "false"),
        ])
        .send()
        .await?;
    ensure!(
        reply.status().is_success(),
        "persistent register: {}",
        reply.text().await?
    );
    wait_for("every member applied the write", LIMIT, || async {
        let members = members_seen_by(&cluster, viewer).await?;
        Ok::<bool, anyhow::Error>(members.iter().zip(&applied_before).all(|(m, before)| {
            let applied = m["raft"]["lastApplied"].as_u64().unwrap_or(0);
            applied > *before && m["raft"]["commitIndex"].as_u64() >= Some(applied)
        }))
    })
    .await?;

    // A member that hangs is shown as not answering; the page still comes
    // within the bound, with the others' states.
    let hung = 2;
    cluster.pause(hung).await?;
    let started = std::time::Instant::now();
    let members = members_seen_by(&cluster, viewer).await?;
    let took = started.elapsed();
    cluster.resume(hung).await?;
    ensure!(
        took < Duration::from_secs(5),
        "the cluster page took {took:?}"
    );
    let address = cluster.addrs[hung].to_string();
    for member in &members {
        if member["address"] == address.as_str() {
            ensure!(member["raft"].is_null(), "{member}");
            ensure!(
                member["raftError"]
                    .as_str()
                    .is_some_and(|e| e.contains("no answer within 2 s")),
                "{member}"
            );
        } else {
            ensure!(member["raft"]["term"].is_u64(), "{member}");
        }
    }
    Ok(())
}
