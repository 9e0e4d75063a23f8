//! A plugin's manifest: a small TOML file next to its `.wasm` component.
//!
//! ```toml
//! name = "zone-affinity"
//! world = "push-filter"            # listener | health-policy | push-filter
//! wasm = "zone_affinity.wasm"      # relative to this file
//!
//! [applies_to]                     # globs; each defaults to ["*"]
//! namespaces = ["public"]
//! groups = ["*"]
//! services = ["orders*"]
//!
//! [config]                         # handed to the plugin as-is
//! zone_key = "zone"
//!
//! [limits]                         # override the node's defaults
//! timeout_ms = 20
//! memory_mb = 32
//!
//! [capabilities]
//! http = ["127.0.0.1:9000"]        # outbound HTTP allow-list (host:port)
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::registry::model::ServiceKey;

/// The plugin worlds of `nacre:plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    Listener,
    HealthPolicy,
    PushFilter,
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Listener => "listener",
            World::HealthPolicy => "health-policy",
            World::PushFilter => "push-filter",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    world: World,
    wasm: PathBuf,
    #[serde(default)]
    applies_to: AppliesTo,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    capabilities: Capabilities,
}

/// Which services a plugin applies to, as globs (`*` any run, `?` one character).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppliesTo {
    pub namespaces: Vec<String>,
    pub groups: Vec<String>,
    pub services: Vec<String>,
}

impl Default for AppliesTo {
    fn default() -> Self {
        let all = vec!["*".to_string()];
        AppliesTo {
            namespaces: all.clone(),
            groups: all.clone(),
            services: all,
        }
    }
}

impl AppliesTo {
    pub fn matches(&self, service: &ServiceKey) -> bool {
        let any = |globs: &[String], value: &str| globs.iter().any(|g| glob_match(g, value));
        any(&self.namespaces, &service.namespace)
            && any(&self.groups, &service.group)
            && any(&self.services, &service.name)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
}

/// Per-call limits of a plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Limits {
    pub timeout_ms: u64,
    pub memory_bytes: usize,
}

/// What a plugin may reach outside itself.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// `host:port` pairs the plugin may send HTTP requests to.
    #[serde(default)]
    pub http: Vec<String>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub world: World,
    /// Absolute or manifest-relative path resolved against the manifest's folder.
    pub wasm: PathBuf,
    pub applies_to: AppliesTo,
    pub config: Vec<(String, String)>,
    pub limits: Limits,
    pub capabilities: Capabilities,
    /// The manifest file itself.
    pub path: PathBuf,
}

/// Largest memory cap a manifest may ask for.
pub const MAX_MEMORY_MB: u64 = 4096;
/// Longest deadline a manifest may ask for.
pub const MAX_TIMEOUT_MS: u64 = 60_000;

impl Manifest {
    pub fn load(path: &Path, defaults: Limits) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading manifest {}", path.display()))?;
        Self::parse(&text, path, defaults)
    }

    pub fn parse(text: &str, path: &Path, defaults: Limits) -> anyhow::Result<Manifest> {
        let raw: RawManifest =
            toml::from_str(text).with_context(|| format!("parsing manifest {}", path.display()))?;
        let name = raw.name.trim().to_string();
        if name.is_empty()
            || name.len() > 128
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "manifest {}: name must be 1-128 characters of [A-Za-z0-9-_.]",
                path.display()
            );
        }
        let timeout_ms = raw.limits.timeout_ms.unwrap_or(defaults.timeout_ms);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            bail!(
                "manifest {}: limits.timeout_ms must be 1-{MAX_TIMEOUT_MS}",
                path.display()
            );
        }
        let memory_bytes = match raw.limits.memory_mb {
            Some(0) => bail!(
                "manifest {}: limits.memory_mb must be positive",
                path.display()
            ),
            Some(mb) if mb > MAX_MEMORY_MB => bail!(
                "manifest {}: limits.memory_mb must be at most {MAX_MEMORY_MB}",
                path.display()
            ),
            Some(mb) => (mb as usize) << 20,
            None => defaults.memory_bytes,
        };
        for host in &raw.capabilities.http {
            let valid = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                bail!(
                    "manifest {}: capabilities.http entries must be host:port, got {host:?}",
                    path.display()
                );
            }
        }
        let config = raw
            .config
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        let folder = path.parent().unwrap_or_else(|| Path::new("."));
        Ok(Manifest {
            name,
            world: raw.world,
            wasm: folder.join(raw.wasm),
            applies_to: raw.applies_to,
            config,
            limits: Limits {
                timeout_ms,
                memory_bytes,
            },
            capabilities: raw.capabilities,
            path: path.to_path_buf(),
        })
    }
}

/// Matches `text` against a glob of literal characters, `*` and `?`.
pub fn glob_match(glob: &str, text: &str) -> bool {
    let (g, t): (Vec<char>, Vec<char>) = (glob.chars().collect(), text.chars().collect());
    let (mut gi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == t[ti]) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            backtrack = Some((gi, ti));
            gi += 1;
        } else if let Some((star, matched)) = backtrack {
            gi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Limits = Limits {
        timeout_ms: 100,
        memory_bytes: 64 << 20,
    };

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("orders*", "orders-v2"));
        assert!(glob_match("*-v?", "orders-v2"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("orders", "orders-v2"));
        assert!(!glob_match("a*b", "ac"));
    }

    #[test]
    fn parses_and_resolves_paths_and_defaults() -> anyhow::Result<()> {
        let m = Manifest::parse(
            "name = \"zone\"\nworld = \"push-filter\"\nwasm = \"z.wasm\"\n[applies_to]\nservices = [\"orders*\"]\n[config]\nzone_key = \"zone\"\nn = 3\n[limits]\ntimeout_ms = 20\n",
            Path::new("/plugins/zone.toml"),
            DEFAULTS,
        )?;
        assert_eq!(m.world, World::PushFilter);
        assert_eq!(m.wasm, PathBuf::from("/plugins/z.wasm"));
        assert_eq!(
            m.limits,
            Limits {
                timeout_ms: 20,
                memory_bytes: 64 << 20
            }
        );
        assert_eq!(
            m.config,
            vec![("n".into(), "3".into()), ("zone_key".into(), "zone".into())]
        );
        assert!(
            m.applies_to
                .matches(&ServiceKey::new("dev", "g", "orders-1"))
        );
        assert!(!m.applies_to.matches(&ServiceKey::new("dev", "g", "users")));
        Ok(())
    }

    #[test]
    fn refuses_bad_manifests() {
        let bad = [
            "name = \"x\"\nworld = \"sorter\"\nwasm = \"a.wasm\"\n",
            "name = \"\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n",
            "name = \"x y\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n",
            "name = \"x\"\nworld = \"listener\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\nsurprise = 1\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n[limits]\ntimeout_ms = 0\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n[limits]\nmemory_mb = 100000\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n[capabilities]\nhttp = [\"example.com\"]\n",
        ];
        for text in bad {
            assert!(
                Manifest::parse(text, Path::new("/p/x.toml"), DEFAULTS).is_err(),
                "accepted: {text}"
            );
        }
    }
}
