//! A node with a plugin folder, and client load whose every reply is checked.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use super::TestNode;

/// A node watching `dir` every 100 ms, with 50 ms plugin deadlines by default.
pub async fn start_with_plugins(dir: &Path) -> TestNode {
    let dir = dir.to_path_buf();
    TestNode::start_with(move |c| {
        c.plugins.dir = dir;
        c.plugins.reload_interval_ms = 100;
        c.plugins.timeout_ms = 50;
        c.health.check_period_ms = 50;
    })
    .await
}

/// Registers and lists in a loop for `duration`, asserting every request
/// succeeds and every list shows what was registered. Returns how many rounds ran.
pub async fn steady_traffic(node: &TestNode, service: &str, duration: Duration) -> usize {
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < duration && rounds < 2000 {
        let port = (rounds % 60000 + 1) as u16;
        node.register(service, "10.7.0.1", port, &[])
            .await
            .assert_ok();
        let listed = node.list(service, &[]).await;
        let hosts = listed["hosts"].as_array().map_or(0, Vec::len);
        assert!(hosts >= 1, "round {rounds}: nothing listed");
        rounds += 1;
    }
    rounds
}

/// Runs `request(round)` back to back for `duration` (each one asserts its
/// own reply); returns each round's latency.
pub async fn repeatedly<F, Fut>(duration: Duration, mut request: F) -> Vec<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    let mut latencies = Vec::new();
    while start.elapsed() < duration {
        let began = Instant::now();
        request(latencies.len()).await;
        latencies.push(began.elapsed());
    }
    latencies
}

/// The 99th percentile of `latencies` (zero if none).
pub fn p99(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    sorted
        .get((sorted.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}
