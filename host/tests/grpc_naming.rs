//! Nacos 2.x naming semantics over gRPC (NACOS-V2.md §5, §7): one
//! publication per service per connection, the connection as the lease,
//! persistent instances, the same parameter rules as v1, and one registry
//! shared with v1 clients.

mod common;
mod grpc_client;

use std::time::Duration;

use common::{TestNode, hosts, wait_for};
use grpc_client::{RawClient, assert_ok, grpc_addr};
use serde_json::{Value, json};

fn instance(ip: &str, port: u16) -> Value {
    json!({"ip": ip, "port": port, "weight": 1.0, "healthy": true, "enabled": true,
           "ephemeral": true, "clusterName": "DEFAULT", "metadata": {"k": "v"}})
}

async fn batch(
    client: &mut RawClient,
    service: &str,
    instances: Vec<Value>,
) -> grpc_client::Message {
    client
        .call(
            "BatchInstanceRequest",
            json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
                   "type": "batchRegisterInstance", "instances": instances}),
        )
        .await
}

async fn query(client: &mut RawClient, service: &str) -> Value {
    let answer = client
        .call(
            "ServiceQueryRequest",
            json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
                   "cluster": "", "healthyOnly": false}),
        )
        .await;
    assert_ok(&answer, "QueryServiceResponse");
    answer.body["serviceInfo"].clone()
}

#[tokio::test]
async fn registered_instances_are_seen_by_v1_and_v2_in_nacos_shape() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let answer = client.register("orders", "127.0.0.1", 8080).await;
    assert_ok(&answer, "InstanceResponse");
    assert_eq!(answer.body["type"], "registerInstance");

    assert_eq!(node.listed("orders", &[]).await, ["127.0.0.1:8080"]);
    let info = query(&mut client, "orders").await;
    assert_eq!(info["name"], "orders", "the bare name: {info}");
    assert_eq!(info["groupName"], "DEFAULT_GROUP");
    assert_eq!(info["clusters"], "");
    assert!(info["lastRefTime"].as_i64() > Some(0));
    let host = &info["hosts"][0];
    assert_eq!(
        host["instanceId"],
        "127.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders"
    );
    assert_eq!(host["serviceName"], "DEFAULT_GROUP@@orders");
    let nulls = |v: &Value| {
        v.as_object()
            .is_some_and(|o| o.values().any(Value::is_null))
    };
    assert!(!nulls(&info) && !nulls(host), "{info}");
    let again = query(&mut client, "orders").await;
    assert!(again["lastRefTime"].as_i64() > info["lastRefTime"].as_i64());
}

#[tokio::test]
async fn one_publication_per_service_per_connection() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &client.register("svc", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    // A second register on the same connection replaces the first.
    assert_ok(
        &client.register("svc", "127.0.0.2", 2).await,
        "InstanceResponse",
    );
    assert_eq!(node.listed("svc", &[]).await, ["127.0.0.2:2"]);

    // A batch replaces too; a shorter batch is how clients deregister part of one.
    let three = vec![
        instance("127.0.0.3", 3),
        instance("127.0.0.4", 4),
        instance("127.0.0.5", 5),
    ];
    assert_ok(
        &batch(&mut client, "svc", three).await,
        "BatchInstanceResponse",
    );
    assert_eq!(
        node.listed("svc", &[]).await,
        ["127.0.0.3:3", "127.0.0.4:4", "127.0.0.5:5"]
    );
    let kept = vec![instance("127.0.0.4", 4)];
    assert_ok(
        &batch(&mut client, "svc", kept).await,
        "BatchInstanceResponse",
    );
    assert_eq!(node.listed("svc", &[]).await, ["127.0.0.4:4"]);

    // Another connection's instance in the same service is its own.
    let mut other = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &other.register("svc", "127.0.0.9", 9).await,
        "InstanceResponse",
    );

    // Deregister removes this connection's publication, whatever it names.
    let deregister = client
        .call(
            "InstanceRequest",
            json!({"serviceName": "svc", "groupName": "DEFAULT_GROUP", "type": "deregisterInstance",
                   "instance": {"ip": "10.9.9.9", "port": 1}}),
        )
        .await;
    assert_ok(&deregister, "InstanceResponse");
    assert_eq!(node.listed("svc", &[]).await, ["127.0.0.9:9"]);
}

#[tokio::test]
async fn a_closed_connection_takes_its_instances_with_it_but_not_a_newer_owners() {
    let node = TestNode::start().await;
    let mut first = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &first.register("lease", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    assert_ok(
        &first.register("other", "127.0.0.1", 2).await,
        "InstanceResponse",
    );
    // The client reconnects and registers the same instance again before
    // its old connection is torn down.
    let mut second = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &second.register("lease", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    drop(first);
    wait_for(
        "the old connection's instances go",
        Duration::from_secs(5),
        || async { node.listed("other", &[]).await.is_empty() },
    )
    .await;
    assert_eq!(node.listed("lease", &[]).await, ["127.0.0.1:1"]);
    drop(second);
    wait_for(
        "the new connection's instance goes",
        Duration::from_secs(5),
        || async { node.listed("lease", &[]).await.is_empty() },
    )
    .await;
}

#[tokio::test]
async fn persistent_instances_outlive_their_connection() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let mut body = instance("127.0.0.1", 7000);
    body["ephemeral"] = json!(false);
    let request = |op: &str| json!({"serviceName": "db", "groupName": "DEFAULT_GROUP", "type": op, "instance": body.clone()});
    let answer = client
        .call("PersistentInstanceRequest", request("registerInstance"))
        .await;
    assert_ok(&answer, "InstanceResponse");
    drop(client);
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let listed = node.list("db", &[]).await;
    assert_eq!(listed["hosts"][0]["ephemeral"], false, "{listed}");

    // The service is persistent now: an ephemeral instance is refused, typed, 400.
    let clash = client.register("db", "127.0.0.2", 1).await;
    assert_eq!(clash.kind, "InstanceResponse");
    assert_eq!(clash.body["resultCode"], 500);
    assert_eq!(clash.body["errorCode"], 400);
    let message = clash.body["message"].as_str().unwrap_or("");
    assert!(message.contains("is persistent service"), "{message}");

    let answer = client
        .call("PersistentInstanceRequest", request("deregisterInstance"))
        .await;
    assert_ok(&answer, "InstanceResponse");
    assert!(node.listed("db", &[]).await.is_empty());
}

#[tokio::test]
async fn bad_parameters_get_a_typed_400_naming_the_parameter_and_change_nothing() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let cases = [
        ("port", json!({"ip": "127.0.0.1", "port": 70000})),
        ("port", json!({"ip": "127.0.0.1"})),
        ("ip", json!({"port": 80})),
        ("ip", json!({"ip": "300.1.1.1", "port": 80})),
        (
            "clusterName",
            json!({"ip": "127.0.0.1", "port": 80, "clusterName": "a b"}),
        ),
        (
            "weight",
            json!({"ip": "127.0.0.1", "port": 80, "weight": 10001.0}),
        ),
        (
            "metadata",
            json!({"ip": "127.0.0.1", "port": 80, "metadata": {"a": {"b": 1}}}),
        ),
    ];
    for (param, body) in cases {
        let answer = client
            .call(
                "InstanceRequest",
                json!({"serviceName": "bad", "type": "registerInstance", "instance": body}),
            )
            .await;
        assert_eq!(answer.kind, "InstanceResponse", "{param}: {answer:?}");
        assert_eq!(answer.body["errorCode"], 400, "{param}: {answer:?}");
        let message = answer.body["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with("Param check invalid:") && message.contains(&format!("'{param}'")),
            "{param}: {message}"
        );
    }
    for (kind, body, param) in [
        (
            "InstanceRequest",
            json!({"type": "registerInstance"}),
            "serviceName",
        ),
        (
            "InstanceRequest",
            json!({"serviceName": "bad", "type": "dance"}),
            "type",
        ),
        (
            "BatchInstanceRequest",
            json!({"serviceName": "bad", "type": "batchRegisterInstance",
            "instances": [{"ip": "127.0.0.1", "port": 0}]}),
            "port",
        ),
        (
            "SubscribeServiceRequest",
            json!({"serviceName": "bad", "subscribe": true, "clusters": "x y"}),
            "clusters",
        ),
        (
            "ServiceListRequest",
            json!({"pageNo": 1, "pageSize": 0}),
            "pageSize",
        ),
    ] {
        let answer = client.call(kind, body).await;
        assert_eq!(answer.body["errorCode"], 400, "{kind}: {answer:?}");
        let message = answer.body["message"].as_str().unwrap_or("");
        assert!(message.contains(&format!("'{param}'")), "{kind}: {message}");
    }
    assert!(node.listed("bad", &[]).await.is_empty());
}

#[tokio::test]
async fn service_list_pages_bare_names_of_a_group() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    for i in 0..5 {
        assert_ok(
            &client.register(&format!("page-{i}"), "127.0.0.1", 80).await,
            "InstanceResponse",
        );
    }
    node.register("g2@@elsewhere", "127.0.0.1", 80, &[])
        .await
        .assert_ok();
    let mut seen = Vec::new();
    for page in 1..=3 {
        let answer = client
            .call(
                "ServiceListRequest",
                json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "pageNo": page, "pageSize": 2}),
            )
            .await;
        assert_ok(&answer, "ServiceListResponse");
        assert_eq!(answer.body["count"], 5);
        for name in answer.body["serviceNames"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            seen.push(name.as_str().unwrap_or("").to_string());
        }
    }
    assert_eq!(seen, ["page-0", "page-1", "page-2", "page-3", "page-4"]);
    let past = client
        .call(
            "ServiceListRequest",
            json!({"groupName": "DEFAULT_GROUP", "pageNo": 9, "pageSize": 2}),
        )
        .await;
    assert_eq!(past.body["serviceNames"], json!([]));
}

#[tokio::test]
async fn v1_registrations_are_seen_over_grpc_with_protection_and_cluster_filters() {
    let node = TestNode::start().await;
    node.register("mixed", "127.0.0.1", 1, &[("clusterName", "a")])
        .await
        .assert_ok();
    node.register(
        "mixed",
        "127.0.0.1",
        2,
        &[("clusterName", "b"), ("enabled", "false")],
    )
    .await
    .assert_ok();
    node.register("mixed", "127.0.0.1", 3, &[("clusterName", "b")])
        .await
        .assert_ok();
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let all = query(&mut client, "mixed").await;
    assert_eq!(
        hosts(&all),
        ["127.0.0.1:1", "127.0.0.1:3"],
        "disabled ones are left out"
    );
    let only_b = client
        .call(
            "ServiceQueryRequest",
            json!({"serviceName": "mixed", "groupName": "DEFAULT_GROUP", "cluster": "b"}),
        )
        .await;
    assert_eq!(hosts(&only_b.body["serviceInfo"]), ["127.0.0.1:3"]);
    assert_eq!(only_b.body["serviceInfo"]["clusters"], "b");
    let unknown = query(&mut client, "nobody-home").await;
    assert_eq!(unknown["hosts"], json!([]));
    assert_eq!(unknown["name"], "nobody-home");
}
