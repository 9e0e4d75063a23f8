//! The WebAssembly runtime under the plugins: one [`Engine`] (component model,
//! pooling allocator, epoch interruption), two [`Linker`]s — the host
//! interface and a WASI that reaches nothing, and the same plus `wasi:http`
//! for plugins whose manifest grants outbound HTTP — and per plugin a
//! pre-linked component whose store is rebuilt after any failure. Compiled
//! components are cached on disk ([`ArtifactCache`]).
//!
//! Every call gets a deadline (epoch ticks) and a memory cap (`StoreLimits`);
//! a trap, timeout or exhausted memory drops the store, counts a failure, and
//! repeated failures quarantine the plugin with a growing backoff.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::artifact_cache::{Artifact, ArtifactCache};
use super::bindings::{health_policy, listener, push_filter, wit, wit_host};
use super::manifest::{Limits, MAX_MEMORY_MB, Manifest, World};
use super::outbound_http::OutboundHttp;
use crate::clock::now_millis;
use crate::registry::Registry;

/// How often the engine's epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Consecutive failures before a plugin is quarantined.
const QUARANTINE_AFTER: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How many recent call times are kept for the percentiles.
const TIMING_WINDOW: usize = 1024;
/// Log lines longer than this are cut.
const MAX_LOG_BYTES: usize = 4096;

/// The shared engine and linkers.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    /// For plugins without capabilities: the host interface and a WASI that reaches nothing.
    linker: Arc<Linker<StoreState>>,
    /// For plugins granted outbound HTTP: the above and `wasi:http`.
    http_linker: Arc<Linker<StoreState>>,
    cache: Option<Arc<ArtifactCache>>,
}

impl PluginEngine {
    /// `cache_dir`: where compiled components are kept between loads (none: always compile).
    pub fn new(cache_dir: Option<std::path::PathBuf>) -> anyhow::Result<PluginEngine> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(2048)
            .total_memories(512)
            .total_tables(2048)
            .total_stacks(256)
            .max_memories_per_component(16)
            .max_tables_per_component(64)
            .max_core_instances_per_component(64)
            .table_elements(200_000)
            .max_memory_size((MAX_MEMORY_MB as usize) << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| wasm_error(e, "creating the WebAssembly engine"))?;

        let linker = base_linker(&engine)?;
        let mut http_linker = base_linker(&engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut http_linker)
            .map_err(|e| wasm_error(e, "linking wasi:http"))?;

        // The epoch ticker lives as long as the engine does.
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the epoch ticker: {e}"))?;
        let cache = cache_dir.map(|dir| Arc::new(ArtifactCache::new(dir, &engine)));
        Ok(PluginEngine {
            engine,
            linker: Arc::new(linker),
            http_linker: Arc::new(http_linker),
            cache,
        })
    }

    /// Deletes cached artifacts other than those in `keep`.
    pub fn prune_cache(&self, keep: &std::collections::HashSet<std::path::PathBuf>) {
        if let Some(cache) = &self.cache {
            cache.prune(keep);
        }
    }

    /// Compiles and links a plugin, checking it exports its manifest's world.
    pub fn load(
        &self,
        manifest: Manifest,
        bytes: &[u8],
        ctx: Arc<PluginContext>,
    ) -> anyhow::Result<Plugin> {
        let compile = || {
            Component::new(&self.engine, bytes).map_err(|e| {
                wasm_error(
                    e,
                    &format!(
                        "{} is not a valid WebAssembly component",
                        manifest.wasm.display()
                    ),
                )
            })
        };
        let cache_file = self.cache.as_ref().map(|cache| cache.path_for(bytes));
        let (component, artifact) = match (&self.cache, &cache_file) {
            (Some(cache), Some(path)) => cache.load_or_compile(&self.engine, path, compile)?,
            _ => (compile()?, Artifact::Compiled),
        };
        // Only a plugin granted outbound HTTP gets wasi:http linked; any other
        // plugin importing it is refused here (see `import_error`).
        let linker = if manifest.capabilities.http.is_empty() {
            &self.linker
        } else {
            &self.http_linker
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| import_error(&manifest, e))?;
        let world = match manifest.world {
            World::Listener => Exports::Listener(
                listener::ListenerPre::new(pre).map_err(|e| export_error(&manifest, e))?,
            ),
            World::HealthPolicy => Exports::HealthPolicy(
                health_policy::HealthPolicyPre::new(pre).map_err(|e| export_error(&manifest, e))?,
            ),
            World::PushFilter => Exports::PushFilter(
                push_filter::PushFilterPre::new(pre).map_err(|e| export_error(&manifest, e))?,
            ),
        };
        let plugin = Plugin {
            engine: self.engine.clone(),
            http_allowed: Arc::from(manifest.capabilities.http.clone()),
            artifact,
            cache_file,
            manifest,
            exports: world,
            live: Mutex::new(None),
            health: Mutex::new(Supervision::default()),
            stats: CallStats::default(),
            ctx,
        };
        // Instantiate once now, so a component that cannot start is refused at load.
        plugin.instantiate().map_err(|e| {
            wasm_error(e, &format!("instantiating plugin {}", plugin.manifest.name))
        })?;
        Ok(plugin)
    }
}

/// A linker with the host interface and a WASI that reaches nothing.
fn base_linker(engine: &Engine) -> anyhow::Result<Linker<StoreState>> {
    let mut linker = Linker::<StoreState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| wasm_error(e, "linking WASI"))?;
    // The three worlds import the same interfaces: linking one links them all.
    listener::Listener::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(
        &mut linker,
        |s| s,
    )
    .map_err(|e| wasm_error(e, "linking the host interface"))?;
    Ok(linker)
}

/// A wasmtime error as an `anyhow` one, with context.
fn wasm_error(e: wasmtime::Error, what: &str) -> anyhow::Error {
    anyhow::Error::from(e).context(what.to_string())
}

fn import_error(manifest: &Manifest, e: wasmtime::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    if text.contains("wasi:http") && manifest.capabilities.http.is_empty() {
        anyhow::anyhow!(
            "plugin {} imports wasi:http but its manifest grants no `http` capability: {text}",
            manifest.name
        )
    } else {
        anyhow::anyhow!(
            "plugin {} imports something the host does not offer: {text}",
            manifest.name
        )
    }
}

fn export_error(manifest: &Manifest, e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "plugin {}: the component does not export the `{}` world its manifest names: {e:#}",
        manifest.name,
        manifest.world
    )
}

/// Where a plugin's log lines go.
pub enum LogSink {
    /// The node's log, through `tracing`.
    Tracing,
    /// Kept for the caller (the `nacre plugin test` command).
    Capture(Mutex<Vec<String>>),
}

/// What the host interface needs to serve one plugin.
pub struct PluginContext {
    pub name: String,
    pub config: Vec<(String, String)>,
    pub registry: Arc<Registry>,
    pub log: LogSink,
}

/// The data of one plugin store.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    ctx: Arc<PluginContext>,
    /// Used only when `wasi:http` is linked (the manifest grants `http`).
    http: WasiHttpCtx,
    outbound: OutboundHttp,
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for StoreState {}

impl wit_host::Host for StoreState {
    fn log(&mut self, level: wit::LogLevel, message: String, fields: Vec<(String, String)>) {
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let fields: Vec<String> = fields
            .iter()
            .take(32)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let fields = fields.join(" ");
        let plugin = self.ctx.name.as_str();
        match &self.ctx.log {
            LogSink::Capture(lines) => {
                let level = match level {
                    wit::LogLevel::Trace => "TRACE",
                    wit::LogLevel::Debug => "DEBUG",
                    wit::LogLevel::Info => "INFO",
                    wit::LogLevel::Warn => "WARN",
                    wit::LogLevel::Error => "ERROR",
                };
                let line = format!("{level} {message} {fields}");
                lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line.trim_end().to_string());
            }
            LogSink::Tracing => match level {
                wit::LogLevel::Trace => tracing::trace!(plugin, fields, "{message}"),
                wit::LogLevel::Debug => tracing::debug!(plugin, fields, "{message}"),
                wit::LogLevel::Info => tracing::info!(plugin, fields, "{message}"),
                wit::LogLevel::Warn => tracing::warn!(plugin, fields, "{message}"),
                wit::LogLevel::Error => tracing::error!(plugin, fields, "{message}"),
            },
        }
    }

    fn now_millis(&mut self) -> i64 {
        now_millis()
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.ctx.config.clone()
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.ctx
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn list_instances(&mut self, service: wit::ServiceKey) -> Vec<wit::Instance> {
        let key = super::bindings::service_from_wit(service);
        self.ctx
            .registry
            .service(&key)
            .map(|s| {
                s.instances()
                    .iter()
                    .map(super::bindings::instance_to_wit)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn list_services(&mut self, namespace: String, group: String) -> Vec<String> {
        self.ctx.registry.service_names(&namespace, &group)
    }
}

enum Exports {
    Listener(listener::ListenerPre<StoreState>),
    HealthPolicy(health_policy::HealthPolicyPre<StoreState>),
    PushFilter(push_filter::PushFilterPre<StoreState>),
}

/// An instantiated plugin: its store and typed exports.
pub enum Bound {
    Listener(listener::Listener),
    HealthPolicy(health_policy::HealthPolicy),
    PushFilter(push_filter::PushFilter),
}

struct Live {
    store: Store<StoreState>,
    bound: Bound,
}

/// Failure accounting for quarantine.
#[derive(Default)]
struct Supervision {
    /// Why the last failed call failed.
    last_failure: Option<String>,
    consecutive_failures: u32,
    quarantined_until: Option<Instant>,
    quarantines: u32,
}

/// Counters and recent timings of a plugin's calls.
#[derive(Default)]
pub struct CallStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub skipped: AtomicU64,
    recent_micros: Mutex<VecDeque<u32>>,
}

impl CallStats {
    fn record(&self, took: Duration) {
        let mut recent = self.recent_micros.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == TIMING_WINDOW {
            recent.pop_front();
        }
        recent.push_back(took.as_micros().min(u32::MAX as u128) as u32);
    }

    /// (p50, p99) of the recent calls, in microseconds.
    pub fn percentiles(&self) -> (u32, u32) {
        let mut recent: Vec<u32> = self
            .recent_micros
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if recent.is_empty() {
            return (0, 0);
        }
        recent.sort_unstable();
        let at =
            |p: f64| recent[((p * recent.len() as f64).ceil() as usize).clamp(1, recent.len()) - 1];
        (at(0.50), at(0.99))
    }
}

/// A loaded plugin.
pub struct Plugin {
    engine: Engine,
    pub manifest: Manifest,
    /// The manifest's `http` allow-list; empty: no outbound HTTP.
    http_allowed: Arc<[String]>,
    /// Whether the component was compiled at load or read from the cache.
    pub artifact: Artifact,
    /// The component's file in the compiled-plugin cache, if the node keeps one.
    pub cache_file: Option<std::path::PathBuf>,
    exports: Exports,
    live: Mutex<Option<Live>>,
    health: Mutex<Supervision>,
    pub stats: CallStats,
    ctx: Arc<PluginContext>,
}

/// The state of a plugin, as `GET /nacre/v1/plugins` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    Active,
    Quarantined,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    pub fn context(&self) -> &Arc<PluginContext> {
        &self.ctx
    }

    pub fn state(&self) -> PluginState {
        let health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match health.quarantined_until {
            Some(until) if until > Instant::now() => PluginState::Quarantined,
            _ => PluginState::Active,
        }
    }

    /// Builds a fresh instance (as after a failure) and returns how long that took.
    pub fn reinstantiate(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let live = self
            .instantiate()
            .map_err(|e| wasm_error(e, &format!("instantiating plugin {}", self.manifest.name)))?;
        let took = started.elapsed();
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(live);
        Ok(took)
    }

    /// Counts an answer that was itself a failure (a listener's error, a push
    /// filter answer the host refused), keeping its reason for the status.
    pub fn record_failed_answer(&self, reason: String) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_failure = Some(reason);
    }

    /// Why the last failed call failed, if one did.
    pub fn last_failure(&self) -> Option<String> {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_failure
            .clone()
    }

    fn new_store(&self) -> Store<StoreState> {
        let Limits { memory_bytes, .. } = self.manifest.limits;
        let state = StoreState {
            // Nothing preopened, no environment, no network.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            ctx: Arc::clone(&self.ctx),
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp::new(&self.manifest.name, Arc::clone(&self.http_allowed)),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store
    }

    fn instantiate(&self) -> wasmtime::Result<Live> {
        let mut store = self.new_store();
        // Instantiation runs guest start code: it gets a deadline too.
        store.set_epoch_deadline(self.deadline_ticks());
        let bound = match &self.exports {
            Exports::Listener(pre) => Bound::Listener(pre.instantiate(&mut store)?),
            Exports::HealthPolicy(pre) => Bound::HealthPolicy(pre.instantiate(&mut store)?),
            Exports::PushFilter(pre) => Bound::PushFilter(pre.instantiate(&mut store)?),
        };
        Ok(Live { store, bound })
    }

    fn deadline_ticks(&self) -> u64 {
        (self.manifest.limits.timeout_ms * 1000 / EPOCH_TICK.as_micros() as u64).max(1)
    }

    /// Runs one call under the plugin's limits. `None` means the plugin did not
    /// answer (quarantined, trapped, timed out, out of memory): the caller
    /// applies the default behaviour.
    pub fn call<R: Send>(
        &self,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<R> + Send,
    ) -> Option<R> {
        if self.state() == PluginState::Quarantined {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let started = Instant::now();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let run = |live: &mut Option<Live>| {
            if live.is_none() {
                *live = Some(self.instantiate()?);
            }
            let Some(Live { store, bound }) = live.as_mut() else {
                return Err(wasmtime::Error::msg("no live instance"));
            };
            store.set_epoch_deadline(self.deadline_ticks());
            store
                .data_mut()
                .outbound
                .start_call(started + Duration::from_millis(self.manifest.limits.timeout_ms));
            f(store, bound)
        };
        let result = if self.http_allowed.is_empty() {
            catch_host_panic(|| run(&mut live))
        } else {
            // wasi:http waits for I/O in wasmtime-wasi's `in_tokio`, which
            // blocks on a Tokio runtime and must not run on a thread that is
            // already inside one (the listener thread and the API's workers
            // are). A scoped thread of its own has no runtime: the waits run
            // on wasmtime-wasi's ambient one. It costs a thread start per call,
            // only for plugins granted HTTP, whose calls wait on a network
            // anyway (docs/BENCHMARKS.md has the measured cost). Every wait is bounded by the call's deadline
            // (see `outbound_http`), so the join is too.
            let live = &mut *live;
            std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name(format!("plugin-http-{}", self.manifest.name))
                    .spawn_scoped(scope, move || catch_host_panic(|| run(live)))
                    .map_err(|e| wasmtime::Error::msg(format!("starting the call's thread: {e}")))
                    .and_then(|thread| {
                        thread.join().unwrap_or_else(|_| {
                            Err(wasmtime::Error::msg("the call's thread panicked"))
                        })
                    })
            })
        };
        match result {
            Ok(value) => {
                drop(live);
                self.stats.record(started.elapsed());
                self.health
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .consecutive_failures = 0;
                Some(value)
            }
            Err(e) => {
                // After a trap the instance may not be called again: start over next time.
                *live = None;
                drop(live);
                self.fail(&e);
                None
            }
        }
    }

    fn fail(&self, error: &wasmtime::Error) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        health.consecutive_failures += 1;
        let reason = describe_failure(error, self.manifest.limits);
        health.last_failure = Some(reason.clone());
        if health.consecutive_failures >= QUARANTINE_AFTER {
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << health.quarantines.min(6))
                .min(MAX_BACKOFF);
            health.quarantined_until = Some(Instant::now() + backoff);
            health.quarantines += 1;
            health.consecutive_failures = 0;
            tracing::warn!(plugin = %self.manifest.name, %reason, ?backoff, "plugin quarantined after repeated failures");
        } else {
            tracing::warn!(plugin = %self.manifest.name, %reason, "plugin call failed; its store will be rebuilt");
        }
    }
}

/// Runs one plugin call, turning a panic inside a host function into a failed
/// call. wasmtime unwinds a host panic through the guest's frames and resumes
/// it at the call site; the store is dropped afterwards like after a trap.
///
/// The panic that does happen: a plugin without the `http` grant runs on the
/// caller's thread, which drives the node's Tokio runtime, and a WASI call that
/// blocks (sleeping, `poll`, writing to or dropping a stdout/stderr stream —
/// which Rust's `println!` and panic messages do) reaches wasmtime-wasi's
/// `in_tokio`, which panics inside a runtime. Letting such calls block would
/// hold an async worker beyond the deadline (epoch interruption cannot reach
/// a host call), so refusing them is the intended outcome; this turns the
/// refusal into a plugin failure instead of a failed request.
fn catch_host_panic<R>(call: impl FnOnce() -> wasmtime::Result<R>) -> wasmtime::Result<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(wasmtime::Error::msg(
            if message.contains("Cannot start a runtime from within a runtime") {
                "made a blocking WASI call (sleep, poll, stdout/stderr), which plugins may not: \
                 log with the host interface instead"
                    .to_string()
            } else {
                format!("a host function panicked: {message}")
            },
        ))
    })
}

/// Says in words why a call failed.
fn describe_failure(error: &wasmtime::Error, limits: Limits) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            format!("ran past its {} ms deadline", limits.timeout_ms)
        }
        Some(trap) => format!("trapped: {trap}"),
        None => format!("{error:#}"),
    }
}
