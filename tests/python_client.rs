//! The Nacos Python SDK (PyPI `nacos-sdk-python` 1.0.0), unchanged, against a
//! node: without auth, and with auth on and the SDK given a username and
//! password (issue 18).

use std::time::Duration;

use anyhow::{Context, ensure};
use nacre_e2e::auth::{READER, User, WRITER, start_with_users, token_answer};
use nacre_e2e::program::Running;
use nacre_e2e::wait::wait_for;
use nacre_e2e::{TestNode, installed, repo_root, run_program, target_dir};
use serde_json::Value;
use tokio::process::Command;

const STEP_LIMIT: Duration = Duration::from_secs(10);

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

fn auth_script(node: &TestNode, mode: &str) -> anyhow::Result<Command> {
    let python = installed(
        target_dir()?.join("compat-venv/bin/python"),
        "the venv with nacos-sdk-python",
    )?;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/compat/python/auth.py"))
        .env("NACOS_ADDR", node.address())
        .env("MODE", mode);
    Ok(cmd)
}

/// The SDK holding `user`'s token, registered as `service`, taking "call"s.
fn holding(node: &TestNode, user: User, service: &str) -> anyhow::Result<Running> {
    let mut cmd = auth_script(node, "hold")?;
    cmd.env("USERNAME", user.name)
        .env("PASSWORD", user.password)
        .env("SERVICE", service)
        .env("PORT", "7000");
    Running::spawn(cmd)
}

/// One "call" (a list and a registration): whether it was allowed, what
/// the SDK raised if not, and the token it holds afterwards.
async fn call(client: &mut Running) -> anyhow::Result<Value> {
    client.send("call").await?;
    client
        .expect("the call's outcome", STEP_LIMIT, |v| v["step"] == "call")
        .await
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
    let mut cmd = auth_script(&node, "grants")?;
    cmd.env("WRITER", format!("{}:{}", WRITER.name, WRITER.password))
        .env("READER", format!("{}:{}", READER.name, READER.password));
    let out = run_program(cmd, Duration::from_secs(30)).await?;
    for step in [
        "writer-registers",
        "reader-reads",
        "reader-writes-refused",
        "wrong-password-refused",
        "no-credentials-refused",
    ] {
        anyhow::ensure!(
            out.stdout
                .contains(&format!("\"step\": \"{step}\", \"ok\": true")),
            "step {step} missing:\n{}",
            out.stdout
        );
    }
    Ok(())
}

/// The user's password changed while the SDK runs: the token it holds is
/// revoked at once, so its next call is refused (403, "Insufficient
/// privilege."), and stays refused — SDK 1.0 logs in again only when its
/// token's time is up, never on a 403 (nacos/client.py
/// `get_access_token`, `_inject_auth_info`).
#[tokio::test]
async fn a_password_change_refuses_the_running_clients_next_call() -> anyhow::Result<()> {
    let (node, admin) = start_with_users(|_| {}).await?;
    let mut client = holding(&node, WRITER, "py-revoked")?;
    let ready = client
        .expect("ready", STEP_LIMIT, |v| v["step"] == "ready")
        .await?;
    let token = ready["token"].as_str().context("the token")?.to_string();
    ensure!(call(&mut client).await?["allowed"] == true);

    admin
        .change_password(WRITER.name, "writer-password-2")
        .await?;
    ensure!(token_answer(&node, &token).await? == (403, "token invalid!".into()));
    for _ in 0..2 {
        let after = call(&mut client).await?;
        ensure!(
            after["allowed"] == false
                && after["error"] == "Insufficient privilege."
                && after["token"] == token.as_str(),
            "after the password change: {after}"
        );
    }
    client.finish(STEP_LIMIT).await
}

/// Tokens of 11 s (the SDK renews once less than 10 s are left): the SDK
/// keeps its first token until it is used after that point, so a call made
/// after the node refuses the first token as expired still works, because
/// the SDK logged in again — with a different, valid token.
#[tokio::test]
async fn an_expired_token_is_renewed_by_logging_in_again() -> anyhow::Result<()> {
    let (node, _admin) = start_with_users(|c| c.auth.token_ttl_seconds = 11).await?;
    let mut client = holding(&node, WRITER, "py-renewed")?;
    let ready = client
        .expect("ready", STEP_LIMIT, |v| v["step"] == "ready")
        .await?;
    let first = ready["token"].as_str().context("the token")?.to_string();
    wait_for(
        "the first token to expire",
        Duration::from_secs(15),
        || async { Ok(token_answer(&node, &first).await? == (403, "token expired!".into())) },
    )
    .await?;

    let after = call(&mut client).await?;
    ensure!(after["allowed"] == true, "after expiry: {after}");
    let second = after["token"].as_str().context("the token")?;
    ensure!(second != first, "the SDK did not log in again: {after}");
    ensure!(token_answer(&node, second).await?.0 == 200);
    client.finish(STEP_LIMIT).await
}
