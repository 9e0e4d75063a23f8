//! The `nacre` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nacre::{Config, Node};
use tracing_subscriber::EnvFilter;

/// mimalloc keeps the registry's many small allocations compact (less
/// fragmentation, so less resident memory per instance) and fast.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "nacre",
    version,
    about = "A service registry that speaks the Nacos 1.x naming API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a registry node (standalone, with embedded defaults unless told otherwise).
    Start(StartArgs),
}

#[derive(clap::Args)]
struct StartArgs {
    /// Address to listen on [default: 0.0.0.0; env: NACRE_BIND]
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// HTTP port of the Nacos API; 0 picks a free port [default: 8848; env: NACRE_PORT]
    #[arg(long)]
    port: Option<u16>,
    /// Directory for the node's files [default: ./data; env: NACRE_DATA_DIR]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Folder of WebAssembly plugins (manifests and components), watched while running [env: NACRE_PLUGINS_DIR]
    #[arg(long)]
    plugins_dir: Option<PathBuf>,
    /// TOML file with any of the knobs in docs/CONFIG.md; NACRE_* variables and flags override it
    #[arg(long, env = "NACRE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start(args),
    }
}

fn start(args: StartArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(dir) = args.plugins_dir {
        config.plugins.dir = dir;
    }
    init_logging(&config.log_level);
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let node = Node::start(config.clone()).await?;
        println!(
            "nacre listening on http://{} (Nacos API at /nacos/v1/ns, data in {})",
            node.addr(),
            config.data_dir.display()
        );
        wait_for_signal().await?;
        println!("nacre shutting down");
        node.shutdown().await;
        Ok(())
    })
}

fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
