//! The Nacos Python SDK (PyPI `nacos-sdk-python` 1.0.0), unchanged, against a
//! node: without auth, and with auth on and the SDK given a username and
//! password (issue 18).

use std::time::Duration;

use nacre_e2e::auth::{WRITER, start_with_users};
use nacre_e2e::credentials::{self, Held};
use nacre_e2e::{TestNode, installed, repo_root, run_program, target_dir};
use tokio::process::Command;

#[tokio::test]
async fn register_get_modify_beat_remove() -> anyhow::Result<()> {
    let node = TestNode::start(|_| {}).await?;
    let python = installed(
        target_dir()?.join("compat-venv/bin/python"),
        "the venv with nacos-sdk-python",
    )?;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/compat/python/compat.py"))
        .env("NACOS_ADDR", node.address());
    let out = run_program(cmd, Duration::from_secs(60)).await?;
    for step in [
        "register-and-list",
        "get-instance",
        "modify-instance",
        "heartbeat",
        "remove-instance",
    ] {
        anyhow::ensure!(
            out.stdout.contains(&format!("\"step\": \"{step}\"")),
            "step {step} missing:\n{}",
            out.stdout
        );
    }
    Ok(())
}

/// `auth.py` (its modes: `nacre_e2e::credentials`).
fn auth_script(node: &TestNode) -> anyhow::Result<Command> {
    let python = installed(
        target_dir()?.join("compat-venv/bin/python"),
        "the venv with nacos-sdk-python",
    )?;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/compat/python/auth.py"))
        .env("NACOS_ADDR", node.address());
    Ok(cmd)
}

/// With auth on, the SDK configured with a username and password: the
/// writer registers, lists and beats; the reader lists and reads, and its
/// register, beat, deregister and modify are refused with 403 (the SDK
/// raises "Insufficient privilege.") and change nothing; a wrong password
/// fails the constructor's login with 403 "unknown user!", no credentials
/// fail the first call.
#[tokio::test]
async fn with_credentials_what_is_granted_works_and_nothing_else() -> anyhow::Result<()> {
    let (node, _admin) = start_with_users(|_| {}).await?;
    credentials::grants(auth_script(&node)?, Duration::from_secs(30)).await
}

/// The user's password changed while the SDK runs: the token it holds is
/// revoked at once, so its next call is refused (403, "Insufficient
/// privilege."), and stays refused — SDK 1.0 logs in again only when its
/// token's time is up, never on a 403 (nacos/client.py
/// `get_access_token`, `_inject_auth_info`).
#[tokio::test]
async fn a_password_change_refuses_the_running_clients_next_call() -> anyhow::Result<()> {
    let (node, admin) = start_with_users(|_| {}).await?;
    let held = Held::start(auth_script(&node)?, WRITER, "py-revoked").await?;
    credentials::refused_after_password_change(&node, &admin, held, |answer| {
        answer["allowed"] == false && answer["error"] == "Insufficient privilege."
    })
    .await
}

/// Tokens of 11 s: the SDK keeps its first token until a call after its
/// renewal point, so a call made once the node refuses that token as
/// expired still works — the SDK logged in again.
#[tokio::test]
async fn an_expired_token_is_renewed_by_logging_in_again() -> anyhow::Result<()> {
    let (node, _admin) = start_with_users(|c| c.auth.token_ttl_seconds = 11).await?;
    let held = Held::start(auth_script(&node)?, WRITER, "py-renewed").await?;
    credentials::renewed_after_expiry(&node, held).await
}
