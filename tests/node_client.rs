//! The Nacos Node.js client (npm `nacos-naming` 2.6.3), unchanged, against a node.

use std::time::Duration;

use nacre_e2e::{TestNode, node_client, run_program};
use tokio::process::Command;

fn compat_script(mode: &str, node: &TestNode, beat_phase_ms: u64) -> anyhow::Result<Command> {
    let mut cmd = node_client("compat.js", &node.address())?;
    cmd.env("MODE", mode)
        .env("BEAT_PHASE_MS", beat_phase_ms.to_string());
    Ok(cmd)
}

async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::get(url).await?.json().await?)
}

/// Register, list, select, deregister; then the client's own beat loop must
/// keep its instance alive past the delete timeout, while an instance nobody
/// beats for is deleted in the same time.
#[tokio::test]
async fn register_list_deregister_and_beats_keep_alive() -> anyhow::Result<()> {
    // The client sends its first beat up to 10 s after it starts (its initial
    // interval), then every clientBeatInterval: the delete timeout must exceed
    // that first gap.
    let node = TestNode::start(|c| {
        c.health.check_period_ms = 200;
        c.health.beat_timeout_ms = 11_000;
        c.health.delete_timeout_ms = 12_000;
        c.health.client_beat_interval_ms = 500;
    })
    .await?;
    let control = reqwest::Client::new()
        .post(node.url("/nacos/v1/ns/instance"))
        .form(&[("serviceName", "silent"), ("ip", "10.9.9.9"), ("port", "1")])
        .send()
        .await?;
    anyhow::ensure!(control.status() == 200, "control registration failed");

    let out = run_program(
        compat_script("basic", &node, 14_000)?,
        Duration::from_secs(60),
    )
    .await?;
    for step in [
        "register-and-list",
        "select-healthy",
        "deregister",
        "server-status",
        "beats-keep-alive",
    ] {
        anyhow::ensure!(
            out.stdout.contains(&format!("\"step\":\"{step}\"")),
            "step {step} missing:\n{}",
            out.stdout
        );
    }
    let silent = get_json(&node.url("/nacos/v1/ns/instance/list?serviceName=silent")).await?;
    anyhow::ensure!(
        silent["hosts"].as_array().is_some_and(Vec::is_empty),
        "the control instance without beats should have been deleted: {silent}"
    );
    Ok(())
}

/// `subscribe()`: the client's listener fires on a change pushed over UDP,
/// long before its own polling (every 10 s) would have noticed.
#[tokio::test]
async fn subscribe_receives_pushes() -> anyhow::Result<()> {
    let node = TestNode::start(|_| {}).await?;
    let out = run_program(
        compat_script("subscribe", &node, 0)?,
        Duration::from_secs(60),
    )
    .await?;
    anyhow::ensure!(
        out.stdout.contains("\"step\":\"push-received\""),
        "{}",
        out.stdout
    );
    anyhow::ensure!(
        out.stdout.contains("\"step\":\"push-received-again\""),
        "{}",
        out.stdout
    );
    let state = get_json(&node.url("/nacos/v1/ns/operator/push/state")).await?;
    anyhow::ensure!(
        state["succeed"].as_u64().unwrap_or(0) >= 2 && state["unmatchedAcks"] == 0,
        "the client's acks must match their pushes: {state}"
    );
    Ok(())
}
