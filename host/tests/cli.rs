//! The `nacre` binary: help, configuration sources, clean shutdown on
//! SIGTERM, refusal of a bad configuration, start-up errors that name the
//! path and the fix, and every flag documented.

mod common;

use common::process::{nacre, node_in, start, terminate};

async fn switches(url: &str) -> serde_json::Value {
    reqwest::get(format!("{url}/nacos/v1/ns/operator/switches"))
        .await
        .expect("switches reachable")
        .json()
        .await
        .expect("switches JSON")
}

/// The flags `nacre start --help` lists.
async fn start_flags() -> Vec<String> {
    let out = nacre(&["start", "--help"]).output().await.expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut flags: Vec<String> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.trim_end_matches([',', '.']).to_string())
        .filter(|w| w != "--help" && w != "--version")
        .collect();
    flags.sort();
    flags.dedup();
    flags
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
        "--members",
        "--insecure-cluster",
        "--config",
        "NACRE_",
    ] {
        assert!(help.contains(flag), "start --help lacks {flag}:\n{help}");
    }
    let out = nacre(&["--help"]).output().await.expect("runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("start"));
}

#[tokio::test]
async fn every_start_flag_is_in_the_readme_and_config_md() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let config = std::fs::read_to_string(root.join("docs/CONFIG.md")).expect("CONFIG.md");
    let flags = start_flags().await;
    assert!(flags.len() >= 7, "{flags:?}");
    for flag in flags {
        assert!(
            readme.contains(&format!("`{flag}")),
            "README.md lacks `{flag}`"
        );
        assert!(
            config.contains(&format!("`{flag}")),
            "docs/CONFIG.md lacks `{flag}`"
        );
    }
}

#[tokio::test]
async fn starts_serves_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut node = start(node_in(dir.path(), &[])).await;
    let url = node.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let reply = reqwest::Client::new()
        .post(format!("{url}/nacos/v1/ns/instance"))
        .form(&[("serviceName", "cli"), ("ip", "10.0.0.1"), ("port", "1")])
        .send()
        .await
        .expect("register");
    assert_eq!(reply.text().await.expect("body"), "ok");
    assert!(data.join("persistent.log").exists(), "data directory used");
    let status = terminate(&mut node.child).await;
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
    let mut node = start(cmd).await;
    let values = switches(&node.url).await;
    assert_eq!(values["defaultCacheMillis"], 1111, "from the file");
    assert_eq!(values["clientBeatInterval"], 3333, "environment over file");
    assert!(!node.url.ends_with(":1"), "flag over file: {}", node.url);
    assert!(terminate(&mut node.child).await.success());
}

/// Runs `nacre start` expecting it to refuse; returns its stderr.
async fn refused(mut cmd: tokio::process::Command) -> String {
    // A backtrace is for bugs: expected errors must not print one even when asked.
    cmd.env("RUST_BACKTRACE", "1");
    let out = tokio::time::timeout(common::process::LIMIT, cmd.output())
        .await
        .expect("ends within the limit")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    stderr
}

#[tokio::test]
async fn a_bad_configuration_is_refused_with_the_knob_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("nacre.toml");
    std::fs::write(&file, "[health]\nbeat_timeout = 5\n").expect("config written");
    let err = refused(nacre(&[
        "start",
        "--config",
        &file.to_string_lossy(),
        "--port",
        "0",
    ]))
    .await;
    assert!(err.contains("`beat_timeout`"), "{err}");

    let mut cmd = nacre(&["start", "--port", "0"]);
    cmd.env("NACRE_HEALTH_DELETE_TIMEOUT_MS", "soon");
    let err = refused(cmd).await;
    assert!(err.contains("NACRE_HEALTH_DELETE_TIMEOUT_MS"), "{err}");
}

#[tokio::test]
async fn contradicting_knobs_and_bad_log_filters_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("d").to_string_lossy().to_string();
    let args = ["start", "--port", "0", "--data-dir", data.as_str()];
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "NACRE_HEALTH_DELETE_TIMEOUT_MS",
            "5000",
            &["health.delete_timeout_ms (5000)", "beat_timeout_ms (15000)"],
        ),
        (
            "NACRE_LOG_LEVEL",
            "nacre=loud",
            &["log_level", "nacre=loud"],
        ),
        ("RUST_LOG", "info,[{", &["RUST_LOG"]),
    ];
    for (variable, value, expected) in cases {
        let mut cmd = nacre(&args);
        cmd.env(variable, value);
        let err = refused(cmd).await;
        for needle in expected {
            assert!(err.contains(needle), "{variable}={value}: {err}");
        }
    }
    let err = refused(nacre(&[
        "start",
        "--port",
        "0",
        "--members",
        "127.0.0.1:7001,127.0.0.1:7002",
        "--insecure-cluster",
    ]))
    .await;
    assert!(err.contains("port = 0"), "{err}");
    let err = refused(nacre(&[
        "start",
        "--port",
        "7003",
        "--data-dir",
        data.as_str(),
        "--members",
        "127.0.0.1:7001,127.0.0.1:7002",
        "--insecure-cluster",
    ]))
    .await;
    assert!(
        err.contains("127.0.0.1:7003") && err.contains("not in cluster.members"),
        "{err}"
    );
    assert!(
        !std::path::Path::new(&data).exists(),
        "a refused configuration touches nothing"
    );
}

#[tokio::test]
async fn start_up_errors_name_the_path_or_port_and_the_fix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, "x").expect("file written");
    let data = file.join("data").to_string_lossy().to_string();
    let err = refused(nacre(&["start", "--port", "0", "--data-dir", &data])).await;
    assert!(
        err.contains(&data) && err.contains("--data-dir"),
        "the data dir and the flag that moves it: {err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("addr").port().to_string();
    let data = dir.path().join("d").to_string_lossy().to_string();
    let err = refused(nacre(&[
        "start",
        "--bind",
        "127.0.0.1",
        "--port",
        &port,
        "--data-dir",
        &data,
    ]))
    .await;
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("\nfix: ") && err.contains("--port"), "{err}");
}

#[tokio::test]
async fn a_second_node_on_a_data_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = start(node_in(dir.path(), &[])).await;
    let data = dir.path().join("data");
    // Other ports (0: any free), the same directory.
    let err = refused(node_in(dir.path(), &[])).await;
    assert!(
        err.contains(&data.to_string_lossy().to_string())
            && err.contains("in use by another running nacre")
            && err.contains("--data-dir"),
        "{err}"
    );
    // The first node goes on serving, and once it is gone the directory
    // is free again, even after kill -9 (the kernel drops the lock).
    let listed = reqwest::get(format!(
        "{}/nacos/v1/ns/instance/list?serviceName=still-there",
        first.url
    ))
    .await
    .expect("the first node answers");
    assert!(listed.status().is_success());
    first.child.kill().await.expect("kill -9");
    let mut again = start(node_in(dir.path(), &[])).await;
    assert!(terminate(&mut again.child).await.success());
}
