//! A node started in-process on 127.0.0.1:0, and an HTTP client for it.

#![allow(dead_code)] // each test file uses its own subset of these helpers

pub mod auth;
pub mod plugins;
pub mod process;
pub mod udp;

use std::future::Future;
use std::time::Duration;

use nacre::{Config, Node};
pub use nacre_e2e::test_config;
use serde_json::Value;

pub const NS: &str = "/nacos/v1/ns";

/// Cargo's target directory for this build (`target/`, or `$CARGO_TARGET_DIR`):
/// where `scripts/build-plugins.sh` leaves the built plugins (`plugins/`).
/// Cargo tells integration tests its `<target>/tmp` at compile time.
pub fn target_dir() -> std::path::PathBuf {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

pub struct TestNode {
    pub node: Option<Node>,
    pub base: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// A reply: status and body text.
pub struct Reply {
    pub status: u16,
    pub text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        Reply {
            status: response.status().as_u16(),
            text: response.text().await.expect("body read"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts an error reply: this status, and a body that mentions `needle`.
    pub fn assert_error(&self, status: u16, needle: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert!(
            self.text.contains(needle),
            "expected {needle:?} in: {}",
            self.text
        );
    }

    pub fn assert_ok(&self) -> &Self {
        assert_eq!(self.status, 200, "body: {}", self.text);
        self
    }
}

impl TestNode {
    pub async fn start() -> TestNode {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestNode {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> TestNode {
        let node = Node::start(config).await.expect("node starts");
        let base = format!("http://{}", node.addr());
        TestNode {
            node: Some(node),
            base,
            http: reqwest::Client::new(),
            dir,
        }
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    /// Stops the node, keeping its data directory.
    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    pub async fn send(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Reply {
        self.request(None, method, path, params).await
    }

    /// Sends `method path` with `params` (as a query for GET, a form
    /// otherwise), and the User-Agent `agent` if given.
    async fn request(
        &self,
        agent: Option<&str>,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{}{}", self.base, NS, path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = if method == reqwest::Method::GET {
            self.http.request(method, &url).query(params)
        } else {
            self.http.request(method, &url).form(params)
        };
        if let Some(agent) = agent {
            request = request.header("User-Agent", agent);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Reply {
        self.send("GET", path, params).await
    }

    /// `POST instance` of `ip:port` in `service`, with `extra` parameters.
    pub async fn register(
        &self,
        service: &str,
        ip: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Reply {
        self.instance_write("POST", service, ip, port, extra).await
    }

    /// `DELETE instance` of `ip:port` in `service`, with `extra` parameters.
    pub async fn deregister(
        &self,
        service: &str,
        ip: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Reply {
        self.instance_write("DELETE", service, ip, port, extra)
            .await
    }

    async fn instance_write(
        &self,
        method: &str,
        service: &str,
        ip: &str,
        port: u16,
        extra: &[(&str, &str)],
    ) -> Reply {
        let port = port.to_string();
        let mut params = vec![
            ("serviceName", service),
            ("ip", ip),
            ("port", port.as_str()),
        ];
        params.extend_from_slice(extra);
        self.send(method, "/instance", &params).await
    }

    pub async fn list(&self, service: &str, extra: &[(&str, &str)]) -> Value {
        let mut params = vec![("serviceName", service)];
        params.extend_from_slice(extra);
        let reply = self.get("/instance/list", &params).await;
        reply.assert_ok();
        reply.json()
    }

    /// `ip:port` of each listed host, sorted.
    pub async fn listed(&self, service: &str, extra: &[(&str, &str)]) -> Vec<String> {
        let list = self.list(service, extra).await;
        assert!(list["hosts"].is_array(), "no hosts array: {list}");
        hosts(&list)
    }

    /// `GET path` of any route of the node, not only the naming API under
    /// [`NS`] (`/nacre/v1/metrics`, `/nacos/v2/core/loader/current`, ...):
    /// status and body, whatever they are.
    pub async fn fetch(&self, path: &str) -> Reply {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        Reply::read(response).await
    }

    /// Every plugin's entry in `GET /nacre/v1/plugins`.
    pub async fn plugins(&self) -> Vec<Value> {
        let all = self.fetch("/nacre/v1/plugins").await.json();
        all["plugins"].as_array().cloned().unwrap_or_default()
    }

    /// One plugin's entry in `GET /nacre/v1/plugins` (null when not loaded).
    pub async fn plugin(&self, name: &str) -> Value {
        self.plugins()
            .await
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or(Value::Null)
    }

    pub async fn detail(&self, service: &str, ip: &str, port: u16) -> Reply {
        let port = port.to_string();
        self.get(
            "/instance",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port.as_str()),
            ],
        )
        .await
    }
}

impl TestNode {
    /// Sets the health checker of a cluster (`PUT cluster`), e.g. `{"type":"NONE"}`.
    pub async fn set_checker(&self, service: &str, cluster: &str, checker: &str) {
        self.send(
            "PUT",
            "/cluster",
            &[
                ("serviceName", service),
                ("clusterName", cluster),
                ("healthChecker", checker),
            ],
        )
        .await
        .assert_ok();
    }

    /// `PUT health/instance` for `ip:port` in the `DEFAULT` cluster.
    pub async fn set_health(&self, service: &str, ip: &str, port: u16, healthy: bool) -> Reply {
        let port = port.to_string();
        let healthy = healthy.to_string();
        self.send(
            "PUT",
            "/health/instance",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port.as_str()),
                ("healthy", healthy.as_str()),
            ],
        )
        .await
    }

    /// Sends `method path` with `params` and the given User-Agent.
    pub async fn send_as(
        &self,
        agent: &str,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
    ) -> Reply {
        self.request(Some(agent), method, path, params).await
    }
}

/// `ip:port` of each entry of `list["hosts"]`, sorted: the hosts of an
/// `instance/list` reply, of a UDP push's data or of a gRPC `ServiceInfo`.
pub fn hosts(list: &Value) -> Vec<String> {
    let mut hosts: Vec<String> = list["hosts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| format!("{}:{}", h["ip"].as_str().unwrap_or(""), h["port"]))
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

/// Polls `check` until it answers true; panics naming `what` once `limit`
/// has passed. The end-to-end suite's [`nacre_e2e::wait::wait_for`], with
/// the same arguments, for tests that panic rather than return errors: a
/// check answers `bool`, or `anyhow::Result<bool>` whose last error says what
/// was seen instead.
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: nacre_e2e::wait::Check,
{
    if let Err(e) = nacre_e2e::wait::wait_for(what, limit, check).await {
        panic!("{e:#}");
    }
}
