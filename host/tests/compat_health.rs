//! Who decides an instance's health (issue 14, kind 1): every path that
//! changes health leaves alone what it does not own. Beats own ephemeral
//! instances, the prober owns persistent ones, an operator owns only what no
//! checker runs on. Each expectation is Nacos 1.4's, with the source it
//! comes from.

mod common;
mod plugins_wat;

use std::time::Duration;

use common::udp::{JAVA, Subscriber};
use common::{TestNode, wait_for};
use plugins_wat as wat;
use serde_json::json;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(10);

/// A port on 127.0.0.1 that nothing listens on.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn healthy(node: &TestNode, service: &str, ip: &str, port: u16) -> bool {
    node.detail(service, ip, port).await.json()["healthy"] == true
}

async fn light_beat(node: &TestNode, service: &str, ip: &str, port: u16) -> serde_json::Value {
    let port = port.to_string();
    let reply = node
        .send(
            "PUT",
            "/instance/beat",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port.as_str()),
            ],
        )
        .await;
    reply.assert_ok();
    reply.json()
}

/// Whether the push lists `port` on 127.0.0.1 as healthy (`None`: not listed).
fn pushed_health(push: &common::udp::Push, port: u16) -> Option<bool> {
    push.data["hosts"]
        .as_array()?
        .iter()
        .find_map(|h| (h["ip"] == "127.0.0.1" && h["port"] == port).then(|| h["healthy"] == true))
}

/// The issue's report: a persistent instance the prober found dead, then
/// light beats every few seconds. Nacos 1.4 applies beats to ephemeral
/// instances only (`ClientBeatProcessor#run` walks `cluster.allIPs(true)`),
/// and answers the beat as usual (`InstanceController#beat` finds the
/// instance and replies code 10200): the instance stays unhealthy and no
/// flip is pushed.
#[tokio::test]
async fn beats_do_not_heal_a_persistent_instance_the_prober_failed() {
    let node = TestNode::start_with(|c| {
        c.health.probe_enabled = true;
        c.health.probe_interval_ms = 100;
        c.health.probe_timeout_ms = 500;
    })
    .await;
    let dead = closed_port().await;
    let subscriber = Subscriber::new().await;
    subscriber.subscribe(&node, "db", JAVA).await;
    node.register("db", "127.0.0.1", dead, &[("ephemeral", "false")])
        .await
        .assert_ok();
    // A healthy neighbour keeps the service above its protect threshold (0),
    // so the dead instance is shown unhealthy rather than protected.
    node.register("db", "127.0.0.1", 1, &[]).await.assert_ok();
    subscriber
        .recv_until(|p| pushed_health(p, dead) == Some(false))
        .await;

    for _ in 0..3 {
        let reply = light_beat(&node, "db", "127.0.0.1", dead).await;
        assert_eq!(reply["code"], 10200, "{reply}");
        assert!(
            !healthy(&node, "db", "127.0.0.1", dead).await,
            "a beat healed it"
        );
    }
    // A beat with a body (the Java client's first beats) does not either.
    let body = json!({"ip": "127.0.0.1", "port": dead, "serviceName": "DEFAULT_GROUP@@db",
        "cluster": "DEFAULT", "metadata": {}, "scheduled": true, "period": 5000, "stopped": false})
    .to_string();
    node.send(
        "PUT",
        "/instance/beat",
        &[("serviceName", "db"), ("beat", body.as_str())],
    )
    .await
    .assert_ok();
    assert!(!healthy(&node, "db", "127.0.0.1", dead).await);

    // Every push up to a later, unrelated change shows it unhealthy.
    node.register("db", "127.0.0.1", 2, &[]).await.assert_ok();
    let mut flips = 0;
    subscriber
        .recv_until(|p| {
            if pushed_health(p, dead) == Some(true) {
                flips += 1;
            }
            pushed_health(p, 2).is_some()
        })
        .await;
    assert_eq!(flips, 0, "a healthy flip of the dead instance was pushed");
}

/// A health policy judges beat-leased instances only (`docs/PLUGINS.md`): on
/// a persistent instance's beat it is not even asked, so it cannot heal it.
#[tokio::test]
async fn health_policies_are_not_asked_about_persistent_instances_on_their_beats() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "always-well",
        "health-policy",
        &wat::health_policy("", 0),
        "[applies_to]\nservices = [\"db*\"]",
    );
    let plugins = dir.path().to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = plugins;
        c.plugins.reload_interval_ms = 100;
    })
    .await;
    wait_for("the policy is loaded", LIMIT, || async {
        node.plugin("always-well").await["state"] == "active"
    })
    .await;
    node.register(
        "db-1",
        "10.0.0.1",
        5432,
        &[("ephemeral", "false"), ("healthy", "false")],
    )
    .await
    .assert_ok();
    for _ in 0..3 {
        light_beat(&node, "db-1", "10.0.0.1", 5432).await;
    }
    assert!(!healthy(&node, "db-1", "10.0.0.1", 5432).await);
    assert_eq!(
        node.plugin("always-well").await["calls"],
        0,
        "the policy was asked about a persistent instance"
    );
    // An ephemeral instance's beat does reach the policy.
    node.register("db-1", "10.0.0.2", 5432, &[])
        .await
        .assert_ok();
    light_beat(&node, "db-1", "10.0.0.2", 5432).await;
    assert!(node.plugin("always-well").await["calls"].as_u64() >= Some(1));
}

/// A registration, or a non-Java client's `PUT instance` (which registers),
/// of an instance that exists keeps its health: "the checker has the most
/// precise result" (Nacos 1.4 `Cluster#updateIps` copies the old health onto
/// an unmarked instance).
#[tokio::test]
async fn re_registering_keeps_the_health_its_checker_decided() {
    let node = TestNode::start().await;
    node.register(
        "db",
        "10.0.0.1",
        5432,
        &[("ephemeral", "false"), ("healthy", "false")],
    )
    .await
    .assert_ok();
    node.register("db", "10.0.0.2", 5432, &[]).await.assert_ok();
    node.register(
        "db",
        "10.0.0.1",
        5432,
        &[("ephemeral", "false"), ("weight", "3")],
    )
    .await
    .assert_ok();
    let detail = node.detail("db", "10.0.0.1", 5432).await.json();
    assert_eq!(
        (detail["healthy"].clone(), detail["weight"].clone()),
        (json!(false), json!(3.0))
    );
    node.send_as(
        "Nacos-Python-Client:v1.0.0",
        "PUT",
        "/instance",
        &[
            ("serviceName", "db"),
            ("ip", "10.0.0.1"),
            ("port", "5432"),
            ("ephemeral", "false"),
            ("healthy", "true"),
        ],
    )
    .await
    .assert_ok();
    assert!(!healthy(&node, "db", "10.0.0.1", 5432).await);
}

/// `PUT health/instance` (and its older path `PUT health`) sets health only
/// where no checker owns it: the cluster's checker is NONE. Elsewhere Nacos
/// answers 400 "health check is still working" (`HealthController#update`);
/// `valid` is the older name of `healthy`.
#[tokio::test]
async fn an_operator_sets_health_only_where_no_checker_runs() {
    let node = TestNode::start().await;
    node.register("db", "10.0.0.1", 5432, &[("ephemeral", "false")])
        .await
        .assert_ok();
    node.register("web", "10.0.0.1", 80, &[]).await.assert_ok();
    node.set_health("db", "10.0.0.1", 5432, false)
        .await
        .assert_error(400, "health check is still working");
    node.set_health("web", "10.0.0.1", 80, false)
        .await
        .assert_error(400, "health check is still working");
    assert!(healthy(&node, "db", "10.0.0.1", 5432).await);
    assert!(healthy(&node, "web", "10.0.0.1", 80).await);

    node.set_checker("db", "DEFAULT", r#"{"type":"NONE"}"#)
        .await;
    node.send(
        "PUT",
        "/health",
        &[
            ("serviceName", "db"),
            ("ip", "10.0.0.1"),
            ("port", "5432"),
            ("valid", "false"),
        ],
    )
    .await
    .assert_ok();
    let detail = node.detail("db", "10.0.0.1", 5432).await.json();
    assert_eq!(detail["healthy"], false);
    assert_eq!(detail["marked"], true);
}
