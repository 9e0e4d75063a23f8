//! WebAssembly plugins: users change the registry's behaviour with components
//! written in any language, loaded while the node runs, unable to harm it.
//!
//! - [`manifest`]: a plugin's TOML manifest (world, scope, config, limits, capabilities).
//! - [`bindings`]: the host side of the `nacre:plugin` WIT worlds.
//! - [`runtime`]: engine, deadlines, memory caps, store rebuilds, quarantine.
//! - [`outbound_http`]: `wasi:http` for plugins granted it: allow-list, deadline.
//! - [`artifact_cache`]: compiled components kept on disk between loads.
//!
//! This file holds [`Plugins`], the set of loaded plugins and the three ways
//! the node consults them: listeners hear every coalesced change, health
//! policies judge instances, push filters shape what a subscriber receives.
//! The set is replaced whole when the plugin folder changes, so a call in
//! flight keeps the plugin it started with.

pub mod artifact_cache;
pub mod bindings;
pub mod manifest;
pub mod outbound_http;
pub mod runtime;
pub mod tester;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use bindings::{instance_from_wit, instance_to_wit, service_to_wit, wit};
use manifest::{Limits, Manifest, World};
use runtime::{Bound, LogSink, Plugin, PluginContext, PluginEngine, PluginState};

use crate::notifier::{ChangeEvent, ChangeListener, Notifier, Pace};
use crate::registry::Registry;
use crate::registry::model::{Instance, ServiceKey};
use crate::shutdown::Shutdown;

/// A health policy's verdict, in the registry's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthVerdict {
    Healthy,
    Unhealthy,
    Delete,
}

/// What a push filter decided for one subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOutcome {
    /// No filter applies (or none answered): send the list as it is.
    Unchanged,
    Send(Vec<Instance>),
    Skip,
}

/// What a subscriber looks like to a push filter.
pub struct SubscriberInfo<'a> {
    pub address: String,
    pub client_agent: &'a str,
    pub namespace: &'a str,
    pub clusters: Vec<String>,
    pub app: &'a str,
}

/// One plugin's line in `GET /nacre/v1/plugins`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    pub name: String,
    pub world: String,
    pub manifest: String,
    pub state: String,
    pub error: Option<String>,
    /// `compiled` at load, or `cached` (read from the compiled-plugin cache).
    pub artifact: Option<artifact_cache::Artifact>,
    /// Why the plugin's last failed call failed.
    pub last_failure: Option<String>,
    pub calls: u64,
    pub failures: u64,
    pub skipped: u64,
    pub p50_us: u32,
    pub p99_us: u32,
}

/// The loaded plugins, grouped by world.
#[derive(Default)]
struct PluginSet {
    by_manifest: BTreeMap<PathBuf, Loaded>,
    listeners: Vec<Arc<Plugin>>,
    health_policies: Vec<Arc<Plugin>>,
    push_filters: Vec<Arc<Plugin>>,
}

/// A manifest in the plugin folder and what became of it.
#[derive(Clone)]
struct Loaded {
    /// Modification times and sizes of the manifest and its component.
    signature: Signature,
    plugin: Option<Arc<Plugin>>,
    error: Option<String>,
}

type Signature = Vec<(Option<SystemTime>, u64)>;

impl PluginSet {
    fn from_loaded(by_manifest: BTreeMap<PathBuf, Loaded>) -> PluginSet {
        let mut set = PluginSet {
            by_manifest,
            ..PluginSet::default()
        };
        let plugins: Vec<Arc<Plugin>> = set
            .by_manifest
            .values()
            .filter_map(|l| l.plugin.clone())
            .collect();
        for plugin in plugins {
            match plugin.manifest.world {
                World::Listener => set.listeners.push(plugin),
                World::HealthPolicy => set.health_policies.push(plugin),
                World::PushFilter => set.push_filters.push(plugin),
            }
        }
        set
    }
}

/// The node's plugins.
pub struct Plugins {
    engine: PluginEngine,
    registry: Arc<Registry>,
    dir: Option<PathBuf>,
    defaults: Limits,
    set: RwLock<Arc<PluginSet>>,
    /// Serialises reloads.
    reloading: Mutex<()>,
    /// Whether unused compiled artifacts have been pruned since the node started.
    cache_pruned: AtomicBool,
}

impl Plugins {
    /// `cache_dir`: where compiled components are kept between loads (none: always compile).
    pub fn new(
        registry: Arc<Registry>,
        dir: Option<PathBuf>,
        defaults: Limits,
        cache_dir: Option<PathBuf>,
    ) -> anyhow::Result<Plugins> {
        Ok(Plugins {
            engine: PluginEngine::new(cache_dir)?,
            registry,
            dir,
            defaults,
            set: RwLock::new(Arc::new(PluginSet::default())),
            reloading: Mutex::new(()),
            cache_pruned: AtomicBool::new(false),
        })
    }

    fn current(&self) -> Arc<PluginSet> {
        Arc::clone(&self.set.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Loads one plugin from its manifest, outside any folder (for `nacre plugin test`).
    pub fn load_one(&self, manifest_path: &Path, log: LogSink) -> anyhow::Result<Arc<Plugin>> {
        let manifest = Manifest::load(manifest_path, self.defaults)?;
        self.load_manifest(manifest, log).map(Arc::new)
    }

    fn load_manifest(&self, manifest: Manifest, log: LogSink) -> anyhow::Result<Plugin> {
        use anyhow::Context as _;
        let bytes = std::fs::read(&manifest.wasm)
            .with_context(|| format!("reading {}", manifest.wasm.display()))?;
        let ctx = Arc::new(PluginContext {
            name: manifest.name.clone(),
            config: manifest.config.clone(),
            registry: Arc::clone(&self.registry),
            log,
        });
        self.engine.load(manifest, &bytes, ctx)
    }

    /// Brings the loaded set in line with the plugin folder: new and changed
    /// manifests are (re)loaded, removed ones dropped. A plugin whose new
    /// version fails to load keeps running in its old version, with the
    /// error reported. Returns whether anything changed.
    pub fn reload(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current();
        let manifests = match manifests_in(dir) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read the plugin folder");
                return false;
            }
        };
        let mut next = BTreeMap::new();
        let mut changed = manifests.len() != current.by_manifest.len();
        for path in manifests {
            let signature = signature_of(&path, self.defaults);
            if let Some(old) = current
                .by_manifest
                .get(&path)
                .filter(|old| old.signature == signature)
            {
                next.insert(path, old.clone());
                continue;
            }
            changed = true;
            let loading = std::time::Instant::now();
            let loaded = match Manifest::load(&path, self.defaults)
                .and_then(|m| self.load_manifest(m, LogSink::Tracing))
            {
                Ok(plugin) => {
                    let took = loading.elapsed();
                    tracing::info!(plugin = plugin.name(), world = %plugin.manifest.world, artifact = ?plugin.artifact, ?took, manifest = %path.display(), "plugin loaded");
                    Loaded {
                        signature,
                        plugin: Some(Arc::new(plugin)),
                        error: None,
                    }
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    tracing::warn!(manifest = %path.display(), %error, "plugin not loaded");
                    let previous = current
                        .by_manifest
                        .get(&path)
                        .and_then(|old| old.plugin.clone());
                    Loaded {
                        signature,
                        plugin: previous,
                        error: Some(error),
                    }
                }
            };
            next.insert(path, loaded);
        }
        // Prune on the first reload too: the folder may have lost plugins while the node was down.
        let first = !self.cache_pruned.swap(true, Ordering::Relaxed);
        if changed || first {
            let keep = next
                .values()
                .filter_map(|l| l.plugin.as_ref().and_then(|p| p.cache_file.clone()))
                .collect();
            *self.set.write().unwrap_or_else(|e| e.into_inner()) =
                Arc::new(PluginSet::from_loaded(next));
            self.engine.prune_cache(&keep);
        }
        changed
    }

    /// Watches the plugin folder until shutdown.
    pub async fn watch(self: Arc<Self>, every: Duration, mut shutdown: Shutdown) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.recv() => return,
            }
            let plugins = Arc::clone(&self);
            // Compiling a component is CPU work: keep it off the async workers.
            let _ = tokio::task::spawn_blocking(move || plugins.reload()).await;
        }
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.current()
            .by_manifest
            .iter()
            .map(|(path, loaded)| {
                let (p50, p99) = loaded
                    .plugin
                    .as_ref()
                    .map_or((0, 0), |p| p.stats.percentiles());
                let count = |f: fn(&Plugin) -> u64| loaded.plugin.as_deref().map_or(0, f);
                PluginStatus {
                    name: loaded.plugin.as_ref().map_or_else(
                        || {
                            path.file_stem()
                                .map(|s| s.to_string_lossy().into_owned())
                                .unwrap_or_default()
                        },
                        |p| p.name().to_string(),
                    ),
                    world: loaded
                        .plugin
                        .as_ref()
                        .map_or_else(String::new, |p| p.manifest.world.to_string()),
                    manifest: path.display().to_string(),
                    state: match (&loaded.plugin, &loaded.error) {
                        (None, _) => "failed".into(),
                        (Some(p), _) if p.state() == PluginState::Quarantined => {
                            "quarantined".into()
                        }
                        (Some(_), Some(_)) => "active (new version failed to load)".into(),
                        (Some(_), None) => "active".into(),
                    },
                    error: loaded.error.clone(),
                    artifact: loaded.plugin.as_ref().map(|p| p.artifact),
                    last_failure: loaded.plugin.as_ref().and_then(|p| p.last_failure()),
                    calls: count(|p| p.stats.calls.load(Ordering::Relaxed)),
                    failures: count(|p| p.stats.failures.load(Ordering::Relaxed)),
                    skipped: count(|p| p.stats.skipped.load(Ordering::Relaxed)),
                    p50_us: p50,
                    p99_us: p99,
                }
            })
            .collect()
    }

    /// Delivers one change to every listener plugin that applies to its service.
    pub fn deliver(&self, event: &ChangeEvent) {
        let set = self.current();
        let applicable: Vec<&Arc<Plugin>> = set
            .listeners
            .iter()
            .filter(|p| p.manifest.applies_to.matches(&event.service))
            .collect();
        if applicable.is_empty() {
            return;
        }
        let wit_event = change_event_to_wit(&self.registry, event);
        for plugin in applicable {
            let answer = plugin.call(|store, bound| match bound {
                Bound::Listener(l) => l.call_on_change(store, &wit_event),
                _ => Ok(Ok(())),
            });
            if let Some(Err(message)) = answer {
                tracing::warn!(plugin = plugin.name(), service = %event.service, error = %message, "listener returned an error");
                plugin.record_failed_answer(format!("returned an error: {message}"));
            }
        }
    }

    /// Asks the health policies about an instance; the first with an opinion decides.
    pub fn judge(
        &self,
        service: &ServiceKey,
        instance: &Instance,
        on_beat: bool,
        beat_metadata: &[(String, String)],
        timeouts: (u64, u64),
    ) -> Option<HealthVerdict> {
        let set = self.current();
        let mut applicable = set
            .health_policies
            .iter()
            .filter(|p| p.manifest.applies_to.matches(service))
            .peekable();
        applicable.peek()?;
        let context = wit::BeatContext {
            service: service_to_wit(service),
            instance: instance_to_wit(instance),
            on_beat,
            beat_metadata: beat_metadata.to_vec(),
            now_millis: crate::clock::now_millis(),
            beat_timeout_millis: timeouts.0,
            delete_timeout_millis: timeouts.1,
        };
        for plugin in applicable {
            let verdict = plugin.call(|store, bound| match bound {
                Bound::HealthPolicy(h) => h.call_judge(store, &context),
                _ => Ok(wit::HealthVerdict::NoOpinion),
            });
            match verdict {
                Some(wit::HealthVerdict::Healthy) => return Some(HealthVerdict::Healthy),
                Some(wit::HealthVerdict::Unhealthy) => return Some(HealthVerdict::Unhealthy),
                Some(wit::HealthVerdict::Delete) => return Some(HealthVerdict::Delete),
                Some(wit::HealthVerdict::NoOpinion) | None => {}
            }
        }
        None
    }

    /// Whether some health policy applies to `service`.
    pub fn judges(&self, service: &ServiceKey) -> bool {
        self.current()
            .health_policies
            .iter()
            .any(|p| p.manifest.applies_to.matches(service))
    }

    /// Whether some push filter applies to `service` (so list replies cannot come from the cache).
    pub fn filters(&self, service: &ServiceKey) -> bool {
        self.current()
            .push_filters
            .iter()
            .any(|p| p.manifest.applies_to.matches(service))
    }

    /// Runs the push filters that apply to `service`, in manifest order, each on
    /// the previous one's output. A filter that fails is skipped (fail open); an
    /// answer naming instances that were not offered is refused as a failure.
    pub fn filter(
        &self,
        subscriber: &SubscriberInfo<'_>,
        service: &ServiceKey,
        instances: &[Instance],
    ) -> FilterOutcome {
        let set = self.current();
        let mut current: Option<Vec<Instance>> = None;
        let wit_subscriber = wit::Subscriber {
            address: subscriber.address.clone(),
            client_agent: subscriber.client_agent.to_string(),
            namespace: subscriber.namespace.to_string(),
            clusters: subscriber.clusters.clone(),
            app: subscriber.app.to_string(),
        };
        let wit_service = service_to_wit(service);
        for plugin in set
            .push_filters
            .iter()
            .filter(|p| p.manifest.applies_to.matches(service))
        {
            let offered = current.as_deref().unwrap_or(instances);
            let wit_offered: Vec<wit::Instance> = offered.iter().map(instance_to_wit).collect();
            let answer = plugin.call(|store, bound| match bound {
                Bound::PushFilter(f) => {
                    f.call_filter(store, &wit_subscriber, &wit_service, &wit_offered)
                }
                _ => Ok(wit::FilterResult::Send(wit_offered.clone())),
            });
            match answer {
                Some(wit::FilterResult::Skip) => return FilterOutcome::Skip,
                Some(wit::FilterResult::Send(list)) => match validate_filtered(offered, list) {
                    Ok(list) => current = Some(list),
                    Err(reason) => {
                        tracing::warn!(plugin = plugin.name(), %service, %reason, "push filter answer refused");
                        plugin.record_failed_answer(format!("answer refused: {reason}"));
                    }
                },
                None => {}
            }
        }
        current.map_or(FilterOutcome::Unchanged, FilterOutcome::Send)
    }
}

/// A filter may drop, reorder and re-weight the instances it was offered, not invent new ones.
fn validate_filtered(
    offered: &[Instance],
    answer: Vec<wit::Instance>,
) -> Result<Vec<Instance>, String> {
    if answer.len() > offered.len() {
        return Err(format!(
            "returned {} instances, offered {}",
            answer.len(),
            offered.len()
        ));
    }
    answer
        .into_iter()
        .map(|w| {
            let mut instance = instance_from_wit(w);
            let original = offered
                .iter()
                .find(|o| o.id == instance.id)
                .ok_or_else(|| {
                    format!(
                        "returned {}:{} which it was not offered",
                        instance.id.ip, instance.id.port
                    )
                })?;
            if !instance.weight.is_finite()
                || !(0.0..=crate::registry::model::MAX_WEIGHT).contains(&instance.weight)
            {
                return Err(format!(
                    "returned weight {} for {}:{}",
                    instance.weight, instance.id.ip, instance.id.port
                ));
            }
            // Only the weight may change; everything else is the registry's.
            let weight = instance.weight;
            instance = original.clone();
            instance.weight = weight;
            Ok(instance)
        })
        .collect()
}

fn change_event_to_wit(registry: &Registry, event: &ChangeEvent) -> wit::ChangeEvent {
    let mut kinds = wit::ChangeKinds::empty();
    if event.kinds.instances {
        kinds |= wit::ChangeKinds::INSTANCES;
    }
    if event.kinds.service {
        kinds |= wit::ChangeKinds::SERVICE;
    }
    if event.kinds.removed {
        kinds |= wit::ChangeKinds::REMOVED;
    }
    let instances = registry
        .service(&event.service)
        .map(|s| s.instances().iter().map(instance_to_wit).collect())
        .unwrap_or_default();
    wit::ChangeEvent {
        service: service_to_wit(&event.service),
        kinds,
        revision: event.revision,
        instances,
    }
}

fn manifests_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    manifests.sort();
    Ok(manifests)
}

/// What a reload compares: the manifest's and its component's mtime and size.
fn signature_of(manifest: &Path, defaults: Limits) -> Signature {
    let stat = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.modified().ok(), m.len()))
            .unwrap_or((None, 0))
    };
    let wasm = Manifest::load(manifest, defaults)
        .map(|m| stat(&m.wasm))
        .unwrap_or((None, 0));
    vec![stat(manifest), wasm]
}

/// Hands change events to listener plugins on a thread of their own, through
/// a notifier of their own that hears each change as it is made (a relay):
/// a slow plugin delays only other plugins, and a burst of changes to one
/// service is one call with the final state.
pub struct PluginListener;

impl PluginListener {
    /// Starts the delivery thread, fed by `notifier`; it stops with
    /// `shutdown`, and the node joins the returned handle.
    /// Listeners are called at `pace` (see [`Pace`]): changes to one service
    /// within the window reach them once, with the final state, and calling
    /// them takes at most the pace's share of one core, so a busy node keeps
    /// its throughput and its listeners see coalesced events.
    pub fn start(
        plugins: Arc<Plugins>,
        registry: Arc<Registry>,
        notifier: &Notifier,
        pace: Pace,
        shutdown: Shutdown,
    ) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let queue = Notifier::new();
        queue.listen(Arc::new(Deliver(plugins)));
        let runner = queue.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("plugin-listeners".into())
            .spawn(move || runtime.block_on(runner.run_paced(registry, pace, shutdown)))?;
        notifier.relay_to(queue);
        Ok(thread)
    }
}

/// The listener plugins, as one listener of the plugin thread's notifier.
struct Deliver(Arc<Plugins>);

impl ChangeListener for Deliver {
    /// Asked on the write path: only services some listener plugin applies to are queued.
    fn wants(&self, service: &ServiceKey) -> bool {
        self.0
            .current()
            .listeners
            .iter()
            .any(|p| p.manifest.applies_to.matches(service))
    }

    fn on_change(&self, event: &ChangeEvent) {
        self.0.deliver(event);
    }
}
