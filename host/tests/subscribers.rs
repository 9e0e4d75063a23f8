//! `service/subscribers` over real HTTP and UDP: the push subscribers of a
//! service, in Nacos 1.4's shape (issue 14, kind 5). The cluster-wide
//! listing is in tests/console_cluster.rs.

mod common;

use common::TestNode;
use common::udp::{JAVA, Subscriber};
use serde_json::json;

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
               "serviceName": "DEFAULT_GROUP@@orders", "cluster": ""})
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
