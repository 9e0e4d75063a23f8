//! Distro clusters of three `nacre` processes on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use nacre_e2e::cluster::{ClusterOptions, TestCluster, nacre_binary};
use nacre_e2e::naming::{beat, hosts, http, register, wait_for};
use serde_json::Value;

/// Cluster tests start several processes each; one at a time keeps their
/// timing honest on a two-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A healthy ephemeral instance in cluster DEFAULT, as peers send them.
fn ephemeral_instance(ip: &str, port: u16) -> nacre::registry::model::Instance {
    nacre::registry::model::Instance {
        id: nacre::registry::model::InstanceId::new("DEFAULT", ip, port),
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral: true,
        marked: false,
        metadata: Default::default(),
        last_beat: 0,
        version: Default::default(),
        lease: Default::default(),
    }
}

/// Posts an internal message to node `i` with the cluster's credential.
async fn post_internal<R: nacre::wire::Rpc>(
    cluster: &TestCluster,
    i: usize,
    message: &R,
) -> anyhow::Result<reqwest::Response> {
    Ok(http()
        .post(cluster.url(i, R::PATH))
        .header(nacre::wire::SECRET_HEADER, &cluster.secret)
        .header(nacre::wire::PROTOCOL_HEADER, nacre::wire::PROTOCOL_VERSION)
        .body(nacre::wire::encode(message)?)
        .send()
        .await?)
}

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
    let mut cluster = TestCluster::start(ClusterOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ClusterOptions::default()
    })
    .await?;
    let services: Vec<String> = (0..12).map(|n| format!("kept-{n}")).collect();
    for (n, service) in services.iter().enumerate() {
        let via = cluster.url(n % 3, "");
        register(&via, service, "10.2.0.1", 9000).await?;
        // The control: same service (same owner), never beats.
        register(&via, service, "10.2.0.2", 9000).await?;
    }
    let survivors = [cluster.url(0, ""), cluster.url(1, "")];

    // Beat every kept instance through the survivors, round-robin, while node 2 dies.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let beater = {
        let services = services.clone();
        let survivors = survivors.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut sent = 0u64;
            let mut turn = 0usize;
            while !*stop_rx.borrow() {
                for service in &services {
                    turn += 1;
                    let url = &survivors[turn % 2];
                    sent += 1;
                    match beat(url, service, "10.2.0.1", 9000).await {
                        Ok(10200) => {}
                        Ok(code) => failures.push(format!("{service}: code {code}")),
                        Err(e) => failures.push(format!("{service}: {e:#}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            (sent, failures)
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
    let _ = stop_tx.send(true);
    let (sent, failures) = beater.await?;
    ensure!(
        failures.is_empty(),
        "{} of {sent} beats failed: {failures:?}",
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
    Ok(())
}

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
    let cluster = TestCluster::start(ClusterOptions {
        proxied: true,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ClusterOptions::default()
    })
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

/// Internal routes without the credential, or with a wrong one, get 401 and
/// change nothing; a forged "forwarded" client request too. With the
/// credential, peers' records merge instance by instance: an older copy or
/// deletion changes nothing, a newer deletion wins, and a member of another
/// protocol version is refused.
#[tokio::test]
async fn internal_routes_require_the_cluster_credential() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default()).await?;
    use nacre::registry::model::{ServiceKey, Version};
    use nacre::registry::{ServiceRecords, Tombstone};
    use nacre::wire::{SyncBatch, SyncReply};
    let forged_key = ServiceKey::new("public", "DEFAULT_GROUP", "forged");
    let at = |version: u64, ip: &str| {
        let mut instance = ephemeral_instance(ip, 666);
        instance.version = Version(version);
        instance
    };
    let batch = |instances, tombstones| SyncBatch {
        services: vec![ServiceRecords {
            service: forged_key.clone(),
            instances,
            tombstones,
        }],
    };
    let forged = batch(vec![at(1_000, "6.6.6.6")], vec![]);
    let body = nacre::wire::encode(&forged)?;
    let almost = format!("{}x", cluster.secret);
    for secret in [None, Some("wrong"), Some(""), Some(almost.as_str())] {
        for (method, path) in [
            ("POST", "/nacre/v1/distro/sync"),
            ("POST", "/nacre/v1/distro/forward"),
            ("POST", "/nacre/v1/distro/checksums"),
            ("POST", "/nacre/v1/distro/data"),
            ("POST", "/nacre/v1/distro/snapshot"),
            ("GET", "/nacre/v1/distro/digest"),
            ("POST", "/nacre/v1/cluster/status"),
            ("POST", "/nacre/v1/raft/write"),
        ] {
            let mut request = http()
                .request(method.parse()?, cluster.url(0, path))
                .header(nacre::wire::PROTOCOL_HEADER, nacre::wire::PROTOCOL_VERSION);
            if method == "POST" {
                request = request.body(body.clone());
            }
            if let Some(secret) = secret {
                request = request.header(nacre::wire::SECRET_HEADER, secret);
            }
            let reply = request.send().await?;
            ensure!(
                reply.status() == 401,
                "{method} {path} with {secret:?}: {}",
                reply.status()
            );
        }
        // A client pretending to be a member forwarding a write.
        let mut request = http()
            .post(cluster.url(0, "/nacos/v1/ns/instance"))
            .header(nacre::wire::FORWARDED_HEADER, "1")
            .form(&[
                ("serviceName", "forged"),
                ("ip", "6.6.6.6"),
                ("port", "666"),
            ]);
        if let Some(secret) = secret {
            request = request.header(nacre::wire::SECRET_HEADER, secret);
        }
        ensure!(request.send().await?.status() == 401);
    }
    // Even with the credential, a malformed message is refused and changes
    // nothing, and so is a message of another protocol version.
    for path in [
        "/nacre/v1/distro/sync",
        "/nacre/v1/distro/forward",
        "/nacre/v1/distro/checksums",
        "/nacre/v1/distro/data",
    ] {
        let reply = http()
            .post(cluster.url(0, path))
            .header(nacre::wire::SECRET_HEADER, &cluster.secret)
            .header(nacre::wire::PROTOCOL_HEADER, nacre::wire::PROTOCOL_VERSION)
            .body(&b"\xc1\xff not msgpack"[..])
            .send()
            .await?;
        ensure!(reply.status() == 400, "{path}: {}", reply.status());
    }
    let reply = http()
        .post(cluster.url(0, "/nacre/v1/distro/sync"))
        .header(nacre::wire::SECRET_HEADER, &cluster.secret)
        .header(nacre::wire::PROTOCOL_HEADER, "1")
        .body(body.clone())
        .send()
        .await?;
    ensure!(reply.status() == 409, "old protocol: {}", reply.status());
    for i in 0..3 {
        ensure!(
            hosts(&cluster.url(i, ""), "forged").await?.is_empty(),
            "node {i} took forged data"
        );
    }
    // With the credential the same sync is merged (only the credential was missing).
    let merged =
        |ips: &[&str]| -> BTreeSet<String> { ips.iter().map(|ip| format!("{ip}:666")).collect() };
    let reply = post_internal(&cluster, 0, &forged).await?;
    ensure!(reply.status() == 200, "{}", reply.status());
    ensure!(hosts(&cluster.url(0, ""), "forged").await? == merged(&["6.6.6.6"]));

    // Per instance, the newer version wins: an older copy and an older
    // deletion change nothing; a newer deletion removes; a copy not newer
    // than the deletion never brings the instance back, a later one does.
    let tombstone = |version: u64, ip: &str| Tombstone {
        id: ephemeral_instance(ip, 666).id,
        version: Version(version),
    };
    for (message, expected, applied) in [
        (batch(vec![at(500, "6.6.6.6")], vec![]), &["6.6.6.6"][..], 0),
        (
            batch(vec![], vec![tombstone(999, "6.6.6.6")]),
            &["6.6.6.6"],
            0,
        ),
        (
            batch(
                vec![at(2_000, "7.7.7.7")],
                vec![tombstone(1_001, "6.6.6.6")],
            ),
            &["7.7.7.7"],
            1,
        ),
        (batch(vec![at(1_001, "6.6.6.6")], vec![]), &["7.7.7.7"], 0),
        (
            batch(vec![at(1_002, "6.6.6.6")], vec![]),
            &["6.6.6.6", "7.7.7.7"],
            1,
        ),
    ] {
        let reply = post_internal(&cluster, 0, &message).await?;
        ensure!(reply.status() == 200, "{}", reply.status());
        let reply: SyncReply = nacre::wire::decode(&reply.bytes().await?)?;
        let listed = hosts(&cluster.url(0, ""), "forged").await?;
        ensure!(
            listed == merged(expected) && reply.applied == applied,
            "{listed:?} {reply:?}\n{}\n{}\n{}",
            cluster.log_tail(0),
            cluster.log_tail(1),
            cluster.log_tail(2)
        );
    }
    Ok(())
}

/// The owner's side of forwarding: a batch of forwarded client requests is
/// answered request by request, in order, a malformed one included; and a
/// request too big to share a batch message is forwarded on its own.
#[tokio::test]
async fn forwarded_writes_are_answered_one_by_one() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    use nacre::wire::{ForwardBatch, ForwardReplies, ForwardedRequest};
    // Internal messages of at most 64 KiB: a batch of forwards at most half.
    let cluster = TestCluster::start(ClusterOptions {
        env: vec![("NACRE_CLUSTER_MAX_MESSAGE_BYTES".into(), "65536".into())],
        ..ClusterOptions::default()
    })
    .await?;
    let name = (0..100)
        .map(|n| format!("direct-{n}"))
        .find(|name| cluster.owner_of(name) == 0)
        .context("a service node 0 is responsible for")?;
    let request = |method: &str, path: String| ForwardedRequest {
        method: method.into(),
        path_and_query: path,
        content_type: None,
        body: Default::default(),
        records: None,
    };
    let batch = ForwardBatch {
        requests: vec![
            request(
                "POST",
                format!("/nacos/v1/ns/instance?serviceName={name}&ip=10.9.0.1&port=1"),
            ),
            request("NOT A METHOD", "/nacos/v1/ns/instance".into()),
            request(
                "POST",
                format!("/nacos/v1/ns/instance?serviceName={name}&ip=10.9.0.2&port=99999"),
            ),
        ],
    };
    let reply = post_internal(&cluster, 0, &batch).await?;
    ensure!(reply.status() == 200, "{}", reply.status());
    let answers = nacre::wire::decode::<ForwardReplies>(&reply.bytes().await?)?.replies;
    // The written instance's record comes back with its answer, for the
    // forwarding member to hold before it answers the client.
    let record = answers[0].records.as_ref().map(|r| r.instances.len());
    ensure!(record == Some(1), "{record:?}");
    let seen: Vec<(u16, String)> = answers
        .iter()
        .map(|a| (a.status, String::from_utf8_lossy(&a.body).into_owned()))
        .collect();
    ensure!(seen.len() == 3, "{seen:?}");
    ensure!(seen[0] == (200, "ok".to_string()), "{seen:?}");
    ensure!(
        seen[1].0 == 400 && seen[1].1.contains("malformed"),
        "{seen:?}"
    );
    ensure!(seen[2].0 == 400 && seen[2].1.contains("port"), "{seen:?}");
    ensure!(hosts(&cluster.url(0, ""), &name).await? == BTreeSet::from(["10.9.0.1:1".into()]));

    // Metadata larger than a whole internal message: it cannot go in a batch
    // (the owner would refuse the message), so it goes alone, as the client
    // sent it. (Peers will not get it either, by the same limit.)
    let via = 1; // node 0 is the owner
    let metadata = format!(r#"{{"blob":"{}"}}"#, "x".repeat(70_000));
    let reply = http()
        .post(cluster.url(via, "/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", name.as_str()),
            ("ip", "10.9.0.3"),
            ("port", "1"),
            ("metadata", metadata.as_str()),
        ])
        .send()
        .await?;
    let status = reply.status();
    let body = reply.text().await?;
    ensure!(status == 200 && body == "ok", "{status} {body}");
    ensure!(
        hosts(&cluster.url(0, ""), &name)
            .await?
            .contains("10.9.0.3:1")
    );
    Ok(())
}

/// A node with members and no secret refuses to start, unless told the
/// cluster is insecure on purpose.
#[tokio::test]
async fn members_without_a_secret_refuse_to_start() -> anyhow::Result<()> {
    let binary = nacre_binary()?;
    let dir = tempfile::tempdir()?;
    let port = nacre_e2e::cluster::free_port()?;
    let members = format!("127.0.0.1:{port},127.0.0.1:1");
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new(&binary)
            .args([
                "start",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--members",
                &members,
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("NACRE_CLUSTER_SECRET")
            .output(),
    )
    .await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "started without a secret");
    ensure!(
        stderr.contains("cluster.secret"),
        "unclear refusal: {stderr}"
    );

    let mut insecure = tokio::process::Command::new(&binary)
        .args([
            "start",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--members",
            &members,
        ])
        .arg("--insecure-cluster")
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("NACRE_CLUSTER_SECRET")
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}/nacos/v1/console/health/liveness");
    wait_for(
        "an insecure cluster node to start",
        Duration::from_secs(10),
        || async { Ok(reqwest::get(&url).await?.status() == 200) },
    )
    .await?;
    insecure.start_kill()?;
    Ok(())
}

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
    // owner (node 0) what it lacked.
    let repaired = metric(&cluster, 0, "nacre_distro_repaired_fetched_total").await?
        + metric(&cluster, 2, "nacre_distro_repaired_returned_total").await?;
    ensure!(repaired > 0.0, "no repair counted");
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

/// The Nacos Node.js client (npm nacos-naming) connected to one node: it
/// works against a cluster member as against a standalone node, and sees —
/// by UDP push from its node — instances registered through another node.
#[tokio::test]
async fn the_node_client_on_one_node_sees_writes_made_through_another() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut options = ClusterOptions::default();
    options
        .env
        .push(("NACRE_PUSH_ENABLED".into(), "true".into()));
    let cluster = TestCluster::start(options).await?;
    let dir = nacre_e2e::repo_root().join("tests/compat/node");
    nacre_e2e::installed(
        dir.join("node_modules/nacos-naming"),
        "the npm package nacos-naming",
    )?;
    let run = |mode: &str, client_node: usize, write_node: usize| {
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg("compat.js")
            .current_dir(&dir)
            .env("NACOS_ADDR", cluster.addrs[client_node].to_string())
            .env("WRITE_ADDR", cluster.addrs[write_node].to_string())
            .env("MODE", mode);
        cmd
    };
    let out = nacre_e2e::run_program(run("basic", 2, 2), Duration::from_secs(60)).await?;
    ensure!(
        out.stdout.contains("\"step\":\"deregister\""),
        "{}",
        out.stdout
    );
    let out = nacre_e2e::run_program(run("subscribe", 0, 1), Duration::from_secs(60)).await?;
    for step in ["push-received", "push-received-again", "push-removed"] {
        ensure!(
            out.stdout
                .contains(&format!("\"step\":\"{step}\",\"ok\":true")),
            "{step} missing: {}",
            out.stdout
        );
    }
    Ok(())
}
