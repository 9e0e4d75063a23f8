//! The `nacre` binary as a child process: started with piped output, its
//! start banner read, its log lines collected as they come, stopped with
//! SIGTERM.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

pub const NACRE: &str = env!("CARGO_BIN_EXE_nacre");
pub const LIMIT: Duration = Duration::from_secs(20);

/// `nacre <args>` with stdout and stderr piped and no `RUST_LOG` or
/// `NO_COLOR` from the test's own environment.
pub fn nacre(args: &[&str]) -> Command {
    let mut cmd = Command::new(NACRE);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// `nacre start` on 127.0.0.1 and a free port, its data in `dir/data`,
/// then `extra` flags.
pub fn node_in(dir: &std::path::Path, extra: &[&str]) -> Command {
    let data = dir.join("data").to_string_lossy().to_string();
    let mut args = vec![
        "start",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        &data,
    ];
    args.extend_from_slice(extra);
    nacre(&args)
}

/// A node started by [`node_in`] with the plugin folder `plugins`, once it
/// has loaded the plugins named in `names`.
pub async fn with_plugins(
    dir: &std::path::Path,
    plugins: &std::path::Path,
    names: &[&str],
) -> Started {
    let node = start(node_in(dir, &["--plugins-dir", &plugins.to_string_lossy()])).await;
    for name in names {
        let quoted = format!("plugin=\"{name}\"");
        node.log_line(&format!("{name} loaded"), |l| {
            l.contains("plugin loaded") && l.contains(&quoted)
        })
        .await;
    }
    node
}

/// A running node: its banner, its base URL and its log so far.
pub struct Started {
    pub child: Child,
    /// `http://ip:port`, from the banner's first line.
    pub url: String,
    /// The banner's lines, the first one included.
    pub banner: Vec<String>,
    /// Every line the node wrote to stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Started {
    /// The log lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until a log line satisfies `pred`, and returns it.
    pub async fn log_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let found = nacre_e2e::wait::wait_for_value(&format!("a log line {what}"), LIMIT, || {
            std::future::ready(Ok(self.log_lines().into_iter().find(|l| pred(l))))
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "no log line {what} within {LIMIT:?}:\n{}",
                self.log_lines().join("\n")
            )
        })
    }

    /// The banner line whose label is `label` (`mode`, `plugins`, ...), without the label.
    pub fn banner_value(&self, label: &str) -> String {
        self.banner
            .iter()
            .find_map(|l| {
                l.trim_start()
                    .strip_prefix(label)
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {label:?} in the banner:\n{}", self.banner.join("\n")))
    }
}

/// Starts a node and reads its banner (up to the `log` line, its last).
pub async fn start(mut cmd: Command) -> Started {
    let mut child = cmd.spawn().expect("nacre spawns");
    let log = Arc::new(Mutex::new(Vec::new()));
    collect(child.stderr.take().expect("stderr piped"), Arc::clone(&log));
    let mut lines = BufReader::new(child.stdout.take().expect("stdout piped")).lines();
    let mut banner = Vec::new();
    while !banner
        .last()
        .is_some_and(|l: &String| l.trim_start().starts_with("log "))
    {
        let line = tokio::time::timeout(LIMIT, lines.next_line())
            .await
            .expect("the banner within the limit")
            .expect("stdout readable");
        match line {
            Some(line) => banner.push(line),
            None => panic!(
                "nacre ended before its banner:\n{}\n{}",
                banner.join("\n"),
                log.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
            ),
        }
    }
    let url = banner[0]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {:?}", banner[0]))
        .to_string();
    // Keep draining stdout so the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Started {
        child,
        url,
        banner,
        log,
    }
}

/// Collects the lines of `stream` into `into` until it ends.
pub fn collect(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
}

/// SIGTERM, then the exit status within [`LIMIT`].
pub async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    tokio::time::timeout(LIMIT, child.wait())
        .await
        .expect("exits within the limit after SIGTERM")
        .expect("exit status")
}
