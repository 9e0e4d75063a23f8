//! UDP push, with real sockets: what subscribers receive, merging, acks and
//! retransmission, zombie expiry, gzip, and hostile packets.

mod common;

use std::time::Duration;

use common::udp::{JAVA, LIMIT, Subscriber};
use common::{TestNode, wait_for};
use serde_json::Value;
use tokio::net::UdpSocket;

async fn push_state(node: &TestNode) -> Value {
    node.get("/operator/push/state", &[]).await.json()
}

#[tokio::test]
async fn subscribers_receive_every_kind_of_change() {
    let node = TestNode::start_with(|c| c.health.check_period_ms = 50).await;
    let sub = Subscriber::new().await;
    let reply = sub.subscribe(&node, "svc", JAVA).await;
    assert_eq!(
        reply["cacheMillis"], 10000,
        "a subscriber polls at the push cache time"
    );

    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    let push = sub.recv().await;
    sub.ack(&push).await;
    assert_eq!(push.hosts(), vec!["10.0.0.1:1"]);
    assert_eq!(push.data["cacheMillis"], 10000);
    assert_eq!(push.data["dom"], "DEFAULT_GROUP@@svc");
    assert!(
        push.last_ref_time < 1 << 53,
        "JavaScript clients must be able to echo lastRefTime exactly"
    );

    node.send(
        "PUT",
        "/instance",
        &[
            ("serviceName", "svc"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("weight", "5"),
        ],
    )
    .await
    .assert_ok();
    let (push, _) = sub
        .recv_until(|p| p.data["hosts"][0]["weight"] == 5.0)
        .await;
    assert_eq!(push.hosts(), vec!["10.0.0.1:1"]);

    // Health: a silent instance turns unhealthy, then is removed.
    node.register(
        "svc",
        "10.0.0.2",
        2,
        &[(
            "metadata",
            r#"{"preserved.heart.beat.timeout":"200","preserved.ip.delete.timeout":"100000"}"#,
        )],
    )
    .await
    .assert_ok();
    sub.recv_until(|p| {
        p.data["hosts"].as_array().is_some_and(|h| {
            h.iter()
                .any(|h| h["ip"] == "10.0.0.2" && h["healthy"] == false)
        })
    })
    .await;
    // A beat brings it back, pushed too.
    node.send(
        "PUT",
        "/instance/beat",
        &[("serviceName", "svc"), ("ip", "10.0.0.2"), ("port", "2")],
    )
    .await
    .assert_ok();
    sub.recv_until(|p| {
        p.data["hosts"].as_array().is_some_and(|h| {
            h.iter()
                .any(|h| h["ip"] == "10.0.0.2" && h["healthy"] == true)
        })
    })
    .await;

    node.send(
        "DELETE",
        "/instance",
        &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await
    .assert_ok();
    sub.recv_until(|p| !p.hosts().contains(&"10.0.0.1:1".to_string()))
        .await;

    wait_for("acks counted", LIMIT, || async {
        let state = push_state(&node).await;
        state["succeed"].as_u64().unwrap_or(0) >= 5 && state["pendingAcks"] == 0
    })
    .await;
}

#[tokio::test]
async fn a_burst_within_the_window_is_one_push_with_the_final_state() {
    let node = TestNode::start_with(|c| c.push.merge_window_ms = 300).await;
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "burst", JAVA).await;
    let mut registrations = tokio::task::JoinSet::new();
    for port in 1..=100u16 {
        let (http, url) = (
            node.http.clone(),
            format!("{}/nacos/v1/ns/instance", node.base),
        );
        registrations.spawn(async move {
            let form = [
                ("serviceName", "burst".to_string()),
                ("ip", "10.0.0.1".into()),
                ("port", port.to_string()),
            ];
            http.post(url)
                .form(&form)
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
    }
    while let Some(done) = registrations.join_next().await {
        assert!(matches!(done, Ok(Ok(200))), "registration failed: {done:?}");
    }
    let (last, pushes) = sub.recv_until(|p| p.hosts().len() == 100).await;
    assert!(
        pushes <= 5,
        "100 changes in one window became {pushes} pushes"
    );
    assert_eq!(last.hosts().len(), 100);
}

#[tokio::test]
async fn an_unacked_push_is_retransmitted_then_counted_failed() {
    let node = TestNode::start_with(|c| {
        c.push.ack_timeout_ms = 200;
        c.push.max_retransmits = 2;
    })
    .await;
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "svc", JAVA).await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    let first = sub.recv().await;
    let again = sub.recv().await;
    assert_eq!(
        again.last_ref_time, first.last_ref_time,
        "a retransmit repeats the push"
    );
    let third = sub.recv().await;
    assert_eq!(third.last_ref_time, first.last_ref_time);
    wait_for("push counted failed after its retries", LIMIT, || async {
        let state = push_state(&node).await;
        state["failed"] == 1 && state["retransmits"] == 2 && state["pendingAcks"] == 0
    })
    .await;
    assert!(
        sub.recv_within(Duration::from_millis(600)).await.is_none(),
        "no retransmit past the limit"
    );

    // Acked in time: no retransmit, counted as succeeded.
    node.register("svc", "10.0.0.2", 1, &[]).await.assert_ok();
    let push = sub.recv().await;
    sub.ack(&push).await;
    wait_for("ack counted", LIMIT, || async {
        push_state(&node).await["succeed"] == 1
    })
    .await;
    let state = push_state(&node).await;
    assert_eq!(state["total"], 2);
    assert_eq!(state["ratio"], 0.5);
}

#[tokio::test]
async fn a_silent_subscriber_is_dropped_as_a_zombie() {
    let node = TestNode::start().await;
    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "defaultPushCacheMillis"), ("value", "300")],
    )
    .await
    .assert_ok();
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "svc", JAVA).await;
    assert_eq!(push_state(&node).await["subscribers"], 1);
    wait_for("zombie dropped", LIMIT, || async {
        let state = push_state(&node).await;
        state["subscribers"] == 0 && state["zombiesDropped"] == 1
    })
    .await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    // The change finds no subscriber: the push count stays at zero.
    wait_for("the registration is listed", LIMIT, || async {
        node.listed("svc", &[]).await.len() == 1
    })
    .await;
    assert_eq!(push_state(&node).await["total"], 0);
}

#[tokio::test]
async fn clients_that_cannot_take_pushes_are_not_subscribed() {
    let node = TestNode::start().await;
    let sub = Subscriber::new().await;
    let reply = sub.subscribe(&node, "svc", "curl/8.0").await;
    assert_eq!(reply["cacheMillis"], 3000);
    let reply = sub
        .subscribe(&node, "svc", "Nacos-Python-Client:v1.0.0")
        .await;
    assert_eq!(reply["cacheMillis"], 3000);
    assert_eq!(push_state(&node).await["subscribers"], 0);
    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "pushEnabled"), ("value", "false")],
    )
    .await
    .assert_ok();
    let reply = sub.subscribe(&node, "svc", JAVA).await;
    assert_eq!(reply["cacheMillis"], 3000);
    assert_eq!(push_state(&node).await["subscribers"], 0);
}

#[tokio::test]
async fn large_lists_are_gzipped() {
    let node = TestNode::start().await;
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "big", JAVA).await;
    let meta = format!(r#"{{"note":"{}"}}"#, "n".repeat(1500));
    node.register("big", "10.0.0.1", 1, &[("metadata", &meta)])
        .await
        .assert_ok();
    let push = sub.recv().await;
    assert!(push.gzipped, "a push of 1 KiB or more must be gzipped");
    assert_eq!(
        push.data["hosts"][0]["metadata"]["note"]
            .as_str()
            .map(str::len),
        Some(1500)
    );

    let small = Subscriber::new().await;
    small.subscribe(&node, "small", JAVA).await;
    node.register("small", "10.0.0.1", 1, &[]).await.assert_ok();
    assert!(!small.recv().await.gzipped, "a small push is plain JSON");
}

#[tokio::test]
async fn hostile_packets_are_counted_and_cannot_ack_for_others() {
    let node = TestNode::start_with(|c| c.push.ack_timeout_ms = 300).await;
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "svc", JAVA).await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    let push = sub.recv().await;
    let server = push.from;

    let attacker = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let spoofed = format!(
        r#"{{"type":"push-ack","lastRefTime":{},"data":""}}"#,
        push.last_ref_time
    );
    let hostile: Vec<Vec<u8>> = vec![
        b"\x00\x01\x02\xff garbage".to_vec(),
        br#"{"type":"push-ack","lastRefTime":"#.to_vec(),
        vec![b'{'; 5000],
        br#"{"type":"dump","lastRefTime":1}"#.to_vec(),
        br#"{"type":"push-ack","lastRefTime":"soon"}"#.to_vec(),
        Vec::new(),
    ];
    for packet in &hostile {
        attacker.send_to(packet, server).await.expect("sent");
    }
    attacker
        .send_to(spoofed.as_bytes(), server)
        .await
        .expect("sent");

    // The spoofed ack came from the wrong address: the push is still pending and is retransmitted.
    let again = sub.recv().await;
    assert_eq!(again.last_ref_time, push.last_ref_time);
    sub.ack(&again).await;
    wait_for(
        "hostile packets counted, real ack accepted",
        LIMIT,
        || async {
            let state = push_state(&node).await;
            state["badPackets"].as_u64().unwrap_or(0) >= 5
                && state["unmatchedAcks"].as_u64().unwrap_or(0) >= 1
                && state["succeed"] == 1
        },
    )
    .await;
    // The node still serves and pushes.
    node.register("svc", "10.0.0.2", 1, &[]).await.assert_ok();
    sub.recv_until(|p| p.hosts().len() == 2).await;
}
