//! The example listeners under examples/ — the same healthy-count listener
//! written in C, Python (componentize-py) and JavaScript (componentize-js),
//! built to components from source by scripts/build-plugins.sh:
//! - `nacre plugin test` runs each on a sample event, and all three print the
//!   same log lines;
//! - loaded together into a running node, each is called for a registration
//!   made over HTTP and logs what it saw, with no failure.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{TestNode, wait_for};

const NACRE: &str = env!("CARGO_BIN_EXE_nacre");
const LANGUAGES: [&str; 3] = ["c", "python", "javascript"];
/// Python and JavaScript components are large (12-18 MiB): compiling them in
/// a debug build of the node takes tens of seconds.
const LOAD_LIMIT: Duration = Duration::from_secs(240);

/// What scripts/build-plugins.sh left for one example: its folder with the
/// component, the manifest and a sample event.
fn built(language: &str) -> PathBuf {
    let dir = common::target_dir()
        .join("plugins")
        .join(format!("{language}-listener"));
    let wasm = dir.join(format!("{language}_listener.wasm"));
    assert!(
        wasm.is_file(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does) to build the examples",
        wasm.display()
    );
    dir
}

#[tokio::test]
async fn every_example_says_the_same_about_the_sample_event() {
    // The sample: 3 instances, one healthy and enabled; `min_healthy` is 2.
    let expected = [
        "log: INFO orders: 1 of 3 instances healthy service=orders healthy=1 total=3",
        "log: WARN orders has fewer than 2 healthy instances service=orders healthy=1 total=3",
        r#"result: {"ok":null}"#,
    ];
    for language in LANGUAGES {
        let dir = built(language);
        let out = tokio::process::Command::new(NACRE)
            .arg("plugin")
            .arg("test")
            .arg(dir.join("listener.toml"))
            .arg("--event")
            .arg(dir.join("event.json"))
            .env_remove("RUST_LOG")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(LOAD_LIMIT, out)
            .await
            .expect("plugin test finishes")
            .expect("plugin test runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{language}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines, expected, "{language}");
    }
}

/// Log lines the node writes through `tracing`, kept for the test to read.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Captures this test binary's logs (once; later calls share the capture).
    fn install() -> CapturedLogs {
        static LOGS: OnceLock<CapturedLogs> = OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = CapturedLogs::default();
            let writer = logs.clone();
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_env_filter("info")
                .with_writer(move || writer.clone())
                .init();
            logs
        })
        .clone()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_example_listens_in_a_running_node() {
    let logs = CapturedLogs::install();
    let plugin_dir = tempfile::tempdir().expect("dir");
    for language in LANGUAGES {
        let (from, to) = (built(language), plugin_dir.path());
        let wasm = format!("{language}_listener.wasm");
        std::fs::copy(from.join(&wasm), to.join(&wasm)).expect("component copied");
        let manifest = format!("{language}-listener.toml");
        std::fs::copy(from.join("listener.toml"), to.join(manifest)).expect("manifest copied");
    }
    let dir = plugin_dir.path().to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = dir;
        c.plugins.reload_interval_ms = 100;
    })
    .await;
    wait_for("the three examples are active", LOAD_LIMIT, || async {
        let plugins = node.plugins().await;
        LANGUAGES.iter().all(|language| {
            plugins
                .iter()
                .any(|p| p["name"] == format!("{language}-listener") && p["state"] == "active")
        })
    })
    .await;

    node.register("orders", "10.0.0.1", 8080, &[])
        .await
        .assert_ok();
    wait_for(
        "each example is called once at least",
        Duration::from_secs(20),
        || async {
            let plugins = node.plugins().await;
            plugins.len() == 3
                && plugins
                    .iter()
                    .all(|p| p["calls"].as_u64().unwrap_or(0) >= 1 && p["failures"] == 0)
        },
    )
    .await;
    // Each logged what it saw: one instance, healthy, below `min_healthy` 2.
    wait_for(
        "each example's log lines",
        Duration::from_secs(5),
        || async {
            let text = logs.text();
            LANGUAGES.iter().all(|language| {
                text.lines().any(|line| {
                    line.contains(&format!("plugin=\"{language}-listener\""))
                        && line.contains("orders: 1 of 1 instances healthy")
                }) && text.lines().any(|line| {
                    line.contains(&format!("plugin=\"{language}-listener\""))
                        && line.contains("WARN")
                        && line.contains("orders has fewer than 2 healthy instances")
                })
            })
        },
    )
    .await;
}
