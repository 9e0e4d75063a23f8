//! The web console's routes over real HTTP (issue 16): the bundle at
//! `/nacos/`, the Nacos-shaped `console/namespaces` and `core/cluster/nodes`
//! (Nacos 2.4's `NamespaceController` and `NacosClusterController`), the
//! change feed with the cause of each change, console overrides and what a
//! re-registration does to them, the live stream, and `console.enabled`.

mod common;

use std::time::Duration;

use common::{TestNode, wait_for};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(10);

/// The newest feed entries of `service` (default namespace and group), newest first.
async fn feed(node: &TestNode, service: &str) -> Vec<Value> {
    let reply = node
        .fetch(&format!("/nacre/v1/console/feed?serviceName={service}"))
        .await;
    reply.assert_ok();
    reply.json()["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the newest entry of `service`'s feed is a `what`; its feed then.
async fn newest_becomes(node: &TestNode, service: &str, what: &str) -> Vec<Value> {
    wait_for(
        &format!("{what} at the top of {service}'s feed"),
        LIMIT,
        || async {
            feed(node, service)
                .await
                .first()
                .is_some_and(|c| c["what"] == what)
        },
    )
    .await;
    feed(node, service).await
}

/// `what` and `cause.kind` of each entry, newest first.
fn whats(changes: &[Value]) -> Vec<(String, String)> {
    changes
        .iter()
        .map(|c| {
            (
                c["what"].as_str().unwrap_or("").to_string(),
                c["cause"]["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// A header of `response` as text (empty when absent or not text).
fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// What the console sends to edit an instance: `PATCH instance` of
/// `orders` 10.0.0.1:80 with `fields`.
async fn edit(node: &TestNode, fields: &[(&str, &str)]) {
    let mut params = vec![
        ("serviceName", "orders"),
        ("ip", "10.0.0.1"),
        ("port", "80"),
    ];
    params.extend_from_slice(fields);
    node.send("PATCH", "/instance", &params).await.assert_ok();
}

/// The console's view of one instance (`/nacre/v1/console/instances`).
async fn console_instance(node: &TestNode, service: &str) -> Value {
    let reply = node
        .fetch(&format!(
            "/nacre/v1/console/instances?serviceName={service}"
        ))
        .await;
    reply.assert_ok();
    reply.json()["list"][0].clone()
}

#[tokio::test]
async fn the_bundle_is_served_at_nacos() {
    let node = TestNode::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let redirect = client
        .get(format!("{}/nacos", node.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(redirect.status().as_u16(), 308);
    assert_eq!(redirect.headers()["location"], "/nacos/");
    let page = client
        .get(format!("{}/nacos/", node.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status().as_u16(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let policy = header(&page, "content-security-policy");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.text()
            .await
            .unwrap_or_default()
            .contains("/nacos/console/app.js")
    );
    let script = node.fetch("/nacos/console/app.js").await;
    script.assert_ok();
    assert!(script.text.contains("EventSource"));
    node.fetch("/nacos/console/../../etc/passwd")
        .await
        .assert_error(404, "no such");
    node.fetch("/nacos/console/nope.js")
        .await
        .assert_error(404, "no such file");
}

/// `console.enabled = false`: no bundle, feed or stream; the Nacos-shaped
/// routes tools call stay.
#[tokio::test]
async fn a_disabled_console_serves_only_the_nacos_routes() {
    let node = TestNode::start_with(|c| c.console.enabled = false).await;
    assert_eq!(node.fetch("/nacos/").await.status, 404);
    assert_eq!(node.fetch("/nacre/v1/console/feed").await.status, 404);
    assert_eq!(node.fetch("/nacre/v1/console/events").await.status, 404);
    node.fetch("/nacos/v1/console/namespaces").await.assert_ok();
    node.fetch("/nacos/v1/core/cluster/nodes").await.assert_ok();
}

/// Nacos 1.x/2.x list `public` first with the id `""`, custom namespaces
/// after it with `type` 2 (`NamespaceController#getNamespaces`).
#[tokio::test]
async fn namespaces_in_nacos_shapes() {
    let node = TestNode::start().await;
    node.register("a", "10.0.0.1", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    node.register("b", "10.0.0.1", 1, &[]).await.assert_ok();
    let all = node.fetch("/nacos/v1/console/namespaces").await.json();
    assert_eq!(all["code"], 200);
    assert_eq!(all["message"], Value::Null);
    assert_eq!(
        all["data"],
        json!([
            {"namespace": "", "namespaceShowName": "public", "namespaceDesc": null,
             "quota": 200, "configCount": 0, "type": 0, "serviceCount": 1},
            {"namespace": "dev", "namespaceShowName": "dev", "namespaceDesc": null,
             "quota": 200, "configCount": 0, "type": 2, "serviceCount": 1},
        ])
    );
    let one = node
        .fetch("/nacos/v1/console/namespaces?show=all&namespaceId=dev")
        .await
        .json();
    assert_eq!(one["namespace"], "dev");
    let exists = |id: &str| {
        format!("/nacos/v1/console/namespaces?checkNamespaceIdExist=true&customNamespaceId={id}")
    };
    assert_eq!(node.fetch(&exists("dev")).await.text, "true");
    assert_eq!(node.fetch(&exists("prod")).await.text, "false");
    node.fetch("/nacos/v1/console/namespaces?show=all&namespaceId=prod")
        .await
        .assert_error(404, "namespace prod is not found");
}

/// `method /nacos/v1/console/namespaces` with `params` as a form, as
/// Nacos's console sends it: (status, body).
async fn namespace_write(node: &TestNode, method: &str, params: &[(&str, &str)]) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = node
        .http
        .request(method, format!("{}/nacos/v1/console/namespaces", node.base))
        .form(params)
        .send()
        .await
        .expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The namespaces listed: (id, show name, description, services), `public`
/// first.
async fn namespaces(node: &TestNode) -> Vec<(String, String, Value, u64)> {
    let all = node.fetch("/nacos/v1/console/namespaces").await.json();
    all["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|n| {
            (
                n["namespace"].as_str().unwrap_or_default().to_string(),
                n["namespaceShowName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                n["namespaceDesc"].clone(),
                n["serviceCount"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn named(id: &str, name: &str, description: Value, services: u64) -> (String, String, Value, u64) {
    (id.to_string(), name.to_string(), description, services)
}

/// Namespace records (`NamespaceController`'s writes): refused input
/// changes nothing, a record names a namespace and keeps it listed while
/// empty, a rename and a deletion hold across restarts, and a namespace
/// that still holds services cannot be deleted.
#[tokio::test]
async fn namespaces_are_created_renamed_and_deleted() {
    let mut node = TestNode::start().await;
    let public = named("", "public", Value::Null, 0);
    for (params, needle) in [
        (
            vec![("customNamespaceId", "a b"), ("namespaceName", "x")],
            "Param 'customNamespaceId' is illegal",
        ),
        (
            vec![("customNamespaceId", "public"), ("namespaceName", "x")],
            "public is the default namespace",
        ),
        (
            vec![("customNamespaceId", "prod")],
            "Param 'namespaceName' is required",
        ),
        (
            vec![("customNamespaceId", "prod"), ("namespaceName", "a#b")],
            "Param 'namespaceName' is illegal",
        ),
    ] {
        let (status, body) = namespace_write(&node, "POST", &params).await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert!(body.contains(needle), "{params:?}: {body}");
    }
    assert_eq!(namespaces(&node).await, std::slice::from_ref(&public));

    let create = [
        ("customNamespaceId", "prod"),
        ("namespaceName", "Production"),
        ("namespaceDesc", "live traffic"),
    ];
    assert_eq!(
        namespace_write(&node, "POST", &create).await,
        (200, "true".into())
    );
    let (status, body) = namespace_write(&node, "POST", &create).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("the namespaceId is existed, namespaceId: prod"),
        "{body}"
    );
    assert_eq!(
        namespace_write(&node, "POST", &[("namespaceName", "Scratch")]).await,
        (200, "true".into())
    );
    let listed = namespaces(&node).await;
    let scratch = listed
        .iter()
        .find(|n| n.1 == "Scratch")
        .map(|n| n.0.clone())
        .expect("the namespace created without an id");
    assert_eq!(scratch.len(), 36, "a UUID: {scratch}");
    let prod = named("prod", "Production", json!("live traffic"), 0);
    assert!(listed.contains(&prod), "{listed:?}");
    assert_eq!(
        node.fetch(
            "/nacos/v1/console/namespaces?checkNamespaceIdExist=true&customNamespaceId=prod"
        )
        .await
        .text,
        "true"
    );

    // A namespace that lives through its services gets a name.
    node.register("a", "10.0.0.1", 1, &[("namespaceId", "dev")])
        .await
        .assert_ok();
    let rename = [
        ("namespace", "dev"),
        ("namespaceShowName", "Development"),
        ("namespaceDesc", ""),
    ];
    assert_eq!(
        namespace_write(&node, "PUT", &rename).await,
        (200, "true".into())
    );
    let (status, body) = namespace_write(
        &node,
        "PUT",
        &[("namespace", "nowhere"), ("namespaceShowName", "x")],
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("namespace nowhere is not found"), "{body}");

    // Any namespace a registration made can be named, whatever its id; and
    // limits count characters, not bytes.
    node.register("b", "10.0.0.1", 1, &[("namespaceId", "dot.ns")])
        .await
        .assert_ok();
    let euros = "€".repeat(256);
    let rename = [
        ("namespace", "dot.ns"),
        ("namespaceShowName", "国际"),
        ("namespaceDesc", euros.as_str()),
    ];
    assert_eq!(
        namespace_write(&node, "PUT", &rename).await,
        (200, "true".into())
    );
    let listed = namespaces(&node).await;
    assert!(
        listed.contains(&named("dot.ns", "国际", json!(euros), 1)),
        "{listed:?}"
    );
    let (status, body) = namespace_write(&node, "DELETE", &[("namespaceId", "dot.ns")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("namespace dot.ns still holds 1 services"),
        "{body}"
    );

    // Not deleted while it holds a service.
    node.send(
        "POST",
        "/service",
        &[("serviceName", "db"), ("namespaceId", "prod")],
    )
    .await
    .assert_ok();
    let (status, body) = namespace_write(&node, "DELETE", &[("namespaceId", "prod")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("namespace prod still holds 1 services"),
        "{body}"
    );
    let (status, body) = namespace_write(&node, "DELETE", &[("namespaceId", "public")]).await;
    assert_eq!(status, 400, "{body}");

    // The records survive a restart.
    node.stop().await;
    let config = common::test_config(node.dir.path());
    let mut node = TestNode::start_in(node.dir, config).await;
    let listed = namespaces(&node).await;
    assert!(
        listed.contains(&named("prod", "Production", json!("live traffic"), 1)),
        "{listed:?}"
    );
    assert!(
        listed.contains(&named("dev", "Development", json!(""), 0)),
        "{listed:?}"
    );

    node.send(
        "DELETE",
        "/service",
        &[("serviceName", "db"), ("namespaceId", "prod")],
    )
    .await
    .assert_ok();
    assert_eq!(
        namespace_write(&node, "DELETE", &[("namespaceId", "prod")]).await,
        (200, "true".into())
    );
    assert_eq!(
        namespace_write(&node, "DELETE", &[("namespaceId", &scratch)]).await,
        (200, "true".into())
    );
    let (status, _) = namespace_write(&node, "DELETE", &[("namespaceId", "prod")]).await;
    assert_eq!(status, 404, "deleted already");
    node.stop().await;
    let config = common::test_config(node.dir.path());
    let node = TestNode::start_in(node.dir, config).await;
    let listed = namespaces(&node).await;
    assert_eq!(listed[0], public);
    assert!(
        !listed.iter().any(|n| n.0 == "prod" || n.0 == scratch),
        "{listed:?}"
    );
}

/// `core/cluster/nodes`: `{"code":200,"message":null,"data":[<member>]}`,
/// `keyword` a prefix of the address (`NacosClusterController#listNodes`).
#[tokio::test]
async fn cluster_nodes_in_nacos_shape() {
    let node = TestNode::start().await;
    let address = node.base.trim_start_matches("http://").to_string();
    let nodes = node.fetch("/nacos/v1/core/cluster/nodes").await.json();
    assert_eq!(nodes["code"], 200);
    let member = &nodes["data"][0];
    assert_eq!(member["address"], address.as_str());
    assert_eq!(member["state"], "UP");
    assert!(member["port"].is_u64() && member["ip"] == "127.0.0.1");
    assert!(member["extendInfo"]["version"].is_string());
    let none = node
        .fetch("/nacos/v1/core/cluster/nodes?keyword=10.")
        .await
        .json();
    assert_eq!(none["data"], json!([]));
    let cluster = node.fetch("/nacre/v1/console/cluster").await.json();
    assert_eq!(cluster["standalone"], true);
    assert_eq!(cluster["members"][0]["self"], true);
    // No Raft without a cluster, and nothing missing either.
    assert_eq!(cluster["members"][0]["raft"], Value::Null);
    assert_eq!(cluster["members"][0]["raftError"], Value::Null);
}

/// With auth off the console may do everything (as the API allows it) and
/// names no user; the auth-on answers are in console_auth.rs.
#[tokio::test]
async fn with_auth_off_the_console_may_do_everything() {
    let node = TestNode::start().await;
    let access = node
        .fetch("/nacre/v1/console/access?namespaceId=dev&groupName=g&serviceName=s")
        .await
        .json();
    assert_eq!(
        access,
        json!({"authEnabled": false, "user": null, "namespaceId": "dev",
               "resource": "dev:g:naming/s", "read": true, "write": true, "admin": true})
    );
}

/// Each change says what happened and why, with the deciding node: a
/// client's registration, an operator's edit, a re-registration.
#[tokio::test]
async fn the_feed_says_what_happened_and_why() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 80, &[])
        .await
        .assert_ok();
    edit(&node, &[("enabled", "false")]).await;
    node.deregister("orders", "10.0.0.1", 80, &[])
        .await
        .assert_ok();
    let changes = feed(&node, "orders").await;
    assert_eq!(
        whats(&changes),
        [
            ("deregistered".into(), "client".into()),
            ("edited".into(), "edit".into()),
            ("registered".into(), "client".into()),
        ]
    );
    assert_eq!(changes[1]["cause"], json!({"kind": "edit", "by": null}));
    assert_eq!(changes[2]["cause"]["door"], "http");
    let address = node.base.trim_start_matches("http://");
    assert!(changes.iter().all(|c| c["node"] == address));
    assert!(changes[0]["seq"].as_u64() > changes[1]["seq"].as_u64());
    // Another service's feed is its own.
    assert!(feed(&node, "payments").await.is_empty());
    node.fetch("/nacre/v1/console/feed?limit=0")
        .await
        .assert_error(400, "limit");
}

/// A beat timeout is recorded with how long the instance was silent, by the
/// beat checker; then its deletion.
#[tokio::test]
async fn a_beat_timeout_is_recorded_with_the_silence() {
    let node = TestNode::start_with(|c| {
        c.health.beat_timeout_ms = 300;
        c.health.delete_timeout_ms = 600;
        c.health.check_period_ms = 100;
    })
    .await;
    node.register("quiet", "10.0.0.1", 80, &[])
        .await
        .assert_ok();
    let changes = newest_becomes(&node, "quiet", "deregistered").await;
    assert_eq!(
        whats(&changes),
        [
            ("deregistered".into(), "beatTimeout".into()),
            ("unhealthy".into(), "beatTimeout".into()),
            ("registered".into(), "client".into()),
        ]
    );
    let silent = changes[1]["cause"]["silentMs"].as_u64().unwrap_or(0);
    assert!(silent > 300, "silent for {silent} ms");
}

/// A TCP probe that finds nothing listening is recorded as the reason.
#[tokio::test]
async fn a_probe_verdict_is_recorded() {
    let node = TestNode::start_with(|c| {
        c.health.probe_enabled = true;
        c.health.probe_interval_ms = 100;
        c.health.probe_timeout_ms = 500;
    })
    .await;
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    node.register("db", "127.0.0.1", port, &[("ephemeral", "false")])
        .await
        .assert_ok();
    let changes = newest_becomes(&node, "db", "unhealthy").await;
    let verdict = &changes[0];
    assert_eq!(
        verdict["cause"],
        json!({"kind": "probe", "check": "TCP", "ok": false})
    );
}

/// An operator's edit of an ephemeral instance is an override: beats keep
/// it; the client's next registration replaces it with the client's own
/// values (Nacos's behaviour, alibaba/nacos#1814), and the override is gone.
#[tokio::test]
async fn an_override_lasts_until_the_client_registers_again() {
    let node = TestNode::start().await;
    node.register("orders", "10.0.0.1", 80, &[("weight", "2")])
        .await
        .assert_ok();
    assert_eq!(
        console_instance(&node, "orders").await["override"],
        Value::Null
    );
    edit(&node, &[("enabled", "false"), ("weight", "0.5")]).await;
    let edited = console_instance(&node, "orders").await;
    assert_eq!(edited["enabled"], false);
    assert_eq!(edited["override"]["enabled"], false);
    assert_eq!(edited["override"]["weight"], 0.5);
    assert_eq!(edited["override"]["by"], Value::Null);
    assert!(node.listed("orders", &[]).await.is_empty());

    let beat = json!({"ip": "10.0.0.1", "port": 80, "serviceName": "DEFAULT_GROUP@@orders",
                      "cluster": "DEFAULT", "weight": 2.0})
    .to_string();
    node.send(
        "PUT",
        "/instance/beat",
        &[("serviceName", "orders"), ("beat", beat.as_str())],
    )
    .await
    .assert_ok();
    let after_beat = console_instance(&node, "orders").await;
    assert_eq!(after_beat["enabled"], false, "a beat keeps the edit");
    assert_eq!(after_beat["override"]["enabled"], false);

    node.register("orders", "10.0.0.1", 80, &[("weight", "2")])
        .await
        .assert_ok();
    let reregistered = console_instance(&node, "orders").await;
    assert_eq!(reregistered["enabled"], true);
    assert_eq!(reregistered["weight"], 2.0);
    assert_eq!(reregistered["override"], Value::Null);
    assert_eq!(reregistered["change"]["what"], "reregistered");
    assert_eq!(node.listed("orders", &[]).await, ["10.0.0.1:80"]);
}

/// Where is `ip:port`? Instances across services, filtered by address and
/// health, paged, with totals.
#[tokio::test]
async fn instances_across_services() {
    let node = TestNode::start().await;
    for (service, port) in [("a", 80), ("b", 80), ("b", 81), ("c", 90)] {
        node.register(service, "10.0.0.5", port, &[])
            .await
            .assert_ok();
    }
    let found = node
        .fetch("/nacre/v1/console/instances?ip=10.0.0.5:80&pageSize=1")
        .await
        .json();
    assert_eq!(found["count"], 2);
    assert_eq!(found["list"][0]["service"]["name"], "a");
    let second = node
        .fetch("/nacre/v1/console/instances?ip=10.0.0.5:80&pageSize=1&pageNo=2")
        .await
        .json();
    assert_eq!(second["list"][0]["service"]["name"], "b");
    let unhealthy = node
        .fetch("/nacre/v1/console/instances?unhealthy=true")
        .await
        .json();
    assert_eq!(unhealthy["count"], 0);
    // By metadata, across services: key=value exactly, or the key alone.
    for (service, port, zone) in [("d", 80, "a"), ("e", 81, "b")] {
        node.register(
            service,
            "10.0.0.6",
            port,
            &[("metadata", &format!("{{\"zone\":\"{zone}\"}}"))],
        )
        .await
        .assert_ok();
    }
    for (filter, count) in [("zone%3Da", 1), ("zone", 2), ("zone%3Dc", 0), ("rack", 0)] {
        let found = node
            .fetch(&format!("/nacre/v1/console/instances?metadata={filter}"))
            .await
            .json();
        assert_eq!(found["count"], count, "metadata={filter}: {found}");
    }
    let zone_a = node
        .fetch("/nacre/v1/console/instances?metadata=zone%3Da")
        .await
        .json();
    assert_eq!(zone_a["list"][0]["service"]["name"], "d");
    node.fetch("/nacre/v1/console/instances?pageSize=0")
        .await
        .assert_error(400, "pageSize");
    node.fetch(&format!(
        "/nacre/v1/console/instances?ip={}",
        "x".repeat(600)
    ))
    .await
    .assert_error(400, "ip");
}

/// The live stream sends each change as a `change` event; an open stream
/// does not hold the node's shutdown up.
#[tokio::test]
async fn the_live_stream_sends_changes_and_ends_at_shutdown() {
    let mut node = TestNode::start().await;
    let mut response = node
        .http
        .get(format!("{}/nacre/v1/console/events", node.base))
        .send()
        .await
        .expect("stream opened");
    assert_eq!(response.status().as_u16(), 200);
    assert!(header(&response, "content-type").starts_with("text/event-stream"));
    node.register("live", "10.0.0.1", 80, &[]).await.assert_ok();
    let mut seen = String::new();
    let read = tokio::time::timeout(LIMIT, async {
        while !seen.contains("\"registered\"") {
            match response.chunk().await {
                Ok(Some(chunk)) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no change event; read {seen:?}");
    assert!(seen.contains("event: change"), "{seen}");
    assert!(seen.contains("\"name\":\"live\""), "{seen}");
    let stopped = tokio::time::timeout(LIMIT, node.stop()).await;
    assert!(stopped.is_ok(), "shutdown waited for the open stream");
}
