//! The Nacos Node.js client (npm `nacos-naming` 2.6.3), unchanged, against a
//! node: without auth, and with auth on and the client given a username and
//! password (issue 18).

use std::time::Duration;

use anyhow::Context;
use nacre_e2e::auth::{Admin, WRITER, start_with_users};
use nacre_e2e::credentials::{self, Held, STEP_LIMIT};
use nacre_e2e::wait::wait_for;
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
    // interval), then every clientBeatInterval: the beat timeout must exceed
    // that first gap, with room for a loaded machine.
    let node = TestNode::start(|c| {
        c.health.check_period_ms = 200;
        c.health.beat_timeout_ms = 12_500;
        c.health.delete_timeout_ms = 13_000;
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

/// `auth.js` (its modes: `nacre_e2e::credentials`).
fn auth_script(node: &TestNode) -> anyhow::Result<Command> {
    node_client("auth.js", &node.address())
}

/// With auth on, the client configured with a username and password (it
/// never logs in; both go on every request): the writer registers and
/// lists; the reader subscribes (its listener fires), lists, and its
/// register and deregister are refused with 403 "authorization failed!"
/// (the client only says no server answered; the status reaches its
/// logger) and change nothing; a wrong password or none is refused with
/// 403 "unknown user!".
#[tokio::test]
async fn with_credentials_what_is_granted_works_and_nothing_else() -> anyhow::Result<()> {
    let (node, _admin) = start_with_users(|_| {}).await?;
    credentials::grants(auth_script(&node)?, Duration::from_secs(30)).await
}

/// When the node last took a beat for `ip:port` of `service` (ms).
async fn last_beat(admin: &Admin, service: &str, ip: &str, port: u16) -> anyhow::Result<i64> {
    let page = admin
        .get(
            "/nacos/v1/ns/catalog/instances",
            &[
                ("serviceName", service),
                ("clusterName", "DEFAULT"),
                ("pageNo", "1"),
                ("pageSize", "10"),
            ],
        )
        .await?;
    page["list"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|i| i["ip"] == ip && i["port"] == port)
                .and_then(|i| i["lastBeat"].as_i64())
        })
        .with_context(|| format!("{ip}:{port} not in {page}"))
}

/// The user's password changed while the client runs: it still sends the
/// old one on every request, so its next list is refused with 403
/// "unknown user!", and so is its next beat (which no longer reaches the
/// instance) — while before the change its beats were taken.
#[tokio::test]
async fn a_password_change_refuses_the_clients_next_list_and_beat() -> anyhow::Result<()> {
    let (node, admin) = start_with_users(|c| c.health.client_beat_interval_ms = 500).await?;
    let mut client = Held::start(auth_script(&node)?, WRITER, "node-revoked").await?;
    let registered = last_beat(&admin, "node-revoked", "127.0.0.1", 7000).await?;
    // The client's first beat comes up to 10 s after it starts.
    wait_for("a beat taken", Duration::from_secs(15), || async {
        Ok(last_beat(&admin, "node-revoked", "127.0.0.1", 7000).await? > registered)
    })
    .await?;
    let before = client.call().await?;
    anyhow::ensure!(before["allowed"] == true, "{before}");

    admin
        .change_password(WRITER.name, "writer-password-2")
        .await?;
    let beaten = last_beat(&admin, "node-revoked", "127.0.0.1", 7000).await?;
    let after = client.call().await?;
    anyhow::ensure!(
        after["allowed"] == false && after["status"] == 403 && after["message"] == "unknown user!",
        "after the password change: {after}"
    );
    let beat = client
        .program
        .expect("a refused beat", STEP_LIMIT, |v| {
            v["step"] == "beat-refused"
        })
        .await?;
    anyhow::ensure!(
        beat["status"] == 403 && beat["message"] == "unknown user!",
        "{beat}"
    );
    anyhow::ensure!(last_beat(&admin, "node-revoked", "127.0.0.1", 7000).await? == beaten);
    client.finish().await
}
