//! Keeping the loaded set in line with the plugin folder.
//!
//! A reload costs what changed, not what is there: each manifest and its
//! component are stamped from their metadata (device, inode, size, mtime)
//! without being read, and only a manifest whose stamps moved is read and
//! parsed again. A manifest that failed stays failed, without being read
//! again, until it changes. Plugin names are unique: a manifest naming a
//! plugin that another manifest already loads is refused (the one already
//! running wins; among new ones, the first by file name), and tried again
//! once the name is free.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::error::LoadError;
use super::folder::{Kind, PluginFolder};
use super::runtime::LogSink;
use super::set::{Loaded, PluginSet, Plugins, Stamp};
use crate::shutdown::Shutdown;

impl Plugins {
    /// Brings the loaded set in line with the plugin folder: new and changed
    /// manifests are (re)loaded, removed ones dropped. A plugin whose new
    /// version fails to load keeps running in its old version, with the
    /// error reported. Returns whether anything changed.
    pub(crate) fn reload(&self) -> bool {
        let Some(dir) = &self.dir else { return false };
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.current();
        let listed = PluginFolder::open(dir).and_then(|f| f.manifests().map(|m| (f, m)));
        let (folder, manifests) = match listed {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the plugin folder");
                return false;
            }
        };
        let mut changed = manifests.len() != current.by_manifest.len();
        let mut next = BTreeMap::new();
        // Names taken by plugins that keep running as they are.
        let mut names: HashMap<String, PathBuf> = HashMap::new();
        let mut pending = Vec::new();
        for path in manifests {
            let stamp = stamp(&folder, &path, current.by_manifest.get(&path));
            match current.by_manifest.get(&path) {
                Some(old) if old.stamp == stamp && !refused_for_its_name(old) => {
                    if let Some(plugin) = &old.plugin {
                        names.insert(plugin.name().to_string(), path.clone());
                    }
                    next.insert(path, old.clone());
                }
                _ => pending.push((path, stamp)),
            }
        }
        for (path, stamp) in pending {
            let old = current.by_manifest.get(&path);
            // Unchanged and refused for a name still taken: nothing to do yet.
            if let Some(old) = old.filter(|o| {
                o.stamp == stamp
                    && refused_for_its_name(o)
                    && o.name.as_ref().is_some_and(|n| names.contains_key(n))
            }) {
                next.insert(path, old.clone());
                continue;
            }
            changed = true;
            let loaded = self.load_from(&folder, &path, old, &mut names);
            next.insert(path, loaded);
        }
        // Prune on the first reload too: the folder may have lost plugins while the node was down.
        let first = !self.cache_pruned.swap(true, Ordering::Relaxed);
        if changed || first {
            let keep = next
                .values()
                .filter_map(|l| l.plugin.as_ref().and_then(|p| p.cache_file.clone()))
                .collect();
            self.replace(PluginSet::from_loaded(next));
            self.engine.prune_cache(&keep);
        }
        changed
    }

    /// Loads the manifest at `path` afresh; `old` is what it loaded before.
    fn load_from(
        &self,
        folder: &PluginFolder,
        path: &Path,
        old: Option<&Loaded>,
        names: &mut HashMap<String, PathBuf>,
    ) -> Loaded {
        let previous = old.and_then(|o| o.plugin.clone());
        let mut loaded = Loaded {
            stamp: Stamp {
                manifest: None,
                component: None,
            },
            name: None,
            wasm: None,
            plugin: previous.clone(),
            error: None,
        };
        let loading = Instant::now();
        let outcome = self
            .read_manifest(folder, path)
            .and_then(|(manifest, stamp)| {
                loaded.stamp.manifest = Some(stamp);
                loaded.name = Some(manifest.name.clone());
                loaded.wasm = Some(manifest.wasm.clone());
                loaded.stamp.component = folder.stamp(&manifest.wasm, Kind::Component).ok();
                if let Some(other) = names.get(&manifest.name).filter(|o| *o != path) {
                    return Err(LoadError::DuplicateName {
                        name: manifest.name.clone(),
                        other: other.clone(),
                    });
                }
                names.insert(manifest.name.clone(), path.to_path_buf());
                self.load_component(folder, manifest, LogSink::Tracing)
            });
        match outcome {
            Ok((plugin, component)) => {
                tracing::info!(plugin = plugin.name(), world = %plugin.manifest.world, artifact = ?plugin.artifact, took = ?loading.elapsed(), manifest = %path.display(), "plugin loaded");
                loaded.stamp.component = Some(component);
                loaded.plugin = Some(Arc::new(plugin));
            }
            Err(error) => {
                tracing::warn!(manifest = %path.display(), %error, "plugin not loaded");
                if loaded.stamp.manifest.is_none() {
                    // Unreadable: remember the stamp seen, so it is not read again until it changes.
                    loaded.stamp = stamp(folder, path, None);
                }
                if let Some(previous) = &previous {
                    names
                        .entry(previous.name().to_string())
                        .or_insert_with(|| path.to_path_buf());
                }
                loaded.error = Some(Arc::new(error));
            }
        }
        loaded
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
}

/// Stamps of the manifest at `path` and of the component `old` found in it.
fn stamp(folder: &PluginFolder, path: &Path, old: Option<&Loaded>) -> Stamp {
    Stamp {
        manifest: folder.stamp(path, Kind::Manifest).ok(),
        component: old
            .and_then(|o| o.wasm.as_ref())
            .and_then(|wasm| folder.stamp(wasm, Kind::Component).ok()),
    }
}

fn refused_for_its_name(loaded: &Loaded) -> bool {
    matches!(
        loaded.error.as_deref(),
        Some(LoadError::DuplicateName { .. })
    )
}
