//! `NACRE_*` environment variables: each knob's name is derived from its
//! place in the file (top-level `port` is `NACRE_PORT`, `[health]
//! beat_timeout_ms` is `NACRE_HEALTH_BEAT_TIMEOUT_MS`), and its value is
//! parsed like the knob's default.

use anyhow::Context;

use super::Config;

const ENV_PREFIX: &str = "NACRE_";

impl Config {
    /// Every knob with its environment variable name, in file order.
    pub fn env_names() -> Vec<(String, String)> {
        let table = toml::Table::try_from(Config::default()).unwrap_or_default();
        let mut names = Vec::new();
        for (key, value) in &table {
            match value {
                toml::Value::Table(section) => {
                    for sub in section.keys() {
                        let path = format!("{key}.{sub}");
                        names.push((path, env_name(&[key, sub])));
                    }
                }
                _ => names.push((key.clone(), env_name(&[key]))),
            }
        }
        names
    }

    /// The `NACRE_*` variables of `env` that name no knob (a typo, or a
    /// variable meant for something else): they are ignored, and the binary
    /// says so once its log is up.
    pub fn unknown_env_vars(env: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let Ok(defaults) = toml::Table::try_from(Config::default()) else {
            return Vec::new();
        };
        env.into_iter()
            .map(|(name, _)| name)
            .filter(|name| {
                name.starts_with(ENV_PREFIX)
                    && name != "NACRE_CONFIG"
                    && name != "NACRE_TOKEN"
                    && find_knob(&defaults, name).is_none()
            })
            .collect()
    }
}

fn env_name(path: &[&str]) -> String {
    format!("{ENV_PREFIX}{}", path.join("_").to_uppercase())
}

/// Overrides knobs from `NACRE_*` variables, typed like their defaults.
pub(super) fn apply_env(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    let defaults = toml::Table::try_from(Config::default())?;
    for (name, raw) in env {
        if !name.starts_with(ENV_PREFIX) || name == "NACRE_CONFIG" {
            continue;
        }
        let Some((path, default)) = find_knob(&defaults, &name) else {
            continue; // see Config::unknown_env_vars
        };
        let value = parse_like(default, &raw)
            .with_context(|| format!("environment variable {name}={raw:?}"))?;
        match path.as_slice() {
            [key] => {
                table.insert(key.clone(), value);
            }
            [section, key] => {
                if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                    t.insert(key.clone(), value);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn find_knob<'a>(defaults: &'a toml::Table, name: &str) -> Option<(Vec<String>, &'a toml::Value)> {
    for (key, value) in defaults {
        match value {
            toml::Value::Table(section) => {
                for (sub, v) in section {
                    if env_name(&[key, sub]) == name {
                        return Some((vec![key.clone(), sub.clone()], v));
                    }
                }
            }
            v if env_name(&[key]) == name => return Some((vec![key.clone()], v)),
            _ => {}
        }
    }
    None
}

fn parse_like(default: &toml::Value, raw: &str) -> anyhow::Result<toml::Value> {
    let raw = raw.trim();
    Ok(match default {
        toml::Value::Integer(_) => {
            toml::Value::Integer(raw.parse().context("expected an integer")?)
        }
        toml::Value::Float(_) => toml::Value::Float(raw.parse().context("expected a number")?),
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(raw.parse().context("expected true or false")?)
        }
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
}
