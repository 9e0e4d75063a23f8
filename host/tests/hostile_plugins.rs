//! Hostile plugins and manifests (issue 15), one kind per test, each with
//! its own hostile component, loaded into a node under client load: no client
//! request may fail, and the node's resident memory, log volume, status size,
//! idle CPU and unrelated requests' latency stay bounded.
//!
//! Some tests measure the process (peak resident memory, CPU time, log
//! bytes): every test takes [`SERIAL`], so that none runs meanwhile.

mod common;
mod plugins_wat;

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use common::plugins::{p99, repeatedly, start_with_plugins, steady_traffic};
use common::{TestNode, wait_until};
use plugins_wat as wat;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);
/// Generous for a debug build on a busy machine; a request stalled behind a
/// plugin, or a backtracking glob, takes far longer.
const NORMAL_P99: Duration = Duration::from_millis(150);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Everything the node logs (at `info` and above), for counting bytes.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
    });
}

/// Bytes of the log lines that mention `plugin`, and how many lines.
fn logged_about(plugin: &str) -> (usize, usize) {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|l| l.contains(plugin))
        .fold((0, 0), |(bytes, lines), l| (bytes + l.len() + 1, lines + 1))
}

/// Resets the process's peak resident set size (Linux `clear_refs`).
fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").expect("peak RSS reset");
}

/// `(peak, current)` resident set size of this process, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("field present")
            * 1024
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

/// CPU time this process has used (user and system), at 10 ms resolution.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("ticks"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}

async fn status_text(node: &TestNode) -> String {
    node.http
        .get(format!("{}/nacre/v1/plugins", node.base))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body")
}

async fn wait_active(node: &TestNode, names: &[&str]) {
    for name in names {
        let loaded = || async { node.plugin(name).await["state"] == "active" };
        let within = tokio::time::timeout(LIMIT, async {
            while !loaded().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        if within.await.is_err() {
            panic!("{name} not loaded: {}", node.plugin(name).await);
        }
    }
}

fn count(status: &Value, field: &str) -> u64 {
    status[field].as_u64().unwrap_or(0)
}

async fn register_all(node: &TestNode, service: &str, ips: &[&str]) {
    for ip in ips {
        node.register(service, ip, 80, &[]).await.assert_ok();
    }
}

/// 1. Every refused answer and every error answer is a failure for the
/// quarantine rule, and warnings about them are rate-limited.
#[tokio::test]
async fn refused_and_error_answers_quarantine_and_their_warnings_are_rate_limited() {
    let _alone = SERIAL.lock().await;
    capture_logs();
    let dir = tempfile::tempdir().expect("dir");
    let filter = |name: &str, body: &str, services: &str| {
        let applies = format!("[applies_to]\nservices = [\"{services}\"]");
        wat::install(
            dir.path(),
            name,
            "push-filter",
            &wat::push_filter(body),
            &applies,
        );
    };
    filter("stranger-filter", wat::NOT_OFFERED, "stranger-svc");
    filter("hundredfold-filter", wat::HUNDREDFOLD, "hundredfold-svc");
    wat::install(
        dir.path(),
        "complaining-listener",
        "listener",
        &wat::listener(&wat::error_of(4)),
        "[applies_to]\nservices = [\"complain*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(
        &node,
        &[
            "stranger-filter",
            "hundredfold-filter",
            "complaining-listener",
        ],
    )
    .await;
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    register_all(&node, "stranger-svc", &ips).await;
    register_all(&node, "hundredfold-svc", &ips).await;
    let started = Instant::now();
    let load = Duration::from_secs(4);
    let node = &node;
    let lists = |service: &'static str| {
        repeatedly(load, move |_| async move {
            let hosts = node.listed(service, &[]).await;
            assert_eq!(
                hosts,
                vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"],
                "refused answers never reach clients"
            );
        })
    };
    let writes = repeatedly(load, move |round| async move {
        let port = (round % 50 + 1) as u16;
        node.register("complain-svc", "10.0.1.1", port, &[])
            .await
            .assert_ok();
        // Let the listener's coalescing window pass, so that it hears many events.
        tokio::time::sleep(Duration::from_millis(60)).await;
    });
    tokio::join!(lists("stranger-svc"), lists("hundredfold-svc"), writes);
    let seconds = started.elapsed().as_secs() as usize + 1;
    for (name, reason) in [
        ("stranger-filter", "which it was not offered"),
        ("hundredfold-filter", ""),
        ("complaining-listener", "returned an error"),
    ] {
        let status = node.plugin(name).await;
        assert!(count(&status, "failures") >= 3, "{status}");
        assert!(
            count(&status, "skipped") >= 1,
            "quarantined (calls were skipped): {status}"
        );
        let failure = status["lastFailure"].as_str().unwrap_or("");
        assert!(failure.contains(reason), "{status}");
        let (_, lines) = logged_about(name);
        // One line at load, then at most one a second plus one per quarantine
        // (quarantines are at least a second apart).
        assert!(
            lines <= 1 + 2 * seconds,
            "{name}: {lines} log lines in {seconds} s"
        );
    }
}

/// 2. An answer with an instance in it more than once is refused like any
/// other invalid answer.
#[tokio::test]
async fn an_answer_with_duplicates_never_reaches_clients() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "tripler",
        "push-filter",
        &wat::push_filter(wat::TRIPLICATE_FIRST),
        "[applies_to]\nservices = [\"triple-svc\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(&node, &["tripler"]).await;
    register_all(&node, "triple-svc", &["10.0.0.1", "10.0.0.2", "10.0.0.3"]).await;
    let node = &node;
    repeatedly(Duration::from_secs(3), move |_| async move {
        let hosts = node.listed("triple-svc", &[]).await;
        assert_eq!(hosts, vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    })
    .await;
    let status = node.plugin("tripler").await;
    assert!(count(&status, "failures") >= 3, "{status}");
    assert!(count(&status, "skipped") >= 1, "quarantined: {status}");
    let failure = status["lastFailure"].as_str().unwrap_or("");
    assert!(failure.contains("more than once"), "{status}");
}

/// 3. What a plugin makes the host copy, hold and log is bounded by the host's
/// caps, checked before copying: answers repeating an 8 MiB string, an 8 MiB
/// error, log lines of 60 fields of 1 MiB, a flood of log lines.
#[tokio::test]
async fn the_hosts_cost_is_bounded_before_anything_is_copied() {
    let _alone = SERIAL.lock().await;
    capture_logs();
    let dir = tempfile::tempdir().expect("dir");
    let install = |name: &str, world: &str, wat_text: String, services: &str| {
        let extra = format!("[applies_to]\nservices = [\"{services}\"]\n[limits]\nmemory_mb = 16");
        wat::install(dir.path(), name, world, &wat_text, &extra);
    };
    install(
        "hoarder",
        "push-filter",
        wat::push_filter(&wat::repeated_big_strings(8)),
        "hoard-svc",
    );
    install(
        "shouter",
        "listener",
        wat::listener(&wat::error_of(8 << 20)),
        "shout*",
    );
    install(
        "chatterbox",
        "listener",
        wat::logging_listener(&wat::log_fields_of_a_mebibyte(60)),
        "chat*",
    );
    install(
        "flooder",
        "listener",
        wat::logging_listener(&wat::log_lines(200)),
        "flood*",
    );
    let node = start_with_plugins(dir.path()).await;
    let names = ["hoarder", "shouter", "chatterbox", "flooder"];
    wait_active(&node, &names).await;
    register_all(&node, "hoard-svc", &["10.0.0.1", "10.0.0.2"]).await;
    let (_, before) = memory();
    reset_peak_memory();
    let started = Instant::now();
    let load = Duration::from_secs(4);
    let node = &node;
    let lists = repeatedly(load, move |_| async move {
        assert_eq!(node.listed("hoard-svc", &[]).await.len(), 2);
    });
    let writes = repeatedly(load, move |round| async move {
        let port = (round % 50 + 1) as u16;
        for service in ["shout-svc", "chat-svc", "flood-svc"] {
            node.register(service, "10.0.1.1", port, &[])
                .await
                .assert_ok();
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    });
    tokio::join!(lists, writes);
    let seconds = started.elapsed().as_secs() + 1;
    let (peak, _) = memory();
    assert!(
        peak.saturating_sub(before) < 64 << 20,
        "peak resident memory grew by {} MiB",
        peak.saturating_sub(before) >> 20
    );
    let status = status_text(node).await;
    assert!(status.len() < 16 << 10, "status is {} bytes", status.len());
    for name in ["hoarder", "shouter", "chatterbox"] {
        let status = node.plugin(name).await;
        assert!(count(&status, "failures") >= 3, "{status}");
        let failure = status["lastFailure"].as_str().unwrap_or("");
        assert!(failure.contains("passed the host more than"), "{status}");
    }
    let flooder = node.plugin("flooder").await;
    assert!(count(&flooder, "logsDropped") > 0, "{flooder}");
    assert_eq!(count(&flooder, "failures"), 0, "{flooder}");
    for name in names {
        let (bytes, lines) = logged_about(name);
        assert!(bytes < 128 << 10, "{name}: {bytes} log bytes");
        // 50 lines a second, one line about drops a second, one at load.
        assert!(lines as u64 <= 52 * seconds, "{name}: {lines} log lines");
    }
}

/// 4. Manifests and components come from the plugin folder only: regular
/// files inside it, capped, never a FIFO or device; errors never quote a
/// file; two manifests may not load plugins of one name.
#[tokio::test]
async fn manifests_are_confined_to_the_plugin_folder() {
    let _alone = SERIAL.lock().await;
    const MARKER: &str = "SECRET-MARKER-4b1d";
    let dir = tempfile::tempdir().expect("dir");
    let outside = tempfile::tempdir().expect("dir");
    let folder = dir.path();
    let quiet = wat::listener("");
    wat::install(folder, "good", "listener", &quiet, "");
    wat::install(outside.path(), "x", "listener", &quiet, "");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, format!("root:x:0:0:{MARKER}:/root:/bin/bash\n")).expect("secret");
    let manifest = |name: &str, wasm: &str| {
        let text = format!("name = \"{name}\"\nworld = \"listener\"\nwasm = \"{wasm}\"\n");
        std::fs::write(folder.join(format!("{name}.toml")), text).expect("manifest");
    };
    manifest("dotdot", "../outside/x.wasm");
    manifest(
        "absolute",
        &outside.path().join("x.wasm").display().to_string(),
    );
    std::os::unix::fs::symlink(&secret, folder.join("passwd.toml")).expect("link");
    std::os::unix::fs::symlink(&secret, folder.join("secret.wasm")).expect("link");
    manifest("leak", "secret.wasm");
    std::fs::write(folder.join("notes.txt"), MARKER).expect("notes");
    manifest("text", "notes.txt");
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.wasm")).expect("link");
    manifest("zero", "zero.wasm");
    mkfifo(&folder.join("fifo.toml"));
    mkfifo(&folder.join("pipe.wasm"));
    manifest("pipe", "pipe.wasm");
    let big = std::fs::File::create(folder.join("big.toml")).expect("big");
    big.set_len(1 << 20).expect("sparse");
    let twin =
        |name: &str| format!("name = \"{name}\"\nworld = \"listener\"\nwasm = \"good.wasm\"\n");
    std::fs::write(folder.join("twin-b.toml"), twin("twin")).expect("twin");
    std::fs::write(folder.join("twin-a.toml"), twin("twin")).expect("twin");

    let node = tokio::time::timeout(LIMIT, start_with_plugins(folder))
        .await
        .expect("the node starts: nothing in the folder blocks loading");
    let traffic = steady_traffic(&node, "bystander", Duration::from_secs(2));
    let checks = async {
        let text = status_text(&node).await;
        assert!(!text.contains(MARKER), "file content in the status: {text}");
        let expect = [
            ("dotdot", "relative path without `..`"),
            ("absolute", "relative path without `..`"),
            ("passwd", "must be a file inside the plugin folder"),
            ("leak", "must be a file inside the plugin folder"),
            ("text", "is not a WebAssembly file"),
            ("zero", "must be a file inside the plugin folder"),
            ("fifo", "is a FIFO, not a regular file"),
            ("pipe", "is a FIFO, not a regular file"),
            ("big", "more than the 65536 bytes"),
        ];
        for (name, reason) in expect {
            let status = node.plugin(name).await;
            assert_eq!(status["state"], "failed", "{name}: {status}");
            let error = status["error"].as_str().unwrap_or("");
            assert!(error.contains(reason), "{name}: {error}");
        }
        assert_eq!(node.plugin("good").await["state"], "active");
        let twins: Vec<Value> = node
            .plugins()
            .await
            .into_iter()
            .filter(|p| p["name"] == "twin")
            .collect();
        assert_eq!(twins.len(), 2);
        assert_eq!(
            twins[0]["state"], "active",
            "the first by file name: {twins:?}"
        );
        assert!(
            twins[0]["manifest"]
                .as_str()
                .unwrap_or("")
                .ends_with("twin-a.toml")
        );
        assert_eq!(twins[1]["state"], "failed");
        assert!(
            twins[1]["error"]
                .as_str()
                .unwrap_or("")
                .contains("already used by")
        );
        // Reloads are not wedged: a plugin added now loads, a name freed is
        // taken up, and a refused manifest that changes its name loads.
        wat::install(folder, "late", "listener", &quiet, "");
        std::fs::remove_file(folder.join("twin-a.toml")).expect("removed");
        wait_until(
            LIMIT,
            "the late plugin and the second twin load",
            || async {
                node.plugin("late").await["state"] == "active"
                    && node.plugin("twin").await["state"] == "active"
            },
        )
        .await;
        std::fs::write(folder.join("twin-c.toml"), twin("twin")).expect("third twin");
        wait_until(LIMIT, "the third twin is refused", || async {
            node.plugins().await.iter().any(|p| {
                p["manifest"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("twin-c.toml")
                    && p["state"] == "failed"
            })
        })
        .await;
        std::fs::write(folder.join("twin-c.toml"), twin("triplet")).expect("renamed");
        wait_until(LIMIT, "the renamed third twin loads", || async {
            node.plugin("triplet").await["state"] == "active"
        })
        .await;
    };
    let (rounds, ()) = tokio::join!(traffic, checks);
    assert!(rounds >= 10, "only {rounds} rounds");
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// 5. Reloading costs what changed, and matching costs one pass over a name:
/// an idle node with large manifests and adversarial globs stays idle, and
/// requests no plugin serves are as fast as ever.
#[tokio::test]
async fn reloads_and_matching_cost_only_what_changed() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    let folder = dir.path();
    let quiet = wat::listener("");
    // Over the manifest cap: refused once, not read again.
    let pad = "x".repeat(1 << 20);
    wat::install(
        folder,
        "huge",
        "listener",
        &quiet,
        &format!("[config]\npad = \"{pad}\""),
    );
    // Just under it: loaded once, not parsed again.
    let pad = "x".repeat(60 << 10);
    wat::install(
        folder,
        "large",
        "listener",
        &quiet,
        &format!("[applies_to]\nservices = [\"nothing\"]\n[config]\npad = \"{pad}\""),
    );
    // A glob far over the cap (a backtracking matcher needs name × glob steps).
    let greedy = format!("{}b", "*a".repeat(25_000));
    wat::install(
        folder,
        "greedy",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        &format!("[applies_to]\nservices = [\"{greedy}\"]"),
    );
    // The worst glob within the cap.
    let tricky = format!("{}b", "*a".repeat(127));
    wat::install(
        folder,
        "tricky",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        &format!("[applies_to]\nservices = [\"{tricky}\"]"),
    );
    let dir_path = folder.to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = dir_path;
        c.plugins.reload_interval_ms = 50;
    })
    .await;
    wait_active(&node, &["large", "tricky"]).await;
    for (name, reason) in [
        ("huge", "more than the 65536 bytes"),
        ("greedy", "at most 256 characters"),
    ] {
        let status = node.plugin(name).await;
        assert_eq!(status["state"], "failed", "{status}");
        assert!(
            status["error"].as_str().unwrap_or("").contains(reason),
            "{status}"
        );
    }

    // Idle: about 40 reloads of the folder.
    let cpu_before = cpu_time();
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = cpu_time() - cpu_before;
    assert!(
        busy.as_secs_f64() < 0.15 * idle.elapsed().as_secs_f64(),
        "an idle node used {busy:?} of CPU in {:?}",
        idle.elapsed()
    );

    // Names built against the globs: the tricky filter applies to the first only.
    let matching = format!("{}b", "a".repeat(500));
    let near_miss = "a".repeat(500);
    register_all(&node, &matching, &["10.0.0.1", "10.0.0.2"]).await;
    register_all(&node, &near_miss, &["10.0.0.1", "10.0.0.2"]).await;
    let (node, matching, near_miss) = (&node, matching.as_str(), near_miss.as_str());
    let latencies = repeatedly(Duration::from_secs(2), move |round| async move {
        let port = (round % 50 + 1) as u16;
        node.register(near_miss, "10.0.2.1", port, &[])
            .await
            .assert_ok();
        assert!(node.listed(near_miss, &[]).await.len() >= 3);
        assert_eq!(node.listed(matching, &[]).await.len(), 1, "filtered");
    })
    .await;
    assert!(latencies.len() >= 10, "only {} rounds", latencies.len());
    assert!(
        p99(&latencies) < NORMAL_P99,
        "p99 of a register and two lists: {:?}",
        p99(&latencies)
    );
}

/// 6. A push filter that uses all the deadline its manifest may ask for
/// delays only the requests it filters, by at most the request-path cap;
/// probes, the plugin status, other filters and other services go on at
/// their normal pace.
#[tokio::test]
async fn a_slow_push_filter_stalls_only_itself() {
    let _alone = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "sloth",
        "push-filter",
        // `unreachable` types the end of a function that never gets there.
        &wat::push_filter(&format!("{} unreachable", wat::INFINITE_LOOP)),
        "[applies_to]\nservices = [\"slow*\"]\n[limits]\ntimeout_ms = 60000",
    );
    wat::install(
        dir.path(),
        "quick",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        "[applies_to]\nservices = [\"quick*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    wait_active(&node, &["sloth", "quick"]).await;
    for service in ["slow-svc", "quick-svc"] {
        register_all(&node, service, &["10.0.0.1", "10.0.0.2"]).await;
    }
    let load = Duration::from_secs(5);
    let node = &node;
    let slow = move |_| async move {
        // Unfiltered: the filter never answers in time.
        assert_eq!(node.listed("slow-svc", &[]).await.len(), 2);
    };
    let quick = move |_| async move {
        assert_eq!(node.listed("quick-svc", &[]).await.len(), 1);
    };
    let liveness = move |_| async move {
        let reply = node
            .http
            .get(format!("{}/nacos/v1/console/health/liveness", node.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(reply.status(), 200);
    };
    let status = move |_| async move {
        assert_eq!(node.plugins().await.len(), 2);
    };
    let other = move |round: usize| async move {
        let port = (round % 50 + 1) as u16;
        node.register("other-svc", "10.0.3.1", port, &[])
            .await
            .assert_ok();
        assert!(!node.listed("other-svc", &[]).await.is_empty());
    };
    let (slow_a, slow_b, quick, liveness, status, other) = tokio::join!(
        repeatedly(load, slow),
        repeatedly(load, slow),
        repeatedly(load, quick),
        repeatedly(load, liveness),
        repeatedly(load, status),
        repeatedly(load, other),
    );
    let cap = Duration::from_millis(1000);
    for slow in [&slow_a, &slow_b] {
        let worst = slow.iter().max().copied().unwrap_or_default();
        assert!(worst < cap + NORMAL_P99, "a slow-svc list took {worst:?}");
    }
    for (what, latencies) in [
        ("quick-svc list", &quick),
        ("liveness", &liveness),
        ("plugin status", &status),
        ("other-svc register and list", &other),
    ] {
        assert!(
            latencies.len() >= 10,
            "{what}: only {} rounds",
            latencies.len()
        );
        assert!(
            p99(latencies) < NORMAL_P99,
            "{what}: p99 {:?}",
            p99(latencies)
        );
    }
    let sloth = node.plugin("sloth").await;
    let failure = sloth["lastFailure"].as_str().unwrap_or("");
    assert!(failure.contains("ran past its 1000 ms deadline"), "{sloth}");
    assert!(count(&sloth, "late") >= 1, "{sloth}");
    assert_eq!(count(&node.plugin("quick").await, "failures"), 0);
}
