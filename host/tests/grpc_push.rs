//! Pushes on the stream and the life of connections (NACOS-V2.md §4, §6):
//! subscribers are pushed gRPC and v1 changes and ack them, unacked pushes
//! are resent, push filters shape them, silent connections are probed and
//! closed, a client that never reads is closed without slowing others, and
//! operators see it all.

mod common;
mod grpc_client;

use std::time::{Duration, Instant};

use common::{TestNode, hosts, wait_for};
use grpc_client::{RawClient, assert_ok, grpc_addr};
use serde_json::{Value, json};

const PUSH_WAIT: Duration = Duration::from_secs(5);
/// Two of the metrics history's 5 s sampling periods, and some.
const HISTORY_WAIT: Duration = Duration::from_secs(12);

async fn metrics(node: &TestNode) -> Value {
    node.get("/operator/metrics", &[]).await.json()["grpc"].clone()
}

/// The push figures of the one subscriber of `service` (`service/subscribers`).
async fn subscriber_figures(node: &TestNode, service: &str) -> Value {
    let listed = node
        .get("/service/subscribers", &[("serviceName", service)])
        .await
        .json();
    assert_eq!(listed["count"], 1, "{listed}");
    listed["subscribers"][0]["push"].clone()
}

/// Waits for a push of `service` whose hosts are `expected`, acking each push.
async fn pushed(client: &mut RawClient, service: &str, expected: &[&str]) {
    let deadline = Instant::now() + PUSH_WAIT;
    while Instant::now() < deadline {
        let Some(push) = client.next_of("NotifySubscriberRequest", PUSH_WAIT).await else {
            break;
        };
        client.ack(&push).await;
        assert_eq!(push.body["serviceName"], service);
        assert_eq!(push.body["serviceInfo"]["name"], service, "{push:?}");
        if hosts(&push.body["serviceInfo"]) == expected {
            return;
        }
    }
    panic!("no push of {service} with {expected:?}");
}

#[tokio::test]
async fn subscribers_are_pushed_grpc_and_v1_changes_until_they_unsubscribe() {
    let node = TestNode::start().await;
    let mut subscriber = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let answer = subscriber.subscribe("watched", true).await;
    assert_ok(&answer, "SubscribeServiceResponse");
    assert_eq!(answer.body["serviceInfo"]["hosts"], json!([]));

    // The subscriber listing shows stream subscribers as Nacos 2.x does.
    let listed = node
        .get("/service/subscribers", &[("serviceName", "watched")])
        .await
        .json();
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["subscribers"][0]["agent"], "raw", "{listed}");
    assert_eq!(listed["subscribers"][0]["ip"], "127.0.0.1", "{listed}");
    assert_eq!(
        listed["subscribers"][0]["serviceName"], "DEFAULT_GROUP@@watched",
        "{listed}"
    );

    let mut publisher = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &publisher.register("watched", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    pushed(&mut subscriber, "watched", &["127.0.0.1:1"]).await;
    node.register("watched", "127.0.0.1", 2, &[])
        .await
        .assert_ok();
    pushed(&mut subscriber, "watched", &["127.0.0.1:1", "127.0.0.1:2"]).await;
    // The publisher goes away: its instance leaves every view.
    drop(publisher);
    pushed(&mut subscriber, "watched", &["127.0.0.1:2"]).await;
    wait_for("acks counted", PUSH_WAIT, || async {
        metrics(&node).await["push"]["acked"].as_u64() >= Some(3)
    })
    .await;
    wait_for("the subscriber's own acks counted", PUSH_WAIT, || async {
        subscriber_figures(&node, "watched").await["acks"].as_u64() >= Some(3)
    })
    .await;
    let figures = subscriber_figures(&node, "watched").await;
    assert!(figures["pushes"].as_u64() >= Some(3), "{figures}");
    assert_eq!(figures["failures"], 0, "{figures}");
    // The console's metrics history samples the gRPC door too (every 5 s):
    // the subscription held and the pushes sent.
    wait_for(
        "a history sample with the gRPC figures",
        HISTORY_WAIT,
        || async {
            let history = node.fetch("/nacre/v1/console/metrics").await.json();
            let samples = history["samples"].as_array().cloned().unwrap_or_default();
            let pushes: u64 = samples
                .iter()
                .filter_map(|s| s["grpcPushes"].as_u64())
                .sum();
            let last = samples.last().cloned().unwrap_or_default();
            last["grpcSubscriptions"] == 1 && last["grpcConnections"] == 1 && pushes >= 3
        },
    )
    .await;

    assert_ok(
        &subscriber.subscribe("watched", false).await,
        "SubscribeServiceResponse",
    );
    node.register("watched", "127.0.0.1", 3, &[])
        .await
        .assert_ok();
    let after = subscriber
        .next_of("NotifySubscriberRequest", Duration::from_millis(500))
        .await;
    assert!(after.is_none(), "pushed after unsubscribing: {after:?}");
    assert_eq!(metrics(&node).await["subscriptions"], 0);
    let listed = node
        .get("/service/subscribers", &[("serviceName", "watched")])
        .await
        .json();
    assert_eq!(listed["count"], 0, "{listed}");
}

/// A connection that registers again at a new address replaces its
/// publication as one change (Nacos 2.x): subscribers are pushed the new
/// address alone, never the old and the new side by side. The node
/// registers the new instance, then removes the old one, and holds the
/// service's change events until both are done; without the hold a push
/// taken between the two writes shows both (seen under load, about one
/// change in six of the push benchmark; on an idle node the race is rare,
/// so the hold itself is tested in `notifier`'s unit tests). Twenty
/// replacements, each waited for by its push.
#[tokio::test]
async fn a_replaced_publication_is_pushed_once_in_its_final_state() {
    let node = TestNode::start().await;
    let mut subscriber = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &subscriber.subscribe("moving", true).await,
        "SubscribeServiceResponse",
    );
    let mut publisher = RawClient::connect(grpc_addr(&node), "raw", "").await;
    for port in 1..=20u16 {
        assert_ok(
            &publisher.register("moving", "127.0.0.1", port).await,
            "InstanceResponse",
        );
        let expected = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + PUSH_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let push = subscriber
                .next_of("NotifySubscriberRequest", left)
                .await
                .unwrap_or_else(|| panic!("no push with {expected}"));
            subscriber.ack(&push).await;
            let shown = hosts(&push.body["serviceInfo"]);
            assert_eq!(
                shown.len(),
                1,
                "a push showed the publication half replaced: {shown:?}"
            );
            if shown == [expected.as_str()] {
                break;
            }
        }
    }
}

/// Changes faster than the node writes their pushes, with no merge window:
/// each subscriber still gets its pushes in the order they were rendered
/// (each push's `lastRefTime` above the one before, the ports never going
/// back), ends on the final state, and gets nothing after it. One transport
/// thread serves all 48 subscribers and writes a change's pushes sixteen at
/// a time, yielding between groups: a next change's pushes must not
/// overtake the rest of the one before.
#[tokio::test]
async fn pushes_reach_each_subscriber_in_the_order_decided() {
    const SUBSCRIBERS: usize = 48;
    const CHANGES: u16 = 30;
    let node = TestNode::start_with(|c| {
        c.push.merge_window_ms = 0;
        c.grpc.transport_threads = 1;
    })
    .await;
    let mut subscribers = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        let mut subscriber = RawClient::connect(grpc_addr(&node), "raw", "").await;
        assert_ok(
            &subscriber.subscribe("ordered", true).await,
            "SubscribeServiceResponse",
        );
        subscribers.push(subscriber);
    }
    let final_host = format!("127.0.0.1:{CHANGES}");
    let mut readers = tokio::task::JoinSet::new();
    for mut subscriber in subscribers {
        let final_host = final_host.clone();
        readers.spawn(async move {
            // (lastRefTime, port) of each push, until the final state.
            let mut seen: Vec<(i64, u16)> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some(push) = subscriber.next_of("NotifySubscriberRequest", left).await else {
                    panic!("no push with {final_host} within 20 s; seen {seen:?}");
                };
                subscriber.ack(&push).await;
                let info = &push.body["serviceInfo"];
                let shown = hosts(info);
                assert_eq!(shown.len(), 1, "a push showed {shown:?}");
                let port = shown[0]
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0);
                seen.push((info["lastRefTime"].as_i64().unwrap_or(0), port));
                if shown[0] == final_host {
                    // Kept open: a push after the final one stays unacked.
                    return (subscriber, seen);
                }
            }
        });
    }
    let mut publisher = RawClient::connect(grpc_addr(&node), "raw", "").await;
    for port in 1..=CHANGES {
        assert_ok(
            &publisher.register("ordered", "127.0.0.1", port).await,
            "InstanceResponse",
        );
    }
    let mut kept = Vec::with_capacity(SUBSCRIBERS);
    while let Some(read) = readers.join_next().await {
        let (subscriber, seen) = read.expect("reader");
        for pair in seen.windows(2) {
            assert!(
                pair[0].0 < pair[1].0 && pair[0].1 <= pair[1].1,
                "a push overtook an earlier one: {seen:?}"
            );
        }
        kept.push(subscriber);
    }
    // Every push the node sent was answered (an ack of a push already
    // replaced by the next counts as unmatched), so none came after a
    // subscriber's final state.
    wait_for("every push answered", PUSH_WAIT, || async {
        let push = &metrics(&node).await["push"];
        let count = |name: &str| push[name].as_u64().unwrap_or(0);
        count("sent") > 0 && count("sent") == count("acked") + count("unmatchedAcks")
    })
    .await;
    drop(kept);
}

#[tokio::test]
async fn an_unacked_push_is_sent_again_with_the_state_of_then() {
    let node = TestNode::start_with(|c| c.grpc.push_ack_timeout_ms = 200).await;
    let mut subscriber = RawClient::connect(grpc_addr(&node), "raw", "").await;
    subscriber.subscribe("resent", true).await;
    node.register("resent", "127.0.0.1", 1, &[])
        .await
        .assert_ok();
    let first = subscriber
        .next_of("NotifySubscriberRequest", PUSH_WAIT)
        .await
        .expect("first push");
    // Not acked: it comes again, under a new request id, newer.
    let again = subscriber
        .next_of("NotifySubscriberRequest", PUSH_WAIT)
        .await
        .expect("resent push");
    assert_ne!(first.body["requestId"], again.body["requestId"]);
    assert_eq!(hosts(&again.body["serviceInfo"]), ["127.0.0.1:1"]);
    assert!(
        again.body["serviceInfo"]["lastRefTime"].as_i64()
            > first.body["serviceInfo"]["lastRefTime"].as_i64()
    );
    subscriber.ack(&again).await;
    wait_for("the ack is counted", PUSH_WAIT, || async {
        metrics(&node).await["push"]["acked"] == 1
    })
    .await;
    let m = metrics(&node).await;
    assert!(m["push"]["resent"].as_u64() >= Some(1), "{m}");
    // The subscription's own figures (the console's subscribers page): one
    // push, resent, acked.
    wait_for("the subscriber's ack counted", PUSH_WAIT, || async {
        subscriber_figures(&node, "resent").await["acks"] == 1
    })
    .await;
    let figures = subscriber_figures(&node, "resent").await;
    assert_eq!(
        (&figures["pushes"], &figures["failures"]),
        (&json!(1), &json!(0)),
        "{figures}"
    );
    assert!(figures["retransmits"].as_u64() >= Some(1), "{figures}");
    assert!(figures["lastPushAt"].as_i64() > Some(0), "{figures}");
    assert!(figures["lastAckAt"].as_i64() >= figures["lastPushAt"].as_i64());
    // Acked: no more resends.
    let quiet = subscriber
        .next_of("NotifySubscriberRequest", Duration::from_millis(600))
        .await;
    assert!(quiet.is_none(), "resent after the ack: {quiet:?}");
}

/// A push the client answers with an error counts as a failure of that
/// subscription (and of the node), and is sent again.
#[tokio::test]
async fn a_push_answered_with_an_error_counts_as_failed_and_comes_again() {
    let node = TestNode::start_with(|c| c.grpc.push_ack_timeout_ms = 200).await;
    let mut subscriber = RawClient::connect(grpc_addr(&node), "raw", "").await;
    subscriber.subscribe("refused", true).await;
    node.register("refused", "127.0.0.1", 1, &[])
        .await
        .assert_ok();
    let push = subscriber
        .next_of("NotifySubscriberRequest", PUSH_WAIT)
        .await
        .expect("push");
    subscriber
        .send_on_stream(
            "NotifySubscriberResponse",
            json!({"resultCode": 500, "errorCode": 500, "requestId": push.body["requestId"]}),
        )
        .await;
    wait_for(
        "the refusal counted for the subscription",
        PUSH_WAIT,
        || async { subscriber_figures(&node, "refused").await["failures"] == 1 },
    )
    .await;
    let figures = subscriber_figures(&node, "refused").await;
    assert_eq!(figures["acks"], 0, "{figures}");
    assert_eq!(figures["lastAckAt"], Value::Null, "{figures}");
    let again = subscriber
        .next_of("NotifySubscriberRequest", PUSH_WAIT)
        .await
        .expect("sent again after the refusal");
    assert_ne!(push.body["requestId"], again.body["requestId"]);
}

#[tokio::test]
async fn a_silent_connection_is_probed_and_closed_an_answering_one_kept() {
    let node = TestNode::start_with(|c| {
        c.grpc.idle_probe_ms = 300;
        c.grpc.probe_timeout_ms = 300;
    })
    .await;
    let addr = grpc_addr(&node);
    let mut silent = RawClient::connect(addr, "raw", "").await;
    assert_ok(
        &silent.register("half-open", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    let mut alive = RawClient::connect(addr, "raw", "").await;
    assert_ok(
        &alive.register("half-open", "127.0.0.1", 2).await,
        "InstanceResponse",
    );
    // `alive` answers probes (next_of does) for three seconds.
    let answering = tokio::spawn(async move {
        alive.next_of("never", Duration::from_secs(3)).await;
        alive
    });
    // `silent` reads the stream but never answers: its probe goes unanswered.
    let probe = silent
        .next_from_server(Duration::from_secs(3))
        .await
        .expect("a probe");
    assert_eq!(probe.kind, "ClientDetectionRequest");
    wait_for(
        "the silent connection's instance goes",
        Duration::from_secs(3),
        || async { node.listed("half-open", &[]).await == ["127.0.0.1:2"] },
    )
    .await;
    let mut alive = answering.await.expect("task");
    assert_ok(
        &alive.call("HealthCheckRequest", json!({})).await,
        "HealthCheckResponse",
    );
    let m = metrics(&node).await;
    assert!(m["closedUnresponsive"].as_u64() >= Some(1), "{m}");
    assert!(m["probesSent"].as_u64() >= Some(2), "{m}");
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_without_slowing_others() {
    let node = TestNode::start_with(|c| {
        c.grpc.send_queue = 2;
        c.grpc.stalled_close_ms = 300;
        c.grpc.idle_probe_ms = 60_000;
        c.grpc.push_ack_timeout_ms = 100;
    })
    .await;
    let addr = grpc_addr(&node);
    let mut stuck = RawClient::connect(addr, "raw", "").await;
    assert_ok(
        &stuck.register("stuck-own", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    assert_ok(
        &stuck.subscribe("hot", true).await,
        "SubscribeServiceResponse",
    );
    let mut normal = RawClient::connect(addr, "raw", "").await;
    // Big pushes: the stuck client's HTTP/2 windows (hyper's client takes
    // 2 MiB per stream, 5 MiB per connection) fill after a few dozen.
    let blob = "x".repeat(128 * 1024);
    let mut slowest = Duration::ZERO;
    for round in 0..40 {
        let metadata = json!({"blob": blob, "round": round.to_string()});
        let request = json!({"serviceName": "hot", "type": "registerInstance",
            "instance": {"ip": "127.0.0.1", "port": 9, "metadata": metadata}});
        let started = Instant::now();
        assert_ok(
            &normal.call("InstanceRequest", request).await,
            "InstanceResponse",
        );
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?}"
    );
    wait_for(
        "the stuck client is closed",
        Duration::from_secs(5),
        || async { node.listed("stuck-own", &[]).await.is_empty() },
    )
    .await;
    let m = metrics(&node).await;
    assert!(m["closedStalled"].as_u64() >= Some(1), "{m}");
    assert!(m["push"]["failed"].as_u64() >= Some(1), "{m}");
    assert_ok(
        &normal.call("HealthCheckRequest", json!({})).await,
        "HealthCheckResponse",
    );
}

#[tokio::test]
async fn operators_see_connections_by_version_and_namespace_and_a_listing() {
    let node = TestNode::start().await;
    let addr = grpc_addr(&node);
    let _a = RawClient::connect(addr, "Nacos-Python-Client:v3.2.0", "").await;
    let _b = RawClient::connect(addr, "Nacos-Python-Client:v3.2.0", "dev").await;
    let c = RawClient::connect(addr, "Nacos-Rust-Client:0.8.0", "dev").await;
    let m = metrics(&node).await;
    assert_eq!(m["connections"], 3, "{m}");
    assert_eq!(
        m["connectionsByClientVersion"]["Nacos-Python-Client:v3.2.0"],
        2
    );
    assert_eq!(m["connectionsByNamespace"]["dev"], 2);
    assert_eq!(m["connectionsByNamespace"]["public"], 1);

    let text = node.fetch("/nacre/v1/metrics").await.text;
    assert!(text.contains("nacre_grpc_connections 3"), "{text}");
    assert!(
        text.contains("nacre_grpc_connections_by_namespace{namespace=\"dev\"} 2"),
        "{text}"
    );
    assert!(text.contains("nacre_grpc_push_acked_total 0"), "{text}");

    let listing = node.fetch("/nacos/v2/core/loader/current").await.json();
    let meta = &listing[c.connection_id.as_str()]["metaInfo"];
    assert_eq!(meta["version"], "Nacos-Rust-Client:0.8.0", "{listing}");
    assert_eq!(meta["namespaceId"], "dev");
    assert_eq!(meta["clientIp"], "127.0.0.1");
    assert_eq!(listing.as_object().map(|o| o.len()), Some(3));
}

/// The zone-affinity plugin, built by scripts/build-plugins.sh.
fn zone_affinity() -> std::path::PathBuf {
    let path = common::target_dir().join("plugins/zone-affinity/zone_affinity.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

#[tokio::test]
async fn push_filters_shape_grpc_pushes_and_answers() {
    let plugins = tempfile::tempdir().expect("dir");
    std::fs::copy(zone_affinity(), plugins.path().join("zone_affinity.wasm")).expect("copied");
    std::fs::write(
        plugins.path().join("zone-affinity.toml"),
        "name = \"zone-affinity\"\nworld = \"push-filter\"\nwasm = \"zone_affinity.wasm\"\n\
         [config]\nclient_zones = \"10.1.=zone-a, 10.2.=zone-b\"\n",
    )
    .expect("manifest");
    let dir = plugins.path().to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = dir;
        c.plugins.reload_interval_ms = 100;
    })
    .await;
    wait_for("the plugin loads", Duration::from_secs(20), || async {
        node.plugin("zone-affinity").await["state"] == "active"
    })
    .await;
    for (ip, zone) in [("127.0.0.1", "zone-a"), ("127.0.0.2", "zone-b")] {
        let metadata = format!(r#"{{"zone":"{zone}"}}"#);
        node.register("zoned", ip, 80, &[("metadata", &metadata)])
            .await
            .assert_ok();
    }
    let mut in_a = RawClient::connect_as(grpc_addr(&node), "raw", "", "10.1.0.5").await;
    let answer = in_a.subscribe("zoned", true).await;
    assert_eq!(hosts(&answer.body["serviceInfo"]), ["127.0.0.1:80"]);
    node.register(
        "zoned",
        "127.0.0.3",
        80,
        &[("metadata", r#"{"zone":"zone-a"}"#)],
    )
    .await
    .assert_ok();
    pushed(&mut in_a, "zoned", &["127.0.0.1:80", "127.0.0.3:80"]).await;
}
