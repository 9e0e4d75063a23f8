//! A loaded plugin: its pre-linked component, the instance it keeps between
//! calls, and the way every call is made — under its deadline, memory cap
//! and hostcall fuel, with failures counted toward quarantine.
//!
//! No lock is held while a plugin runs: a call takes the idle instance out
//! (or builds one), runs, and puts it back. A call that fails drops its
//! instance; the next call builds a fresh one.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store};

use super::super::artifact_cache::Artifact;
use super::super::bindings::{health_policy, listener, push_filter};
use super::super::error::PluginError;
use super::super::manifest::Manifest;
use super::failure::{guarded, settle};
use super::limits::{HOST_DATA_PER_CALL, deadline_ticks};
use super::store::{PluginContext, StoreState, new_store};
use super::supervision::{CallStats, Supervision};
use super::worker::Worker;

/// The component's world, pre-linked: instantiating it is cheap.
pub(super) enum Exports {
    Listener(listener::ListenerPre<StoreState>),
    HealthPolicy(health_policy::HealthPolicyPre<StoreState>),
    PushFilter(push_filter::PushFilterPre<StoreState>),
}

/// An instantiated plugin's typed exports.
pub enum Bound {
    /// A `listener` world's exports.
    Listener(listener::Listener),
    /// A `health-policy` world's exports.
    HealthPolicy(health_policy::HealthPolicy),
    /// A `push-filter` world's exports.
    PushFilter(push_filter::PushFilter),
}

/// One instance and its store.
struct Live {
    store: Store<StoreState>,
    bound: Bound,
}

/// A loaded plugin.
pub struct Plugin {
    engine: Engine,
    /// The validated manifest the plugin was loaded from.
    pub manifest: Manifest,
    /// The manifest's `http` allow-list; empty: no outbound HTTP.
    http_allowed: Arc<[String]>,
    /// Whether the component was compiled at load or read from the cache.
    pub artifact: Artifact,
    /// The component's file in the compiled-plugin cache, if the node keeps one.
    pub cache_file: Option<std::path::PathBuf>,
    exports: Exports,
    /// The instance between calls (none after a failure, until the next call).
    idle: Mutex<Option<Live>>,
    pub(super) health: Supervision,
    /// Call counts and recent timings, for the status page and metrics.
    pub stats: CallStats,
    ctx: Arc<PluginContext>,
    /// Started on the first request-path call (see `Plugin::call_off_thread`).
    pub(super) worker: OnceLock<Option<Worker>>,
}

/// The state of a plugin, as `GET /nacre/v1/plugins` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginState {
    /// Called as events come.
    Active,
    /// Sitting out a backoff after repeated failures: not called until it ends.
    Quarantined,
}

impl Plugin {
    pub(super) fn new(
        engine: Engine,
        manifest: Manifest,
        exports: Exports,
        artifact: Artifact,
        cache_file: Option<std::path::PathBuf>,
        ctx: Arc<PluginContext>,
    ) -> Plugin {
        Plugin {
            engine,
            http_allowed: Arc::from(manifest.capabilities.http.clone()),
            manifest,
            artifact,
            cache_file,
            exports,
            idle: Mutex::new(None),
            health: Supervision::default(),
            stats: CallStats::default(),
            ctx,
            worker: OnceLock::new(),
        }
    }

    /// The manifest's `name`.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// What the host interface serves this plugin (its name, config, log sink).
    pub fn context(&self) -> &Arc<PluginContext> {
        &self.ctx
    }

    /// Whether the plugin is quarantined at this moment.
    pub fn state(&self) -> PluginState {
        if self.health.is_quarantined(Instant::now()) {
            PluginState::Quarantined
        } else {
            PluginState::Active
        }
    }

    /// Why the last failed call failed, if one did (for the status and `nacre plugin test`).
    pub fn last_failure(&self) -> Option<String> {
        self.health.last_failure().map(|e| e.to_string())
    }

    /// The last failure, typed (for the unit tests of the callers).
    #[cfg(test)]
    pub(crate) fn last_error(&self) -> Option<PluginError> {
        self.health.last_failure()
    }

    /// Log lines dropped for going over the plugin's allowance.
    pub fn logs_dropped(&self) -> u64 {
        self.ctx.log_budget.dropped()
    }

    /// Builds a fresh instance (as after a failure) and returns how long that took.
    pub(crate) fn reinstantiate(&self) -> Result<Duration, PluginError> {
        let started = Instant::now();
        let live = self.instantiate()?;
        let took = started.elapsed();
        *self.idle.lock().unwrap_or_else(|e| e.into_inner()) = Some(live);
        Ok(took)
    }

    /// Builds an instance, running the guest's start code under the deadline.
    pub(super) fn instantiate_now(&self) -> Result<(), PluginError> {
        self.instantiate().map(|live| self.put_back(live))
    }

    fn instantiate(&self) -> Result<Live, PluginError> {
        let mut store = new_store(
            &self.engine,
            &self.manifest,
            Arc::clone(&self.ctx),
            Arc::clone(&self.http_allowed),
        );
        store.set_epoch_deadline(deadline_ticks(self.manifest.limits.timeout_ms));
        let fuel = store.hostcall_fuel();
        let bound = guarded(self.manifest.limits, fuel, || {
            Ok(match &self.exports {
                Exports::Listener(pre) => Bound::Listener(pre.instantiate(&mut store)?),
                Exports::HealthPolicy(pre) => Bound::HealthPolicy(pre.instantiate(&mut store)?),
                Exports::PushFilter(pre) => Bound::PushFilter(pre.instantiate(&mut store)?),
            })
        })?;
        Ok(Live { store, bound })
    }

    fn take_idle(&self) -> Result<Live, PluginError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
        match idle {
            Some(live) => Ok(live),
            None => self.instantiate(),
        }
    }

    /// Keeps `live` for the next call (one idle instance is enough; a second,
    /// built by a concurrent call, is dropped).
    fn put_back(&self, live: Live) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.is_none() {
            *idle = Some(live);
        }
    }

    /// Runs one call under the plugin's limits. `None` means the plugin did not
    /// answer (quarantined, trapped, timed out, out of memory): the caller
    /// applies the default behaviour. See `Self::try_call` for why.
    pub fn call<R: Send>(
        &self,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<R> + Send,
    ) -> Option<R> {
        self.try_call(f).ok()
    }

    /// Runs one call under the plugin's limits, on this thread. `f` may raise
    /// the store's hostcall fuel for its answer (push filters do); a failure
    /// is counted (and may quarantine the plugin) before it is returned.
    pub(crate) fn try_call<R: Send>(
        &self,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<R> + Send,
    ) -> Result<R, PluginError> {
        self.call_checked(f, Ok)
    }

    /// [`Self::try_call`], with the answer judged by `check` before the call
    /// counts as a success: an answer `check` refuses (a listener's error, a
    /// push filter's invalid list) is a failure like a trap, so that a plugin
    /// refused on every call is quarantined like one that traps on every call.
    pub(crate) fn call_checked<A: Send, R>(
        &self,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<A> + Send,
        check: impl FnOnce(A) -> Result<R, PluginError>,
    ) -> Result<R, PluginError> {
        if self.health.is_quarantined(Instant::now()) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(PluginError::Quarantined);
        }
        let started = Instant::now();
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let mut live = match self.take_idle() {
            Ok(live) => live,
            Err(error) => return Err(self.fail(error)),
        };
        let timeout = Duration::from_millis(self.manifest.limits.timeout_ms);
        live.store
            .set_epoch_deadline(deadline_ticks(self.manifest.limits.timeout_ms));
        live.store.data_mut().outbound.start_call(started + timeout);
        live.store.set_hostcall_fuel(HOST_DATA_PER_CALL);
        // After a trap the instance may not be called again: it is dropped here.
        let answer = self.run(&mut live, f).map_err(|error| self.fail(error))?;
        self.put_back(live);
        self.stats.record(started.elapsed());
        match check(answer) {
            Ok(value) => {
                self.health.succeeded();
                Ok(value)
            }
            Err(refused) => Err(self.fail(refused)),
        }
    }

    fn run<R: Send>(
        &self,
        live: &mut Live,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<R> + Send,
    ) -> Result<R, PluginError> {
        let limits = self.manifest.limits;
        let call = move |live: &mut Live| {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                f(&mut live.store, &live.bound)
            }));
            // The fuel in force during the call names the limit if it was hit.
            settle(outcome, limits, live.store.hostcall_fuel())
        };
        if self.http_allowed.is_empty() {
            return call(live);
        }
        // wasi:http waits for I/O in wasmtime-wasi's `in_tokio`, which
        // blocks on a Tokio runtime and must not run on a thread that is
        // already inside one (every thread that calls plugins is). A scoped
        // thread of its own has no runtime: the waits run on wasmtime-wasi's
        // ambient one. It costs a thread start per call, only for plugins
        // granted HTTP, whose calls wait on a network anyway
        // (docs/BENCHMARKS.md has the measured cost). Every wait is bounded
        // by the call's deadline (see `outbound_http`), so the join is too.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(format!("plugin-http-{}", self.manifest.name))
                .spawn_scoped(scope, move || call(live))
                .map_err(|e| PluginError::Other(format!("starting the call's thread: {e}")))
                .and_then(|thread| {
                    thread.join().unwrap_or_else(|_| {
                        Err(PluginError::HostPanic("the call's thread panicked".into()))
                    })
                })
        })
    }

    /// Counts a failure and returns it (errors that are not the plugin's
    /// doing, see [`PluginError::is_failure`], are returned uncounted).
    pub(super) fn fail(&self, error: PluginError) -> PluginError {
        if error.is_failure() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            match error {
                PluginError::Timeout { .. } => {
                    self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                PluginError::OutOfMemory { .. } => {
                    self.stats.memory_cap_trips.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            self.health
                .failed(&self.manifest.name, error.clone(), Instant::now());
        }
        error
    }
}
