//! The instance endpoints of the Nacos v1 API, over real HTTP.

mod common;

use common::TestNode;
use serde_json::json;

#[tokio::test]
async fn register_list_detail_deregister() {
    let node = TestNode::start().await;
    node.register(
        "orders",
        "10.0.0.1",
        8080,
        &[("metadata", r#"{"zone":"a"}"#), ("weight", "2.5")],
    )
    .await
    .assert_ok();
    assert_eq!(
        node.register("orders", "10.0.0.2", 8080, &[]).await.text,
        "ok"
    );

    let list = node.list("orders", &[]).await;
    assert_eq!(list["name"], "DEFAULT_GROUP@@orders");
    assert_eq!(list["dom"], "orders");
    assert_eq!(list["cacheMillis"], 3000);
    assert!(list["lastRefTime"].as_i64().unwrap_or(0) > 0);
    let hosts = list["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2);
    let first = &hosts[0];
    assert_eq!(first["ip"], "10.0.0.1");
    assert_eq!(first["port"], 8080);
    assert_eq!(first["weight"], 2.5);
    assert_eq!(first["healthy"], true);
    assert_eq!(first["valid"], true);
    assert_eq!(first["enabled"], true);
    assert_eq!(first["ephemeral"], true);
    assert_eq!(first["marked"], false);
    assert_eq!(first["clusterName"], "DEFAULT");
    // A caller that is not a Java client from 1.0.0 gets the bare name
    // (Nacos 1.4 `InstanceController#doSrvIpxt`).
    assert_eq!(first["serviceName"], "orders");
    assert_eq!(
        first["instanceId"],
        "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders"
    );
    assert_eq!(first["metadata"], json!({"zone": "a"}));

    let detail = node.detail("orders", "10.0.0.1", 8080).await;
    detail.assert_ok();
    let detail = detail.json();
    assert_eq!(detail["service"], "DEFAULT_GROUP@@orders");
    assert_eq!(detail["weight"], 2.5);
    assert_eq!(detail["metadata"]["zone"], "a");

    node.send(
        "DELETE",
        "/instance",
        &[
            ("serviceName", "orders"),
            ("ip", "10.0.0.1"),
            ("port", "8080"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(node.listed("orders", &[]).await, vec!["10.0.0.2:8080"]);
    assert_eq!(node.detail("orders", "10.0.0.1", 8080).await.status, 404);
    // Deregistering what is not there is not an error, as in Nacos.
    node.send(
        "DELETE",
        "/instance",
        &[("serviceName", "ghost"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn java_clients_get_the_grouped_dom() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let reply = node
        .http
        .get(format!(
            "{}/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP@@orders",
            node.base
        ))
        .header("User-Agent", "Nacos-Java-Client:v1.4.1")
        .send()
        .await
        .expect("sent");
    let list: serde_json::Value = reply.json().await.expect("json");
    assert_eq!(list["dom"], "DEFAULT_GROUP@@orders");
}

#[tokio::test]
async fn groups_namespaces_and_clusters_are_separate() {
    let node = TestNode::start().await;
    node.register("pay", "10.0.0.1", 1, &[]).await.assert_ok();
    node.register("pay", "10.0.0.2", 1, &[("groupName", "g2")])
        .await
        .assert_ok();
    node.register("g2@@pay", "10.0.0.3", 1, &[])
        .await
        .assert_ok();
    node.register("pay", "10.0.0.4", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    node.register("pay", "10.0.0.5", 1, &[("clusterName", "east")])
        .await
        .assert_ok();

    assert_eq!(
        node.listed("pay", &[]).await,
        vec!["10.0.0.1:1", "10.0.0.5:1"]
    );
    assert_eq!(
        node.listed("pay", &[("groupName", "g2")]).await,
        vec!["10.0.0.2:1", "10.0.0.3:1"]
    );
    assert_eq!(
        node.listed("pay", &[("namespaceId", "dev")]).await,
        vec!["10.0.0.4:1"]
    );
    assert_eq!(
        node.listed("pay", &[("clusters", "east")]).await,
        vec!["10.0.0.5:1"]
    );
    assert_eq!(
        node.listed("pay", &[("clusters", "DEFAULT,east")])
            .await
            .len(),
        2
    );
    assert_eq!(node.listed("pay", &[("clusters", "west")]).await.len(), 0);
    let list = node.list("pay", &[("clusters", "east")]).await;
    assert_eq!(list["clusters"], "east");
    assert_eq!(list["hosts"][0]["clusterName"], "east");
}

#[tokio::test]
async fn unknown_service_lists_empty_hosts() {
    let node = TestNode::start().await;
    let list = node.list("nobody", &[]).await;
    assert_eq!(list["hosts"], json!([]));
    assert_eq!(list["name"], "DEFAULT_GROUP@@nobody");
    assert_eq!(list["cacheMillis"], 3000);
}

#[tokio::test]
async fn disabled_instances_are_left_out() {
    let node = TestNode::start().await;
    node.register("svc", "10.0.0.1", 1, &[("enabled", "false")])
        .await
        .assert_ok();
    node.register("svc", "10.0.0.2", 1, &[]).await.assert_ok();
    assert_eq!(node.listed("svc", &[]).await, vec!["10.0.0.2:1"]);
    // PATCH re-enables it without touching anything else.
    node.send(
        "PATCH",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("enabled", "true"),
        ],
    )
    .await
    .assert_ok();
    assert_eq!(node.listed("svc", &[]).await.len(), 2);
}

#[tokio::test]
async fn protect_threshold_returns_everything_as_healthy() {
    let node = TestNode::start().await;
    node.send(
        "POST",
        "/service",
        &[("serviceName", "guarded"), ("protectThreshold", "0.6")],
    )
    .await
    .assert_ok();
    node.register("guarded", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.register("guarded", "10.0.0.2", 1, &[("healthy", "false")])
        .await
        .assert_ok();
    node.register("guarded", "10.0.0.3", 1, &[("healthy", "false")])
        .await
        .assert_ok();

    // 1 of 3 healthy (0.33 <= 0.6): every instance is returned, as healthy.
    let list = node.list("guarded", &[("healthyOnly", "true")]).await;
    assert_eq!(list["reachProtectionThreshold"], true);
    let hosts = list["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 3);
    assert!(hosts.iter().all(|h| h["healthy"] == true));

    // Below the threshold it no longer applies: healthyOnly filters.
    node.send(
        "PUT",
        "/service",
        &[("serviceName", "guarded"), ("protectThreshold", "0.2")],
    )
    .await
    .assert_ok();
    let list = node.list("guarded", &[("healthyOnly", "true")]).await;
    assert_eq!(list["reachProtectionThreshold"], false);
    assert_eq!(list["hosts"].as_array().map(Vec::len), Some(1));
    let all = node.list("guarded", &[]).await;
    let unhealthy = all["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| h["healthy"] == false)
        .count();
    assert_eq!(unhealthy, 2);
}

#[tokio::test]
async fn update_replaces_fields_patch_changes_only_given_ones() {
    let node = TestNode::start().await;
    node.register(
        "svc",
        "10.0.0.1",
        1,
        &[("weight", "3"), ("metadata", "a=1")],
    )
    .await
    .assert_ok();

    node.send(
        "PATCH",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("metadata", "b=2"),
        ],
    )
    .await
    .assert_ok();
    let detail = node.detail("svc", "10.0.0.1", 1).await.json();
    assert_eq!(detail["weight"], 3.0);
    assert_eq!(detail["metadata"], json!({"b": "2"}));

    node.send(
        "PUT",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("weight", "7"),
        ],
    )
    .await
    .assert_ok();
    let detail = node.detail("svc", "10.0.0.1", 1).await.json();
    assert_eq!(detail["weight"], 7.0);
    assert_eq!(detail["metadata"], json!({}));

    // Only a Java client from 1.0.0 is refused an unknown instance; others
    // register it (Nacos 1.4 `InstanceController#update`; tests/compat_clients.rs).
    let missing = node
        .send_as(
            "Nacos-Java-Client:v1.4.1",
            "PUT",
            "/instance",
            &[("serviceName", "svc"), ("ip", "10.0.0.9"), ("port", "1")],
        )
        .await;
    missing.assert_error(400, "instance not exist");
}

#[tokio::test]
async fn statuses_report_health_per_address() {
    let node = TestNode::start().await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    node.register("svc", "10.0.0.2", 2, &[("healthy", "false")])
        .await
        .assert_ok();
    let reply = node
        .get(
            "/instance/statuses",
            &[("key", "public##DEFAULT_GROUP@@svc")],
        )
        .await;
    reply.assert_ok();
    assert_eq!(
        reply.json()["ips"],
        json!(["10.0.0.1:1_true", "10.0.0.2:2_false"])
    );
    assert_eq!(
        node.get(
            "/instance/statuses",
            &[("key", "public##DEFAULT_GROUP@@none")]
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn beats_refresh_reregister_and_report_intervals() {
    let node = TestNode::start().await;
    let svc = "DEFAULT_GROUP@@beaty";
    // Unknown instance, light beat: 20404 so the client re-registers.
    let reply = node
        .send(
            "PUT",
            "/instance/beat",
            &[("serviceName", svc), ("ip", "10.0.0.1"), ("port", "80")],
        )
        .await;
    reply.assert_ok();
    assert_eq!(
        reply.json(),
        json!({"clientBeatInterval": 5000, "code": 20404, "lightBeatEnabled": true})
    );
    assert!(
        node.listed("beaty", &[]).await.is_empty(),
        "a light beat must not register"
    );

    // Unknown instance with a beat body: registered from the body.
    let beat = json!({
        "ip": "10.0.0.1", "port": 80, "weight": 4.0, "serviceName": svc, "cluster": "DEFAULT",
        "metadata": {"preserved.heart.beat.interval": "2000", "v": "1"},
        "scheduled": false, "period": 5000, "stopped": false
    })
    .to_string();
    let reply = node
        .send(
            "PUT",
            "/instance/beat",
            &[("serviceName", svc), ("beat", &beat)],
        )
        .await;
    reply.assert_ok();
    let reply = reply.json();
    assert_eq!(reply["code"], 10200);
    assert_eq!(
        reply["clientBeatInterval"], 2000,
        "per-instance interval from metadata"
    );
    let detail = node.detail("beaty", "10.0.0.1", 80).await.json();
    assert_eq!(detail["weight"], 4.0);
    assert_eq!(detail["metadata"]["v"], "1");

    // Known instance, light beat.
    let reply = node
        .send(
            "PUT",
            "/instance/beat",
            &[("serviceName", svc), ("ip", "10.0.0.1"), ("port", "80")],
        )
        .await;
    assert_eq!(reply.json()["code"], 10200);
}

#[tokio::test]
async fn mixing_ephemeral_and_persistent_for_one_address_is_refused() {
    let node = TestNode::start().await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    let reply = node
        .register("svc", "10.0.0.1", 1, &[("ephemeral", "false")])
        .await;
    reply.assert_error(400, "already registered as ephemeral");
}

#[tokio::test]
async fn marked_health_is_set_by_hand() {
    let node = TestNode::start().await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    // By hand only where no checker runs (Nacos 1.4 `HealthController#update`).
    node.set_checker("svc", "DEFAULT", r#"{"type":"NONE"}"#)
        .await;
    node.set_health("svc", "10.0.0.1", 1, false)
        .await
        .assert_ok();
    let detail = node.detail("svc", "10.0.0.1", 1).await.json();
    assert_eq!(detail["healthy"], false);
    assert_eq!(detail["marked"], true);
    // A beat does not override an operator's mark.
    node.send(
        "PUT",
        "/instance/beat",
        &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await
    .assert_ok();
    assert_eq!(
        node.detail("svc", "10.0.0.1", 1).await.json()["healthy"],
        false
    );
}
