//! Kind 3: the host's cost is bounded by its own caps, checked before
//! anything is copied.

use std::time::{Duration, Instant};

use super::common::plugins::{repeatedly, start_with_plugins};
use super::measure::{capture_logs, logged_about, memory, reset_peak_memory};
use super::plugins_wat as wat;
use super::{SERIAL, count, register_all, status_text, wait_active};

/// 3. What a plugin makes the host copy, hold and log is bounded by the host's
/// caps, checked before copying: answers repeating an 8 MiB string, an 8 MiB
/// error, log lines of 60 fields of 1 MiB, a flood of log lines.
#[tokio::test]
async fn the_hosts_cost_is_bounded_before_anything_is_copied() {
    let _alone = SERIAL.lock().await;
    capture_logs();
    let dir = tempfile::tempdir().expect("dir");
    let install = |name: &str, world: &str, wat_text: String, services: &str| {
        let extra = format!("[applies_to]\nservices = [\"{services}\"]\n[limits]\nmemory_mb = 16");
        wat::install(dir.path(), name, world, &wat_text, &extra);
    };
    install(
        "hoarder",
        "push-filter",
        wat::push_filter(&wat::repeated_big_strings(8)),
        "hoard-svc",
    );
    install(
        "shouter",
        "listener",
        wat::listener(&wat::error_of(8 << 20)),
        "shout*",
    );
    install(
        "chatterbox",
        "listener",
        wat::logging_listener(&wat::log_fields_of_a_mebibyte(60)),
        "chat*",
    );
    install(
        "flooder",
        "listener",
        wat::logging_listener(&wat::log_lines(200)),
        "flood*",
    );
    let node = start_with_plugins(dir.path()).await;
    let names = ["hoarder", "shouter", "chatterbox", "flooder"];
    wait_active(&node, &names).await;
    register_all(&node, "hoard-svc", &["10.0.0.1", "10.0.0.2"]).await;
    let (_, before) = memory();
    reset_peak_memory();
    let started = Instant::now();
    let load = Duration::from_secs(4);
    let node = &node;
    let lists = repeatedly(load, move |_| async move {
        assert_eq!(node.listed("hoard-svc", &[]).await.len(), 2);
    });
    let writes = repeatedly(load, move |round| async move {
        let port = (round % 50 + 1) as u16;
        for service in ["shout-svc", "chat-svc", "flood-svc"] {
            node.register(service, "10.0.1.1", port, &[])
                .await
                .assert_ok();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    });
    tokio::join!(lists, writes);
    let seconds = started.elapsed().as_secs() + 1;
    let (peak, _) = memory();
    assert!(
        peak.saturating_sub(before) < 64 << 20,
        "peak resident memory grew by {} MiB",
        peak.saturating_sub(before) >> 20
    );
    let status = status_text(node).await;
    assert!(status.len() < 16 << 10, "status is {} bytes", status.len());
    for name in ["hoarder", "shouter", "chatterbox"] {
        let status = node.plugin(name).await;
        assert!(count(&status, "failures") >= 3, "{status}");
        let failure = status["lastFailure"].as_str().unwrap_or("");
        assert!(failure.contains("passed the host more than"), "{status}");
    }
    let flooder = node.plugin("flooder").await;
    assert!(count(&flooder, "logsDropped") > 0, "{flooder}");
    assert_eq!(count(&flooder, "failures"), 0, "{flooder}");
    for name in names {
        let (bytes, lines) = logged_about(name);
        assert!(bytes < 128 << 10, "{name}: {bytes} log bytes");
        // 50 lines a second, one line about drops a second, one at load.
        assert!(lines as u64 <= 52 * seconds, "{name}: {lines} log lines");
    }
}
