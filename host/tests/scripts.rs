//! The repository's shell scripts find cargo's target directory by asking
//! cargo (`scripts/lib.sh`'s `target_dir`), so they work with
//! `CARGO_TARGET_DIR` set, and none of them assumes `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Runs `target_dir` from scripts/lib.sh in `dir`, with `CARGO_TARGET_DIR`
/// set to `target` (or unset), and returns what it printed.
fn target_dir_in(dir: &Path, target: Option<&Path>) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_dir = Path::new(&cargo)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        cargo_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!(
            ". '{}' && target_dir",
            repo().join("scripts/lib.sh").display()
        ))
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    if let Some(target) = target {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "target_dir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn target_dir_is_cargo_target_dir_when_set_and_target_otherwise() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    for workspace in [repo(), repo().join("plugins")] {
        assert_eq!(
            target_dir_in(&workspace, Some(elsewhere.path())),
            elsewhere.path().display().to_string(),
            "in {}",
            workspace.display()
        );
        assert_eq!(
            target_dir_in(&workspace, None),
            workspace.join("target").display().to_string()
        );
    }
}

/// Every script that builds, runs or installs something under the target
/// directory gets it from `target_dir`: no command names `target/` itself.
#[test]
fn no_script_assumes_target() {
    let mut offenders = Vec::new();
    for folder in ["scripts", "bench"] {
        for entry in std::fs::read_dir(repo().join(folder)).expect("folder readable") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "sh") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("script readable");
            for (n, line) in text.lines().enumerate() {
                let code = line.split(" #").next().unwrap_or("").trim_start();
                if code.starts_with('#') {
                    continue;
                }
                let names_target = code.match_indices("target/").any(|(i, _)| {
                    let mut before = code[..i].chars().rev();
                    match (before.next(), before.next()) {
                        // `${X:-target/...}`: a default that is the folder.
                        (Some('-'), Some(':')) => true,
                        // `$target/`, `plugin-target/` are not the default folder.
                        (Some(c), _) => {
                            !(c == '$' || c == '{' || c.is_alphanumeric() || c == '-' || c == '_')
                        }
                        (None, _) => true,
                    }
                });
                if names_target {
                    offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "scripts that assume target/ (use target_dir from scripts/lib.sh):\n{}",
        offenders.join("\n")
    );
}

/// `scripts/cluster.sh`, the README's cluster: three members, ready when it
/// says so, all stopped (their ports free, each logged its stop) when the
/// script is told to stop.
#[tokio::test]
async fn the_cluster_script_waits_for_readiness_and_stops_every_member() {
    use tokio::io::AsyncBufReadExt;

    let data = tempfile::tempdir().expect("temp dir");
    let ports: Vec<u16> = (0..3)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let port_list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = tokio::process::Command::new(repo().join("scripts/cluster.sh"))
        .env("NACRE", env!("CARGO_BIN_EXE_nacre"))
        .env("PORTS", &port_list)
        .env("DATA", data.path())
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the script starts");
    let mut lines = tokio::io::BufReader::new(script.stdout.take().expect("piped")).lines();
    let limit = std::time::Duration::from_secs(60);
    let ready = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("== ready") {
                return line;
            }
        }
        String::new()
    })
    .await
    .expect("ready within the limit");
    assert!(
        ready.contains(&format!("127.0.0.1:{}", ports[2])),
        "{ready}"
    );
    for port in &ports {
        let servers: serde_json::Value = reqwest::get(format!(
            "http://127.0.0.1:{port}/nacos/v1/ns/operator/servers"
        ))
        .await
        .expect("a member answers")
        .json()
        .await
        .expect("JSON");
        assert_eq!(servers["ready"], true, "{servers}");
    }

    let pid = script.id().expect("running").to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::time::timeout(limit, script.wait())
        .await
        .expect("the script ends")
        .expect("status");
    assert!(!status.success(), "ended by the signal: {status:?}");
    for port in &ports {
        let log = std::fs::read_to_string(data.path().join(format!("{port}.log"))).expect("log");
        assert!(
            log.contains("node stopped"),
            "member {port} stopped cleanly:\n{log}"
        );
        std::net::TcpListener::bind(("127.0.0.1", *port)).expect("the port is free again");
    }
}
