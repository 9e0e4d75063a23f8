//! `PUT|DELETE instance/metadata/batch` over real HTTP (issue 14, kind 5):
//! Nacos 1.4's beta batch metadata API. Routing to the responsible member in
//! a cluster is in tests/console_cluster.rs.

mod common;

use common::TestNode;
use serde_json::{Value, json};

async fn detail_metadata(node: &TestNode, ip: &str) -> Value {
    node.detail("orders", ip, 8080).await.json()["metadata"].clone()
}

/// `PUT|DELETE instance/metadata/batch` merge or remove keys on the named
/// instances, or on every instance of a kind with `consistencyType`, and
/// answer `{"updated":["ip:port:unknown:cluster:ephemeral|persist"]}`
/// (`InstanceController#batchUpdateInstanceMatadata`,
/// `ServiceManager#updateMetadata`, `Instance#getDatumKey`). Only metadata
/// changes.
#[tokio::test]
async fn metadata_batch_merges_and_removes_keys() {
    let node = TestNode::start().await;
    node.register(
        "orders",
        "10.0.0.1",
        8080,
        &[("metadata", "a=1"), ("weight", "3")],
    )
    .await
    .assert_ok();
    node.register("orders", "10.0.0.2", 8080, &[("metadata", "a=1")])
        .await
        .assert_ok();
    node.register(
        "orders",
        "10.0.0.3",
        8080,
        &[("ephemeral", "false"), ("healthy", "false")],
    )
    .await
    .assert_ok();

    let named =
        json!([{"ip": "10.0.0.1", "port": 8080}, {"ip": "10.0.0.3", "port": 8080}]).to_string();
    let reply = node
        .send(
            "PUT",
            "/instance/metadata/batch",
            &[
                ("serviceName", "orders"),
                ("instances", &named),
                ("metadata", r#"{"b":"2","a":"9"}"#),
            ],
        )
        .await;
    reply.assert_ok();
    // 10.0.0.3 is named as ephemeral (the default) but is persistent: skipped.
    assert_eq!(
        reply.json(),
        json!({"updated": ["10.0.0.1:8080:unknown:DEFAULT:ephemeral"]})
    );
    assert_eq!(
        detail_metadata(&node, "10.0.0.1").await,
        json!({"a": "9", "b": "2"})
    );
    assert_eq!(detail_metadata(&node, "10.0.0.2").await, json!({"a": "1"}));
    assert_eq!(
        node.detail("orders", "10.0.0.1", 8080).await.json()["weight"],
        3.0
    );

    let reply = node
        .send(
            "PUT",
            "/instance/metadata/batch",
            &[
                ("serviceName", "orders"),
                ("consistencyType", "persist"),
                ("metadata", "tier=db"),
            ],
        )
        .await;
    assert_eq!(
        reply.json(),
        json!({"updated": ["10.0.0.3:8080:unknown:DEFAULT:persist"]})
    );
    let persistent = node.detail("orders", "10.0.0.3", 8080).await.json();
    assert_eq!(persistent["metadata"], json!({"tier": "db"}));
    assert_eq!(
        persistent["healthy"], false,
        "a metadata batch changed health"
    );

    let reply = node
        .send(
            "DELETE",
            "/instance/metadata/batch",
            &[
                ("serviceName", "orders"),
                ("consistencyType", "ephemeral"),
                ("metadata", r#"{"a":""}"#),
            ],
        )
        .await;
    assert_eq!(reply.json()["updated"].as_array().map(Vec::len), Some(2));
    assert_eq!(detail_metadata(&node, "10.0.0.1").await, json!({"b": "2"}));
    assert_eq!(detail_metadata(&node, "10.0.0.2").await, json!({}));

    // An unknown service changes nothing (Nacos swallows the error into an empty list).
    let reply = node
        .send(
            "PUT",
            "/instance/metadata/batch",
            &[
                ("serviceName", "ghost"),
                ("consistencyType", "ephemeral"),
                ("metadata", "a=1"),
            ],
        )
        .await;
    assert_eq!(reply.json(), json!({"updated": []}));
}

/// What Nacos silently ignores, Nacre refuses, naming the parameter.
#[tokio::test]
async fn malformed_metadata_batches_are_refused() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 8080, &[])
        .await
        .assert_ok();
    let svc = ("serviceName", "orders");
    let cases: [(Vec<(&str, &str)>, &str); 6] = [
        (vec![svc, ("consistencyType", "ephemeral")], "metadata"),
        (vec![svc, ("metadata", "a=1")], "instances"),
        (
            vec![svc, ("metadata", "a=1"), ("consistencyType", "both")],
            "consistencyType",
        ),
        (
            vec![svc, ("metadata", "a=1"), ("instances", "{")],
            "instances",
        ),
        (
            vec![
                svc,
                ("metadata", "a=1"),
                ("instances", r#"[{"ip":"10.0.0.1"}]"#),
            ],
            "instances",
        ),
        (
            vec![
                svc,
                ("metadata", "a=1"),
                ("instances", r#"[{"ip":"1 2","port":1}]"#),
            ],
            "instances.ip",
        ),
    ];
    for (params, param) in cases {
        node.send("PUT", "/instance/metadata/batch", &params)
            .await
            .assert_error(400, param);
    }
    assert_eq!(
        node.detail("orders", "10.0.0.1", 8080).await.json()["metadata"],
        json!({})
    );
}
