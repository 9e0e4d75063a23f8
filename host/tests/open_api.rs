//! A walk over every route of the Nacos 1.4 naming module
//! (`naming/.../controllers/*.java` at tag 1.4.2): none that a client, tool
//! or console could call answers 404 here, the routes Nacre deliberately
//! does not serve answer 501 with the reason, and the small ones not covered
//! elsewhere answer in Nacos's shapes.

mod common;

use common::TestNode;
use serde_json::json;

/// Every (method, path) of the 1.4 naming controllers that Nacre serves,
/// with parameters that make a well-formed request (`InstanceController`,
/// `ServiceController`, `CatalogController`, `ClusterController`,
/// `HealthController`, `OperatorController` under `/operator` and `/ops`,
/// `ApiController`).
/// Form or query parameters.
type Pairs = &'static [(&'static str, &'static str)];

const SERVED: &[(&str, &str, Pairs)] = &[
    (
        "POST",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    (
        "PUT",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    (
        "PATCH",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    (
        "GET",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    ("GET", "/instance/list", &[("serviceName", "svc")]),
    (
        "PUT",
        "/instance/beat",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    (
        "GET",
        "/instance/statuses",
        &[("key", "public##DEFAULT_GROUP@@svc")],
    ),
    (
        "POST",
        "/instance/statuses",
        &[("key", "public##DEFAULT_GROUP@@svc")],
    ),
    (
        "PUT",
        "/instance/metadata/batch",
        &[
            ("serviceName", "svc"),
            ("consistencyType", "ephemeral"),
            ("metadata", "a=1"),
        ],
    ),
    (
        "DELETE",
        "/instance/metadata/batch",
        &[
            ("serviceName", "svc"),
            ("consistencyType", "ephemeral"),
            ("metadata", "a=1"),
        ],
    ),
    ("POST", "/service", &[("serviceName", "made")]),
    (
        "PUT",
        "/service",
        &[("serviceName", "made"), ("protectThreshold", "0.1")],
    ),
    ("GET", "/service", &[("serviceName", "made")]),
    ("DELETE", "/service", &[("serviceName", "made")]),
    (
        "GET",
        "/service/list",
        &[("pageNo", "1"), ("pageSize", "10")],
    ),
    ("GET", "/service/names", &[]),
    ("POST", "/service/names", &[("expr", "sv")]),
    ("PUT", "/service/checksum", &[("serviceName", "svc")]),
    ("GET", "/service/subscribers", &[("serviceName", "svc")]),
    (
        "PUT",
        "/cluster",
        &[
            ("serviceName", "svc"),
            ("clusterName", "DEFAULT"),
            ("checkPort", "80"),
            ("useInstancePort4Check", "true"),
            ("healthChecker", r#"{"type":"TCP"}"#),
        ],
    ),
    (
        "GET",
        "/catalog/services",
        &[("pageNo", "1"), ("pageSize", "10")],
    ),
    ("GET", "/catalog/service", &[("serviceName", "svc")]),
    (
        "GET",
        "/catalog/instances",
        &[
            ("serviceName", "svc"),
            ("clusterName", "DEFAULT"),
            ("pageNo", "1"),
            ("pageSize", "10"),
        ],
    ),
    (
        "POST",
        "/catalog/instances",
        &[
            ("serviceName", "svc"),
            ("clusterName", "DEFAULT"),
            ("pageNo", "1"),
            ("pageSize", "10"),
        ],
    ),
    ("GET", "/catalog/rt/service", &[("serviceName", "svc")]),
    ("GET", "/health/server", &[]),
    ("GET", "/health/checkers", &[]),
    ("GET", "/operator/switches", &[]),
    (
        "PUT",
        "/operator/switches",
        &[("entry", "pushEnabled"), ("value", "true")],
    ),
    ("GET", "/operator/metrics", &[]),
    ("GET", "/operator/servers", &[]),
    ("GET", "/operator/push/state", &[]),
    ("GET", "/operator/distro/server", &[("serviceName", "svc")]),
    ("GET", "/operator/distro/status", &[]),
    ("GET", "/ops/switches", &[]),
    ("GET", "/ops/metrics", &[]),
    ("GET", "/ops/servers", &[]),
    ("GET", "/ops/push/state", &[]),
    ("GET", "/api/srvIPXT", &[("dom", "svc")]),
    (
        "PUT",
        "/api/clientBeat",
        &[("dom", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
    ("GET", "/api/allDomNames", &[]),
    (
        "DELETE",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
    ),
];

#[tokio::test]
async fn every_nacos_1_4_naming_route_is_served() {
    let node = TestNode::start().await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    for (method, path, params) in SERVED {
        let reply = node.send(method, path, params).await;
        assert_eq!(reply.status, 200, "{method} {path}: {}", reply.text);
    }
    // PUT health needs a cluster without a checker.
    node.set_checker("svc", "DEFAULT", r#"{"type":"NONE"}"#)
        .await;
    for path in ["/health", "/health/instance"] {
        let reply = node
            .send(
                "PUT",
                path,
                &[
                    ("serviceName", "svc"),
                    ("ip", "10.0.0.1"),
                    ("port", "1"),
                    ("healthy", "true"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "PUT {path}: {}", reply.text);
    }
}

/// Nacos's cluster-internal and deprecated routes: known, not served, 501
/// with the reason (a typo stays a 404).
#[tokio::test]
async fn nacos_internal_routes_answer_501_with_the_reason() {
    let node = TestNode::start().await;
    for (method, path) in [
        ("PUT", "/distro/datum"),
        ("GET", "/distro/datums"),
        ("PUT", "/distro/checksum"),
        ("POST", "/raft/vote"),
        ("GET", "/raft/leader"),
        ("POST", "/raft/datum/commit"),
        ("POST", "/service/status"),
        ("GET", "/operator/server/status"),
        ("GET", "/operator/cluster/state"),
        ("PUT", "/operator/log"),
    ] {
        let reply = node.send(method, path, &[]).await;
        reply.assert_error(501, "is not served by Nacre");
    }
    node.get("/raftt/leader", &[])
        .await
        .assert_error(404, "no such API");
}

/// `api/srvIPXT` and `api/clientBeat` name the service `dom`, in the
/// default group (`ApiController#srvIpxt`, `#clientBeat`).
#[tokio::test]
async fn the_oldest_routes_read_dom() {
    let node = TestNode::start().await;
    node.register("legacy", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let list = node.get("/api/srvIPXT", &[("dom", "legacy")]).await.json();
    assert_eq!(list["name"], "DEFAULT_GROUP@@legacy");
    assert_eq!(list["hosts"][0]["ip"], "10.0.0.1");
    let beat = node
        .send(
            "PUT",
            "/api/clientBeat",
            &[("dom", "legacy"), ("ip", "10.0.0.1"), ("port", "1")],
        )
        .await
        .json();
    assert_eq!(beat["code"], 10200);
    let unknown = node
        .send(
            "PUT",
            "/api/clientBeat",
            &[("dom", "legacy"), ("ip", "10.0.0.2"), ("port", "1")],
        )
        .await
        .json();
    assert_eq!(unknown["code"], 20404);
}

/// `health/server`, `health/checkers` (`HealthController`), `service/names`
/// (`ServiceController#searchService`), `service/checksum`,
/// `operator/distro/server` (`OperatorController`).
#[tokio::test]
async fn small_routes_answer_in_nacos_shapes() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.register("users", "10.0.0.1", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    let server = node.get("/health/server", &[]).await.json();
    let msg = server["msg"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(
            "Hello! I am Nacos-Naming and healthy! total services: raft 2, local port:"
        ),
        "{msg}"
    );
    let checkers = node.get("/health/checkers", &[]).await.json();
    assert_eq!(checkers["TCP"], json!({"type": "TCP"}));
    assert_eq!(checkers["NONE"], json!({"type": "NONE"}));
    assert_eq!(checkers["HTTP"]["expectedResponseCode"], 200);

    let names = node.get("/service/names", &[("expr", "ord")]).await.json();
    assert_eq!(
        names,
        json!({"count": 2, "services": {"public": ["orders"], "dev": []}})
    );
    let names = node
        .get("/service/names", &[("namespaceId", "dev")])
        .await
        .json();
    assert_eq!(names, json!({"count": 1, "services": {"dev": ["users"]}}));

    let before = node
        .send("PUT", "/service/checksum", &[("serviceName", "orders")])
        .await
        .json();
    node.register("orders", "10.0.0.2", 1, &[])
        .await
        .assert_ok();
    let after = node
        .send("PUT", "/service/checksum", &[("serviceName", "orders")])
        .await
        .json();
    assert!(before["checksum"].is_string() && before["checksum"] != after["checksum"]);
    node.send("PUT", "/service/checksum", &[("serviceName", "ghost")])
        .await
        .assert_error(404, "serviceName not found");

    let owner = node
        .get("/operator/distro/server", &[("serviceName", "orders")])
        .await
        .json();
    assert_eq!(
        owner["responsibleServer"],
        node.base.trim_start_matches("http://")
    );
    node.get("/ops/distro/server", &[("serviceName", "ghost")])
        .await
        .assert_error(400, "service not found");
}
