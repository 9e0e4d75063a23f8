//! Kind 6: a slow request-path plugin stalls only itself.

use std::time::Duration;

use super::common::plugins::{p99, repeatedly, start_with_plugins};
use super::plugins_wat as wat;
use super::{NORMAL_P99, SERIAL, count, register_all, wait_active};

/// 6. A push filter that uses all the deadline its manifest may ask for
/// delays only the requests it filters, by at most the request-path cap;
/// probes, the plugin status, other filters and other services go on at
/// their normal pace.
#[tokio::test]
async fn a_slow_push_filter_stalls_only_itself() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "sloth",
        "push-filter",
        // `unreachable` types the end of a function that never gets there.
        &wat::push_filter(&format!("{} unreachable", wat::INFINITE_LOOP)),
        "[applies_to]\nservices = [\"slow*\"]\n[limits]\ntimeout_ms = 60000",
    );
    wat::install(
        dir.path(),
        "quick",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        "[applies_to]\nservices = [\"quick*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(&node, &["sloth", "quick"]).await;
    for service in ["slow-svc", "quick-svc"] {
        register_all(&node, service, &["10.0.0.1", "10.0.0.2"]).await;
    }
    let load = Duration::from_secs(5);
    let node = &node;
    let slow = move |_| async move {
        // Unfiltered: the filter never answers in time.
        assert_eq!(node.listed("slow-svc", &[]).await.len(), 2);
    };
    let quick = move |_| async move {
        assert_eq!(node.listed("quick-svc", &[]).await.len(), 1);
    };
    let liveness = move |_| async move {
        let reply = node.fetch("/nacos/v1/console/health/liveness").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    };
    let status = move |_| async move {
        assert_eq!(node.plugins().await.len(), 2);
    };
    let other = move |round: usize| async move {
        let port = (round % 50 + 1) as u16;
        node.register("other-svc", "10.0.3.1", port, &[])
            .await
            .assert_ok();
        assert!(!node.listed("other-svc", &[]).await.is_empty());
    };
    let (slow_a, slow_b, quick, liveness, status, other) = tokio::join!(
        repeatedly(load, slow),
        repeatedly(load, slow),
        repeatedly(load, quick),
        repeatedly(load, liveness),
        repeatedly(load, status),
        repeatedly(load, other),
    );
    let cap = Duration::from_millis(1000);
    for slow in [&slow_a, &slow_b] {
        let worst = slow.iter().max().copied().unwrap_or_default();
        assert!(worst < cap + NORMAL_P99, "a slow-svc list took {worst:?}");
    }
    for (what, latencies) in [
        ("quick-svc list", &quick),
        ("liveness", &liveness),
        ("plugin status", &status),
        ("other-svc register and list", &other),
    ] {
        assert!(
            latencies.len() >= 10,
            "{what}: only {} rounds",
            latencies.len()
        );
        assert!(
            p99(latencies) < NORMAL_P99,
            "{what}: p99 {:?}",
            p99(latencies)
        );
    }
    let sloth = node.plugin("sloth").await;
    let failure = sloth["lastFailure"].as_str().unwrap_or("");
    assert!(failure.contains("ran past its 1000 ms deadline"), "{sloth}");
    assert!(count(&sloth, "late") >= 1, "{sloth}");
    assert_eq!(count(&node.plugin("quick").await, "failures"), 0);
}
