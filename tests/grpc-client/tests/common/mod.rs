//! What the Rust SDK tests share: an SDK client, a listener that records
//! its pushes, and the `nacos-rust-hold` process.

#![allow(dead_code)] // each test file uses its own part

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::ensure;
use nacos_sdk::api::naming::{
    NamingChangeEvent, NamingEventListener, NamingService, NamingServiceBuilder, ServiceInstance,
};
use nacos_sdk::api::props::ClientProps;
use nacre_e2e::program::Running;
use nacre_e2e::wait::wait_for;
use tokio::process::Command;

/// How long a step may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// The SDK's properties for a client of `servers` (one address or several,
/// comma-separated) in the public namespace, with no cache on disk.
pub fn props(servers: &str) -> ClientProps {
    ClientProps::new()
        .server_addr(servers)
        .namespace("")
        .app_name("nacre-tests")
        .naming_load_cache_at_start(false)
        .env_first(false)
}

/// An SDK client of `servers`.
pub async fn client(servers: &str) -> anyhow::Result<NamingService> {
    Ok(NamingServiceBuilder::new(props(servers)).build().await?)
}

/// `ip:port` of each instance, sorted.
pub fn addrs(instances: &[ServiceInstance]) -> Vec<String> {
    let mut all: Vec<String> = instances.iter().map(ServiceInstance::ip_and_port).collect();
    all.sort();
    all
}

/// Records the instances each push to the SDK's listener carried.
#[derive(Default)]
pub struct Events(Mutex<Vec<Vec<String>>>);

impl NamingEventListener for Events {
    fn event(&self, event: Arc<NamingChangeEvent>) {
        let hosts = addrs(event.instances.as_deref().unwrap_or(&[]));
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(hosts);
    }
}

impl Events {
    /// What the last push carried.
    pub fn last(&self) -> Option<Vec<String>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Pushes heard so far.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Waits (bounded by [`LIMIT`]) until the last push carried `expected`.
    pub async fn wait_for(&self, expected: &[&str]) -> anyhow::Result<()> {
        let what = format!("the listener to be told {expected:?}");
        wait_for(&what, LIMIT, || async {
            let last = self.last();
            ensure!(
                last.as_deref().is_some_and(|l| l == expected),
                "it was told {last:?} last"
            );
            Ok(true)
        })
        .await
    }
}

/// One `nacos-rust-hold` process, once it has registered (within
/// [`LIMIT`]): an SDK client of `servers` holding one instance, which on
/// stdin's close it deregisters (unless `deregister` is false: then it just
/// exits, closing its connection).
pub async fn hold(
    servers: &str,
    service: &str,
    port: u16,
    deregister: bool,
) -> anyhow::Result<Running> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nacos-rust-hold"));
    cmd.env("DEREGISTER", if deregister { "1" } else { "0" })
        .env("NACOS_ADDR", servers)
        .env("SERVICE", service)
        .env("PORT", port.to_string())
        .env("RUST_LOG", "off");
    let mut held = Running::spawn(cmd)?;
    held.expect("registered", LIMIT, |v| v["step"] == "registered")
        .await?;
    Ok(held)
}
