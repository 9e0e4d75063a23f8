//! Runtime switches (`operator/switches`): the knobs Nacos lets an operator
//! change on a running node. They start from the configuration; every value
//! here is the one the node is actually using.

use std::sync::RwLock;

use serde::Serialize;

use crate::config::Config;

/// The switch values, serialised in Nacos's `SwitchDomain` shape.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SwitchValues {
    /// Nacos's fixed name of the switch domain.
    pub name: &'static str,
    /// Milliseconds a UDP subscriber lives without listing again, and the
    /// `cacheMillis` of a list reply to a push subscriber.
    pub default_push_cache_millis: u64,
    /// Milliseconds between beats the node asks clients for (`clientBeatInterval`).
    pub client_beat_interval: u64,
    /// `cacheMillis` of a list reply to a client without push (ms).
    pub default_cache_millis: u64,
    /// Shown for Nacos compatibility; Nacre does not read it.
    pub distro_threshold: f32,
    /// Whether the beat checker and the prober judge instances at all.
    pub health_check_enabled: bool,
    /// Shown for Nacos compatibility; Distro is always on in a cluster.
    pub distro_enabled: bool,
    /// Shown for Nacos compatibility; Nacre does not read it.
    pub enable_standalone: bool,
    /// Whether changes are pushed over UDP.
    pub push_enabled: bool,
    /// Whether beat replies tell clients to send light beats (no instance body).
    pub light_beat_enabled: bool,
    /// Whether a registration without `ephemeral` makes an ephemeral instance.
    pub default_instance_ephemeral: bool,
    /// Refuse new registrations (existing instances keep beating).
    #[serde(rename = "disableAddIP")]
    pub disable_add_ip: bool,
    /// Oldest Java client (`Nacos-Java-Client:vX`) that is pushed to
    /// (`PushService#canEnablePush`).
    pub push_java_version: String,
    /// Oldest Go client that is pushed to.
    pub push_go_version: String,
    /// Oldest DNS-F agent (`Nacos-DNS`) that is pushed to: Nacos measures DNS-F
    /// against this one (the Python client is never pushed to).
    pub push_python_version: String,
    /// Oldest C client that is pushed to.
    pub push_c_version: String,
    /// Oldest C# client that is pushed to.
    pub push_c_sharp_version: String,
    /// Failed probes in a row before a persistent instance turns unhealthy (at least 1).
    pub check_times: u32,
}

/// The node's switches, read on every request that needs one and changed by
/// `PUT operator/switches`.
pub struct Switches {
    values: RwLock<SwitchValues>,
}

/// Why `PUT operator/switches` refused an update (answered 400, nothing changed).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SwitchError {
    /// No switch has this Nacos name.
    #[error("update entry not found: {0}")]
    UnknownEntry(String),
    /// The value does not parse or is out of range for the entry.
    #[error("Param 'value' is illegal for entry {entry}: {reason}")]
    BadValue {
        /// The entry's Nacos name.
        entry: String,
        /// What a valid value looks like.
        reason: String,
    },
}

impl Switches {
    /// The switches as the configuration sets them; the rest take Nacos's defaults.
    pub fn new(config: &Config) -> Self {
        Switches {
            values: RwLock::new(SwitchValues {
                name: "00-00---000-NACOS_SWITCH_DOMAIN-000---00-00",
                default_push_cache_millis: config.naming.push_cache_millis,
                client_beat_interval: config.health.client_beat_interval_ms,
                default_cache_millis: config.naming.default_cache_millis,
                distro_threshold: 0.7,
                health_check_enabled: config.health.enabled,
                distro_enabled: true,
                enable_standalone: true,
                push_enabled: config.push.enabled,
                light_beat_enabled: config.naming.light_beat_enabled,
                default_instance_ephemeral: config.naming.default_instance_ephemeral,
                disable_add_ip: false,
                push_java_version: "0.1.0".into(),
                push_go_version: "0.1.0".into(),
                push_python_version: "0.4.3".into(),
                push_c_version: "1.0.12".into(),
                push_c_sharp_version: "0.9.0".into(),
                check_times: 3,
            }),
        }
    }

    /// A copy of every value (for `GET operator/switches`).
    pub fn get(&self) -> SwitchValues {
        self.values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads one value without cloning the rest.
    pub fn with<R>(&self, read: impl FnOnce(&SwitchValues) -> R) -> R {
        read(&self.values.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets one entry by its Nacos name.
    pub fn update(&self, entry: &str, value: &str) -> Result<(), SwitchError> {
        let mut v = self.values.write().unwrap_or_else(|e| e.into_inner());
        let value = value.trim();
        match entry {
            "defaultPushCacheMillis" => v.default_push_cache_millis = millis(entry, value)?,
            "clientBeatInterval" => v.client_beat_interval = millis(entry, value)?,
            "defaultCacheMillis" => v.default_cache_millis = millis(entry, value)?,
            "distroThreshold" => {
                v.distro_threshold = value
                    .parse()
                    .ok()
                    .filter(|t: &f32| (0.0..=1.0).contains(t))
                    .ok_or_else(|| bad(entry, "expected a number between 0 and 1"))?
            }
            "healthCheckEnabled" => v.health_check_enabled = flag(entry, value)?,
            "distroEnabled" => v.distro_enabled = flag(entry, value)?,
            "pushEnabled" => v.push_enabled = flag(entry, value)?,
            "lightBeatEnabled" => v.light_beat_enabled = flag(entry, value)?,
            "defaultInstanceEphemeral" => v.default_instance_ephemeral = flag(entry, value)?,
            "disableAddIP" => v.disable_add_ip = flag(entry, value)?,
            "pushJavaVersion" => v.push_java_version = version(entry, value)?,
            "pushGoVersion" => v.push_go_version = version(entry, value)?,
            "pushPythonVersion" => v.push_python_version = version(entry, value)?,
            "pushCVersion" => v.push_c_version = version(entry, value)?,
            "pushCSharpVersion" => v.push_c_sharp_version = version(entry, value)?,
            "checkTimes" => {
                v.check_times = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(entry, "expected a positive integer"))?
            }
            _ => return Err(SwitchError::UnknownEntry(entry.to_string())),
        }
        Ok(())
    }
}

fn bad(entry: &str, reason: &str) -> SwitchError {
    SwitchError::BadValue {
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

fn millis(entry: &str, value: &str) -> Result<u64, SwitchError> {
    value
        .parse()
        .ok()
        .filter(|ms| *ms > 0)
        .ok_or_else(|| bad(entry, "expected a positive number of milliseconds"))
}

fn flag(entry: &str, value: &str) -> Result<bool, SwitchError> {
    value
        .parse()
        .map_err(|_| bad(entry, "expected true or false"))
}

fn version(entry: &str, value: &str) -> Result<String, SwitchError> {
    let ok = !value.is_empty()
        && value
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(value.to_string())
    } else {
        Err(bad(entry, "expected a version such as 1.0.12"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_take_effect_and_bad_values_change_nothing() {
        let switches = Switches::new(&Config::default());
        assert_eq!(switches.update("clientBeatInterval", "2000"), Ok(()));
        assert_eq!(switches.get().client_beat_interval, 2000);
        assert!(switches.update("clientBeatInterval", "-1").is_err());
        assert!(switches.update("pushJavaVersion", "1.x").is_err());
        assert_eq!(switches.get().client_beat_interval, 2000);
        assert_eq!(
            switches.update("noSuchEntry", "1"),
            Err(SwitchError::UnknownEntry("noSuchEntry".into()))
        );
    }
}
