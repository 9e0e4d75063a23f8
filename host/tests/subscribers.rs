//! `service/subscribers` over real HTTP and UDP: the push subscribers of a
//! service, in Nacos 1.4's shape (issue 14, kind 5), with each subscriber's
//! own push figures (issue 16). The cluster-wide listing is in
//! tests/console_cluster.rs; gRPC subscribers' figures in grpc_push.rs.

mod common;

use common::udp::{JAVA, LIMIT, Subscriber};
use common::{TestNode, wait_for};
use serde_json::{Value, json};

/// `service/subscribers`: the UDP subscribers of every service whose name
/// and group contain the ones asked for (`PushService#getClientsFuzzy`), in
/// Nacos's subscriber shape, paged (`ServiceController#subscribers`).
#[tokio::test]
async fn subscribers_of_a_service() {
    let node = TestNode::start().await;
    let java = Subscriber::new().await;
    java.subscribe(&node, "orders", JAVA).await;
    let go = Subscriber::new().await;
    go.subscribe(&node, "orders-v2", "Nacos-Go-Client:v1.0.1")
        .await;
    let other = Subscriber::new().await;
    other.subscribe(&node, "users", JAVA).await;
    // Python clients take no pushes, so they are no subscribers.
    let python = Subscriber::new().await;
    python
        .subscribe(&node, "orders", "Nacos-Python-Client:v1.0.0")
        .await;

    let reply = node
        .get("/service/subscribers", &[("serviceName", "orders")])
        .await;
    reply.assert_ok();
    let reply = reply.json();
    assert_eq!(reply["count"], 2, "{reply}");
    let port: u16 = java.port().parse().expect("port");
    assert_eq!(
        reply["subscribers"][0],
        json!({"addrStr": format!("127.0.0.1:{port}"), "agent": JAVA, "app": "",
               "ip": "127.0.0.1", "port": port, "namespaceId": "public",
               "serviceName": "DEFAULT_GROUP@@orders", "cluster": "",
               "push": {"lastPushAt": null, "lastAckAt": null, "pushes": 0, "acks": 0,
                        "retransmits": 0, "failures": 0}})
    );
    assert_eq!(
        reply["subscribers"][1]["serviceName"],
        "DEFAULT_GROUP@@orders-v2"
    );
    let paged = node
        .get(
            "/service/subscribers",
            &[
                ("serviceName", "orders"),
                ("pageNo", "2"),
                ("pageSize", "1"),
                ("aggregation", "false"),
            ],
        )
        .await
        .json();
    assert_eq!(paged["count"], 2);
    assert_eq!(paged["subscribers"][0]["agent"], "Nacos-Go-Client:v1.0.1");
    let none = node
        .get(
            "/service/subscribers",
            &[("serviceName", "orders"), ("namespaceId", "dev")],
        )
        .await
        .json();
    assert_eq!(none, json!({"subscribers": [], "count": 0}));
    node.get("/service/subscribers", &[])
        .await
        .assert_error(400, "serviceName");
}

/// The `push` figures of `subscriber` in `service/subscribers`.
async fn figures_of(node: &TestNode, service: &str, subscriber: &Subscriber) -> Value {
    let port = subscriber.socket.local_addr().expect("bound").port();
    let reply = node
        .get("/service/subscribers", &[("serviceName", service)])
        .await
        .json();
    reply["subscribers"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["port"] == port)
                .map(|s| s["push"].clone())
        })
        .unwrap_or(Value::Null)
}

/// Each subscriber's figures move with what it is pushed and what it acks: a
/// subscriber that acks counts pushes and acks, one that never acks counts
/// retransmits and, once its retries run out, a failure; neither is blamed
/// for the other.
#[tokio::test]
async fn each_subscriber_has_its_own_push_figures() {
    let node = TestNode::start_with(|c| {
        c.push.ack_timeout_ms = 100;
        c.push.max_retransmits = 2;
    })
    .await;
    let acking = Subscriber::new().await;
    acking.subscribe(&node, "figures", JAVA).await;
    let silent = Subscriber::new().await;
    silent.subscribe(&node, "figures", JAVA).await;

    node.register("figures", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    let push = acking.recv().await;
    acking.ack(&push).await;
    // The silent one receives its push (and its resends) and never acks.
    silent.recv().await;

    wait_for("the acking subscriber's ack counted", LIMIT, || async {
        let f = figures_of(&node, "figures", &acking).await;
        f["pushes"] == 1 && f["acks"] == 1
    })
    .await;
    let acked = figures_of(&node, "figures", &acking).await;
    assert_eq!(acked["failures"], 0, "{acked}");
    assert!(acked["lastPushAt"].as_i64() > Some(0), "{acked}");
    assert!(acked["lastAckAt"].as_i64() >= acked["lastPushAt"].as_i64());

    wait_for("the silent subscriber's push failed", LIMIT, || async {
        figures_of(&node, "figures", &silent).await["failures"] == 1
    })
    .await;
    let unacked = figures_of(&node, "figures", &silent).await;
    assert_eq!(
        (
            &unacked["pushes"],
            &unacked["acks"],
            &unacked["retransmits"]
        ),
        (&json!(1), &json!(0), &json!(2)),
        "{unacked}"
    );
    assert_eq!(unacked["lastAckAt"], Value::Null);

    // Listing again (as clients poll) keeps a subscriber's figures.
    acking.subscribe(&node, "figures", JAVA).await;
    let kept = figures_of(&node, "figures", &acking).await;
    assert_eq!((&kept["pushes"], &kept["acks"]), (&json!(1), &json!(1)));
    // A second change moves only the counters of the one it reached.
    node.register("figures", "10.0.0.2", 2, &[])
        .await
        .assert_ok();
    acking.recv_until(|p| p.hosts().len() == 2).await;
    wait_for("the second push acked", LIMIT, || async {
        let f = figures_of(&node, "figures", &acking).await;
        f["pushes"] == 2 && f["acks"] == 2
    })
    .await;
}
