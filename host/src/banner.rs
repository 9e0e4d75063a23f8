//! What a starting node says it will do, printed by `nacre start` on stdout
//! once every port is bound: where clients reach it, standalone or which
//! cluster, where its files and plugins are, which configuration file it
//! read. An operator reading it knows the node's shape without reading the
//! configuration; a script can take the URL from its first line.
//!
//! ```text
//! nacre 0.1.0 at http://127.0.0.1:8848 (the Nacos v1 API under /nacos/v1/ns)
//!   listening    0.0.0.0:8848 (HTTP, all interfaces)
//!   mode         cluster of 3: 127.0.0.1:8848 (this node), 127.0.0.1:8858, 127.0.0.1:8868
//!   UDP push     from 0.0.0.0:52110
//!   plugins      ./plugins (2 manifests)
//!   config file  none (embedded defaults, NACRE_* variables, flags)
//!   data dir     /var/lib/nacre
//!   log          text to stderr, filter info,openraft=warn
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// The addresses a started node is bound to, and the one it is known by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addresses {
    /// The HTTP API's socket, as bound (may be 0.0.0.0).
    pub http: SocketAddr,
    /// The address others reach this node at: its own entry in the member
    /// list in a cluster; else the bound address, loopback for 0.0.0.0.
    pub advertised: SocketAddr,
    /// The UDP socket pushes are sent from and acks received on.
    pub push_udp: Option<SocketAddr>,
    /// The gRPC front door of Nacos 2.x clients, once a node has one.
    pub grpc: Option<SocketAddr>,
}

/// Facts about the plugin folder, gathered before the node starts (the node
/// creates a missing folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginFolder {
    /// `plugins.dir` is empty: plugins are off.
    Off,
    /// The folder existed.
    Present {
        /// Its manifests (`*.toml` files) at the time.
        manifests: usize,
    },
    /// The folder did not exist (the node created it empty): often a typo.
    Missing,
}

impl PluginFolder {
    /// Looks at `plugins.dir` of `config` as it is now.
    pub fn inspect(config: &Config) -> PluginFolder {
        let dir = &config.plugins.dir;
        if dir.as_os_str().is_empty() {
            return PluginFolder::Off;
        }
        match std::fs::read_dir(dir) {
            Ok(entries) => PluginFolder::Present {
                manifests: entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
                    .count(),
            },
            Err(_) => PluginFolder::Missing,
        }
    }
}

/// The banner of one start: [`fmt::Display`] writes it, one fact per line.
pub struct Banner<'a> {
    /// The configuration the node starts with (after file, environment and flags).
    pub config: &'a Config,
    /// The file given with `--config` / `NACRE_CONFIG`, if any.
    pub config_file: Option<&'a Path>,
    /// Where the node listens and what it tells peers and clients.
    pub addresses: Addresses,
    /// What the plugin folder looked like before the start.
    pub plugins: PluginFolder,
}

impl fmt::Display for Banner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.addresses;
        writeln!(
            f,
            "nacre {} at http://{} (the Nacos v1 API under /nacos/v1/ns)",
            env!("CARGO_PKG_VERSION"),
            a.advertised
        )?;
        let scope = if a.http.ip().is_unspecified() {
            "all interfaces"
        } else {
            "this address only"
        };
        line(f, "listening", format_args!("{} (HTTP, {scope})", a.http))?;
        if let Some(grpc) = a.grpc {
            line(f, "gRPC", format_args!("{grpc} (Nacos 2.x clients)"))?;
        }
        line(f, "mode", Mode(self.config, a.advertised))?;
        match (a.push_udp, self.config.push.enabled) {
            (Some(udp), true) => line(f, "UDP push", format_args!("from {udp}"))?,
            (Some(udp), false) => line(
                f,
                "UDP push",
                format_args!(
                    "off (push.enabled = false; socket {udp} kept for the pushEnabled switch)"
                ),
            )?,
            (None, _) => line(f, "UDP push", "off")?,
        }
        line(
            f,
            "plugins",
            Plugins(&self.config.plugins.dir, &self.plugins),
        )?;
        match self.config_file {
            Some(path) => line(f, "config file", absolute(path).display())?,
            None => line(
                f,
                "config file",
                "none (embedded defaults, NACRE_* variables, flags)",
            )?,
        }
        line(f, "data dir", absolute(&self.config.data_dir).display())?;
        let filter = std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| format!("{v} (RUST_LOG)"))
            .unwrap_or_else(|| self.config.log_level.clone());
        let format = match self.config.log_format {
            crate::logging::LogFormat::Text => "text",
            crate::logging::LogFormat::Json => "json",
        };
        let access = if self.config.http.access_log {
            ", access log on"
        } else {
            ""
        };
        line(
            f,
            "log",
            format_args!("{format} to stderr, filter {filter}{access}"),
        )
    }
}

fn line(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<12} {value}")
}

/// Standalone, or the cluster's members with this node marked.
struct Mode<'a>(&'a Config, SocketAddr);

impl fmt::Display for Mode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members = &self.0.cluster.members;
        if members.is_empty() {
            return f.write_str("standalone (no cluster.members)");
        }
        write!(f, "cluster of {}:", members.len())?;
        for (i, member) in members.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            let identity = member.split('@').next().unwrap_or(member).trim();
            let own = identity.parse::<SocketAddr>().is_ok_and(|a| a == self.1);
            write!(f, "{sep}{}", member.trim())?;
            if own {
                f.write_str(" (this node)")?;
            }
        }
        if self.0.cluster.secret.is_empty() {
            f.write_str("; INSECURE: no cluster.secret")?;
        }
        Ok(())
    }
}

struct Plugins<'a>(&'a Path, &'a PluginFolder);

impl fmt::Display for Plugins<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = absolute(self.0);
        match self.1 {
            PluginFolder::Off => f.write_str("none (set --plugins-dir to load some)"),
            PluginFolder::Present { manifests: 1 } => write!(f, "{} (1 manifest)", dir.display()),
            PluginFolder::Present { manifests } => {
                write!(f, "{} ({manifests} manifests)", dir.display())
            }
            PluginFolder::Missing => write!(
                f,
                "{} (did not exist: created empty; check the path if plugins were expected)",
                dir.display()
            ),
        }
    }
}

/// `path` made absolute against the working directory, for an operator who
/// reads the banner from elsewhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
