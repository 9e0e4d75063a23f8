//! The one wasmtime [`Engine`] of the node's plugins (component model,
//! pooling allocator, epoch interruption), its two [`Linker`]s — the host
//! interface and a WASI that reaches nothing, and the same plus `wasi:http`
//! for plugins whose manifest grants outbound HTTP — and loading: compile (or
//! read from the [`ArtifactCache`]), link, check the world, instantiate once.

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::super::artifact_cache::{Artifact, ArtifactCache};
use super::super::bindings::{health_policy, listener, push_filter};
use super::super::error::{LoadError, MAX_REASON_BYTES, printable};
use super::super::manifest::{MAX_MEMORY_MB, Manifest, World};
use super::limits::{EPOCH_TICK, MAX_TABLE_ELEMENTS};
use super::plugin::{Exports, Plugin};
use super::store::{PluginContext, StoreState};

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
    pub fn new(cache_dir: Option<PathBuf>) -> Result<PluginEngine, LoadError> {
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
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_memory_size((MAX_MEMORY_MB as usize) << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config)
            .map_err(|e| engine_error("creating the WebAssembly engine", &e))?;

        let linker = base_linker(&engine)?;
        let mut http_linker = base_linker(&engine)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut http_linker)
            .map_err(|e| engine_error("linking wasi:http", &e))?;
        start_epoch_ticker(&engine)?;
        let cache = cache_dir.map(|dir| Arc::new(ArtifactCache::new(dir, &engine)));
        Ok(PluginEngine {
            engine,
            linker: Arc::new(linker),
            http_linker: Arc::new(http_linker),
            cache,
        })
    }

    /// Deletes cached artifacts other than those in `keep`.
    pub(crate) fn prune_cache(&self, keep: &std::collections::HashSet<PathBuf>) {
        if let Some(cache) = &self.cache {
            cache.prune(keep);
        }
    }

    /// Compiles and links a plugin, checks it exports its manifest's world,
    /// and instantiates it once, so that a component that cannot start is
    /// refused at load.
    pub fn load(
        &self,
        manifest: Manifest,
        bytes: &[u8],
        ctx: Arc<PluginContext>,
    ) -> Result<Plugin, LoadError> {
        // wasmtime's own message for a file that is not WebAssembly quotes its first bytes.
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm {
                path: manifest.wasm.clone(),
            });
        }
        let (component, artifact, cache_file) = self.compile(&manifest, bytes)?;
        // Only a plugin granted outbound HTTP gets wasi:http linked; any other
        // plugin importing it is refused here (see `import_error`).
        let linker = if manifest.capabilities.http.is_empty() {
            &self.linker
        } else {
            &self.http_linker
        };
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| import_error(&manifest, &e))?;
        let missing = |e: wasmtime::Error| LoadError::MissingExport {
            name: manifest.name.clone(),
            world: manifest.world,
            reason: reason(&e),
        };
        let exports = match manifest.world {
            World::Listener => Exports::Listener(listener::ListenerPre::new(pre).map_err(missing)?),
            World::HealthPolicy => {
                Exports::HealthPolicy(health_policy::HealthPolicyPre::new(pre).map_err(missing)?)
            }
            World::PushFilter => {
                Exports::PushFilter(push_filter::PushFilterPre::new(pre).map_err(missing)?)
            }
        };
        let plugin = Plugin::new(
            self.engine.clone(),
            manifest,
            exports,
            artifact,
            cache_file,
            ctx,
        );
        plugin
            .instantiate_now()
            .map_err(|error| LoadError::Instantiate {
                name: plugin.manifest.name.clone(),
                error,
            })?;
        Ok(plugin)
    }

    fn compile(
        &self,
        manifest: &Manifest,
        bytes: &[u8],
    ) -> Result<(Component, Artifact, Option<PathBuf>), LoadError> {
        let compile = || {
            Component::new(&self.engine, bytes).map_err(|e| {
                anyhow::Error::from(LoadError::InvalidComponent {
                    path: manifest.wasm.clone(),
                    reason: reason(&e),
                })
            })
        };
        let cache_file = self.cache.as_ref().map(|cache| cache.path_for(bytes));
        let compiled = match (&self.cache, &cache_file) {
            (Some(cache), Some(path)) => cache.load_or_compile(&self.engine, path, compile),
            _ => compile().map(|c| (c, Artifact::Compiled)),
        };
        let (component, artifact) = compiled.map_err(|e| match e.downcast::<LoadError>() {
            Ok(load) => load,
            Err(other) => LoadError::InvalidComponent {
                path: manifest.wasm.clone(),
                reason: printable(&format!("{other:#}"), MAX_REASON_BYTES),
            },
        })?;
        Ok((component, artifact, cache_file))
    }
}

/// A linker with the host interface and a WASI that reaches nothing.
fn base_linker(engine: &Engine) -> Result<Linker<StoreState>, LoadError> {
    let mut linker = Linker::<StoreState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| engine_error("linking WASI", &e))?;
    // The three worlds import the same interfaces: linking one links them all.
    listener::Listener::add_to_linker::<StoreState, wasmtime::component::HasSelf<StoreState>>(
        &mut linker,
        |s| s,
    )
    .map_err(|e| engine_error("linking the host interface", &e))?;
    Ok(linker)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives.
fn start_epoch_ticker(engine: &Engine) -> Result<(), LoadError> {
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
        .map(drop)
        .map_err(|e| LoadError::Engine(format!("starting the epoch ticker: {e}")))
}

/// A wasmtime error's message, bounded for the status.
fn reason(error: &wasmtime::Error) -> String {
    printable(&format!("{error:#}"), MAX_REASON_BYTES)
}

fn engine_error(what: &str, error: &wasmtime::Error) -> LoadError {
    LoadError::Engine(format!("{what}: {}", reason(error)))
}

fn import_error(manifest: &Manifest, error: &wasmtime::Error) -> LoadError {
    let reason = reason(error);
    if reason.contains("wasi:http") && manifest.capabilities.http.is_empty() {
        LoadError::UngrantedHttp {
            name: manifest.name.clone(),
            reason,
        }
    } else {
        LoadError::UnknownImport {
            name: manifest.name.clone(),
            reason,
        }
    }
}
