//! The responsible member's side of forwarding.

use super::*;

/// The responsible member's side of forwarding: a batch of forwarded client
/// requests is answered request by request, in order, a malformed one
/// included; the largest request a client may send still fits a batch, and
/// a node refuses a configuration in which it would not.
#[tokio::test]
async fn forwarded_writes_are_answered_one_by_one() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    use nacre::wire::{ForwardBatch, ForwardReplies, ForwardedRequest};
    // Internal messages of at most 64 KiB, client bodies of at most half.
    let cluster = TestCluster::start(ClusterOptions {
        env: vec![
            ("NACRE_CLUSTER_MAX_MESSAGE_BYTES".into(), "65536".into()),
            ("NACRE_HTTP_MAX_BODY_BYTES".into(), "32768".into()),
        ],
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

    // The largest body a client may send goes in a batch through another
    // member, and is replicated.
    let via = 1; // node 0 is responsible
    let metadata = format!(r#"{{"blob":"{}"}}"#, "x".repeat(30_000));
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
    // The responsible member wrote it and the forwarding member held its
    // record before answering: both list it at once; the third learns it
    // by Distro's sync, within a bounded wait.
    for i in [0, via] {
        ensure!(
            hosts(&cluster.url(i, ""), &name)
                .await?
                .contains("10.9.0.3:1"),
            "node {i} does not list the instance its write answered"
        );
    }
    wait_for(
        "the third member to list the large instance",
        Duration::from_secs(5),
        || async {
            Ok(hosts(&cluster.url(2, ""), &name)
                .await?
                .contains("10.9.0.3:1"))
        },
    )
    .await?;
    // A larger one is refused at the door.
    let metadata = format!(r#"{{"blob":"{}"}}"#, "x".repeat(40_000));
    let reply = http()
        .post(cluster.url(via, "/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", name.as_str()),
            ("ip", "10.9.0.4"),
            ("port", "1"),
            ("metadata", metadata.as_str()),
        ])
        .send()
        .await?;
    ensure!(reply.status() == 413, "{}", reply.status());
    Ok(())
}
