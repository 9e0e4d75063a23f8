//! The internal API's credential and protocol version; members without a secret.

use super::*;

/// Internal routes without the credential, or with a wrong one, get 401 and
/// change nothing. With the
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
            ("POST", "/nacre/v1/raft/accounts"),
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

/// A node with members and no secret refuses to start, unless told the
/// cluster is insecure on purpose.
#[tokio::test]
async fn members_without_a_secret_refuse_to_start() -> anyhow::Result<()> {
    // Serial like the others: a free port picked while another test's
    // cluster starts may be taken by one of its nodes before this one binds.
    let _serial = ONE_AT_A_TIME.lock().await;
    let binary = nacre_binary()?;
    let dir = tempfile::tempdir()?;
    let port = nacre_e2e::cluster::free_port()?;
    let members = format!("127.0.0.1:{port},127.0.0.1:1");
    // A member of a two-member cluster, with no secret from the environment.
    let member = || {
        let mut cmd = tokio::process::Command::new(&binary);
        cmd.args(["start", "--bind", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg("--members")
            .arg(&members)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("NACRE_CLUSTER_SECRET");
        cmd
    };
    let out = tokio::time::timeout(Duration::from_secs(20), member().output()).await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "started without a secret");
    ensure!(
        stderr.contains("cluster.secret"),
        "unclear refusal: {stderr}"
    );

    let mut insecure = member()
        .arg("--insecure-cluster")
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
