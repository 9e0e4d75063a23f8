//! What Nacos 1.4 keys on the client agent (issue 14, kind 2), and the
//! parameter forms real clients send (kind 3), over real HTTP. Each
//! expectation is Nacos 1.4's, with the source it comes from.

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

/// Address forms real clients send, stored and listed as given: IPv6 in
/// brackets (Spring Cloud Alibaba with IPv6 preferred), with a zone, host
/// names. Nacos 1.4 refuses only digits-and-dots that are no IPv4 address
/// (`Instance#validate`), which Nacre keeps refusing.
#[tokio::test]
async fn every_address_form_clients_send_is_stored_as_given() {
    let node = TestNode::start().await;
    let forms = [
        "[2408:400a:8c:5400::1a]",
        "fe80::1%eth0",
        "[fe80::1%2]",
        "2408:400a:8c:5400::1b",
        "db-1.internal",
    ];
    for ip in forms {
        node.register("v6", ip, 8080, &[]).await.assert_ok();
        let detail = node.detail("v6", ip, 8080).await;
        detail.assert_ok();
        assert_eq!(detail.json()["ip"], ip);
    }
    let list = node.list("v6", &[]).await;
    let mut listed: Vec<&str> = list["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    listed.sort_unstable();
    let mut expected = forms.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(
        list["hosts"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["ip"] == "[fe80::1%2]"))
            .map(|h| h["instanceId"].clone()),
        Some("[fe80::1%2]#8080#DEFAULT#DEFAULT_GROUP@@v6".into())
    );
    // Beats find them too.
    let beat = node
        .send(
            "PUT",
            "/instance/beat",
            &[
                ("serviceName", "v6"),
                ("ip", "fe80::1%eth0"),
                ("port", "8080"),
            ],
        )
        .await;
    assert_eq!(beat.json()["code"], 10200);
    for bad in ["300.1.1.1", "[10.0.0.1]", "fe80::1%", "a b"] {
        node.register("v6", bad, 8080, &[])
            .await
            .assert_error(400, "Param 'ip' is illegal");
    }
}

/// The prober probes every address form it stores (before, a bracketed
/// address or a host name was skipped, and kept whatever health it had):
/// a host name whose address listens turns healthy, forms where nothing
/// listens turn unhealthy.
#[tokio::test]
async fn the_prober_probes_every_address_form() {
    let node = TestNode::start_with(|c| {
        c.health.probe_enabled = true;
        c.health.probe_interval_ms = 100;
        c.health.probe_timeout_ms = 500;
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let live = listener.local_addr().expect("addr").port();
    let dead = {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        closed.local_addr().expect("addr").port()
    };
    node.register(
        "probed",
        "localhost",
        live,
        &[("ephemeral", "false"), ("healthy", "false")],
    )
    .await
    .assert_ok();
    for ip in ["[::1]", "localhost"] {
        node.register("probed", ip, dead, &[("ephemeral", "false")])
            .await
            .assert_ok();
    }
    let health = |ip: &'static str, port: u16| {
        let node = &node;
        async move { node.detail("probed", ip, port).await.json()["healthy"] == true }
    };
    common::wait_until(
        std::time::Duration::from_secs(10),
        "every form probed",
        || async {
            health("localhost", live).await
                && !health("localhost", dead).await
                && !health("[::1]", dead).await
        },
    )
    .await;
    drop(listener);
}

/// Parameter aliases Nacos reads: `cluster` when `clusterName` is blank
/// (`InstanceController#getBasicIpAddress`), `dom` when `serviceName` is
/// absent (`DistroFilter`, "for client under 0.8.0").
#[tokio::test]
async fn older_parameter_names_are_read() {
    let node = TestNode::start().await;
    node.send(
        "POST",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("cluster", "zone-a"),
        ],
    )
    .await
    .assert_ok();
    let list = node.list("svc", &[]).await;
    assert_eq!(list["hosts"][0]["clusterName"], "zone-a");
    node.send(
        "DELETE",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("cluster", "zone-a"),
        ],
    )
    .await
    .assert_ok();
    assert!(node.listed("svc", &[]).await.is_empty());

    node.send(
        "POST",
        "/instance",
        &[("dom", "legacy"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await
    .assert_ok();
    assert_eq!(node.listed("legacy", &[]).await, vec!["10.0.0.1:1"]);
}

/// `#` separates the parts of an instance id (`ip#port#cluster#group@@name`):
/// a name holding one makes the id ambiguous, and Nacos 1.4 refuses it too
/// (`Service#validate`, "dom name can only have these characters"). A group
/// holding `@@` would make the grouped name ambiguous.
#[tokio::test]
async fn names_that_would_make_ids_ambiguous_are_refused() {
    let node = TestNode::start().await;
    for (params, param) in [
        (vec![("serviceName", "a#b")], "serviceName"),
        (vec![("serviceName", "g#1@@b")], "groupName"),
        (
            vec![("serviceName", "b"), ("groupName", "g#1")],
            "groupName",
        ),
        (
            vec![("serviceName", "b"), ("groupName", "x@@y")],
            "groupName",
        ),
    ] {
        let mut params = params;
        params.extend([("ip", "10.0.0.1"), ("port", "1")]);
        node.send("POST", "/instance", &params)
            .await
            .assert_error(400, &format!("Param '{param}' is illegal"));
    }
    let all = node
        .get(
            "/service/list",
            &[("pageNo", "1"), ("pageSize", "10"), ("groupName", "*")],
        )
        .await
        .json();
    assert_eq!(all["count"], 0, "a refused name was registered: {all}");
}
