//! The beat health timeline: unhealthy after the beat timeout, deleted after
//! the delete timeout, healthy again on a beat, marked instances left alone,
//! and every health change a change event.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestNode, wait_for};
use nacre::notifier::{ChangeEvent, ChangeListener};

const LIMIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Events(Mutex<Vec<ChangeEvent>>);

impl ChangeListener for Events {
    fn on_change(&self, event: &ChangeEvent) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event.clone());
    }
}

impl Events {
    fn count_for(&self, service: &str) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|e| e.service.name == service)
            .count()
    }
}

async fn healthy(node: &TestNode, service: &str, ip: &str) -> Option<bool> {
    let reply = node.detail(service, ip, 1).await;
    (reply.status == 200).then(|| reply.json()["healthy"] == true)
}

async fn beat(node: &TestNode, service: &str, ip: &str) {
    node.send(
        "PUT",
        "/instance/beat",
        &[("serviceName", service), ("ip", ip), ("port", "1")],
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn per_instance_timeouts_drive_the_timeline() {
    let node = TestNode::start_with(|c| c.health.check_period_ms = 50).await;
    let events = Arc::new(Events::default());
    node.node().listen(events.clone());
    let short = r#"{"preserved.heart.beat.timeout":"400","preserved.ip.delete.timeout":"1200"}"#;

    // A steady instance with default (15 s) timeouts keeps the service above the protect threshold.
    node.register("svc", "10.0.0.9", 1, &[]).await.assert_ok();
    let registered = Instant::now();
    node.register("svc", "10.0.0.1", 1, &[("metadata", short)])
        .await
        .assert_ok();
    wait_for("first change events", LIMIT, || async {
        events.count_for("svc") >= 1
    })
    .await;
    let before = events.count_for("svc");

    wait_for("instance turns unhealthy", LIMIT, || async {
        healthy(&node, "svc", "10.0.0.1").await == Some(false)
    })
    .await;
    assert!(
        registered.elapsed() >= Duration::from_millis(400),
        "unhealthy before its beat timeout"
    );
    assert_eq!(
        node.listed("svc", &[("healthyOnly", "true")]).await,
        vec!["10.0.0.9:1"]
    );
    wait_for("health change delivered as an event", LIMIT, || async {
        events.count_for("svc") > before
    })
    .await;

    // A beat brings it back at once.
    beat(&node, "svc", "10.0.0.1").await;
    let last_beat = Instant::now();
    assert_eq!(healthy(&node, "svc", "10.0.0.1").await, Some(true));

    // Silence again: unhealthy, then deleted.
    wait_for("instance deleted", LIMIT, || async {
        healthy(&node, "svc", "10.0.0.1").await.is_none()
    })
    .await;
    assert!(
        last_beat.elapsed() >= Duration::from_millis(1200),
        "deleted before its delete timeout"
    );
    assert_eq!(
        healthy(&node, "svc", "10.0.0.9").await,
        Some(true),
        "default timeouts untouched"
    );
}

#[tokio::test]
async fn beating_instances_stay_and_marked_ones_are_never_flipped() {
    let node = TestNode::start_with(|c| {
        c.health.check_period_ms = 50;
        c.health.beat_timeout_ms = 300;
        c.health.delete_timeout_ms = 700;
    })
    .await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok(); // beats
    node.register("svc", "10.0.0.2", 1, &[]).await.assert_ok(); // silent
    node.register("svc", "10.0.0.3", 1, &[]).await.assert_ok(); // marked by hand
    node.set_checker("svc", "DEFAULT", r#"{"type":"NONE"}"#)
        .await;
    node.set_health("svc", "10.0.0.3", 1, true)
        .await
        .assert_ok();

    // 10.0.0.1 beats on every poll; 10.0.0.2 stays silent.
    wait_for("the silent instance to be deleted", LIMIT, || async {
        beat(&node, "svc", "10.0.0.1").await;
        healthy(&node, "svc", "10.0.0.2").await.is_none()
    })
    .await;
    // The checker ran past the delete timeout of every instance.
    assert_eq!(
        healthy(&node, "svc", "10.0.0.1").await,
        Some(true),
        "a beating instance was judged"
    );
    assert_eq!(
        healthy(&node, "svc", "10.0.0.3").await,
        Some(true),
        "a marked instance was judged"
    );
}

#[tokio::test]
async fn the_health_check_switch_stops_the_checker() {
    let node = TestNode::start_with(|c| {
        c.health.check_period_ms = 50;
        c.health.beat_timeout_ms = 100;
        c.health.delete_timeout_ms = 200;
    })
    .await;
    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "healthCheckEnabled"), ("value", "false")],
    )
    .await
    .assert_ok();
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    // Nothing may happen while the switch is off, so this waits out three
    // delete timeouts; switching back on then proves the checker was alive.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(healthy(&node, "svc", "10.0.0.1").await, Some(true));
    node.send(
        "PUT",
        "/operator/switches",
        &[("entry", "healthCheckEnabled"), ("value", "true")],
    )
    .await
    .assert_ok();
    wait_for(
        "checker resumes and deletes the silent instance",
        LIMIT,
        || async { healthy(&node, "svc", "10.0.0.1").await.is_none() },
    )
    .await;
}

#[tokio::test]
async fn empty_implicit_services_are_cleaned_up() {
    let node = TestNode::start_with(|c| {
        c.health.check_period_ms = 50;
        c.health.empty_service_clean_ms = 200;
    })
    .await;
    node.register("temp", "10.0.0.1", 1, &[]).await.assert_ok();
    node.send("POST", "/service", &[("serviceName", "kept")])
        .await
        .assert_ok();
    node.deregister("temp", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    wait_for("empty implicit service removed", LIMIT, || async {
        node.get("/service", &[("serviceName", "temp")])
            .await
            .status
            == 400
    })
    .await;
    node.get("/service", &[("serviceName", "kept")])
        .await
        .assert_ok();
}
