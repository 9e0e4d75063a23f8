//! [`Plugins`]: the node's loaded plugins, as one set replaced whole when the
//! plugin folder changes, so that a call in flight keeps the plugin it
//! started with; and loading one plugin from its manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use super::error::LoadError;
use super::folder::{FileStamp, Kind, PluginFolder};
use super::manifest::{Limits, Manifest, World};
use super::runtime::{LogSink, Plugin, PluginContext, PluginEngine};
use crate::registry::Registry;
use crate::registry::model::ServiceKey;

/// The node's plugins.
pub struct Plugins {
    pub(super) engine: PluginEngine,
    pub(super) registry: Arc<Registry>,
    pub(super) dir: Option<PathBuf>,
    pub(super) defaults: Limits,
    set: RwLock<Arc<PluginSet>>,
    /// Serialises reloads.
    pub(super) reloading: Mutex<()>,
    /// Whether unused compiled artifacts have been pruned since the node started.
    pub(super) cache_pruned: AtomicBool,
}

/// The loaded plugins, grouped by world.
#[derive(Default)]
pub(super) struct PluginSet {
    pub by_manifest: BTreeMap<PathBuf, Loaded>,
    pub listeners: Vec<Arc<Plugin>>,
    pub health_policies: Vec<Arc<Plugin>>,
    pub push_filters: Vec<Arc<Plugin>>,
}

/// A manifest in the plugin folder and what became of it.
#[derive(Clone)]
pub(super) struct Loaded {
    /// What the manifest and its component looked like when last read.
    pub stamp: Stamp,
    /// The plugin's name, once the manifest parsed.
    pub name: Option<String>,
    /// The component's path, once the manifest parsed (stamped on each reload).
    pub wasm: Option<PathBuf>,
    /// The running plugin: this version's, or the previous one's if this failed.
    pub plugin: Option<Arc<Plugin>>,
    pub error: Option<Arc<LoadError>>,
}

/// Stamps of a manifest and of its component (`None`: could not be stamped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    pub manifest: Option<FileStamp>,
    pub component: Option<FileStamp>,
}

impl PluginSet {
    fn of_world(&self, world: World) -> &[Arc<Plugin>] {
        match world {
            World::Listener => &self.listeners,
            World::HealthPolicy => &self.health_policies,
            World::PushFilter => &self.push_filters,
        }
    }

    pub(crate) fn from_loaded(by_manifest: BTreeMap<PathBuf, Loaded>) -> PluginSet {
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

impl Plugins {
    /// `dir`: the plugin folder (none: no plugins but those loaded by hand);
    /// `defaults`: limits of manifests that set none; `cache_dir`: where
    /// compiled components are kept between loads (none: always compile).
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

    pub(super) fn current(&self) -> Arc<PluginSet> {
        Arc::clone(&self.set.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The plugins of `world` whose `applies_to` matches `service`, in manifest order.
    pub(super) fn applicable(&self, world: World, service: &ServiceKey) -> Vec<Arc<Plugin>> {
        self.current()
            .of_world(world)
            .iter()
            .filter(|p| p.manifest.applies_to.matches(service))
            .cloned()
            .collect()
    }

    /// Whether some plugin of `world` applies to `service`.
    pub(super) fn applies(&self, world: World, service: &ServiceKey) -> bool {
        self.current()
            .of_world(world)
            .iter()
            .any(|p| p.manifest.applies_to.matches(service))
    }

    pub(super) fn replace(&self, set: PluginSet) {
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    /// Loads one plugin from its manifest, outside any plugin folder (for
    /// `nacre plugin test`); the manifest's own folder confines its files.
    pub(crate) fn load_one(
        &self,
        manifest_path: &Path,
        log: LogSink,
    ) -> Result<Arc<Plugin>, LoadError> {
        let dir = manifest_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let folder = PluginFolder::open(dir)?;
        let path = dir.join(manifest_path.file_name().unwrap_or_default());
        let (manifest, _) = self.read_manifest(&folder, &path)?;
        self.load_component(&folder, manifest, log)
            .map(|(plugin, _)| Arc::new(plugin))
    }

    /// Reads and parses the manifest at `path` (in `folder`), with its stamp.
    pub(super) fn read_manifest(
        &self,
        folder: &PluginFolder,
        path: &Path,
    ) -> Result<(Manifest, FileStamp), LoadError> {
        let (bytes, stamp) = folder.read(path, Kind::Manifest)?;
        let text = String::from_utf8(bytes).map_err(|e| LoadError::Manifest {
            path: path.to_path_buf(),
            reason: format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
        })?;
        Ok((Manifest::parse(&text, path, self.defaults)?, stamp))
    }

    /// Reads the component of `manifest` (in `folder`) and loads it, with the component's stamp.
    pub(super) fn load_component(
        &self,
        folder: &PluginFolder,
        manifest: Manifest,
        log: LogSink,
    ) -> Result<(Plugin, FileStamp), LoadError> {
        let (bytes, stamp) = folder.read(&manifest.wasm, Kind::Component)?;
        let ctx = Arc::new(PluginContext::new(
            &manifest,
            Arc::clone(&self.registry),
            log,
        ));
        Ok((self.engine.load(manifest, &bytes, ctx)?, stamp))
    }
}
