//! Service and operator endpoints of the Nacos v1 API, over real HTTP.

mod common;

use common::TestNode;
use serde_json::json;

#[tokio::test]
async fn service_crud() {
    let node = TestNode::start().await;
    node.send(
        "POST",
        "/service",
        &[
            ("serviceName", "catalog"),
            ("protectThreshold", "0.5"),
            ("metadata", r#"{"owner":"team-a"}"#),
        ],
    )
    .await
    .assert_ok();
    let again = node
        .send("POST", "/service", &[("serviceName", "catalog")])
        .await;
    again.assert_error(400, "already exists");

    let detail = node.get("/service", &[("serviceName", "catalog")]).await;
    detail.assert_ok();
    let detail = detail.json();
    assert_eq!(detail["name"], "catalog");
    assert_eq!(detail["groupName"], "DEFAULT_GROUP");
    assert_eq!(detail["namespaceId"], "public");
    assert_eq!(detail["protectThreshold"], 0.5);
    assert_eq!(detail["metadata"], json!({"owner": "team-a"}));
    assert_eq!(detail["selector"], json!({"type": "none"}));

    node.send(
        "PUT",
        "/service",
        &[("serviceName", "catalog"), ("metadata", "owner=team-b")],
    )
    .await
    .assert_ok();
    let detail = node
        .get("/service", &[("serviceName", "catalog")])
        .await
        .json();
    assert_eq!(detail["metadata"], json!({"owner": "team-b"}));
    assert_eq!(
        detail["protectThreshold"], 0.5,
        "PUT keeps what it was not given"
    );

    node.register("catalog", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let busy = node
        .send("DELETE", "/service", &[("serviceName", "catalog")])
        .await;
    busy.assert_error(400, "not empty");
    let detail = node
        .get("/service", &[("serviceName", "catalog")])
        .await
        .json();
    assert_eq!(detail["clusters"][0]["name"], "DEFAULT");

    node.deregister("catalog", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.send("DELETE", "/service", &[("serviceName", "catalog")])
        .await
        .assert_ok();
    assert_eq!(
        node.get("/service", &[("serviceName", "catalog")])
            .await
            .status,
        400
    );
    assert_eq!(
        node.send("DELETE", "/service", &[("serviceName", "catalog")])
            .await
            .status,
        400
    );
    assert_eq!(
        node.send("PUT", "/service", &[("serviceName", "catalog")])
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn service_list_pages_by_group() {
    let node = TestNode::start().await;
    for i in 0..25 {
        node.register(&format!("svc-{i:02}"), "10.0.0.1", 1, &[])
            .await
            .assert_ok();
    }
    node.register("other", "10.0.0.1", 1, &[("groupName", "g2")])
        .await
        .assert_ok();

    let page = node
        .get("/service/list", &[("pageNo", "1"), ("pageSize", "10")])
        .await
        .json();
    assert_eq!(page["count"], 25);
    assert_eq!(page["doms"].as_array().map(Vec::len), Some(10));
    assert_eq!(page["doms"][0], "svc-00");
    let last = node
        .get("/service/list", &[("pageNo", "3"), ("pageSize", "10")])
        .await
        .json();
    assert_eq!(last["doms"].as_array().map(Vec::len), Some(5));
    let beyond = node
        .get("/service/list", &[("pageNo", "9"), ("pageSize", "10")])
        .await
        .json();
    assert_eq!(beyond, json!({"count": 25, "doms": []}));
    let g2 = node
        .get(
            "/service/list",
            &[("pageNo", "1"), ("pageSize", "10"), ("groupName", "g2")],
        )
        .await
        .json();
    assert_eq!(g2, json!({"count": 1, "doms": ["other"]}));
    let empty = node
        .get(
            "/service/list",
            &[
                ("pageNo", "1"),
                ("pageSize", "10"),
                ("namespaceId", "nowhere"),
            ],
        )
        .await
        .json();
    assert_eq!(empty, json!({"count": 0, "doms": []}));
}

#[tokio::test]
async fn switches_are_real_values_and_take_effect() {
    let node = TestNode::start().await;
    let switches = node.get("/operator/switches", &[]).await.json();
    assert_eq!(switches["clientBeatInterval"], 5000);
    assert_eq!(switches["defaultPushCacheMillis"], 10000);
    assert_eq!(switches["defaultCacheMillis"], 3000);
    assert_eq!(switches["healthCheckEnabled"], true);
    assert_eq!(switches["lightBeatEnabled"], true);

    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "clientBeatInterval"), ("value", "1234")],
    )
    .await
    .assert_ok();
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    let beat = node
        .send(
            "PUT",
            "/instance/beat",
            &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "1")],
        )
        .await
        .json();
    assert_eq!(beat["clientBeatInterval"], 1234);

    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "defaultCacheMillis"), ("value", "777")],
    )
    .await
    .assert_ok();
    assert_eq!(node.list("svc", &[]).await["cacheMillis"], 777);

    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "disableAddIP"), ("value", "true")],
    )
    .await
    .assert_ok();
    let refused = node.register("svc", "10.0.0.2", 1, &[]).await;
    assert_eq!(refused.status, 400);
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();

    let unknown = node
        .send(
            "PUT",
            "/operator/switches",
            &[("entry", "noSuch"), ("value", "1")],
        )
        .await;
    unknown.assert_error(400, "update entry not found: noSuch");
    let bad = node
        .send(
            "PUT",
            "/operator/switches",
            &[("entry", "clientBeatInterval"), ("value", "x")],
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(
        node.get("/operator/switches", &[]).await.json()["clientBeatInterval"],
        1234
    );
}

#[tokio::test]
async fn metrics_and_servers_describe_this_node() {
    let node = TestNode::start().await;
    node.register("a", "10.0.0.1", 1, &[]).await.assert_ok();
    node.register("a", "10.0.0.2", 1, &[]).await.assert_ok();
    node.register("b", "10.0.0.1", 1, &[]).await.assert_ok();
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert_eq!(metrics["status"], "UP");
    assert_eq!(metrics["serviceCount"], 2);
    assert_eq!(metrics["instanceCount"], 3);
    assert_eq!(metrics["responsibleInstanceCount"], 3);
    assert!(metrics["mem"].as_f64().is_some_and(|m| m > 0.0 && m < 1.0));
    assert!(metrics["load"].as_f64().is_some());
    assert!(metrics["cpu"].as_f64().is_some());

    assert_eq!(metrics["push"]["subscribers"], 0);

    let prometheus = node.fetch("/nacre/v1/metrics").await.text;
    assert!(prometheus.contains("\nnacre_instances 3\n"), "{prometheus}");
    assert!(
        prometheus.contains("# TYPE nacre_push_total counter"),
        "{prometheus}"
    );

    let servers = node.get("/operator/servers", &[]).await.json();
    let members = servers["servers"].as_array().expect("servers");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["state"], "UP");
    assert_eq!(members[0]["address"], node.node().addr().to_string());

    for probe in ["liveness", "readiness"] {
        let reply = node
            .fetch(&format!("/nacos/v1/console/health/{probe}"))
            .await;
        assert_eq!(reply.status, 200, "{probe}: {}", reply.text);
    }
}

#[tokio::test]
async fn persistent_data_survives_a_restart_ephemeral_does_not() {
    let mut node = TestNode::start().await;
    node.send(
        "POST",
        "/service",
        &[("serviceName", "kept"), ("protectThreshold", "0.3")],
    )
    .await
    .assert_ok();
    node.register(
        "db",
        "10.0.0.1",
        5432,
        &[("ephemeral", "false"), ("weight", "3")],
    )
    .await
    .assert_ok();
    node.register("db", "10.0.0.2", 5432, &[("ephemeral", "false")])
        .await
        .assert_ok();
    node.deregister("db", "10.0.0.2", 5432, &[("ephemeral", "false")])
        .await
        .assert_ok();
    node.register("web", "10.0.0.3", 80, &[]).await.assert_ok();
    node.stop().await;

    let config = common::test_config(node.dir.path());
    let node = TestNode::start_in(node.dir, config).await;
    assert_eq!(node.listed("db", &[]).await, vec!["10.0.0.1:5432"]);
    let db = node.detail("db", "10.0.0.1", 5432).await.json();
    assert_eq!(db["weight"], 3.0);
    assert_eq!(db["ephemeral"], false);
    assert_eq!(
        node.get("/service", &[("serviceName", "kept")])
            .await
            .json()["protectThreshold"],
        0.3
    );
    assert!(
        node.listed("web", &[]).await.is_empty(),
        "ephemeral data lives in memory only"
    );
}
