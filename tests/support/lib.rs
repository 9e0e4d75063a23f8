//! Helpers shared by the end-to-end tests: a node on 127.0.0.1 and a way to
//! run a real client program against it with a time bound.

pub mod auth;
pub mod cluster;
pub mod credentials;
pub mod naming;
pub mod program;
pub mod wait;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nacre::{Config, Node};
use tokio::process::Command;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Cargo's target directory for this build (`target/`, or `$CARGO_TARGET_DIR`),
/// where `scripts/test.sh` installs what the tests drive (`compat-venv/`) and
/// `scripts/build-plugins.sh` leaves the plugins (`plugins/`). Found from the
/// running test binary, `<target>[/<triple>]/<profile>/deps/<test>`: the
/// nearest folder above it that cargo marked with `CACHEDIR.TAG`, else the
/// folder above `<profile>`. (Cargo writes the tag only when it creates the
/// folder itself; `scripts/test.sh` creates it first, for the venvs, on a
/// fresh clone.)
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let tagged = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file());
    let above_profile = || exe.ancestors().nth(3);
    tagged
        .or_else(above_profile)
        .map(Path::to_path_buf)
        .with_context(|| format!("no cargo target directory above {}", exe.display()))
}

/// The configuration of a test node: 127.0.0.1 on a free port, its data in
/// `dir`, unsynced writes (a test does not outlive a crash), and no probing:
/// tests register persistent instances at made-up addresses, and only those
/// that probe on purpose (with loopback listeners) turn it on.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config {
        bind: [127, 0, 0, 1].into(),
        port: 0,
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.persistent.sync_writes = false;
    config.health.probe_enabled = false;
    config
}

/// A node in this process, on a free loopback port, with its own data directory.
pub struct TestNode {
    pub node: Node,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<TestNode> {
        let dir = tempfile::tempdir().context("temp dir")?;
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let node = Node::start(config).await?;
        Ok(TestNode { node, dir })
    }

    /// Shuts the node down and starts a new one on the same port and data
    /// directory, with the test configuration (a `start` tweak is not kept):
    /// what the node held in memory is gone, as after a process restart.
    pub async fn restart(self) -> anyhow::Result<TestNode> {
        let TestNode { node, dir } = self;
        let mut config = test_config(dir.path());
        config.port = node.addr().port();
        node.shutdown().await;
        let node = Node::start(config)
            .await
            .context("restarting on the same ports")?;
        Ok(TestNode { node, dir })
    }

    /// `host:port`, as Nacos clients take a server address.
    pub fn address(&self) -> String {
        self.node.addr().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.node.addr(), path)
    }
}

/// What a client program printed.
pub struct ProgramOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs a client program to completion within `limit`; an exit other than 0
/// is an error carrying everything it printed.
pub async fn run_program(mut cmd: Command, limit: Duration) -> anyhow::Result<ProgramOutput> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("{cmd:?} did not finish within {limit:?}"))?
        .context("waiting for the program")?;
    let output = ProgramOutput {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            output.stdout,
            output.stderr
        );
    }
    Ok(output)
}

/// `node <script>` in `tests/compat/node` (the scripts that drive the npm
/// `nacos-naming` client), pointed at the server `addr` (`NACOS_ADDR`,
/// `host:port`). Fails when the package is not installed.
pub fn node_client(script: &str, addr: &str) -> anyhow::Result<Command> {
    let dir = repo_root().join("tests/compat/node");
    installed(
        dir.join("node_modules/nacos-naming"),
        "the npm package nacos-naming",
    )?;
    let mut cmd = Command::new("node");
    cmd.arg(script).current_dir(dir).env("NACOS_ADDR", addr);
    Ok(cmd)
}

/// A path that must exist for the test to run: the install step of
/// `scripts/test.sh` puts it there.
pub fn installed(path: PathBuf, what: &str) -> anyhow::Result<PathBuf> {
    if !path.exists() {
        bail!(
            "{} is missing: {what} is installed by ./scripts/test.sh (run it once)",
            path.display()
        );
    }
    Ok(path)
}
