//! Namespace records across a cluster (issue 16): they go through Raft, so
//! a namespace created on one member is listed by every member, a rename on
//! another holds everywhere, a restarted member still lists it, its
//! deletion holds everywhere, and without a majority a write is refused.

use std::collections::BTreeMap;

use super::*;

const NAMESPACES: &str = "/nacos/v1/console/namespaces";

/// The namespaces member `i` lists: id → show name.
async fn listed(cluster: &TestCluster, i: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let body: Value = http()
        .get(cluster.url(i, NAMESPACES))
        .send()
        .await?
        .json()
        .await?;
    let data = body["data"].as_array().context("no data")?;
    Ok(data
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap_or_default().to_string(),
                n["namespaceShowName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

/// Sends a namespace write to member `i` until it is decided (a write
/// before the first leader is elected answers 503); its status and body.
async fn write(
    cluster: &TestCluster,
    i: usize,
    method: reqwest::Method,
    params: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    wait_for_value("a namespace write decided", Duration::from_secs(15), || {
        let method = method.clone();
        async move {
            let reply = http()
                .request(method, cluster.url(i, NAMESPACES))
                .form(params)
                .send()
                .await?;
            let status = reply.status().as_u16();
            let body = reply.text().await?;
            Ok((status != 503).then_some((status, body)))
        }
    })
    .await
}

/// Waits until every running member in `members` lists namespace `id` with
/// the show name `name` (`None`: not at all).
async fn everywhere(
    cluster: &TestCluster,
    members: &[usize],
    id: &str,
    name: Option<&str>,
) -> anyhow::Result<()> {
    wait_for(
        &format!("namespace {id} shown as {name:?} on members {members:?}"),
        Duration::from_secs(10),
        || async move {
            for &i in members {
                if listed(cluster, i).await?.get(id).map(String::as_str) != name {
                    return Ok(false);
                }
            }
            Ok(true)
        },
    )
    .await
}

#[tokio::test]
async fn namespaces_hold_on_every_member() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let all = [0, 1, 2];
    let (status, body) = write(
        &cluster,
        1,
        reqwest::Method::POST,
        &[
            ("customNamespaceId", "prod"),
            ("namespaceName", "Production"),
        ],
    )
    .await?;
    ensure!(status == 200 && body == "true", "create: {status} {body}");
    everywhere(&cluster, &all, "prod", Some("Production")).await?;

    // Refused on another member too: the record is the cluster's.
    let (status, body) = write(
        &cluster,
        2,
        reqwest::Method::POST,
        &[("customNamespaceId", "prod"), ("namespaceName", "Again")],
    )
    .await?;
    ensure!(
        status == 400 && body.contains("is existed"),
        "again: {status} {body}"
    );

    let (status, body) = write(
        &cluster,
        2,
        reqwest::Method::PUT,
        &[("namespace", "prod"), ("namespaceShowName", "Prod")],
    )
    .await?;
    ensure!(status == 200, "rename: {status} {body}");
    everywhere(&cluster, &all, "prod", Some("Prod")).await?;

    cluster.restart(0).await?;
    everywhere(&cluster, &[0], "prod", Some("Prod")).await?;

    let (status, body) = write(
        &cluster,
        0,
        reqwest::Method::DELETE,
        &[("namespaceId", "prod")],
    )
    .await?;
    ensure!(status == 200, "delete: {status} {body}");
    everywhere(&cluster, &all, "prod", None).await?;

    // Without a majority a record cannot be stored: the survivor answers
    // 503 (try again) and lists what it listed.
    cluster.kill(1).await?;
    cluster.kill(2).await?;
    let reply = http()
        .post(cluster.url(0, NAMESPACES))
        .form(&[("customNamespaceId", "late"), ("namespaceName", "Late")])
        .send()
        .await?;
    let status = reply.status().as_u16();
    let body = reply.text().await?;
    ensure!(
        status == 503,
        "a create without a majority: {status} {body}"
    );
    let left = listed(&cluster, 0).await?;
    ensure!(
        !left.contains_key("late"),
        "listed after a refused create: {left:?}"
    );
    Ok(())
}
