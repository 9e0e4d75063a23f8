//! A client program that keeps running while the test acts around it: its
//! stdout read line by line (JSON step lines), its stdin held open (a line
//! written there is a command to programs that take them; closing it asks
//! the program to finish), and a `kill -9` for the crash cases.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    /// Every line read so far, for error messages.
    pub seen: Vec<String>,
}

impl Running {
    pub fn spawn(mut cmd: Command) -> anyhow::Result<Running> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
        let stdout = child.stdout.take().context("stdout piped")?;
        Ok(Running {
            stdin: child.stdin.take(),
            child,
            lines: BufReader::new(stdout).lines(),
            seen: Vec::new(),
        })
    }

    /// Reads JSON lines until one satisfies `wanted`, within `limit`.
    pub async fn expect(
        &mut self,
        what: &str,
        limit: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line()).await;
            let line = match line {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => bail!("program ended before {what}; it printed {:?}", self.seen),
                Ok(Err(e)) => bail!("reading the program's output: {e}"),
                Err(_) => bail!(
                    "no {what} within {limit:?}; the program printed {:?}",
                    self.seen
                ),
            };
            self.seen.push(line.clone());
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                if value["ok"] == false {
                    bail!("the program failed: {line}");
                }
                if wanted(&value) {
                    return Ok(value);
                }
            }
        }
    }

    /// Writes `line` to the program's stdin (a command, for programs that
    /// read them).
    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await.context("writing to the program")
    }

    /// Closes stdin (the program's cue to shut down cleanly) and waits for it.
    pub async fn finish(mut self, limit: Duration) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .context("the program did not finish")??;
        if !status.success() {
            bail!(
                "the program exited with {status}; it printed {:?}",
                self.seen
            );
        }
        Ok(())
    }

    /// `kill -9`: no goodbye, the socket just closes.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("killing the program")
    }
}
