//! Node configuration: embedded defaults < TOML file (`--config`) < `NACRE_*`
//! environment variables < command-line flags.
//!
//! Every knob is a field below and is documented, with its default, in
//! `docs/CONFIG.md` (a test keeps the two in step). The environment name of a
//! knob is derived from its place in the file ([`env`]): top-level `port` is
//! `NACRE_PORT`, `[health] beat_timeout_ms` is `NACRE_HEALTH_BEAT_TIMEOUT_MS`.
//! `validate` refuses what a node cannot run with.

mod env;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::logging::LogFormat;

/// Every knob of a node, by section of the TOML file; `Config::default()` is
/// the embedded defaults (a standalone node on 0.0.0.0:8848). See docs/CONFIG.md.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP API listens on.
    pub bind: IpAddr,
    /// Port of the HTTP API (0 picks a free one).
    pub port: u16,
    /// Where the node keeps its files (the persistent store's log).
    pub data_dir: PathBuf,
    /// Log filter (`tracing` syntax); `RUST_LOG` wins when set.
    pub log_level: String,
    /// How log lines are written: `text` for people, `json` for collectors.
    pub log_format: LogFormat,
    /// `[http]`: limits on what a client may send.
    pub http: HttpConfig,
    /// `[console]`: the web console at `/nacos/`.
    pub console: ConsoleConfig,
    /// `[health]`: beat timeouts and the prober.
    pub health: HealthConfig,
    /// `[naming]`: defaults of the naming API.
    pub naming: NamingConfig,
    /// `[push]`: UDP push to subscribed clients.
    pub push: PushConfig,
    /// `[grpc]`: the Nacos 2.x door.
    pub grpc: GrpcConfig,
    /// `[plugins]`: the plugin folder and the plugins' default limits.
    pub plugins: PluginsConfig,
    /// `[persistent]`: the standalone node's write-ahead log.
    pub persistent: PersistentConfig,
    /// `[cluster]`: members, the credential and Distro.
    pub cluster: ClusterConfig,
    /// `[raft]`: the persistent store of a cluster.
    pub raft: RaftConfig,
    /// `[auth]`: client authentication and authorization.
    pub auth: AuthConfig,
}

/// The web console (`crate::console`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console at `/nacos/`, with its change feed and live stream
    /// (the Nacos-shaped `console/namespaces` and `core/cluster/nodes` stay).
    pub enabled: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { enabled: true }
    }
}

/// Limits on what a client may send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body accepted; larger gets 413.
    pub max_body_bytes: usize,
    /// Longest query string accepted; longer gets 414.
    pub max_query_bytes: usize,
    /// Log one line per request (method, path, status, time taken, client).
    pub access_log: bool,
}

/// Beat health checking of ephemeral instances (the seed's `ClientBeatCheckTask`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Whether the beat checker runs at all (also the `healthCheckEnabled` switch).
    pub enabled: bool,
    /// An instance without a beat for this long turns unhealthy.
    pub beat_timeout_ms: u64,
    /// An instance without a beat for this long is deleted.
    pub delete_timeout_ms: u64,
    /// How often the beat checker scans the instances.
    pub check_period_ms: u64,
    /// The beat interval the node tells clients to use.
    pub client_beat_interval_ms: u64,
    /// An implicitly created service with no instances for this long is removed.
    pub empty_service_clean_ms: u64,
    /// Whether persistent instances are probed at all.
    pub probe_enabled: bool,
    /// How often persistent instances are probed (TCP connect, or HTTP per cluster).
    pub probe_interval_ms: u64,
    /// Deadline of one probe.
    pub probe_timeout_ms: u64,
}

/// Defaults of the naming API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamingConfig {
    /// `cacheMillis` of an `instance/list` reply to a client that is not a push subscriber.
    pub default_cache_millis: u64,
    /// `cacheMillis` for push subscribers; also how long a subscriber lives without a refresh.
    pub push_cache_millis: u64,
    /// Tell clients they may leave the beat body out of later beats.
    pub light_beat_enabled: bool,
    /// Whether an instance registered without `ephemeral` is ephemeral.
    pub default_instance_ephemeral: bool,
}

/// UDP push to subscribed clients.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Push at all (also the `pushEnabled` switch at run time).
    pub enabled: bool,
    /// Local UDP port pushes are sent from and acks received on (0 picks a free one).
    pub udp_port: u16,
    /// Changes to one service within this window go out as one push.
    pub merge_window_ms: u64,
    /// An unacked push is sent again after this long.
    pub ack_timeout_ms: u64,
    /// Retransmissions of an unacked push before it counts as failed.
    pub max_retransmits: u32,
}

/// The Nacos 2.x gRPC front door (docs/DESIGN-V2.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcConfig {
    /// Serve Nacos 2.x clients over gRPC at all.
    pub enabled: bool,
    /// Port of the gRPC server; 0 means the HTTP port + 1000, where clients look.
    pub port: u16,
    /// Largest message accepted from a client, in bytes (Nacos: 10 MiB).
    pub max_message_bytes: usize,
    /// Client connections held at once; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams_per_connection: u32,
    /// Server messages (pushes, probes) waiting to be written to one connection.
    pub send_queue: usize,
    /// A connection whose send queue stays full this long is closed.
    pub stalled_close_ms: u64,
    /// A connection silent this long is probed (`ClientDetectionRequest`).
    pub idle_probe_ms: u64,
    /// A probed connection that answers nothing within this long is closed.
    pub probe_timeout_ms: u64,
    /// A push not acknowledged within this long is sent again (with the state then).
    pub push_ack_timeout_ms: u64,
    /// Threads serving the connections (each a single-threaded runtime);
    /// 0 means one per core.
    pub transport_threads: usize,
}

/// WebAssembly plugins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folder of plugin manifests (`*.toml`) and components; empty means no plugins.
    pub dir: PathBuf,
    /// How often the folder is checked for added, changed or removed plugins.
    pub reload_interval_ms: u64,
    /// Default deadline of one plugin call (a manifest may set its own).
    pub timeout_ms: u64,
    /// Default memory cap of a plugin (a manifest may set its own).
    pub memory_mb: u64,
    /// Changes to one service within this window reach listener plugins as one event.
    pub listener_window_ms: u64,
    /// Most of one core's time spent calling listener plugins (percent); under
    /// load, events wait and coalesce instead.
    pub listener_cpu_percent: u32,
}

/// The standalone persistent store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistentConfig {
    /// Sync every persistent write to disk before acknowledging it.
    pub sync_writes: bool,
}

/// Cluster mode: membership, the cluster credential and Distro replication.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Every member's `ip:port`, this node's included; empty means standalone.
    /// `ip:port@dial-ip:dial-port` reaches that member through another address
    /// (a proxy or a NAT) while it keeps its identity (flag `--members`).
    pub members: Vec<String>,
    /// This node's own entry in `members`; empty means the bound address and port.
    pub self_address: String,
    /// Shared secret every internal request carries; required with members.
    pub secret: String,
    /// Allow a cluster without a secret (its internal API is then open to anyone).
    pub insecure: bool,
    /// How often each member probes the others.
    pub probe_interval_ms: u64,
    /// Consecutive failed probes after which a member counts as down.
    pub down_after_failures: u32,
    /// Deadline of one request to a peer (sync, probe, checksums); also how
    /// long a client's write may take to reach its responsible member,
    /// retries included, before it is answered 503.
    pub request_timeout_ms: u64,
    /// How long changes gather before a batch goes to a peer that was idle
    /// (0: at once; changes made while a batch is in flight always go together).
    pub sync_period_ms: u64,
    /// Most keys in one sync message.
    pub sync_batch_size: usize,
    /// Longest wait between retries of a failed sync.
    pub sync_retry_max_ms: u64,
    /// How often a node sends the checksums of the keys it is responsible for.
    pub checksum_interval_ms: u64,
    /// Deadline of loading one member's records when this node starts or
    /// rejoins (it stays unready and tries again after a failure).
    pub snapshot_timeout_ms: u64,
    /// How long a deleted ephemeral instance's tombstone is kept: a partition
    /// that lasts longer may bring the instance back for up to one delete
    /// timeout after it heals.
    pub tombstone_ttl_ms: u64,
    /// A client's write of an ephemeral instance is acknowledged once it is on
    /// a majority of the members (this one and enough peers), instead of as
    /// soon as this member applied it; a write that cannot reach a majority
    /// by the client's deadline gets 503.
    pub ack_after_majority: bool,
    /// How long a member may be out of this node's view before this node
    /// forgets the instances of its Nacos 2.x client connections (the member
    /// announces them again when it returns).
    pub lease_grace_ms: u64,
    /// Largest internal message accepted (sync batches, snapshots).
    pub max_message_bytes: usize,
    /// Client requests being forwarded to their owners at once, at most;
    /// beyond it a request gets 503 at once instead of queueing.
    pub max_forwards_in_flight: usize,
}

/// Raft, the store of persistent data in a cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// A persistent write not committed within this long fails (HTTP 500).
    pub write_timeout_ms: u64,
    /// The leader's heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// A follower that hears no leader for a random time in this range starts an election.
    pub election_timeout_min_ms: u64,
    /// The upper end of that range (ms); above `election_timeout_min_ms`.
    pub election_timeout_max_ms: u64,
    /// A snapshot is taken after this many log entries, and the log before it dropped.
    pub snapshot_every_entries: u64,
    /// Entries kept after a snapshot, so slow followers catch up from the log.
    pub log_entries_kept_after_snapshot: u64,
}

/// Authentication and authorization of clients (docs/AUTH.md).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on the client API (Nacos's `nacos.core.auth.enabled`).
    pub enabled: bool,
    /// Name of the first admin, created at first start with `admin_password`.
    pub admin_username: String,
    /// Password of the first admin; empty creates none (use `nacre auth init`
    /// from the node's own machine instead). Used only while no admin exists.
    pub admin_password: String,
    /// Lifetime of an issued token, in seconds (Nacos: 18000).
    pub token_ttl_seconds: u64,
    /// Failed logins one user may have in a minute before its logins are
    /// refused (429) for the rest of that minute.
    pub failures_per_user_per_minute: u32,
    /// Failed logins one source address may have in a minute before its
    /// logins are refused (429) for the rest of that minute.
    pub failures_per_source_per_minute: u32,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.admin_password.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field("admin_username", &self.admin_username)
            .field("admin_password", &password)
            .field("token_ttl_seconds", &self.token_ttl_seconds)
            .field(
                "failures_per_user_per_minute",
                &self.failures_per_user_per_minute,
            )
            .field(
                "failures_per_source_per_minute",
                &self.failures_per_source_per_minute,
            )
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: false,
            admin_username: "nacos".into(),
            admin_password: String::new(),
            token_ttl_seconds: 18_000,
            failures_per_user_per_minute: 10,
            failures_per_source_per_minute: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 8848,
            data_dir: PathBuf::from("./data"),
            log_level: "info,openraft=warn".into(),
            log_format: LogFormat::Text,
            http: HttpConfig::default(),
            console: ConsoleConfig::default(),
            health: HealthConfig::default(),
            naming: NamingConfig::default(),
            push: PushConfig::default(),
            grpc: GrpcConfig::default(),
            plugins: PluginsConfig::default(),
            persistent: PersistentConfig::default(),
            cluster: ClusterConfig::default(),
            raft: RaftConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            max_query_bytes: 8 * 1024,
            access_log: false,
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            beat_timeout_ms: 15_000,
            delete_timeout_ms: 30_000,
            check_period_ms: 5_000,
            client_beat_interval_ms: 5_000,
            empty_service_clean_ms: 60_000,
            probe_enabled: true,
            probe_interval_ms: 5_000,
            probe_timeout_ms: 2_000,
        }
    }
}

impl Default for NamingConfig {
    fn default() -> Self {
        NamingConfig {
            default_cache_millis: 3_000,
            push_cache_millis: 10_000,
            light_beat_enabled: true,
            default_instance_ephemeral: true,
        }
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        PushConfig {
            enabled: true,
            udp_port: 0,
            merge_window_ms: 5,
            ack_timeout_ms: 1_000,
            max_retransmits: 3,
        }
    }
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            enabled: true,
            port: 0,
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 20_000,
            max_streams_per_connection: 128,
            send_queue: 256,
            stalled_close_ms: 30_000,
            idle_probe_ms: 20_000,
            probe_timeout_ms: 5_000,
            push_ack_timeout_ms: 3_000,
            transport_threads: 0,
        }
    }
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            dir: PathBuf::new(),
            reload_interval_ms: 1_000,
            timeout_ms: 100,
            memory_mb: 64,
            listener_window_ms: 50,
            listener_cpu_percent: 3,
        }
    }
}

impl Default for PersistentConfig {
    fn default() -> Self {
        PersistentConfig { sync_writes: true }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            write_timeout_ms: 5_000,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1_000,
            snapshot_every_entries: 10_000,
            log_entries_kept_after_snapshot: 1_000,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            members: Vec::new(),
            self_address: String::new(),
            secret: String::new(),
            insecure: false,
            probe_interval_ms: 500,
            down_after_failures: 2,
            request_timeout_ms: 3_000,
            sync_period_ms: 0,
            sync_batch_size: 500,
            sync_retry_max_ms: 2_000,
            checksum_interval_ms: 5_000,
            snapshot_timeout_ms: 10_000,
            tombstone_ttl_ms: 300_000,
            lease_grace_ms: 5_000,
            ack_after_majority: true,
            max_message_bytes: 64 * 1024 * 1024,
            max_forwards_in_flight: 4096,
        }
    }
}

impl Config {
    /// Loads defaults, then `file` (if any), then the `NACRE_*` variables of `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut table = toml::Table::try_from(Config::default()).context("serialising defaults")?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let from_file: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                anyhow::anyhow!(
                    "parsing config file {}: {}",
                    path.display(),
                    describe_toml_error(&e, &text)
                )
            })?;
            merge(&mut table, from_file);
        }
        env::apply_env(&mut table, env)?;
        let config: Config = table.try_into().map_err(|e: toml::de::Error| {
            let reason = describe_toml_error(&e, "");
            match file {
                Some(path) => {
                    anyhow::anyhow!("invalid configuration in {}: {reason}", path.display())
                }
                None => anyhow::anyhow!("invalid configuration: {reason}"),
            }
        })?;
        config.validate()?;
        Ok(config)
    }
}

/// A TOML error as the line it is on (when known) and what is wrong, without
/// the file's text: toml quotes the offending line, and a config file holds
/// `cluster.secret`. Text in double quotes (a value) is replaced by `…`;
/// names in backticks (knobs, expected tokens) stay.
fn describe_toml_error(error: &toml::de::Error, text: &str) -> String {
    let message: Vec<&str> = error
        .message()
        .trim()
        .split('"')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
        .collect();
    let message = message.join("\"").replace('\n', "; ");
    match error.span() {
        Some(span) if !text.is_empty() => {
            let line = text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!("line {line}: {message}")
        }
        _ => message,
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_nacos() -> anyhow::Result<()> {
        let config = Config::load(None, Vec::new())?;
        assert_eq!(config.port, 8848);
        assert_eq!(config.health.beat_timeout_ms, 15_000);
        assert_eq!(config.health.delete_timeout_ms, 30_000);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        Ok(())
    }

    #[test]
    fn file_then_env_override_in_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nacre.toml");
        std::fs::write(
            &path,
            "port = 9000\n[health]\nbeat_timeout_ms = 100\ndelete_timeout_ms = 200\n",
        )?;
        let config = Config::load(
            Some(&path),
            vars(&[
                ("NACRE_HEALTH_DELETE_TIMEOUT_MS", "300"),
                ("NACRE_BIND", "127.0.0.1"),
            ]),
        )?;
        assert_eq!(config.port, 9000);
        assert_eq!(config.health.beat_timeout_ms, 100);
        assert_eq!(config.health.delete_timeout_ms, 300);
        assert_eq!(config.bind, IpAddr::from([127, 0, 0, 1]));
        Ok(())
    }

    #[test]
    fn bad_values_are_refused_with_the_knob_named() -> anyhow::Result<()> {
        let err = Config::load(None, vars(&[("NACRE_PORT", "eighty")]))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(err.is_some_and(|e| e.contains("NACRE_PORT")));

        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nacre.toml");
        std::fs::write(&path, "[health]\nbeat_timeout = 1\n")?;
        let err = Config::load(Some(&path), Vec::new())
            .err()
            .map(|e| format!("{e:#}"));
        assert!(
            err.is_some_and(|e| e.contains("beat_timeout")),
            "unknown knob must be named"
        );

        std::fs::write(&path, "[health]\ncheck_period_ms = 0\n")?;
        assert!(Config::load(Some(&path), Vec::new()).is_err());

        // A client's largest write must fit an internal message, twice over.
        let cluster = [
            ("NACRE_CLUSTER_MEMBERS", "127.0.0.1:8848"),
            ("NACRE_CLUSTER_MAX_MESSAGE_BYTES", "65536"),
        ];
        let err = Config::load(None, vars(&cluster))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(err.is_some_and(|e| e.contains("max_message_bytes")));
        let fits = [
            &cluster[..],
            &[
                ("NACRE_HTTP_MAX_BODY_BYTES", "32768"),
                ("NACRE_CLUSTER_SECRET", "s"),
            ],
        ]
        .concat();
        let loaded = Config::load(None, vars(&fits));
        assert!(loaded.is_ok(), "{:?}", loaded.err());
        Ok(())
    }

    #[test]
    fn file_errors_give_the_line_but_never_the_text() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nacre.toml");
        for text in [
            "port = 8848\n[cluster]\nsecret = \"hunter2\n",
            "port = \"hunter2\"\n",
            "[cluster]\nsecret = hunter2\n",
        ] {
            std::fs::write(&path, text)?;
            let err = Config::load(Some(&path), Vec::new())
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(err.contains("nacre.toml"), "{err}");
            assert!(!err.contains("hunter2"), "the file's text leaked: {err}");
        }
        std::fs::write(&path, "port = 8848\n[cluster]\nsecret = \"hunter2\n")?;
        let err = Config::load(Some(&path), Vec::new())
            .err()
            .map(|e| format!("{e:#}"));
        assert!(err.is_some_and(|e| e.contains("line 3")));
        Ok(())
    }

    #[test]
    fn every_knob_is_documented() -> anyhow::Result<()> {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIG.md"))?;
        for (path, env) in Config::env_names() {
            let key = path.rsplit('.').next().unwrap_or(&path);
            assert!(
                doc.contains(&format!("`{key}`")),
                "docs/CONFIG.md lacks `{key}`"
            );
            assert!(doc.contains(&env), "docs/CONFIG.md lacks {env}");
        }
        Ok(())
    }
}
