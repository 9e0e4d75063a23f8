//! Active health checks of persistent instances: TCP by default, HTTP when
//! the cluster says so. Every instance here is a listener on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestNode, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: Duration = Duration::from_secs(10);

async fn probing_node() -> TestNode {
    TestNode::start_with(|c| {
        c.health.probe_enabled = true;
        c.health.probe_interval_ms = 100;
        c.health.probe_timeout_ms = 500;
    })
    .await
}

async fn register_persistent(node: &TestNode, service: &str, port: u16) {
    let port = port.to_string();
    node.send(
        "POST",
        "/instance",
        &[
            ("serviceName", service),
            ("ip", "127.0.0.1"),
            ("port", &port),
            ("ephemeral", "false"),
        ],
    )
    .await
    .assert_ok();
}

async fn healthy(node: &TestNode, service: &str, port: u16) -> bool {
    let reply = node.detail(service, "127.0.0.1", port).await;
    reply.status == 200 && reply.json()["healthy"] == true
}

/// Healthy while something listens on the port; unhealthy after `checkTimes`
/// failed connects; healthy again once it listens again.
#[tokio::test]
async fn tcp_probes_follow_the_listener() {
    let node = probing_node().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let probes = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&probes);
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    register_persistent(&node, "tcp-db", port).await;
    // Probed several times while listening: still healthy.
    wait_for("several probes", LIMIT, || async {
        probes.load(Ordering::SeqCst) >= 4
    })
    .await;
    assert!(healthy(&node, "tcp-db", port).await);

    accepting.abort();
    let _ = accepting.await;
    wait_for("unhealthy once nothing listens", LIMIT, || async {
        !healthy(&node, "tcp-db", port).await
    })
    .await;

    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let again = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    wait_for("healthy again once it listens", LIMIT, || async {
        healthy(&node, "tcp-db", port).await
    })
    .await;
    again.abort();
}

/// A tiny HTTP server whose status the test sets.
async fn http_server(status: Arc<AtomicU16>, requests: Arc<AtomicUsize>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            requests.fetch_add(1, Ordering::SeqCst);
            let status = status.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let head = String::from_utf8_lossy(&buf);
                // Only /health is the health endpoint.
                let code = if head.starts_with("GET /health ") {
                    status
                } else {
                    404
                };
                let reply =
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

/// With an HTTP checker on its cluster, an instance is healthy while its
/// health path answers the expected status.
#[tokio::test]
async fn http_probes_use_the_clusters_checker() {
    let node = probing_node().await;
    let status = Arc::new(AtomicU16::new(200));
    let requests = Arc::new(AtomicUsize::new(0));
    let port = http_server(Arc::clone(&status), Arc::clone(&requests)).await;
    register_persistent(&node, "web", port).await;
    node.send(
        "PUT",
        "/cluster",
        &[
            ("serviceName", "web"),
            ("clusterName", "DEFAULT"),
            (
                "healthChecker",
                r#"{"type":"HTTP","path":"/health","expectedResponseCode":200}"#,
            ),
        ],
    )
    .await
    .assert_ok();
    let detail = node.get("/service", &[("serviceName", "web")]).await;
    assert_eq!(
        detail.json()["clusters"][0]["healthChecker"]["type"],
        "HTTP",
        "{}",
        detail.text
    );

    status.store(503, Ordering::SeqCst);
    wait_for("unhealthy on 503", LIMIT, || async {
        !healthy(&node, "web", port).await
    })
    .await;
    status.store(200, Ordering::SeqCst);
    wait_for("healthy on 200", LIMIT, || async {
        healthy(&node, "web", port).await
    })
    .await;

    // A checker of type NONE leaves health alone (the listener still answers 503).
    node.send(
        "PUT",
        "/cluster",
        &[
            ("serviceName", "web"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"NONE"}"#),
        ],
    )
    .await
    .assert_ok();
    status.store(503, Ordering::SeqCst);
    // A probe may have been under way when the checker changed.
    let settle = std::time::Instant::now();
    wait_for("in-flight probes to finish", LIMIT, || async {
        settle.elapsed() > Duration::from_millis(200)
    })
    .await;
    let before = requests.load(Ordering::SeqCst);
    let since = std::time::Instant::now();
    wait_for("several probe intervals", LIMIT, || async {
        since.elapsed() > Duration::from_millis(600)
    })
    .await;
    assert_eq!(
        requests.load(Ordering::SeqCst),
        before,
        "a NONE checker must not probe"
    );
    assert!(healthy(&node, "web", port).await);
}

/// Bad cluster settings are refused and change nothing.
#[tokio::test]
async fn bad_cluster_settings_are_refused() {
    let node = probing_node().await;
    register_persistent(&node, "strict", 1).await;
    for (checker, needle) in [
        ("{", "healthChecker"),
        (r#"{"type":"MYSQL"}"#, "unsupported type"),
        (r#"{"type":"HTTP","path":"no-slash"}"#, "path"),
        (
            r#"{"type":"HTTP","path":"/x","expectedResponseCode":7}"#,
            "expectedResponseCode",
        ),
    ] {
        node.send(
            "PUT",
            "/cluster",
            &[
                ("serviceName", "strict"),
                ("clusterName", "DEFAULT"),
                ("healthChecker", checker),
            ],
        )
        .await
        .assert_error(400, needle);
    }
    node.send(
        "PUT",
        "/cluster",
        &[
            ("serviceName", "missing"),
            ("clusterName", "DEFAULT"),
            ("healthChecker", r#"{"type":"TCP"}"#),
        ],
    )
    .await
    .assert_error(400, "not found");
    let detail = node.get("/service", &[("serviceName", "strict")]).await;
    assert_eq!(
        detail.json()["clusters"][0]["healthChecker"]["type"],
        "TCP",
        "{}",
        detail.text
    );
}
