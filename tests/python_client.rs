//! The Nacos Python SDK (PyPI `nacos-sdk-python` 1.0.0), unchanged, against a node.

use std::time::Duration;

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
