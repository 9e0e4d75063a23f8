//! `nacos-rust-hold`: one Rust SDK client (crates.io `nacos-sdk`) that
//! registers one instance and keeps it, for tests that kill or outlive it.
//!
//! Env: `NACOS_ADDR` (host:port of the HTTP API; the SDK dials + 1000 for
//! gRPC), `SERVICE`, `PORT`. Prints `{"step":"registered"}` once the
//! registration is answered, then waits for stdin to close, deregisters
//! (unless `DEREGISTER=0`: then it just exits, closing its connection) and
//! prints `{"step":"closed"}`. A run is bounded to ten minutes.

use std::time::Duration;

use anyhow::Context;
use nacos_sdk::api::naming::{NamingServiceBuilder, ServiceInstance};
use nacos_sdk::api::props::ClientProps;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::var("NACOS_ADDR").context("NACOS_ADDR")?;
    let service = std::env::var("SERVICE").context("SERVICE")?;
    let port: i32 = std::env::var("PORT").context("PORT")?.parse()?;
    let naming = NamingServiceBuilder::new(
        ClientProps::new()
            .server_addr(addr)
            .namespace("")
            .app_name("nacre-tests")
            .naming_load_cache_at_start(false),
    )
    .build()
    .await?;
    let instance = ServiceInstance {
        ip: "127.0.0.1".into(),
        port,
        ..Default::default()
    };
    naming
        .register_instance(service.clone(), None, instance.clone())
        .await?;
    println!("{}", serde_json::json!({"step": "registered", "ok": true}));
    let mut stdin = tokio::io::stdin();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(600), stdin.read_to_end(&mut sink)).await;
    if std::env::var("DEREGISTER").as_deref() != Ok("0") {
        naming.deregister_instance(service, None, instance).await?;
    }
    println!("{}", serde_json::json!({"step": "closed", "ok": true}));
    Ok(())
}
