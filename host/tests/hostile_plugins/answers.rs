//! Kinds 1 and 2: every refused answer and every error answer is a failure
//! for the quarantine rule, warnings about them are rate-limited, and every
//! invariant of a push filter's answer is checked.

use std::time::{Duration, Instant};

use super::common::plugins::{repeatedly, start_with_plugins};
use super::measure::{capture_logs, logged_about};
use super::plugins_wat as wat;
use super::{SERIAL, count, register_all, wait_active};

/// 1. Every refused answer and every error answer is a failure for the
/// quarantine rule, and warnings about them are rate-limited.
#[tokio::test]
async fn refused_and_error_answers_quarantine_and_their_warnings_are_rate_limited() {
    let _alone = SERIAL.lock().await;
    capture_logs();
    let dir = tempfile::tempdir().expect("dir");
    let filter = |name: &str, body: &str, services: &str| {
        let applies = format!("[applies_to]\nservices = [\"{services}\"]");
        wat::install(
            dir.path(),
            name,
            "push-filter",
            &wat::push_filter(body),
            &applies,
        );
    };
    filter("stranger-filter", wat::NOT_OFFERED, "stranger-svc");
    filter("hundredfold-filter", wat::HUNDREDFOLD, "hundredfold-svc");
    wat::install(
        dir.path(),
        "complaining-listener",
        "listener",
        &wat::listener(&wat::error_of(4)),
        "[applies_to]\nservices = [\"complain*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(
        &node,
        &[
            "stranger-filter",
            "hundredfold-filter",
            "complaining-listener",
        ],
    )
    .await;
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    register_all(&node, "stranger-svc", &ips).await;
    register_all(&node, "hundredfold-svc", &ips).await;
    let started = Instant::now();
    let load = Duration::from_secs(4);
    let node = &node;
    let lists = |service: &'static str| {
        repeatedly(load, move |_| async move {
            let hosts = node.listed(service, &[]).await;
            assert_eq!(
                hosts,
                vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
                "refused answers never reach clients"
            );
        })
    };
    let writes = repeatedly(load, move |round| async move {
        let port = (round % 50 + 1) as u16;
        node.register("complain-svc", "10.0.1.1", port, &[])
            .await
            .assert_ok();
        // Let the listener's coalescing window pass, so that it hears many events.
        tokio::time::sleep(Duration::from_millis(60)).await;
    });
    tokio::join!(lists("stranger-svc"), lists("hundredfold-svc"), writes);
    let seconds = started.elapsed().as_secs() as usize + 1;
    for (name, reason) in [
        ("stranger-filter", "which it was not offered"),
        ("hundredfold-filter", ""),
        ("complaining-listener", "returned an error"),
    ] {
        let status = node.plugin(name).await;
        assert!(count(&status, "failures") >= 3, "{status}");
        assert!(
            count(&status, "skipped") >= 1,
            "quarantined (calls were skipped): {status}"
        );
        let failure = status["lastFailure"].as_str().unwrap_or("");
        assert!(failure.contains(reason), "{status}");
        let (_, lines) = logged_about(name);
        // One line at load, then at most one a second plus one per quarantine
        // (quarantines are at least a second apart).
        assert!(
            lines <= 1 + 2 * seconds,
            "{name}: {lines} log lines in {seconds} s"
        );
    }
}

/// 2. An answer with an instance in it more than once is refused like any
/// other invalid answer.
#[tokio::test]
async fn an_answer_with_duplicates_never_reaches_clients() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "tripler",
        "push-filter",
        &wat::push_filter(wat::TRIPLICATE_FIRST),
        "[applies_to]\nservices = [\"triple-svc\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(&node, &["tripler"]).await;
    register_all(&node, "triple-svc", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]).await;
    let node = &node;
    repeatedly(Duration::from_secs(3), move |_| async move {
        let hosts = node.listed("triple-svc", &[]).await;
        assert_eq!(hosts, vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    })
    .await;
    let status = node.plugin("tripler").await;
    assert!(count(&status, "failures") >= 3, "{status}");
    assert!(count(&status, "skipped") >= 1, "quarantined: {status}");
    let failure = status["lastFailure"].as_str().unwrap_or("");
    assert!(failure.contains("more than once"), "{status}");
}
