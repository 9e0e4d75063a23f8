//! What Nacos 1.4 keys on the client agent (issue 14, kind 2), over real
//! HTTP and UDP. Each expectation is Nacos 1.4's, with the source it comes
//! from. Parameter forms (kind 3) are in compat_params.rs.

mod common;

use common::udp::Subscriber;
use common::{Reply, TestNode};
use serde_json::Value;

const JAVA_14: &str = "Nacos-Java-Client:v1.4.1";

/// Agents that are not "a Java client from 1.0.0" to Nacos 1.4
/// (`push/ClientInfo.java`): none at all (curl), Python (unknown there), Go,
/// an old Java client, the Java SDK (a kind of its own), a peer server.
const OTHERS: [&str; 6] = [
    "",
    "Nacos-Python-Client:v1.0.0",
    "Nacos-Go-Client:v1.0.1",
    "Nacos-Java-Client:v0.9.1",
    "Nacos-SDK-Java:v1.4.1",
    "Nacos-Server:v1.4.2",
];

fn put_params<'a>(service: &'a str, ip: &'a str) -> [(&'a str, &'a str); 4] {
    [
        ("serviceName", service),
        ("ip", ip),
        ("port", "8080"),
        ("weight", "2"),
    ]
}

/// `PUT instance` for an instance that does not exist: Nacos 1.4 updates
/// (400 "instance not exist") only for Java clients from 1.0.0 and registers
/// for everyone else (`InstanceController#update`). Python's
/// `modify_naming_instance` after an expiry relies on it.
#[tokio::test]
async fn put_instance_registers_unless_the_client_is_java_from_1_0() {
    let node = TestNode::start().await;
    for (n, agent) in OTHERS.iter().enumerate() {
        let ip = format!("10.0.0.{}", n + 1);
        node.send_as(agent, "PUT", "/instance", &put_params("svc", &ip))
            .await
            .assert_ok();
        let detail = node.detail("svc", &ip, 8080).await;
        assert_eq!(
            detail.status, 200,
            "{agent:?} did not register: {}",
            detail.text
        );
        assert_eq!(detail.json()["weight"], 2.0);
    }
    for agent in [
        JAVA_14,
        "Nacos-Java-Client:v1.0.0",
        "Nacos-Java-Client:v2.0.3",
    ] {
        node.send_as(agent, "PUT", "/instance", &put_params("svc", "10.9.9.9"))
            .await
            .assert_error(400, "instance not exist");
    }
    assert_eq!(node.detail("svc", "10.9.9.9", 8080).await.status, 404);
}

/// The issue's report: an instance expires (here: is deregistered), then a
/// Python client's update brings it back.
#[tokio::test]
async fn a_python_update_after_an_expiry_registers_the_instance_again() {
    let node = TestNode::start().await;
    node.register("py", "10.0.0.1", 8080, &[]).await.assert_ok();
    node.send(
        "DELETE",
        "/instance",
        &[("serviceName", "py"), ("ip", "10.0.0.1"), ("port", "8080")],
    )
    .await
    .assert_ok();
    node.send_as(
        "Nacos-Python-Client:v1.0.0",
        "PUT",
        "/instance",
        &[
            ("serviceName", "py"),
            ("groupName", "DEFAULT_GROUP"),
            ("ip", "10.0.0.1"),
            ("port", "8080"),
            ("ephemeral", "True"),
            ("metadata", r#"{"v":"2"}"#),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(node.listed("py", &[]).await, vec!["10.0.0.1:8080"]);
}

/// Nacos reads the agent from `Client-Version` when the User-Agent is empty
/// (`WebUtils#getUserAgent`).
#[tokio::test]
async fn client_version_stands_in_for_a_missing_user_agent() {
    let node = TestNode::start().await;
    let reply = node
        .http
        .put(format!("{}/nacos/v1/ns/instance", node.base))
        .header("Client-Version", JAVA_14)
        .form(&put_params("svc", "10.0.0.1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        reply.status(),
        400,
        "Client-Version was not read as the agent"
    );
}

async fn list_as(node: &TestNode, agent: &str, service: &str) -> Value {
    let reply = node
        .send_as(agent, "GET", "/instance/list", &[("serviceName", service)])
        .await;
    reply.assert_ok();
    reply.json()
}

/// `instance/list` names the service `group@@name` in `dom` and in each
/// host's `serviceName` for Java clients from 1.0.0, and the bare name for
/// every other agent (`InstanceController#doSrvIpxt`), also when the service
/// has no instances.
#[tokio::test]
async fn names_are_grouped_only_for_java_clients_from_1_0() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let java = list_as(&node, JAVA_14, "orders").await;
    assert_eq!(java["dom"], "DEFAULT_GROUP@@orders");
    assert_eq!(java["hosts"][0]["serviceName"], "DEFAULT_GROUP@@orders");
    for agent in OTHERS {
        let list = list_as(&node, agent, "orders").await;
        assert_eq!(list["dom"], "orders", "{agent:?}");
        assert_eq!(list["hosts"][0]["serviceName"], "orders", "{agent:?}");
        assert_eq!(list["name"], "DEFAULT_GROUP@@orders", "{agent:?}");
    }
    // Both renderings are cached side by side; neither leaks into the other.
    let java = list_as(&node, JAVA_14, "orders").await;
    assert_eq!(java["hosts"][0]["serviceName"], "DEFAULT_GROUP@@orders");

    node.send("POST", "/service", &[("serviceName", "empty")])
        .await
        .assert_ok();
    assert_eq!(list_as(&node, "", "empty").await["dom"], "empty");
    assert_eq!(
        list_as(&node, JAVA_14, "empty").await["dom"],
        "DEFAULT_GROUP@@empty"
    );
}

/// Pushes follow the same rule as lists (Nacos renders a push with
/// `doSrvIpxt` and the subscriber's agent): a Go subscriber gets bare names.
/// The Java SDK agent is no push client (`PushService#canEnablePush`).
#[tokio::test]
async fn pushes_name_the_service_as_the_subscriber_expects() {
    let node = TestNode::start().await;
    let go = Subscriber::new().await;
    let listed = go
        .subscribe(&node, "orders", "Nacos-Go-Client:v1.0.1")
        .await;
    assert_eq!(listed["cacheMillis"], 10000, "Go clients take pushes");
    let sdk = Subscriber::new().await;
    let listed = sdk
        .subscribe(&node, "orders", "Nacos-SDK-Java:v1.4.1")
        .await;
    assert_eq!(
        listed["cacheMillis"], 3000,
        "the Java SDK agent takes no pushes"
    );
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let (push, _) = go.recv_until(|p| !p.hosts().is_empty()).await;
    assert_eq!(push.data["dom"], "orders");
    assert_eq!(push.data["hosts"][0]["serviceName"], "orders");
}

fn dom_names(reply: &Reply) -> Value {
    reply.assert_ok();
    reply.json()
}

/// `api/allDomNames` answers DNS-F clients up to 1.0.1 with the default
/// namespace's names as a list, everyone else with names per namespace
/// (`ApiController#allDomNames`).
#[tokio::test]
async fn old_dns_f_clients_get_the_old_all_dom_names() {
    let node = TestNode::start().await;
    node.register("a", "10.0.0.1", 1, &[]).await.assert_ok();
    node.register("b", "10.0.0.1", 1, &[("groupName", "g2")])
        .await
        .assert_ok();
    node.register("c", "10.0.0.1", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    let old = dom_names(
        &node
            .send_as("Nacos-DNS:v1.0.1", "GET", "/api/allDomNames", &[])
            .await,
    );
    assert_eq!(old, serde_json::json!({"count": 2, "doms": ["a", "b"]}));
    for agent in ["Nacos-DNS:v1.0.2", JAVA_14, ""] {
        let new = dom_names(&node.send_as(agent, "GET", "/api/allDomNames", &[]).await);
        assert_eq!(
            new,
            serde_json::json!({"count": 3, "doms": {"public": ["a", "b"], "dev": ["c"]}}),
            "{agent:?}"
        );
    }
}
