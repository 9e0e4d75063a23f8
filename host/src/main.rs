//! The `nacre` command line.
//!
//! Expected failures (a bad configuration, a port in use, a plugin that
//! fails its test) end with `error: …` and, when there is one, `fix: …` on
//! stderr and exit status 1 — never a backtrace, which is for bugs.

mod auth_cli;
mod remote;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use nacre::banner::{Banner, PluginFolder};
use nacre::{Config, Node, huge_pages, logging, startup};
use tokio::signal::unix::{Signal, SignalKind, signal};

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
    /// Users, roles and permissions of a running node, and its first admin.
    #[command(subcommand)]
    Auth(auth_cli::AuthCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Show the plugins of a running node: state, calls, failures, call times.
    List {
        /// Base URL of the node
        #[arg(long, default_value = "http://127.0.0.1:8848")]
        url: String,
        /// An admin's token, when the node has auth on (from `nacre auth login`)
        #[arg(long, env = "NACRE_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Call one plugin once with a sample input, without a node; prints its answer and log lines.
    Test(TestArgs),
}

#[derive(clap::Args)]
struct TestArgs {
    /// The plugin's manifest (TOML)
    manifest: PathBuf,
    /// Sample input (JSON), shaped for the plugin's world (see docs/PLUGINS.md); unknown fields are refused
    #[arg(long)]
    event: PathBuf,
    /// Call this many times and report the mean time per call and per instantiation
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Where compiled components are kept between runs, as a node keeps them
    /// [default: $XDG_CACHE_HOME/nacre/plugin-cache, else ~/.cache/nacre/plugin-cache]
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Compile the component afresh and keep nothing
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
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
    #[arg(long, env = "NACRE_CONFIG", hide_env_values = true)]
    config: Option<PathBuf>,
}

/// An expected failure: what went wrong, and what to do about it if known.
struct Failure {
    error: anyhow::Error,
    fix: Option<String>,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure { error, fix: None }
    }
}

fn main() -> ExitCode {
    let huge_pages = huge_pages::turn_off();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Start(args) => start(args, huge_pages),
        Command::Plugin(PluginCommand::List { url, token }) => {
            plugin_list(&url, token.as_deref()).map_err(Failure::from)
        }
        Command::Plugin(PluginCommand::Test(args)) => plugin_test(&args).map_err(Failure::from),
        Command::Auth(command) => auth_cli::run(command).map_err(Failure::from),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { error, fix }) => {
            eprintln!("error: {error:#}");
            if let Some(fix) = fix {
                eprintln!("fix: {fix}");
            }
            ExitCode::FAILURE
        }
    }
}

fn plugin_list(url: &str, token: Option<&str>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let body = runtime.block_on(remote::call(
        url,
        token,
        reqwest::Method::GET,
        "/nacre/v1/plugins",
        &[],
    ))?;
    let plugins = body["plugins"].as_array().cloned().unwrap_or_default();
    if plugins.is_empty() {
        println!("no plugins");
        return Ok(());
    }
    print!("{}", plugin_table(&plugins));
    Ok(())
}

/// The plugin list as a table whose columns fit their widest cell, names
/// and states left-aligned, figures right-aligned; a plugin's error on the
/// line under it.
fn plugin_table(plugins: &[serde_json::Value]) -> String {
    const HEADER: [&str; 7] = [
        "name", "world", "state", "calls", "failures", "p50 µs", "p99 µs",
    ];
    const KEYS: [&str; 7] = [
        "name", "world", "state", "calls", "failures", "p50Us", "p99Us",
    ];
    let cell = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = plugins
        .iter()
        .map(|p| KEYS.iter().map(|k| cell(&p[*k])).collect())
        .collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (text, width)) in cells.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(width - text.chars().count());
            let (left, right) = if i < 3 {
                (text.as_str(), pad.as_str())
            } else {
                (pad.as_str(), text.as_str())
            };
            out.push_str(if i == 0 { "" } else { "  " });
            out.push_str(left);
            out.push_str(right);
        }
        out.trim_end().to_string() + "\n"
    };
    let mut table = line(&HEADER.map(String::from));
    for (row, plugin) in rows.iter().zip(plugins) {
        table.push_str(&line(row));
        if let Some(error) = plugin["error"].as_str() {
            table.push_str(&format!("    error: {error}\n"));
        }
    }
    table
}

fn plugin_test(args: &TestArgs) -> anyhow::Result<()> {
    let config = Config::load(None, std::env::vars())?;
    let limits = nacre::plugins::manifest::Limits {
        timeout_ms: config.plugins.timeout_ms,
        memory_bytes: (config.plugins.memory_mb as usize) << 20,
    };
    let cache = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(user_cache_dir)
    };
    let test = nacre::plugins::tester::PluginTest {
        manifest: &args.manifest,
        event: &args.event,
        limits,
        repeat: args.repeat,
        cache_dir: cache.as_deref(),
    };
    let outcome = test.run()?;
    // The plugin's own output goes to stdout; this is about the run.
    eprintln!("component: {}", outcome.artifact);
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

/// `$XDG_CACHE_HOME/nacre/plugin-cache`, else `~/.cache/nacre/plugin-cache`.
fn user_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("nacre").join("plugin-cache"))
}

/// The configuration of `nacre start`: file, then environment, then flags.
fn configure(args: &StartArgs) -> anyhow::Result<Config> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    if let Some(port) = args.port {
        config.port = port;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(dir) = &args.plugins_dir {
        config.plugins.dir = dir.clone();
    }
    if let Some(members) = &args.members {
        config.cluster.members = members.clone();
    }
    if args.insecure_cluster {
        config.cluster.insecure = true;
    }
    config.validate()?;
    startup::check_members(&config)?;
    Ok(config)
}

fn start(args: StartArgs, huge_pages: huge_pages::HugePages) -> Result<(), Failure> {
    let config = configure(&args)?;
    let filter = logging::filter(&config.log_level).map_err(anyhow::Error::from)?;
    logging::init(filter, config.log_format)?;
    tracing::debug!(?huge_pages, "transparent huge pages");
    for variable in Config::unknown_env_vars(std::env::vars()) {
        tracing::warn!(%variable, "ignoring a NACRE_ variable that names no knob (docs/CONFIG.md)");
    }
    // Held until the node has stopped: one node per data directory.
    let _data_dir_lock = startup::claim_data_dir(&config.data_dir).map_err(anyhow::Error::from)?;
    let plugins = PluginFolder::inspect(&config);
    if plugins == PluginFolder::Missing {
        tracing::warn!(
            dir = %config.plugins.dir.display(),
            "the plugin folder does not exist: creating it empty (check the path if plugins were expected)"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let mut stop = StopSignals::install()?;
        let node = Node::start(config.clone()).await.map_err(|error| Failure {
            fix: startup::fix_for(&error, &config),
            error,
        })?;
        // Doubtful but workable settings, once the node runs (a node that
        // cannot start says only why).
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        let banner = Banner {
            config: &config,
            config_file: args.config.as_deref(),
            addresses: node.addresses(),
            plugins,
        };
        print!("{banner}");
        stop.recv().await;
        println!("nacre shutting down");
        node.shutdown().await;
        Ok(())
    })
}

/// Ctrl-C and SIGTERM, listened for from creation: a signal that arrives
/// once the banner is out is never the default "terminate at once".
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    /// Completes on the first of them.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
