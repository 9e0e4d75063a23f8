//! Every number the suite runs with: the nodes' configuration (short
//! timeouts, so a seed takes under a minute), the bounds the checker holds
//! the cluster to, and which seeds to run.

use anyhow::Context;

/// Seeds CI runs when no seed is asked for: fixed, so a CI failure replays.
pub const CI_SEEDS: [u64; 4] = [1, 2, 3, 4];

/// No beat for this long: unhealthy (`health.beat_timeout_ms`).
pub const BEAT_TIMEOUT_MS: u64 = 3_000;
/// No beat for this long: deleted (`health.delete_timeout_ms`).
pub const DELETE_TIMEOUT_MS: u64 = 6_000;
/// `cluster.request_timeout_ms`: the deadline of an ephemeral write, forwarding
/// and its retries included; the ephemeral write bound below adds the slack.
pub const REQUEST_TIMEOUT_MS: u64 = 2_000;
/// `raft.write_timeout_ms`: the deadline of a persistent write, end to end.
pub const RAFT_WRITE_TIMEOUT_MS: u64 = 2_000;
/// What a write may take beyond its node-side deadline before the checker
/// calls it late (scheduling on two shared cores, the HTTP round trip).
pub const SLACK_MS: u64 = 500;
/// How long the clients wait for any answer before giving up on a request
/// (twice the longest deadline, so a late answer is measured, not guessed).
pub const CLIENT_TIMEOUT_MS: u64 = 2 * (RAFT_WRITE_TIMEOUT_MS + SLACK_MS);

/// B: a registration acknowledged this long before a list started must be in
/// it, if the list is answered 200. It covers the sync to the other members
/// and the time a cut-off member needs to notice (two failed probes of
/// `PROBE_INTERVAL_MS`) and stop answering.
pub const LISTED_WITHIN_MS: u64 = 1_500;
/// P: a deregistration acknowledged this long before a list started must not
/// be undone in it.
pub const GONE_WITHIN_MS: u64 = 1_500;
/// A write whose outcome is unknown (no answer, or a 5xx that may have been
/// applied) may still take effect this long after its answer (a forwarded
/// request in flight to its owner): the checker draws no conclusion about
/// that instance until then.
pub const LATE_EFFECT_MS: u64 = REQUEST_TIMEOUT_MS;
/// The window an AP registry cannot close: a write acknowledged by the
/// responsible member itself at most this long before that member was killed
/// may be lost with it — its sync had not left. Such losses are measured, not
/// failures. Writes a member acknowledged from this long before it was cut
/// off until it noticed are measured too, but their losses fail.
pub const AP_WINDOW_MS: u64 = 100;

/// Beats every this long (clients are told 5 s by default; a short period
/// keeps instances well inside the beat timeout).
pub const BEAT_PERIOD_MS: u64 = 500;
/// Probing of members (`cluster.probe_interval_ms`) and of persistent
/// instances (`health.probe_interval_ms`).
pub const PROBE_INTERVAL_MS: u64 = 200;

/// The nodes' configuration, as `NACRE_*` variables.
pub fn node_env() -> Vec<(String, String)> {
    [
        ("NACRE_HEALTH_BEAT_TIMEOUT_MS", BEAT_TIMEOUT_MS.to_string()),
        (
            "NACRE_HEALTH_DELETE_TIMEOUT_MS",
            DELETE_TIMEOUT_MS.to_string(),
        ),
        ("NACRE_HEALTH_CHECK_PERIOD_MS", "200".into()),
        (
            "NACRE_HEALTH_CLIENT_BEAT_INTERVAL_MS",
            BEAT_PERIOD_MS.to_string(),
        ),
        // Persistent instances sit at loopback ports the suite listens on.
        ("NACRE_HEALTH_PROBE_ENABLED", "true".into()),
        (
            "NACRE_HEALTH_PROBE_INTERVAL_MS",
            PROBE_INTERVAL_MS.to_string(),
        ),
        ("NACRE_HEALTH_PROBE_TIMEOUT_MS", "500".into()),
        (
            "NACRE_CLUSTER_PROBE_INTERVAL_MS",
            PROBE_INTERVAL_MS.to_string(),
        ),
        (
            "NACRE_CLUSTER_REQUEST_TIMEOUT_MS",
            REQUEST_TIMEOUT_MS.to_string(),
        ),
        ("NACRE_CLUSTER_CHECKSUM_INTERVAL_MS", "500".into()),
        ("NACRE_CLUSTER_SNAPSHOT_TIMEOUT_MS", "2000".into()),
        ("NACRE_CLUSTER_SYNC_RETRY_MAX_MS", "500".into()),
        (
            "NACRE_RAFT_WRITE_TIMEOUT_MS",
            RAFT_WRITE_TIMEOUT_MS.to_string(),
        ),
        ("NACRE_RAFT_HEARTBEAT_INTERVAL_MS", "50".into()),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MIN_MS", "300".into()),
        ("NACRE_RAFT_ELECTION_TIMEOUT_MAX_MS", "600".into()),
        ("NACRE_RAFT_SNAPSHOT_EVERY_ENTRIES", "200".into()),
        ("NACRE_RAFT_LOG_ENTRIES_KEPT_AFTER_SNAPSHOT", "50".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The seeds to run: `NACRE_FAULT_SEED=<n>` replays one; `NACRE_FAULT_SEEDS=<count>`
/// runs that many fresh ones (each printed); otherwise [`CI_SEEDS`].
pub fn seeds() -> anyhow::Result<Vec<u64>> {
    if let Ok(seed) = std::env::var("NACRE_FAULT_SEED") {
        let seed = seed
            .trim()
            .parse()
            .with_context(|| format!("NACRE_FAULT_SEED={seed:?} is not a number"))?;
        return Ok(vec![seed]);
    }
    if let Ok(count) = std::env::var("NACRE_FAULT_SEEDS") {
        let count: u64 = count
            .trim()
            .parse()
            .with_context(|| format!("NACRE_FAULT_SEEDS={count:?} is not a number"))?;
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let mut rng = crate::rng::Rng::new(base);
        return Ok((0..count).map(|_| rng.next_u64() % 1_000_000).collect());
    }
    Ok(CI_SEEDS.to_vec())
}
