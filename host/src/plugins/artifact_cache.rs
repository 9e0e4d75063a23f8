//! Compiled plugins on disk, so that loading a component the node has compiled
//! before takes milliseconds instead of seconds (a Python or JavaScript
//! component takes 3-4 s to compile, ≈ 15 ms to deserialize).
//!
//! One file per (component, engine configuration):
//! `<cache dir>/<sha256 of the .wasm>-<engine compatibility hash>.cwasm`,
//! holding a magic line, the SHA-256 of the artifact, and the artifact
//! (`Component::serialize`). A file that is missing, truncated, corrupt or
//! written by another engine is ignored: the component is compiled again and
//! the file rewritten. Files are written to a temporary name and renamed, so a
//! reader never sees half a file.

use std::collections::HashSet;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"nacre compiled plugin v1\n";
const DIGEST_LEN: usize = 32;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Artifact {
    /// Compiled from the `.wasm` now.
    Compiled,
    /// Read from the cache.
    Cached,
}

/// The node's cache of compiled components.
pub struct ArtifactCache {
    dir: PathBuf,
    /// Names the engine configuration: artifacts of another one never match.
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` for components compiled by `engine` (files of another
    /// engine configuration never match). Nothing is read or created yet.
    pub fn new(dir: PathBuf, engine: &Engine) -> ArtifactCache {
        let mut hasher = Sha256Hasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..8]);
        ArtifactCache { dir, engine_key }
    }

    /// The file that holds (or will hold) the artifact of `wasm`.
    pub(crate) fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let wasm_key = hex(&Sha256::digest(wasm));
        self.dir
            .join(format!("{wasm_key}-{}.cwasm", self.engine_key))
    }

    /// The component whose artifact belongs in `path` (from [`Self::path_for`]):
    /// from the cache when a sound artifact is there, else compiled (with
    /// `compile`) and written to the cache.
    pub(crate) fn load_or_compile(
        &self,
        engine: &Engine,
        path: &Path,
        compile: impl FnOnce() -> anyhow::Result<Component>,
    ) -> anyhow::Result<(Component, Artifact)> {
        if let Some(component) = self.read(engine, path) {
            return Ok((component, Artifact::Cached));
        }
        let component = compile()?;
        if let Err(e) = self.write(path, &component) {
            tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot cache a compiled plugin");
        }
        Ok((component, Artifact::Compiled))
    }

    /// Deletes the artifacts not in `keep` (those of plugins no longer
    /// loaded, old versions, other engine configurations): the cache holds
    /// what the node runs, not every version it ever compiled.
    pub(crate) fn prune(&self, keep: &HashSet<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let artifact = path.extension().is_some_and(|e| e == "cwasm");
            if artifact && !keep.contains(&path) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::debug!(path = %path.display(), "removed an unused compiled plugin")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove an unused compiled plugin")
                    }
                }
            }
        }
    }

    fn read(&self, engine: &Engine, path: &Path) -> Option<Component> {
        let bytes = std::fs::read(path).ok()?;
        let Some(artifact) = checked_payload(&bytes) else {
            tracing::warn!(path = %path.display(), "ignoring a corrupt compiled-plugin cache file");
            return None;
        };
        // SAFETY: `Component::deserialize` trusts its input to be an artifact
        // that wasmtime produced, since it maps it in as executable code. It
        // checks the header, the wasmtime version and the engine settings, but
        // not that the code is what wasmtime compiled. This input is: the file
        // sits in the node's own cache directory, is named after the SHA-256
        // of the component and the engine's compatibility hash, and carries the
        // SHA-256 of the artifact that this node serialized and wrote there
        // (see `write`); a file that fails that digest is never deserialized.
        // Someone who can write into the node's data directory can already
        // replace the node's binary, so the cache adds no new trust.
        match unsafe { Component::deserialize(engine, artifact) } {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring a compiled-plugin cache file wasmtime refused");
                None
            }
        }
    }

    fn write(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        use anyhow::Context as _;
        let artifact = component
            .serialize()
            .map_err(|e| anyhow::Error::from(e).context("serializing the component"))?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let mut file = Vec::with_capacity(MAGIC.len() + DIGEST_LEN + artifact.len());
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&Sha256::digest(&artifact));
        file.extend_from_slice(&artifact);
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let temporary = path.with_extension(format!(
            "tmp-{}-{}",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&temporary, &file)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, path).with_context(|| {
            let _ = std::fs::remove_file(&temporary);
            format!("renaming {} to {}", temporary.display(), path.display())
        })
    }
}

/// The artifact in a cache file, if the file is whole and its digest matches.
fn checked_payload(file: &[u8]) -> Option<&[u8]> {
    let rest = file.strip_prefix(MAGIC)?;
    if rest.len() < DIGEST_LEN {
        return None;
    }
    let (digest, artifact) = rest.split_at(DIGEST_LEN);
    (Sha256::digest(artifact).as_slice() == digest).then_some(artifact)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `Hash` output into SHA-256, so the engine key is the same in every
/// run of the same build.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_files_with_a_matching_digest_are_read() {
        let artifact = b"compiled code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(&artifact));
        file.extend_from_slice(&artifact);
        assert_eq!(checked_payload(&file), Some(&artifact[..]));

        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(checked_payload(&flipped), None, "corrupt artifact");
        assert_eq!(checked_payload(&file[..file.len() - 1]), None, "truncated");
        assert_eq!(checked_payload(&file[..MAGIC.len() + 3]), None, "no digest");
        assert_eq!(checked_payload(b"\x7fELF foreign"), None, "foreign file");
    }
}
