//! Kind 5: reloading costs what changed, matching one pass over a name.

use std::time::{Duration, Instant};

use super::common::TestNode;
use super::common::plugins::{p99, repeatedly};
use super::measure::cpu_time;
use super::plugins_wat as wat;
use super::{NORMAL_P99, SERIAL, register_all, wait_active};

/// 5. Reloading costs what changed, and matching costs one pass over a name:
/// an idle node with large manifests and adversarial globs stays idle, and
/// requests no plugin serves are as fast as ever.
#[tokio::test]
async fn reloads_and_matching_cost_only_what_changed() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    let folder = dir.path();
    let quiet = wat::listener("");
    // Over the manifest cap: refused once, not read again.
    let pad = "x".repeat(1 << 20);
    wat::install(
        folder,
        "huge",
        "listener",
        &quiet,
        &format!("[config]\npad = \"{pad}\""),
    );
    // Just under it: loaded once, not parsed again.
    let pad = "x".repeat(60 << 10);
    wat::install(
        folder,
        "large",
        "listener",
        &quiet,
        &format!("[applies_to]\nservices = [\"nothing\"]\n[config]\npad = \"{pad}\""),
    );
    // A glob far over the cap (a backtracking matcher needs name × glob steps).
    let greedy = format!("{}b", "*a".repeat(25_000));
    wat::install(
        folder,
        "greedy",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        &format!("[applies_to]\nservices = [\"{greedy}\"]"),
    );
    // The worst glob within the cap.
    let tricky = format!("{}b", "*a".repeat(127));
    wat::install(
        folder,
        "tricky",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        &format!("[applies_to]\nservices = [\"{tricky}\"]"),
    );
    let dir_path = folder.to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = dir_path;
        c.plugins.reload_interval_ms = 50;
    })
    .await;
    wait_active(&node, &["large", "tricky"]).await;
    for (name, reason) in [
        ("huge", "more than the 65536 bytes"),
        ("greedy", "at most 256 characters"),
    ] {
        let status = node.plugin(name).await;
        assert_eq!(status["state"], "failed", "{status}");
        assert!(
            status["error"].as_str().unwrap_or("").contains(reason),
            "{status}"
        );
    }

    // Idle: about 40 reloads of the folder.
    let cpu_before = cpu_time();
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = cpu_time() - cpu_before;
    assert!(
        busy.as_secs_f64() < 0.15 * idle.elapsed().as_secs_f64(),
        "an idle node used {busy:?} of CPU in {:?}",
        idle.elapsed()
    );

    // Names built against the globs: the tricky filter applies to the first only.
    let matching = format!("{}b", "a".repeat(500));
    let near_miss = "a".repeat(500);
    register_all(&node, &matching, &["10.0.0.1", "10.0.0.2"]).await;
    register_all(&node, &near_miss, &["10.0.0.1", "10.0.0.2"]).await;
    let (node, matching, near_miss) = (&node, matching.as_str(), near_miss.as_str());
    let latencies = repeatedly(Duration::from_secs(2), move |round| async move {
        let port = (round % 50 + 1) as u16;
        node.register(near_miss, "10.0.2.1", port, &[])
            .await
            .assert_ok();
        assert!(node.listed(near_miss, &[]).await.len() >= 3);
        assert_eq!(node.listed(matching, &[]).await.len(), 1, "filtered");
    })
    .await;
    assert!(latencies.len() >= 10, "only {} rounds", latencies.len());
    assert!(
        p99(&latencies) < NORMAL_P99,
        "p99 of a register and two lists: {:?}",
        p99(&latencies)
    );
}
