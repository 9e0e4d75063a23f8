//! The data behind one plugin store: what the host interface serves the
//! plugin from, a WASI that reaches nothing, and the plugin's limits.
//!
//! A store lives as long as its instance: after any failure both are dropped
//! and rebuilt from the pre-linked component (wasmtime refuses further calls
//! into an instance that trapped), so nothing here may outlive a failure
//! except through the shared [`PluginContext`].

use std::sync::{Arc, Mutex};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::super::manifest::Manifest;
use super::super::outbound_http::OutboundHttp;
use super::limits::{HOST_DATA_PER_CALL, MAX_RANDOM_BYTES, MemoryCap};
use super::log::LogBudget;
use crate::registry::Registry;

/// Where a plugin's log lines go.
pub enum LogSink {
    /// The node's log, through `tracing`, at most
    /// [`super::limits::MAX_LOG_LINES_PER_SECOND`] lines a second.
    Tracing,
    /// Kept for the caller (the `nacre plugin test` command), every line.
    Capture(Mutex<Vec<String>>),
}

/// What the host interface needs to serve one plugin, shared by its stores.
pub struct PluginContext {
    /// The manifest's `name`, which every log line of the plugin carries.
    pub name: String,
    /// The manifest's `[config]`, returned by `host.config` and `host.config-get`.
    pub config: Vec<(String, String)>,
    /// The registry `host.list-instances` and `host.list-services` read
    /// (plugins never write it).
    pub registry: Arc<Registry>,
    /// Where `host.log` lines go.
    pub log: LogSink,
    /// The plugin's allowance of log lines (with [`LogSink::Tracing`]).
    pub log_budget: LogBudget,
}

impl PluginContext {
    /// The context of the plugin `manifest` describes, with a fresh log budget.
    pub fn new(manifest: &Manifest, registry: Arc<Registry>, log: LogSink) -> PluginContext {
        PluginContext {
            name: manifest.name.clone(),
            config: manifest.config.clone(),
            registry,
            log,
            log_budget: LogBudget::default(),
        }
    }
}

/// The data of one plugin store.
pub struct StoreState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    pub(super) ctx: Arc<PluginContext>,
    /// Used only when `wasi:http` is linked (the manifest grants `http`).
    http: WasiHttpCtx,
    pub(super) outbound: OutboundHttp,
}

/// A fresh store for one instance of the plugin of `manifest`: its memory
/// cap, epoch deadlines that trap, and [`HOST_DATA_PER_CALL`] of hostcall
/// fuel until a call sets its own.
pub(crate) fn new_store(
    engine: &Engine,
    manifest: &Manifest,
    ctx: Arc<PluginContext>,
    http_allowed: Arc<[String]>,
) -> Store<StoreState> {
    let state = StoreState {
        // Nothing preopened, no environment, no network; little randomness per call.
        wasi: WasiCtx::builder().max_random_size(MAX_RANDOM_BYTES).build(),
        table: ResourceTable::new(),
        memory: MemoryCap {
            bytes: manifest.limits.memory_bytes,
        },
        ctx,
        http: WasiHttpCtx::new(),
        outbound: OutboundHttp::new(&manifest.name, http_allowed),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store.epoch_deadline_trap();
    store.set_hostcall_fuel(HOST_DATA_PER_CALL);
    store
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
