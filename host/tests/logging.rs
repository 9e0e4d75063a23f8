//! The node's log as an operator meets it: plain text in files and pipes,
//! colour only on a terminal and never with `NO_COLOR`, JSON lines that parse
//! (with the access log's fields and a plugin's fields as real fields), and
//! unknown `NACRE_` variables named.

mod common;
mod plugins_wat;

use std::path::{Path, PathBuf};

use common::process::{LIMIT, NACRE, node_in, start, terminate, with_plugins};
use common::wait_for;
use serde_json::Value;

const ESC: char = '\u{1b}';

#[tokio::test]
async fn no_colour_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = start(node_in(dir.path(), &[])).await;
    let line = node
        .log_line("node started", |l| l.contains("node started"))
        .await;
    assert!(terminate(&mut node.child).await.success());
    assert!(!line.contains(ESC), "{line:?}");
    assert!(node.log_lines().iter().all(|l| !l.contains(ESC)));
}

/// Runs a node under a pseudo-terminal (util-linux `script`) until it logs
/// that it started, and returns what the terminal showed.
async fn on_a_terminal(no_color: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let command = format!(
        "exec {NACRE} start --port 0 --data-dir {}",
        dir.path().display()
    );
    let mut cmd = tokio::process::Command::new("script");
    cmd.args(["-qfec", &command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        // `script` says "Session terminated" when stopped; not the test's output.
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let mut child = cmd.spawn().expect("script (util-linux) runs");
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    common::process::collect(child.stdout.take().expect("piped"), log.clone());
    let lines = || log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    wait_for("the node to start under a terminal", LIMIT, || {
        std::future::ready(lines().iter().any(|l| l.contains("node started")))
    })
    .await;
    let shown = lines().join("\n");
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(LIMIT, child.wait()).await;
    shown
}

#[tokio::test]
async fn colour_on_a_terminal_unless_no_color_is_set() {
    let coloured = on_a_terminal(None).await;
    assert!(
        coloured.contains(ESC),
        "a terminal gets colour:\n{coloured}"
    );
    let plain = on_a_terminal(Some("1")).await;
    assert!(!plain.contains(ESC), "NO_COLOR=1 turns it off:\n{plain:?}");
}

/// Every line of `lines` as a JSON object with the four fields every line has.
fn parsed(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            for key in ["time", "level", "target", "message"] {
                assert!(value[key].is_string(), "{key} missing: {line}");
            }
            value
        })
        .collect()
}

/// A plugin folder under `dir` with the listener `fields`, which logs one
/// line with fields on every change.
fn fields_plugin(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin folder");
    plugins_wat::install(
        &plugins,
        "fields",
        "listener",
        &plugins_wat::logging_listener(&log_with_fields()),
        "",
    );
    plugins
}

/// Registers an instance of `orders` on the node at `url`.
async fn register(url: &str) {
    let reply = reqwest::Client::new()
        .post(format!(
            "{url}/nacos/v1/ns/instance?serviceName=orders&ip=10.0.0.1&port=80"
        ))
        .send()
        .await
        .expect("register");
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn json_lines_parse_and_the_access_log_has_its_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = fields_plugin(dir.path());
    let mut cmd = node_in(dir.path(), &["--plugins-dir", &plugins.to_string_lossy()]);
    cmd.env("NACRE_LOG_FORMAT", "json")
        .env("NACRE_HTTP_ACCESS_LOG", "true")
        .env("NACRE_TYPO_KNOB", "1");
    let mut node = start(cmd).await;
    node.log_line("plugin loaded", |l| l.contains("plugin loaded"))
        .await;
    register(&node.url).await;
    node.log_line("the plugin's line", |l| l.contains("from a plugin"))
        .await;
    node.log_line("the access line", |l| l.contains("nacre::access"))
        .await;
    assert!(terminate(&mut node.child).await.success());

    let lines = parsed(&node.log_lines());
    let access = lines
        .iter()
        .find(|l| l["target"] == "nacre::access" && l["path"] == "/nacos/v1/ns/instance")
        .expect("an access line for the registration");
    assert_eq!(access["method"], "POST");
    assert_eq!(access["status"], 200, "a number: {access}");
    assert!(access["took_ms"].is_number(), "{access}");
    assert!(
        access["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:")),
        "{access}"
    );
    assert!(
        !access.to_string().contains("10.0.0.1"),
        "no query string: {access}"
    );
    let plugin = lines
        .iter()
        .find(|l| l["message"] == "from a plugin")
        .expect("the plugin's line");
    assert_eq!(plugin["plugin"], "fields");
    assert_eq!(plugin["fields"]["zone"], "a b", "a real field: {plugin}");
    let unknown = lines
        .iter()
        .find(|l| l["level"] == "WARN" && l["variable"] == "NACRE_TYPO_KNOB");
    assert!(unknown.is_some(), "the unknown variable is named");
}

#[tokio::test]
async fn text_lines_write_a_plugins_fields_as_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = fields_plugin(dir.path());
    let mut node = with_plugins(dir.path(), &plugins, &["fields"]).await;
    register(&node.url).await;
    let line = node
        .log_line("the plugin's line", |l| l.contains("from a plugin"))
        .await;
    assert!(terminate(&mut node.child).await.success());
    assert!(
        line.ends_with(r#"from a plugin plugin="fields" zone="a b""#),
        "{line}"
    );
}

/// A [`plugins_wat::logging_listener`] body: one `info` line, message
/// `from a plugin`, with the one field `zone` = `a b`.
fn log_with_fields() -> String {
    format!(
        "{message} {key} {value}
      ;; the fields list at 40200: one (key, value) pair of strings
      (i32.store (i32.const 40200) (i32.const 40100))
      (i32.store (i32.const 40204) (i32.const 4))
      (i32.store (i32.const 40208) (i32.const 40110))
      (i32.store (i32.const 40212) (i32.const 3))
      (call $log (i32.const 2) (i32.const 40000) (i32.const 13) (i32.const 40200) (i32.const 1))",
        message = bytes_at(40000, "from a plugin"),
        key = bytes_at(40100, "zone"),
        value = bytes_at(40110, "a b"),
    )
}

/// WAT that stores `text` at `address`, byte by byte.
fn bytes_at(address: u32, text: &str) -> String {
    text.bytes()
        .enumerate()
        .map(|(i, b)| {
            format!(
                "(i32.store8 (i32.const {}) (i32.const {b}))",
                address + i as u32
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
