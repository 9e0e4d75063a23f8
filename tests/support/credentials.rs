//! What the real-client tests with credentials share (issue 18). Each
//! client's auth script (`tests/compat/*/auth*`) has two modes:
//!
//! - "grants": given `WRITER` and `READER` (`name:password`), checks what
//!   each may do, printing a JSON step line per check;
//! - "hold": logs in as `USERNAME` / `PASSWORD`, registers `SERVICE` at
//!   127.0.0.1:`PORT`, prints `{"step":"ready"}` (with the `token` the
//!   client holds, if it holds one), then answers each line "call" on its
//!   stdin with `{"step":"call","allowed":bool,...}` (and the token it
//!   holds then); it ends when stdin closes.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;
use tokio::process::Command;

use crate::auth::{Admin, READER, User, WRITER, token_answer};
use crate::program::Running;
use crate::wait::wait_for;
use crate::{TestNode, run_program};

/// Bound of one step of a held client.
pub const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The checks of "grants" mode, in order: the writer registers and lists;
/// the reader reads (lists, and subscribes where the client can); the
/// reader's writes are refused and change nothing; a wrong password is
/// refused; no credentials are refused.
pub const GRANT_STEPS: [&str; 5] = [
    "writer-registers",
    "reader-reads",
    "reader-writes-refused",
    "wrong-password-refused",
    "no-credentials-refused",
];

/// Runs a script in "grants" mode to its end (within `limit`): each of
/// [`GRANT_STEPS`] must have printed its line with `"ok": true`.
pub async fn grants(mut cmd: Command, limit: Duration) -> anyhow::Result<()> {
    cmd.env("MODE", "grants")
        .env("WRITER", format!("{}:{}", WRITER.name, WRITER.password))
        .env("READER", format!("{}:{}", READER.name, READER.password));
    let out = run_program(cmd, limit).await?;
    let passed: Vec<Value> = out
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|v: &Value| v["ok"] == true)
        .collect();
    for step in GRANT_STEPS {
        ensure!(
            passed.iter().any(|v| v["step"] == step),
            "step {step} missing:\n{}",
            out.stdout
        );
    }
    Ok(())
}

/// A script in "hold" mode, once it is ready.
pub struct Held {
    /// The running script, for lines other than the answers to "call".
    pub program: Running,
    /// Its "ready" line.
    pub ready: Value,
}

impl Held {
    /// Starts `cmd` in "hold" mode as `user`, registered as `service`.
    pub async fn start(mut cmd: Command, user: User, service: &str) -> anyhow::Result<Held> {
        cmd.env("MODE", "hold")
            .env("USERNAME", user.name)
            .env("PASSWORD", user.password)
            .env("SERVICE", service)
            .env("PORT", "7000");
        let mut program = Running::spawn(cmd)?;
        let ready = program
            .expect("ready", STEP_LIMIT, |v| v["step"] == "ready")
            .await?;
        Ok(Held { program, ready })
    }

    /// The token the client held when it was ready.
    pub fn token(&self) -> anyhow::Result<String> {
        self.ready["token"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no token in {}", self.ready))
    }

    /// One "call"; its answer line.
    pub async fn call(&mut self) -> anyhow::Result<Value> {
        self.program.send("call").await?;
        self.program
            .expect("the call's outcome", STEP_LIMIT, |v| v["step"] == "call")
            .await
    }

    /// Closes stdin and waits for a clean exit.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.program.finish(STEP_LIMIT).await
    }
}

/// A client holding a token: its call works; the user's password changes;
/// the token is revoked at once (the node answers it "token invalid!"),
/// and the client's next calls are refused — each answer as `refused`
/// accepts — while it keeps that token: it does not log in again on a 403.
pub async fn refused_after_password_change(
    node: &TestNode,
    admin: &Admin,
    mut held: Held,
    refused: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let token = held.token()?;
    let before = held.call().await?;
    ensure!(before["allowed"] == true, "before the change: {before}");
    admin
        .change_password(WRITER.name, "writer-password-2")
        .await?;
    ensure!(token_answer(node, &token).await? == (403, "token invalid!".into()));
    for _ in 0..2 {
        let after = held.call().await?;
        ensure!(
            refused(&after) && after["token"] == token.as_str(),
            "after the password change: {after}"
        );
    }
    held.finish().await
}

/// A client holding a token on a node whose tokens live a few seconds more
/// than the 10 s the Python SDKs keep in hand (they renew once
/// `now > login + tokenTtl - 10 s`): once the node refuses its first token
/// as expired, a call still works, because the client logged in again —
/// with a different token the node takes.
pub async fn renewed_after_expiry(node: &TestNode, mut held: Held) -> anyhow::Result<()> {
    let first = held.token()?;
    wait_for(
        "the first token to expire",
        Duration::from_secs(15),
        || async { Ok(token_answer(node, &first).await? == (403, "token expired!".into())) },
    )
    .await?;
    let after = held.call().await?;
    ensure!(after["allowed"] == true, "after expiry: {after}");
    let second = after["token"].as_str().context("the token")?;
    ensure!(second != first, "the client did not log in again: {after}");
    ensure!(token_answer(node, second).await?.0 == 200);
    held.finish().await
}
