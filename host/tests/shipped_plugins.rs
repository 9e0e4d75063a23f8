//! The plugins the project ships (plugins/, Rust, built to components by
//! scripts/build-plugins.sh) loaded into a running node, and their effect
//! through the HTTP API: zone-affinity shapes `instance/list`, metadata-health
//! decides when instances turn unhealthy, webhook POSTs events to a local
//! server — only to servers its manifest allows, never past its deadline.
//! Also: compiled components are cached, and a corrupt cache file is ignored.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use common::{TestNode, target_dir, test_config, wait_for};
use serde_json::Value;
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(20);

/// The built component of a shipped plugin, e.g. `zone_affinity.wasm`.
fn built(plugin: &str) -> PathBuf {
    let path = target_dir()
        .join("plugins")
        .join(plugin)
        .join(format!("{}.wasm", plugin.replace('-', "_")));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-plugins.sh (scripts/test.sh does) to build the shipped plugins",
        path.display()
    );
    path
}

/// Puts a shipped plugin into `dir` with a manifest of the test's own.
fn install(dir: &Path, plugin: &str, world: &str, manifest_tail: &str) {
    let wasm = built(plugin);
    let file = wasm.file_name().expect("file name");
    std::fs::copy(&wasm, dir.join(file)).expect("component copied");
    let manifest = format!(
        "name = \"{plugin}\"\nworld = \"{world}\"\nwasm = \"{}\"\n{manifest_tail}\n",
        file.to_string_lossy()
    );
    std::fs::write(dir.join(format!("{plugin}.toml")), manifest).expect("manifest written");
}

fn with_plugins(dir: &Path) -> impl FnOnce(&mut nacre::Config) + use<> {
    let dir = dir.to_path_buf();
    move |c| {
        c.plugins.dir = dir;
        c.plugins.reload_interval_ms = 100;
        c.health.check_period_ms = 50;
    }
}

#[tokio::test]
async fn zone_affinity_sends_each_client_the_instances_of_its_zone() {
    let plugins = tempfile::tempdir().expect("dir");
    install(
        plugins.path(),
        "zone-affinity",
        "push-filter",
        "[applies_to]\nservices = [\"zoned*\"]\n[config]\nclient_zones = \"10.1.=zone-a, 10.2.=zone-b, 10.3.=zone-c\"",
    );
    let node = TestNode::start_with(with_plugins(plugins.path())).await;
    let zone = |z: &str| format!(r#"{{"zone":"{z}"}}"#);
    for (ip, z, weight) in [
        ("10.0.0.1", "zone-a", "1"),
        ("10.0.0.2", "zone-b", "1"),
        ("10.0.0.3", "zone-a", "1"),
        // zone-c cannot serve: weight 0.
        ("10.0.0.4", "zone-c", "0"),
    ] {
        let metadata = zone(z);
        node.register(
            "zoned",
            ip,
            80,
            &[("metadata", &metadata), ("weight", weight)],
        )
        .await
        .assert_ok();
        node.register("plain", ip, 80, &[("metadata", &metadata)])
            .await
            .assert_ok();
    }
    let all = vec!["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];
    assert_eq!(
        node.listed("zoned", &[("clientIP", "10.1.7.7")]).await,
        vec!["10.0.0.1:80", "10.0.0.3:80"]
    );
    assert_eq!(
        node.listed("zoned", &[("clientIP", "10.2.7.7")]).await,
        vec!["10.0.0.2:80"]
    );
    assert_eq!(
        node.listed("zoned", &[("clientIP", "10.3.7.7")]).await,
        all,
        "a zone that cannot serve falls back to every instance"
    );
    assert_eq!(
        node.listed("zoned", &[("clientIP", "192.168.1.1")]).await,
        all,
        "a client of no known zone gets every instance"
    );
    assert_eq!(
        node.listed("plain", &[("clientIP", "10.1.7.7")]).await,
        all,
        "the filter applies only to its services"
    );
    let status = node.plugin("zone-affinity").await;
    assert_eq!(status["failures"], 0, "{status}");
}

async fn healthy(node: &TestNode, service: &str, ip: &str) -> bool {
    node.detail(service, ip, 1).await.json()["healthy"] == true
}

async fn beat_with_load(node: &TestNode, service: &str, ip: &str, load: &str) {
    let beat = serde_json::json!({
        "ip": ip, "port": 1, "serviceName": service, "metadata": {"load": load},
    })
    .to_string();
    node.send(
        "PUT",
        "/instance/beat",
        &[
            ("serviceName", service),
            ("ip", ip),
            ("port", "1"),
            ("beat", &beat),
        ],
    )
    .await
    .assert_ok();
}

#[tokio::test]
async fn metadata_health_applies_per_service_timeouts_and_reported_overload() {
    let plugins = tempfile::tempdir().expect("dir");
    install(
        plugins.path(),
        "metadata-health",
        "health-policy",
        "[applies_to]\nservices = [\"meta-*\"]\n[config]\nmax_load = 0.8\n\"beat_timeout_ms.meta-fast\" = 400\n\"delete_timeout_ms.meta-fast\" = 60000",
    );
    let node = TestNode::start_with(with_plugins(plugins.path())).await;

    // Per-service timeout: meta-fast turns unhealthy after 400 ms of silence,
    // meta-slow keeps the node's default of 15 s.
    let registered = Instant::now();
    node.register("meta-fast", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.register("meta-slow", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    wait_for("meta-fast turns unhealthy", LIMIT, || async {
        !healthy(&node, "meta-fast", "10.0.0.1").await
    })
    .await;
    assert!(
        registered.elapsed() >= Duration::from_millis(400),
        "unhealthy before its configured timeout"
    );
    assert!(registered.elapsed() < Duration::from_secs(15));
    assert!(
        healthy(&node, "meta-slow", "10.0.0.1").await,
        "a service without a configured timeout keeps the default"
    );

    // Overload reported in a beat makes the instance unhealthy; a normal load heals it.
    node.register("meta-load", "10.0.0.2", 1, &[])
        .await
        .assert_ok();
    beat_with_load(&node, "meta-load", "10.0.0.2", "0.95").await;
    wait_for("an overloaded instance turns unhealthy", LIMIT, || async {
        !healthy(&node, "meta-load", "10.0.0.2").await
    })
    .await;
    beat_with_load(&node, "meta-load", "10.0.0.2", "0.10").await;
    wait_for("a relieved instance turns healthy", LIMIT, || async {
        healthy(&node, "meta-load", "10.0.0.2").await
    })
    .await;
    let status = node.plugin("metadata-health").await;
    assert_eq!(status["failures"], 0, "{status}");
}

/// A webhook receiver on 127.0.0.1: keeps every body POSTed to `/events`.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = Arc::clone(&bodies);
        let app = Router::new().route(
            "/events",
            post(move |body: String| {
                let kept = Arc::clone(&kept);
                async move {
                    let json = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    kept.lock().expect("lock").push(json);
                    "ok"
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bound");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { port, bodies }
    }

    fn got(&self, service: &str) -> Option<Value> {
        self.bodies
            .lock()
            .expect("lock")
            .iter()
            .find(|b| b["service"]["name"] == service)
            .cloned()
    }

    fn count(&self) -> usize {
        self.bodies.lock().expect("lock").len()
    }
}

fn webhook_manifest(url_port: u16, allowed: &str, services: &str) -> String {
    format!(
        "[applies_to]\nservices = [\"{services}\"]\n[config]\nurl = \"http://127.0.0.1:{url_port}/events\"\n{allowed}"
    )
}

#[tokio::test]
async fn webhook_posts_change_events_to_an_allowed_server() {
    let receiver = Receiver::start().await;
    let plugins = tempfile::tempdir().expect("dir");
    let allowed = format!("[capabilities]\nhttp = [\"127.0.0.1:{}\"]", receiver.port);
    install(
        plugins.path(),
        "webhook",
        "listener",
        &webhook_manifest(receiver.port, &allowed, "hooked*"),
    );
    let node = TestNode::start_with(with_plugins(plugins.path())).await;
    node.register(
        "hooked",
        "10.0.0.1",
        8080,
        &[("metadata", r#"{"zone":"a"}"#)],
    )
    .await
    .assert_ok();
    let mut event = Value::Null;
    wait_for("the receiver gets the event", LIMIT, || {
        event = receiver.got("hooked").unwrap_or(Value::Null);
        let done = !event.is_null();
        async move { done }
    })
    .await;
    assert_eq!(event["service"]["namespace"], "public", "{event}");
    assert_eq!(event["service"]["group"], "DEFAULT_GROUP", "{event}");
    assert_eq!(event["kinds"], serde_json::json!(["instances"]), "{event}");
    assert_eq!(event["instances"][0]["ip"], "10.0.0.1", "{event}");
    assert_eq!(event["instances"][0]["port"], 8080, "{event}");
    assert_eq!(event["instances"][0]["metadata"]["zone"], "a", "{event}");
    let status = node.plugin("webhook").await;
    assert_eq!(status["failures"], 0, "{status}");
}

#[tokio::test]
async fn webhook_to_a_server_outside_its_allow_list_is_refused_and_the_node_serves_on() {
    let receiver = Receiver::start().await;
    let plugins = tempfile::tempdir().expect("dir");
    // Allowed: some other port on 127.0.0.1, not the receiver's.
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let other = elsewhere.local_addr().expect("address").port();
    let allowed = format!("[capabilities]\nhttp = [\"127.0.0.1:{other}\"]");
    install(
        plugins.path(),
        "webhook",
        "listener",
        &webhook_manifest(receiver.port, &allowed, "*"),
    );
    let node = TestNode::start_with(with_plugins(plugins.path())).await;
    for port in 1..=5 {
        node.register("refused", "10.0.0.1", port, &[])
            .await
            .assert_ok();
        assert_eq!(node.listed("refused", &[]).await.len(), usize::from(port));
    }
    wait_for("the refused calls are counted", LIMIT, || async {
        let status = node.plugin("webhook").await;
        status["failures"].as_u64().unwrap_or(0) >= 1
            && status["lastFailure"]
                .as_str()
                .is_some_and(|f| f.contains("allow-list"))
    })
    .await;
    assert_eq!(receiver.count(), 0, "the receiver was reached");
}

#[tokio::test]
async fn webhook_without_the_http_grant_is_refused_at_load() {
    let plugins = tempfile::tempdir().expect("dir");
    install(
        plugins.path(),
        "webhook",
        "listener",
        &webhook_manifest(9, "", "*"),
    );
    let node = TestNode::start_with(with_plugins(plugins.path())).await;
    let status = node.plugin("webhook").await;
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["error"].as_str().unwrap_or("");
    assert!(error.contains("grants no `http` capability"), "{error}");
    node.register("unaffected", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
}

#[tokio::test]
async fn a_webhook_to_a_server_that_never_answers_is_cut_off_at_its_deadline() {
    // Accepts connections and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.expect("bound");
    let silent_port = silent.local_addr().expect("address").port();
    let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
    let holder = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((stream, _)) = silent.accept().await {
            holder.lock().expect("lock").push(stream);
        }
    });
    let receiver = Receiver::start().await;

    let plugins = tempfile::tempdir().expect("dir");
    // Two listeners for every service, called one after the other on the
    // listener thread in manifest order: `silent` (to the silent server) before
    // `webhook` (to the receiver). The stuck call must not hold up the other.
    install(
        plugins.path(),
        "webhook",
        "listener",
        &webhook_manifest(
            receiver.port,
            &format!("[capabilities]\nhttp = [\"127.0.0.1:{}\"]", receiver.port),
            "*",
        ),
    );
    let silent_manifest = format!(
        "name = \"silent\"\nworld = \"listener\"\nwasm = \"webhook.wasm\"\n[config]\nurl = \"http://127.0.0.1:{silent_port}/events\"\n[limits]\ntimeout_ms = 300\n[capabilities]\nhttp = [\"127.0.0.1:{silent_port}\"]\n"
    );
    std::fs::write(plugins.path().join("silent.toml"), silent_manifest).expect("written");
    let node = TestNode::start_with(with_plugins(plugins.path())).await;

    for (i, service) in ["slow-1", "slow-2"].iter().enumerate() {
        let started = Instant::now();
        node.register(service, "10.0.0.1", 80, &[])
            .await
            .assert_ok();
        wait_for("the good webhook still gets events", LIMIT, || {
            let done = receiver.got(service).is_some();
            async move { done }
        })
        .await;
        // Deadline 300 ms per call; generous slack for a shared, noisy machine.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "event {i} took {:?}",
            started.elapsed()
        );
    }
    let status = node.plugin("silent").await;
    assert!(status["failures"].as_u64().unwrap_or(0) >= 1, "{status}");
    assert!(
        status["lastFailure"]
            .as_str()
            .is_some_and(|f| f.contains("deadline") || f.contains("Timeout")),
        "{status}"
    );
}

#[tokio::test]
async fn a_plugin_that_blocks_in_wasi_is_cut_off_and_no_request_fails() {
    let blocker = target_dir().join("plugins/test-guests/blocker.wasm");
    assert!(
        blocker.is_file(),
        "{} is missing: run scripts/build-plugins.sh",
        blocker.display()
    );
    for mode in ["sleep", "print"] {
        let plugins = tempfile::tempdir().expect("dir");
        std::fs::copy(&blocker, plugins.path().join("blocker.wasm")).expect("copied");
        let manifest = format!(
            "name = \"blocker\"\nworld = \"push-filter\"\nwasm = \"blocker.wasm\"\n[config]\nmode = \"{mode}\"\n"
        );
        std::fs::write(plugins.path().join("blocker.toml"), manifest).expect("written");
        let node = TestNode::start_with(with_plugins(plugins.path())).await;
        for port in 1..=10 {
            node.register("victim", "10.0.0.1", port, &[])
                .await
                .assert_ok();
            assert_eq!(
                node.listed("victim", &[]).await.len(),
                usize::from(port),
                "{mode}: fail open, the unfiltered list"
            );
        }
        let status = node.plugin("blocker").await;
        assert!(
            status["failures"].as_u64().unwrap_or(0) >= 3,
            "{mode}: {status}"
        );
        assert_eq!(status["state"], "quarantined", "{mode}: {status}");
        assert!(
            status["lastFailure"]
                .as_str()
                .is_some_and(|f| f.contains("blocking WASI call")),
            "{mode}: {status}"
        );
    }
}

/// Starts a node on `data` (kept across restarts) with `plugins`, and returns
/// what `GET /nacre/v1/plugins` says about zone-affinity once it is loaded.
async fn load_zone_affinity(data: tempfile::TempDir, plugins: &Path) -> (Value, tempfile::TempDir) {
    let mut config = test_config(data.path());
    with_plugins(plugins)(&mut config);
    let mut node = TestNode::start_in(data, config).await;
    let status = node.plugin("zone-affinity").await;
    assert_eq!(status["state"], "active", "{status}");
    // The loaded component works, whichever way it was loaded.
    node.register(
        "zoned",
        "10.0.0.1",
        80,
        &[("metadata", r#"{"zone":"zone-a"}"#)],
    )
    .await
    .assert_ok();
    node.register(
        "zoned",
        "10.0.0.2",
        80,
        &[("metadata", r#"{"zone":"zone-b"}"#)],
    )
    .await
    .assert_ok();
    assert_eq!(
        node.listed("zoned", &[("clientIP", "10.1.0.1")]).await,
        vec!["10.0.0.1:80"]
    );
    node.stop().await;
    let TestNode { dir, .. } = node;
    (status, dir)
}

fn cache_files(data: &Path) -> Vec<PathBuf> {
    let dir = data.join(nacre::node::PLUGIN_CACHE_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[tokio::test]
async fn compiled_plugins_are_cached_and_a_corrupt_cache_file_is_ignored() {
    let plugins = tempfile::tempdir().expect("dir");
    install(
        plugins.path(),
        "zone-affinity",
        "push-filter",
        "[config]\nclient_zones = \"10.1.=zone-a, 10.2.=zone-b\"",
    );
    let data = tempfile::tempdir().expect("dir");

    let (status, data) = load_zone_affinity(data, plugins.path()).await;
    assert_eq!(status["artifact"], "compiled", "{status}");
    let files = cache_files(data.path());
    assert_eq!(files.len(), 1, "one cached artifact: {files:?}");
    let written = std::fs::read(&files[0]).expect("read");

    let (status, data) = load_zone_affinity(data, plugins.path()).await;
    assert_eq!(
        status["artifact"], "cached",
        "second load reuses the artifact: {status}"
    );

    // Flip bytes in the middle of the artifact: ignored, compiled again, rewritten.
    let mut corrupt = written.clone();
    let middle = corrupt.len() / 2;
    for byte in &mut corrupt[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(&files[0], &corrupt).expect("corrupted");
    let (status, data) = load_zone_affinity(data, plugins.path()).await;
    assert_eq!(
        status["artifact"], "compiled",
        "a corrupt file is not trusted: {status}"
    );
    assert_ne!(
        std::fs::read(&files[0]).expect("read"),
        corrupt,
        "rewritten"
    );

    // A foreign file (not ours at all) under the right name: ignored too.
    std::fs::write(&files[0], b"\x7fELF not a nacre artifact").expect("written");
    let (status, data) = load_zone_affinity(data, plugins.path()).await;
    assert_eq!(status["artifact"], "compiled", "{status}");
    let (status, data) = load_zone_affinity(data, plugins.path()).await;
    assert_eq!(status["artifact"], "cached", "{status}");

    // Artifacts of plugins no longer loaded are removed.
    std::fs::remove_file(plugins.path().join("zone-affinity.toml")).expect("removed");
    let mut config = test_config(data.path());
    with_plugins(plugins.path())(&mut config);
    let node = TestNode::start_in(data, config).await;
    assert!(node.plugin("zone-affinity").await.is_null());
    assert_eq!(cache_files(node.dir.path()), Vec::<PathBuf>::new());
}
