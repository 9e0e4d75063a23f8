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
    /// Work with WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show the plugins of a running node: state, calls, failures, call times.
    List {
        /// Base URL of the node
        #[arg(long, default_value = "http://127.0.0.1:8848")]
        url: String,
    },
    /// Call one plugin once with a sample input, without a node; prints its answer and log lines.
    Test {
        /// The plugin's manifest (TOML)
        manifest: PathBuf,
        /// Sample input (JSON), shaped for the plugin's world (see docs/PLUGINS.md)
        #[arg(long)]
        event: PathBuf,
        /// Call this many times and report the mean time per call and per instantiation
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
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
    /// Cluster members, this node included: ip:port,ip:port,... [env: NACRE_CLUSTER_MEMBERS]
    #[arg(long, value_delimiter = ',')]
    members: Option<Vec<String>>,
    /// Run a cluster without a secret (its internal API is open to anyone) [env: NACRE_CLUSTER_INSECURE]
    #[arg(long)]
    insecure_cluster: bool,
    /// TOML file with any of the knobs in docs/CONFIG.md; NACRE_* variables and flags override it
    #[arg(long, env = "NACRE_CONFIG")]
    config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => start(args),
        Command::Plugin(PluginCommand::List { url }) => plugin_list(&url),
        Command::Plugin(PluginCommand::Test {
            manifest,
            event,
            repeat,
        }) => plugin_test(&manifest, &event, repeat),
    }
}

fn plugin_list(url: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let body: serde_json::Value = runtime.block_on(async {
        let endpoint = format!("{}/nacre/v1/plugins", url.trim_end_matches('/'));
        let reply = reqwest::get(&endpoint)
            .await
            .with_context(|| format!("asking {endpoint}"))?;
        anyhow::ensure!(
            reply.status().is_success(),
            "{endpoint} answered {}",
            reply.status()
        );
        reply.json().await.context("reading the plugin list")
    })?;
    let plugins = body["plugins"].as_array().cloned().unwrap_or_default();
    if plugins.is_empty() {
        println!("no plugins");
        return Ok(());
    }
    println!(
        "{:<24} {:<14} {:<12} {:>8} {:>8} {:>8} {:>8}",
        "name", "world", "state", "calls", "failures", "p50 µs", "p99 µs"
    );
    for p in plugins {
        println!(
            "{:<24} {:<14} {:<12} {:>8} {:>8} {:>8} {:>8}",
            p["name"].as_str().unwrap_or(""),
            p["world"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["calls"],
            p["failures"],
            p["p50Us"],
            p["p99Us"]
        );
        if let Some(error) = p["error"].as_str() {
            println!("    error: {error}");
        }
    }
    Ok(())
}

fn plugin_test(
    manifest: &std::path::Path,
    event: &std::path::Path,
    repeat: u32,
) -> anyhow::Result<()> {
    let config = Config::load(None, std::env::vars())?;
    let limits = nacre::plugins::manifest::Limits {
        timeout_ms: config.plugins.timeout_ms,
        memory_bytes: (config.plugins.memory_mb as usize) << 20,
    };
    let outcome = nacre::plugins::tester::run(manifest, event, limits, repeat)?;
    for line in &outcome.logs {
        println!("log: {line}");
    }
    match (&outcome.result, &outcome.failure) {
        (Some(result), _) => {
            println!("result: {result}");
            if let Some(t) = &outcome.timing {
                println!(
                    "timing: {} calls, {} ns per call, {} ns per instantiation",
                    t.calls, t.mean_call_ns, t.mean_instantiate_ns
                );
            }
            Ok(())
        }
        (None, failure) => anyhow::bail!(
            "the plugin failed: {}",
            failure.as_deref().unwrap_or("no answer")
        ),
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
    if let Some(members) = args.members {
        config.cluster.members = members;
    }
    if args.insecure_cluster {
        config.cluster.insecure = true;
    }
    config.validate()?;
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
