//! What `GET /nacre/v1/plugins` shows about each manifest in the folder.
//!
//! Every string here is bounded (names by the manifest rules, errors and
//! failures by [`super::error::MAX_REASON_BYTES`]), so the whole status is
//! bounded by the number of manifests a folder may hold.

use serde::Serialize;

use super::artifact_cache::Artifact;
use super::runtime::{CallStats, PluginState};
use super::set::{Loaded, Plugins};

/// One plugin's line in `GET /nacre/v1/plugins`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    /// The manifest's `name`; for a manifest that never loaded, its `name` if it
    /// parsed that far, else the file's stem.
    pub name: String,
    /// The world (`listener`, `health-policy`, `push-filter`); empty when none loaded.
    pub world: String,
    /// The manifest's path.
    pub manifest: String,
    /// `active`, `quarantined`, `failed` (never loaded), or `active (new
    /// version failed to load)`.
    pub state: String,
    /// Why the manifest (or its latest version) was not loaded.
    pub error: Option<String>,
    /// `compiled` at load, or `cached` (read from the compiled-plugin cache).
    pub artifact: Option<Artifact>,
    /// Why the plugin's last failed call failed.
    pub last_failure: Option<String>,
    /// Calls made into the plugin since it loaded.
    pub calls: u64,
    /// Calls that failed (traps, timeouts, refused answers).
    pub failures: u64,
    /// Of those, calls cut at the plugin's deadline.
    pub timeouts: u64,
    /// Of those, calls that hit the plugin's memory cap.
    pub memory_cap_trips: u64,
    /// Calls not made while the plugin was quarantined.
    pub skipped: u64,
    /// Request-path calls a request went on without (queue full, or too slow).
    pub late: u64,
    /// Log lines dropped for going over the plugin's allowance.
    pub logs_dropped: u64,
    /// Median and 99th percentile of the last 1,024 calls, in microseconds.
    pub p50_us: u32,
    /// 99th percentile of the last 1,024 calls, in microseconds.
    pub p99_us: u32,
}

impl Plugins {
    /// Each manifest in the folder, in file-name order.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.current()
            .by_manifest
            .iter()
            .map(|(path, loaded)| status_of(path, loaded))
            .collect()
    }
}

fn status_of(path: &std::path::Path, loaded: &Loaded) -> PluginStatus {
    let plugin = loaded.plugin.as_deref();
    let count = |f: fn(&CallStats) -> u64| plugin.map_or(0, |p| f(&p.stats));
    let (p50_us, p99_us) = plugin.map_or((0, 0), |p| p.stats.percentiles());
    let name = plugin
        .map(|p| p.name().to_string())
        .or_else(|| loaded.name.clone())
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_default();
    PluginStatus {
        name,
        world: plugin.map_or_else(String::new, |p| p.manifest.world.to_string()),
        manifest: path.display().to_string(),
        state: match (plugin, &loaded.error) {
            (None, _) => "failed".into(),
            (Some(p), _) if p.state() == PluginState::Quarantined => "quarantined".into(),
            (Some(_), Some(_)) => "active (new version failed to load)".into(),
            (Some(_), None) => "active".into(),
        },
        error: loaded.error.as_ref().map(|e| e.to_string()),
        artifact: plugin.map(|p| p.artifact),
        last_failure: plugin.and_then(|p| p.last_failure()),
        calls: count(|s| CallStats::count(&s.calls)),
        failures: count(|s| CallStats::count(&s.failures)),
        timeouts: count(|s| CallStats::count(&s.timeouts)),
        memory_cap_trips: count(|s| CallStats::count(&s.memory_cap_trips)),
        skipped: count(|s| CallStats::count(&s.skipped)),
        late: count(|s| CallStats::count(&s.late)),
        logs_dropped: plugin.map_or(0, |p| p.logs_dropped()),
        p50_us,
        p99_us,
    }
}
