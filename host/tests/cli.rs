//! The `nacre` binary: help, start-up message, configuration sources, clean
//! shutdown on SIGTERM, refusal of a bad configuration.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const NACRE: &str = env!("CARGO_BIN_EXE_nacre");
const LIMIT: Duration = Duration::from_secs(20);

fn nacre(args: &[&str]) -> Command {
    let mut cmd = Command::new(NACRE);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Starts a node and returns it with the base URL it printed.
async fn start(mut cmd: Command) -> (Child, String) {
    let mut child = cmd.spawn().expect("nacre spawns");
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(LIMIT, lines.next_line())
        .await
        .expect("start-up line within the limit")
        .expect("stdout readable")
        .expect("a start-up line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    // Keep draining stdout so the node never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

async fn terminate(mut child: Child) -> std::process::ExitStatus {
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

async fn switches(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/nacos/v1/ns/operator/switches"))
        .await
        .expect("switches reachable")
        .json()
        .await
        .expect("switches JSON")
}

#[tokio::test]
async fn help_explains_every_flag() {
    let out = nacre(&["start", "--help"]).output().await.expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--bind",
        "--port",
        "--data-dir",
        "--plugins-dir",
        "--config",
        "NACRE_",
    ] {
        assert!(help.contains(flag), "start --help lacks {flag}:\n{help}");
    }
    let out = nacre(&["--help"]).output().await.expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("start"));
}

#[tokio::test]
async fn starts_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().to_string();
    let (child, url) = start(nacre(&[
        "start",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        &data_arg,
    ]))
    .await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let reply = reqwest::Client::new()
        .post(format!("{url}/nacos/v1/ns/instance"))
        .form(&[("serviceName", "cli"), ("ip", "10.0.0.1"), ("port", "1")])
        .send()
        .await
        .expect("register");
    assert_eq!(reply.text().await.expect("body"), "ok");
    assert!(data.join("persistent.log").exists(), "data directory used");
    let status = terminate(child).await;
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn file_env_and_flags_apply_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nacre.toml");
    std::fs::write(
        &file,
        "port = 1\nbind = \"127.0.0.1\"\n[naming]\ndefault_cache_millis = 1111\n[health]\nclient_beat_interval_ms = 2222\n",
    )
    .expect("config written");
    let data_arg = dir.path().join("d").to_string_lossy().to_string();
    let mut cmd = nacre(&[
        "start",
        "--config",
        &file.to_string_lossy(),
        "--port",
        "0",
        "--data-dir",
        &data_arg,
    ]);
    cmd.env("NACRE_HEALTH_CLIENT_BEAT_INTERVAL_MS", "3333");
    let (child, url) = start(cmd).await;
    let values = switches(&url).await;
    assert_eq!(values["defaultCacheMillis"], 1111, "from the file");
    assert_eq!(values["clientBeatInterval"], 3333, "environment over file");
    assert!(!url.ends_with(":1"), "flag over file: {url}");
    assert!(terminate(child).await.success());
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_the_knob_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nacre.toml");
    std::fs::write(&file, "[health]\nbeat_timeout = 5\n").expect("config written");
    let out = nacre(&["start", "--config", &file.to_string_lossy(), "--port", "0"])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("beat_timeout"), "{err}");

    let out = nacre(&["start", "--port", "0"])
        .env("NACRE_HEALTH_DELETE_TIMEOUT_MS", "soon")
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NACRE_HEALTH_DELETE_TIMEOUT_MS"));
}

mod plugins_wat;

#[tokio::test]
async fn plugin_test_runs_one_call_without_a_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    plugins_wat::install(
        dir.path(),
        "first",
        "push-filter",
        &plugins_wat::push_filter(plugins_wat::KEEP_FIRST),
        "",
    );
    let event = dir.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"service": {"name": "orders"}, "subscriber": {"address": "10.0.0.9:5000"},
            "instances": [{"ip": "10.0.0.1", "port": 80}, {"ip": "10.0.0.2", "port": 80, "weight": 3}]}"#,
    )
    .expect("event written");
    let manifest = dir.path().join("first.toml").to_string_lossy().to_string();
    let event_arg = event.to_string_lossy().to_string();
    let out = nacre(&["plugin", "test", &manifest, "--event", &event_arg])
        .output()
        .await
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(r#""ip":"10.0.0.1""#) && !stdout.contains("10.0.0.2"),
        "{stdout}"
    );

    plugins_wat::install(
        dir.path(),
        "broken",
        "listener",
        &plugins_wat::listener(plugins_wat::TRAP),
        "",
    );
    let manifest = dir.path().join("broken.toml").to_string_lossy().to_string();
    let out = nacre(&["plugin", "test", &manifest, "--event", &event_arg])
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("trapped"), "{stderr}");
}
