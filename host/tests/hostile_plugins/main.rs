//! Hostile plugins and manifests (issue 15), one kind per file, each with
//! its own hostile component, loaded into a node under client load: no client
//! request may fail, and the node's resident memory, log volume, status size,
//! idle CPU and unrelated requests' latency stay bounded.
//!
//! Some tests measure the process (peak resident memory, CPU time, log
//! bytes, see [`measure`]): every test takes [`SERIAL`], so that none runs
//! meanwhile.

#[path = "../common/mod.rs"]
mod common;
#[path = "../plugins_wat/mod.rs"]
mod plugins_wat;

mod answers;
mod host_cost;
mod manifests;
mod measure;
mod reload_cost;
mod slow_filter;

use std::time::Duration;

use common::{TestNode, wait_for};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);
/// Generous for a debug build on a busy machine; a request stalled behind a
/// plugin, or a backtracking glob, takes far longer.
const NORMAL_P99: Duration = Duration::from_millis(150);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn status_text(node: &TestNode) -> String {
    node.fetch("/nacre/v1/plugins").await.text
}

async fn wait_active(node: &TestNode, names: &[&str]) {
    for name in names {
        wait_for(&format!("{name} to load"), LIMIT, || async {
            let status = node.plugin(name).await;
            anyhow::ensure!(status["state"] == "active", "its status: {status}");
            Ok(true)
        })
        .await;
    }
}

fn count(status: &Value, field: &str) -> u64 {
    status[field].as_u64().unwrap_or(0)
}

async fn register_all(node: &TestNode, service: &str, ips: &[&str]) {
    for ip in ips {
        node.register(service, ip, 80, &[]).await.assert_ok();
    }
}
