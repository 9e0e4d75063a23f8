//! What a configuration must satisfy before a node starts with it: values the
//! node cannot run with (a zero period, a log filter that does not parse) and
//! knobs that contradict each other (a delete timeout shorter than the
//! unhealthy timeout). Each refusal names the knobs, the values and the fix.
//! Combinations that work but are probably not meant are warnings instead.

use std::net::SocketAddr;

use anyhow::bail;

use super::{
    AuthConfig, ClusterConfig, Config, GrpcConfig, HealthConfig, PluginsConfig, RaftConfig,
};
use crate::plugins::manifest::{MAX_MEMORY_MB, MAX_TIMEOUT_MS};

impl Config {
    /// Refuses values the node cannot run with and knobs that contradict
    /// each other, with the knobs named.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::logging::parse_filter("log_level", &self.log_level)?;
        if self.http.max_body_bytes == 0 || self.http.max_query_bytes == 0 {
            bail!("http.max_body_bytes and http.max_query_bytes must be greater than 0");
        }
        if self.push.ack_timeout_ms == 0 {
            bail!("push.ack_timeout_ms must be greater than 0");
        }
        health(&self.health)?;
        plugins(&self.plugins)?;
        grpc(&self.grpc)?;
        raft(&self.raft)?;
        auth(&self.auth)?;
        let c = &self.cluster;
        if !c.members.is_empty() && c.max_message_bytes < 2 * self.http.max_body_bytes {
            bail!(
                "cluster.max_message_bytes ({}) must be at least twice http.max_body_bytes ({}): \
                 a client's write is forwarded and replicated inside internal messages",
                c.max_message_bytes,
                self.http.max_body_bytes
            );
        }
        cluster(c, SocketAddr::new(self.bind, self.port))
    }
}

impl Config {
    /// Combinations a node runs with but that are probably mistakes, each
    /// as a sentence that names the knobs (the binary logs them at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let h = &self.health;
        if h.client_beat_interval_ms >= h.beat_timeout_ms {
            warnings.push(format!(
                "health.client_beat_interval_ms ({}) is not shorter than health.beat_timeout_ms \
                 ({}): clients told to beat at that interval turn unhealthy between two beats",
                h.client_beat_interval_ms, h.beat_timeout_ms
            ));
        }
        if !self.auth.enabled && !self.bind.is_loopback() {
            warnings.push(format!(
                "auth.enabled is off and the node listens on {}: anyone who can reach the port \
                 can register, deregister and read every service (set auth.enabled = true, or \
                 bind = \"127.0.0.1\")",
                self.bind
            ));
        }
        let c = &self.cluster;
        if c.insecure && !c.secret.is_empty() {
            warnings.push(
                "cluster.insecure is set but so is cluster.secret: the secret is required on \
                 every internal request all the same"
                    .to_string(),
            );
        }
        warnings
    }
}

fn health(h: &HealthConfig) -> anyhow::Result<()> {
    if h.check_period_ms == 0 {
        bail!("health.check_period_ms must be greater than 0");
    }
    if h.beat_timeout_ms == 0 || h.delete_timeout_ms == 0 {
        bail!("health.beat_timeout_ms and health.delete_timeout_ms must be greater than 0");
    }
    if h.probe_interval_ms == 0 || h.probe_timeout_ms == 0 {
        bail!("health.probe_interval_ms and health.probe_timeout_ms must be greater than 0");
    }
    if h.client_beat_interval_ms == 0 {
        bail!("health.client_beat_interval_ms must be greater than 0");
    }
    // Nacos's own rule (`preserved.ip.delete.timeout` ≥ `preserved.heart.beat.timeout`).
    if h.delete_timeout_ms < h.beat_timeout_ms {
        bail!(
            "health.delete_timeout_ms ({}) is shorter than health.beat_timeout_ms ({}): an \
             instance would be deleted before it is ever reported unhealthy; make \
             delete_timeout_ms at least beat_timeout_ms (defaults 30000 and 15000)",
            h.delete_timeout_ms,
            h.beat_timeout_ms
        );
    }
    Ok(())
}

fn plugins(p: &PluginsConfig) -> anyhow::Result<()> {
    if p.reload_interval_ms == 0 || p.timeout_ms == 0 || p.memory_mb == 0 {
        bail!(
            "plugins.reload_interval_ms, plugins.timeout_ms and plugins.memory_mb must be greater than 0"
        );
    }
    if !(1..=100).contains(&p.listener_cpu_percent) {
        bail!("plugins.listener_cpu_percent must be between 1 and 100");
    }
    if p.timeout_ms > MAX_TIMEOUT_MS {
        bail!(
            "plugins.timeout_ms ({}) is above its maximum, {MAX_TIMEOUT_MS}",
            p.timeout_ms
        );
    }
    if p.memory_mb > MAX_MEMORY_MB {
        bail!(
            "plugins.memory_mb ({}) is above its maximum, {MAX_MEMORY_MB}",
            p.memory_mb
        );
    }
    Ok(())
}

fn raft(r: &RaftConfig) -> anyhow::Result<()> {
    if r.write_timeout_ms == 0
        || r.heartbeat_interval_ms == 0
        || r.snapshot_every_entries == 0
        || r.election_timeout_min_ms <= r.heartbeat_interval_ms
        || r.election_timeout_max_ms <= r.election_timeout_min_ms
    {
        bail!(
            "raft: timeouts and sizes must be greater than 0, and \
             heartbeat_interval_ms < election_timeout_min_ms < election_timeout_max_ms"
        );
    }
    Ok(())
}

/// The gRPC door's knobs. (Its port, the HTTP port + 1000 unless set, is
/// checked where it is bound: `grpc::server`.)
fn grpc(g: &GrpcConfig) -> anyhow::Result<()> {
    if g.max_message_bytes == 0
        || g.max_connections == 0
        || g.max_streams_per_connection == 0
        || g.send_queue == 0
        || g.stalled_close_ms == 0
        || g.idle_probe_ms == 0
        || g.probe_timeout_ms == 0
        || g.push_ack_timeout_ms == 0
    {
        bail!("every grpc.* size, limit and interval must be greater than 0");
    }
    if g.transport_threads > MAX_TRANSPORT_THREADS {
        bail!(
            "grpc.transport_threads is {}: at most {MAX_TRANSPORT_THREADS} (0 means one per core)",
            g.transport_threads
        );
    }
    Ok(())
}

/// More transport threads than this is a typo, not a machine.
const MAX_TRANSPORT_THREADS: usize = 1024;

/// The auth knobs.
fn auth(a: &AuthConfig) -> anyhow::Result<()> {
    if a.token_ttl_seconds == 0 || a.token_ttl_seconds > 30 * 24 * 3600 {
        bail!(
            "auth.token_ttl_seconds ({}) must be between 1 and 2592000 (30 days);              Nacos's default is 18000",
            a.token_ttl_seconds
        );
    }
    if a.failures_per_user_per_minute == 0 || a.failures_per_source_per_minute == 0 {
        bail!(
            "auth.failures_per_user_per_minute and auth.failures_per_source_per_minute must be greater than 0"
        );
    }
    crate::accounts::check_username("auth.admin_username", &a.admin_username)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !a.admin_password.is_empty() {
        crate::accounts::check_password("auth.admin_password", &a.admin_password)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// The cluster knobs. (The member list itself, each entry and this node
/// among them, is `startup::check_members`'s: parsing members is the
/// cluster module's, which imports this one.)
fn cluster(c: &ClusterConfig, own: SocketAddr) -> anyhow::Result<()> {
    if c.probe_interval_ms == 0
        || c.down_after_failures == 0
        || c.request_timeout_ms == 0
        || c.sync_batch_size == 0
        || c.sync_retry_max_ms == 0
        || c.checksum_interval_ms == 0
        || c.snapshot_timeout_ms == 0
        || c.tombstone_ttl_ms == 0
        || c.lease_grace_ms == 0
        || c.max_message_bytes == 0
        || c.max_forwards_in_flight == 0
    {
        bail!("every cluster.* interval, timeout and size must be greater than 0");
    }
    if c.members.is_empty() {
        if !c.self_address.trim().is_empty() {
            bail!(
                "cluster.self_address is set but cluster.members is empty: list every member \
                 (this node included) in cluster.members, or leave self_address out"
            );
        }
        return Ok(());
    }
    if c.secret.is_empty() && !c.insecure {
        bail!(
            "cluster.members is set but cluster.secret is empty: set a shared secret \
             (cluster.secret or NACRE_CLUSTER_SECRET), or set cluster.insecure = true to \
             run a cluster whose internal API anyone can call"
        );
    }
    if own.port() == 0 && c.self_address.trim().is_empty() {
        bail!(
            "port = 0 picks a free port, but a cluster member must listen on the port its \
             entry in cluster.members names: set port (--port) to this node's entry"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(tweak: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::default();
        tweak(&mut config);
        match config.validate() {
            Ok(()) => String::new(),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn contradictions_are_refused_with_the_knobs_named() {
        let err = refusal(|c| c.health.delete_timeout_ms = 10_000);
        assert!(
            err.contains("health.delete_timeout_ms (10000)")
                && err.contains("beat_timeout_ms (15000)"),
            "{err}"
        );
        let err = refusal(|c| c.log_level = "info,nacre=chatty".into());
        assert!(
            err.contains("log_level") && err.contains("nacre=chatty"),
            "{err}"
        );
        let err = refusal(|c| c.cluster.self_address = "127.0.0.1:8848".into());
        assert!(
            err.contains("cluster.self_address") && err.contains("cluster.members"),
            "{err}"
        );
    }

    #[test]
    fn a_zero_grpc_limit_is_refused() {
        for zero in [
            (|c: &mut Config| c.grpc.send_queue = 0) as fn(&mut Config),
            |c| c.grpc.max_connections = 0,
            |c| c.grpc.push_ack_timeout_ms = 0,
        ] {
            assert!(refusal(zero).contains("grpc."));
        }
        let err = refusal(|c| c.grpc.transport_threads = 100_000);
        assert!(err.contains("grpc.transport_threads is 100000"), "{err}");
    }

    #[test]
    fn a_cluster_member_needs_a_fixed_port() {
        let err = refusal(|c| {
            c.cluster.members = vec!["127.0.0.1:8848".into(), "127.0.0.1:8858".into()];
            c.cluster.secret = "s".into();
            c.port = 0;
        });
        assert!(err.contains("port = 0"), "{err}");
    }

    #[test]
    fn doubtful_combinations_are_warnings() {
        let defaults = Config::default().warnings();
        assert_eq!(defaults.len(), 1, "{defaults:?}");
        assert!(defaults[0].contains("auth.enabled is off"), "{defaults:?}");
        let loopback = Config {
            bind: std::net::IpAddr::from([127, 0, 0, 1]),
            ..Config::default()
        };
        assert!(loopback.warnings().is_empty());
        let mut config = loopback;
        config.health.beat_timeout_ms = 3_000;
        config.health.delete_timeout_ms = 6_000;
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("client_beat_interval_ms (5000)"),
            "{warnings:?}"
        );
        assert_eq!(
            config.validate().ok(),
            Some(()),
            "a warning does not refuse"
        );
    }
}
