//! The responsible member's side of forwarding.

use super::*;

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
