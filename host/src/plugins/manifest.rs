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
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::error::{LoadError, redact_quotes};
use super::scope::{AppliesTo, RawAppliesTo};

/// The plugin worlds of `nacre:plugin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Sees every change of the services it applies to; cannot alter anything.
    Listener,
    /// Judges the health of ephemeral, unmarked instances on each beat and
    /// each pass of the beat checker.
    HealthPolicy,
    /// Decides which instances a subscriber is sent.
    PushFilter,
}

impl World {
    /// Longest deadline a plugin of this world gets. Health policies and push
    /// filters run while a client waits (a beat, a list reply): their
    /// deadline is capped at [`MAX_REQUEST_PATH_TIMEOUT_MS`] whatever the
    /// manifest or the node's default says.
    pub fn max_timeout_ms(self) -> u64 {
        match self {
            World::Listener => MAX_TIMEOUT_MS,
            World::HealthPolicy | World::PushFilter => MAX_REQUEST_PATH_TIMEOUT_MS,
        }
    }
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
    applies_to: RawAppliesTo,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    capabilities: Capabilities,
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
    /// Deadline of one call, in milliseconds (enforced by epoch interruption).
    pub timeout_ms: u64,
    /// Most linear memory one instance may have, in bytes.
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
    /// The plugin's name: unique in the folder, used in logs and the status page.
    pub name: String,
    /// Which world the component implements.
    pub world: World,
    /// The component: the manifest's `wasm`, a relative path without `..`,
    /// joined to the manifest's folder (the folder confines it when read).
    pub wasm: PathBuf,
    /// The services the plugin is called for (`[applies_to]` globs).
    pub applies_to: AppliesTo,
    /// `[config]` as key/value strings (non-string TOML values in TOML notation),
    /// handed to the plugin as-is.
    pub config: Vec<(String, String)>,
    /// The limits in force: the manifest's or the node's, capped per world.
    pub limits: Limits,
    /// What the plugin may reach beyond the host interface (`[capabilities]`).
    pub capabilities: Capabilities,
    /// The manifest file itself.
    pub path: PathBuf,
}

/// Largest memory cap a manifest may ask for.
pub const MAX_MEMORY_MB: u64 = 4096;
/// Longest deadline a manifest may ask for.
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Longest deadline of a plugin that runs while a client waits (see [`World::max_timeout_ms`]).
pub const MAX_REQUEST_PATH_TIMEOUT_MS: u64 = 1_000;
/// Longest plugin name.
pub const MAX_NAME_CHARS: usize = 128;
/// Most `http` allow-list entries.
pub const MAX_HTTP_HOSTS: usize = 64;

impl Manifest {
    /// Parses and validates the manifest at `path` (its text already read).
    /// Errors say which rule was broken and where, without quoting the file.
    pub fn parse(text: &str, path: &Path, defaults: Limits) -> Result<Manifest, LoadError> {
        let refuse = |reason: String| LoadError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let raw: RawManifest =
            toml::from_str(text).map_err(|e| refuse(describe_toml_error(&e, text)))?;
        let name = raw.name.trim().to_string();
        if name.is_empty()
            || name.len() > MAX_NAME_CHARS
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(refuse(format!(
                "name must be 1-{MAX_NAME_CHARS} characters of [A-Za-z0-9-_.]"
            )));
        }
        let wasm = confined_relative(&raw.wasm).ok_or_else(|| {
            refuse(
                "wasm must name a file in the manifest's folder: a relative path without `..`"
                    .into(),
            )
        })?;
        let timeout_ms = raw.limits.timeout_ms.unwrap_or(defaults.timeout_ms);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(refuse(format!(
                "limits.timeout_ms must be 1-{MAX_TIMEOUT_MS}"
            )));
        }
        let memory_bytes = match raw.limits.memory_mb {
            Some(mb) if mb == 0 || mb > MAX_MEMORY_MB => {
                return Err(refuse(format!(
                    "limits.memory_mb must be 1-{MAX_MEMORY_MB}"
                )));
            }
            Some(mb) => (mb as usize) << 20,
            None => defaults.memory_bytes,
        };
        check_http_hosts(&raw.capabilities.http).map_err(refuse)?;
        let applies_to = AppliesTo::compile(&raw.applies_to).map_err(refuse)?;
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
            wasm: folder.join(wasm),
            applies_to,
            config,
            limits: Limits {
                timeout_ms: timeout_ms.min(raw.world.max_timeout_ms()),
                memory_bytes,
            },
            capabilities: raw.capabilities,
            path: path.to_path_buf(),
        })
    }
}

/// `wasm` if it is a plain relative path (no root, no `..`, not empty).
fn confined_relative(wasm: &Path) -> Option<&Path> {
    let plain = wasm
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let named = wasm.components().any(|c| matches!(c, Component::Normal(_)));
    (plain && named).then_some(wasm)
}

fn check_http_hosts(hosts: &[String]) -> Result<(), String> {
    if hosts.len() > MAX_HTTP_HOSTS {
        return Err(format!(
            "capabilities.http may have at most {MAX_HTTP_HOSTS} entries"
        ));
    }
    for (at, host) in hosts.iter().enumerate() {
        let valid = host.len() <= 261
            && host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(format!(
                "capabilities.http entries must be host:port (entry {} is not)",
                at + 1
            ));
        }
    }
    Ok(())
}

/// Words of the manifest format itself: the only quoted words an error keeps.
const VOCABULARY: &[&str] = &[
    "name",
    "world",
    "wasm",
    "applies_to",
    "namespaces",
    "groups",
    "services",
    "config",
    "limits",
    "timeout_ms",
    "memory_mb",
    "capabilities",
    "http",
    "listener",
    "health-policy",
    "push-filter",
];

/// A TOML or schema error as the line it is on and what is wrong, with any
/// quoted text that is not a word of the manifest format replaced by `…`:
/// the manifest may be a file that was never meant to be one (a secret
/// dropped or linked into the folder), and the message ends up in a status
/// anyone can read.
fn describe_toml_error(error: &toml::de::Error, text: &str) -> String {
    let line = error.span().map(|span| {
        text.as_bytes()[..span.start.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    });
    let message = redact_quotes(error.message().trim(), VOCABULARY);
    match line {
        Some(line) => format!("line {line}: {message}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::ServiceKey;

    const DEFAULTS: Limits = Limits {
        timeout_ms: 100,
        memory_bytes: 64 << 20,
    };

    fn parse(text: &str) -> Result<Manifest, LoadError> {
        Manifest::parse(text, Path::new("/plugins/x.toml"), DEFAULTS)
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
    fn request_path_worlds_get_a_capped_deadline() -> anyhow::Result<()> {
        let text = |world: &str| {
            format!(
                "name = \"x\"\nworld = \"{world}\"\nwasm = \"a.wasm\"\n[limits]\ntimeout_ms = 60000\n"
            )
        };
        assert_eq!(parse(&text("listener"))?.limits.timeout_ms, 60_000);
        for world in ["push-filter", "health-policy"] {
            assert_eq!(
                parse(&text(world))?.limits.timeout_ms,
                MAX_REQUEST_PATH_TIMEOUT_MS
            );
        }
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
            "name = \"x\"\nworld = \"listener\"\nwasm = \"../outside/a.wasm\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"sub/../../a.wasm\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"/etc/passwd\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \".\"\n",
        ];
        for text in bad {
            assert!(parse(text).is_err(), "accepted: {text}");
        }
        assert!(parse("name = \"x\"\nworld = \"listener\"\nwasm = \"./sub/a.wasm\"\n").is_ok());
    }

    #[test]
    fn errors_do_not_quote_the_file() {
        let secrets = [
            "root:x:0:0:SECRET:/root:/bin/bash\n",
            "password = \"SECRET\"\n",
            "name = \"x\"\nworld = \"SECRET\"\nwasm = \"a.wasm\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n[limits]\ntimeout_ms = \"SECRET\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"/SECRET\"\n",
            "name = \"x\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n[capabilities]\nhttp = [\"SECRET\"]\n",
            "name = \"SECRET SECRET\"\nworld = \"listener\"\nwasm = \"a.wasm\"\n",
        ];
        for text in secrets {
            let error = parse(text).expect_err(text).to_string();
            assert!(!error.contains("SECRET"), "{error}");
            assert!(error.starts_with("manifest /plugins/x.toml: "), "{error}");
        }
        let error = parse("name = \"x\"\nworld = \"sorter\"\nwasm = \"a.wasm\"\n")
            .expect_err("bad world")
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("`push-filter`"), "known words stay: {error}");
    }
}
