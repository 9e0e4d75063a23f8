//! The console-facing naming reads, in Nacos 1.4's shapes, over real HTTP:
//! `service/list` across groups (issue 14, kind 4) and `catalog/*` (kind 5;
//! `service/subscribers` in subscribers.rs, `instance/metadata/batch` in
//! metadata_batch.rs). Each
//! expectation is Nacos 1.4's, with the source it comes from; where Nacre
//! does better on purpose (literal search, stable order, real pages) the
//! test says so.

mod common;

use common::TestNode;
use serde_json::{Value, json};

fn page<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![("pageNo", "1"), ("pageSize", "100")];
    params.extend_from_slice(extra);
    params
}

/// `service/list?groupName=*` lists the services of every group, named
/// `group@@name` (`ServiceController#list` keeps every name when the group
/// is `*`, and strips only the requested group's prefix otherwise), in
/// Nacos 1.4's order (its service map is sorted by grouped name).
#[tokio::test]
async fn service_list_of_every_group() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.register("users", "10.0.0.1", 1, &[("groupName", "g2")])
        .await
        .assert_ok();
    node.register("audit", "10.0.0.1", 1, &[("groupName", "g2")])
        .await
        .assert_ok();
    node.register("other-ns", "10.0.0.1", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    let all = node
        .get("/service/list", &page(&[("groupName", "*")]))
        .await;
    assert_eq!(
        all.json(),
        json!({"count": 3, "doms": ["DEFAULT_GROUP@@orders", "g2@@audit", "g2@@users"]})
    );
    let second = node
        .get(
            "/service/list",
            &[("pageNo", "2"), ("pageSize", "2"), ("groupName", "*")],
        )
        .await;
    assert_eq!(second.json(), json!({"count": 3, "doms": ["g2@@users"]}));
    let g2 = node
        .get("/service/list", &page(&[("groupName", "g2")]))
        .await;
    assert_eq!(g2.json(), json!({"count": 2, "doms": ["audit", "users"]}));
}

/// `service/list?selector=` keeps services by a label expression on
/// instance or service metadata (`ServiceController#list`,
/// `filterInstanceMetadata`, `filterServiceMetadata`).
#[tokio::test]
async fn service_list_by_metadata_selector() {
    let node = TestNode::start().await;
    node.register("a", "10.0.0.1", 1, &[("metadata", "zone=z1")])
        .await
        .assert_ok();
    node.register("b", "10.0.0.1", 1, &[("metadata", "zone=z2")])
        .await
        .assert_ok();
    node.send(
        "POST",
        "/service",
        &[("serviceName", "c"), ("metadata", "tier=gold")],
    )
    .await
    .assert_ok();
    let select = |expression: &str| json!({"type": "label", "expression": expression}).to_string();
    let by_instance = select("INSTANCE.metadata.zone = 'z1'");
    let reply = node
        .get("/service/list", &page(&[("selector", &by_instance)]))
        .await;
    assert_eq!(reply.json(), json!({"count": 1, "doms": ["a"]}));
    let by_service = select("SERVICE.metadata.tier = 'gold'");
    let reply = node
        .get("/service/list", &page(&[("selector", &by_service)]))
        .await;
    assert_eq!(reply.json(), json!({"count": 1, "doms": ["c"]}));
    let none = r#"{"type":"none"}"#;
    let reply = node
        .get("/service/list", &page(&[("selector", none)]))
        .await;
    assert_eq!(reply.json()["count"], 3);
    let no_condition = select("zone");
    for bad in ["{", r#"{"type":"regex"}"#, no_condition.as_str()] {
        node.get("/service/list", &page(&[("selector", bad)]))
            .await
            .assert_error(400, "Param 'selector' is illegal");
    }
}

async fn catalog(node: &TestNode, extra: &[(&'static str, &'static str)]) -> Value {
    let reply = node.get("/catalog/services", &page(extra)).await;
    reply.assert_ok();
    reply.json()
}

/// `catalog/services`: one row per service with its counts, `triggerFlag`
/// a string (`CatalogController#listDetail`, `Service#triggerFlag`).
#[tokio::test]
async fn catalog_services_rows_counts_and_filters() {
    let node = TestNode::start().await;
    for (ip, healthy) in [
        ("10.0.0.1", "true"),
        ("10.0.0.2", "false"),
        ("10.0.0.3", "false"),
    ] {
        node.register("Orders-API", ip, 1, &[("healthy", healthy)])
            .await
            .assert_ok();
    }
    node.register("Orders-API", "10.0.0.4", 1, &[("clusterName", "c2")])
        .await
        .assert_ok();
    node.send(
        "PUT",
        "/service",
        &[("serviceName", "Orders-API"), ("protectThreshold", "0.5")],
    )
    .await
    .assert_ok();
    node.register("users", "10.0.0.1", 1, &[("groupName", "g2")])
        .await
        .assert_ok();
    node.send("POST", "/service", &[("serviceName", "empty")])
        .await
        .assert_ok();

    let all = catalog(&node, &[]).await;
    assert_eq!(all["count"], 3);
    assert_eq!(
        all["serviceList"][0],
        json!({"name": "Orders-API", "groupName": "DEFAULT_GROUP", "clusterCount": 2,
               "ipCount": 4, "healthyInstanceCount": 2, "triggerFlag": "true"})
    );
    // 0/0 is no trigger.
    assert_eq!(all["serviceList"][1]["name"], "empty");
    assert_eq!(all["serviceList"][1]["triggerFlag"], "false");
    // Literal, case-insensitive search (Nacos: a case-sensitive regex).
    let found = catalog(&node, &[("serviceNameParam", "orders")]).await;
    assert_eq!(found["count"], 1);
    assert_eq!(
        catalog(&node, &[("serviceNameParam", "ord.rs")]).await["count"],
        0
    );
    assert_eq!(
        catalog(&node, &[("groupNameParam", "g2")]).await["count"],
        1
    );
    // hasIpCount leaves out services without instances.
    assert_eq!(catalog(&node, &[("hasIpCount", "true")]).await["count"], 2);
    // instance keeps services holding an ip (or ip:port) (1.4 only).
    assert_eq!(
        catalog(&node, &[("instance", "10.0.0.4")]).await["count"],
        1
    );
    assert_eq!(
        catalog(&node, &[("instance", "10.0.0.1:1")]).await["count"],
        2
    );
    assert_eq!(
        catalog(&node, &[("serviceNameParam", "nothing")]).await,
        json!({"serviceList": [], "count": 0})
    );
}

/// Pages are real and in one order: together they hold every service once
/// (Nacos 1.4 returns everything when the total fits a page, and its
/// `withInstances` branch skips the first page: not copied).
#[tokio::test]
async fn catalog_pages_are_stable_and_complete() {
    let node = TestNode::start().await;
    for n in 0..25 {
        node.register(&format!("svc-{n:02}"), "10.0.0.1", 1, &[])
            .await
            .assert_ok();
    }
    let mut seen = Vec::new();
    for page_no in ["1", "2", "3"] {
        let reply = node
            .get(
                "/catalog/services",
                &[("pageNo", page_no), ("pageSize", "10")],
            )
            .await
            .json();
        assert_eq!(reply["count"], 25);
        for row in reply["serviceList"].as_array().expect("rows") {
            seen.push(row["name"].as_str().unwrap_or("").to_string());
        }
    }
    let expected: Vec<String> = (0..25).map(|n| format!("svc-{n:02}")).collect();
    assert_eq!(seen, expected);
    let detailed = node
        .get(
            "/catalog/services",
            &[
                ("pageNo", "3"),
                ("pageSize", "10"),
                ("withInstances", "true"),
            ],
        )
        .await
        .json();
    assert_eq!(detailed.as_array().map(Vec::len), Some(5));
}

/// `withInstances=true`: a bare array of services with their hosts per
/// cluster; `valid` is the instance's health (`ServiceDetailInfo`, `IpAddressInfo`).
#[tokio::test]
async fn catalog_services_with_instances() {
    let node = TestNode::start().await;
    node.register(
        "orders",
        "10.0.0.1",
        8080,
        &[("healthy", "false"), ("metadata", "v=1"), ("weight", "2")],
    )
    .await
    .assert_ok();
    let reply = catalog(&node, &[("withInstances", "true")]).await;
    assert_eq!(
        reply,
        json!([{
            "serviceName": "orders", "groupName": "DEFAULT_GROUP", "metadata": {},
            "clusterMap": {"DEFAULT": {"hosts": [{"ip": "10.0.0.1", "port": 8080, "valid": false,
                "weight": 2.0, "enabled": true, "metadata": {"v": "1"}}]}}
        }])
    );
}

/// `catalog/service`: the service and its clusters (`CatalogController#serviceDetail`);
/// 404 for an unknown service (`NacosException.NOT_FOUND`).
#[tokio::test]
async fn catalog_service_detail() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.send(
        "PUT",
        "/cluster",
        &[
            ("serviceName", "orders"),
            ("clusterName", "DEFAULT"),
            ("checkPort", "0"),
            ("useInstancePort4Check", "true"),
            ("healthChecker", r#"{"type":"TCP"}"#),
            ("metadata", "k=v"),
        ],
    )
    .await
    .assert_ok();
    let detail = node
        .get("/catalog/service", &[("serviceName", "orders")])
        .await;
    detail.assert_ok();
    assert_eq!(
        detail.json(),
        json!({
            "service": {"name": "orders", "groupName": "DEFAULT_GROUP", "protectThreshold": 0.0,
                        "selector": {"type": "none"}, "metadata": {}},
            "clusters": [{"serviceName": "DEFAULT_GROUP@@orders", "name": "DEFAULT",
                          "healthChecker": {"type": "TCP"}, "defaultPort": 80, "defaultCheckPort": 80,
                          "useIPPort4Check": true, "metadata": {"k": "v"}}]
        })
    );
    node.get("/catalog/service", &[("serviceName", "ghost")])
        .await
        .assert_error(404, "service DEFAULT_GROUP@@ghost is not found!");
}

/// `catalog/instances`: every instance of one cluster, disabled and
/// unhealthy ones too, paged; `clusterName`, `pageNo` and `pageSize` are
/// required; unknown service or cluster is 404 (`CatalogController#instanceList`).
#[tokio::test]
async fn catalog_instances_of_a_cluster() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[("enabled", "false")])
        .await
        .assert_ok();
    node.register("orders", "10.0.0.2", 1, &[("healthy", "false")])
        .await
        .assert_ok();
    node.register("orders", "10.0.0.3", 1, &[("clusterName", "c2")])
        .await
        .assert_ok();
    let query = |page_no: &'static str| {
        vec![
            ("serviceName", "orders"),
            ("clusterName", "DEFAULT"),
            ("pageNo", page_no),
            ("pageSize", "1"),
        ]
    };
    let first = node.get("/catalog/instances", &query("1")).await.json();
    assert_eq!(first["count"], 2);
    let instance = &first["list"][0];
    assert_eq!(instance["ip"], "10.0.0.1");
    assert_eq!(instance["enabled"], false);
    assert_eq!(
        instance["instanceId"],
        "10.0.0.1#1#DEFAULT#DEFAULT_GROUP@@orders"
    );
    assert_eq!(instance["serviceName"], "DEFAULT_GROUP@@orders");
    assert_eq!(instance["instanceHeartBeatTimeOut"], 15000);
    assert_eq!(instance["ipDeleteTimeout"], 30000);
    assert_eq!(instance["instanceHeartBeatInterval"], 5000);
    let second = node.get("/catalog/instances", &query("2")).await.json();
    assert_eq!(second["list"][0]["healthy"], false);
    assert_eq!(
        node.send("POST", "/catalog/instances", &query("3"))
            .await
            .json(),
        json!({"list": [], "count": 2})
    );
    let mut unknown = query("1");
    unknown[1] = ("clusterName", "nope");
    node.get("/catalog/instances", &unknown)
        .await
        .assert_error(404, "cluster nope is not found!");
    unknown[0] = ("serviceName", "ghost");
    node.get("/catalog/instances", &unknown)
        .await
        .assert_error(404, "is not found!");
    for missing in ["clusterName", "pageNo", "pageSize"] {
        let params: Vec<_> = query("1")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        node.get("/catalog/instances", &params)
            .await
            .assert_error(400, &format!("Param '{missing}' is required."));
    }
}
