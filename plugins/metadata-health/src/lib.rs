//! `metadata-health`: a health policy driven by configuration and by what
//! clients report in their beats.
//!
//! - Per-service beat timeouts: `beat_timeout_ms.<service>` and
//!   `delete_timeout_ms.<service>` (the service name without its group), or
//!   `beat_timeout_ms` / `delete_timeout_ms` for every service the plugin
//!   applies to. For such a service the plugin, not the node's default rule,
//!   decides when silence makes an instance unhealthy or deletes it; within its
//!   timeout an instance keeps the health it has (a beat changes it).
//! - Overload: a beat whose metadata entry `load_key` (default `load`) is above
//!   `max_load` makes the instance unhealthy until a beat reports less.
//!
//! Anything else is left to the node's default rules (no opinion).
//!
//! ```toml
//! [config]
//! max_load = 0.9
//! "beat_timeout_ms.orders" = 3000
//! "delete_timeout_ms.orders" = 10000
//! ```

use std::sync::OnceLock;

use nacre_plugin_sdk::{BeatContext, HealthPolicy, HealthVerdict, config, host};

/// The plugin's configuration, read once per instance of the component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyConfig {
    pub load_key: String,
    /// Above this load a beat makes its instance unhealthy; `None`: never.
    pub max_load: Option<f64>,
    /// Configured timeouts, per service and for all services.
    pub timeouts: Vec<Timeouts>,
}

/// The timeouts configured for one service, or for all (`service: None`), in ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeouts {
    pub service: Option<String>,
    pub unhealthy_after: Option<u64>,
    pub delete_after: Option<u64>,
}

const BEAT_TIMEOUT: &str = "beat_timeout_ms";
const DELETE_TIMEOUT: &str = "delete_timeout_ms";

impl PolicyConfig {
    /// Builds the configuration from the manifest's `[config]` entries.
    pub fn from_entries(entries: &[(String, String)]) -> Result<PolicyConfig, String> {
        let mut config = PolicyConfig {
            load_key: "load".into(),
            ..PolicyConfig::default()
        };
        for (key, value) in entries {
            let (kind, service) = match key.split_once('.') {
                Some((kind, service)) => (kind, Some(service.to_string())),
                None => (key.as_str(), None),
            };
            match (kind, &service) {
                ("load_key", None) => config.load_key = value.clone(),
                ("max_load", None) => {
                    let max: f64 = config::parse_value(key, value)?;
                    if !max.is_finite() {
                        return Err(format!("config {key} must be a finite number"));
                    }
                    config.max_load = Some(max);
                }
                (BEAT_TIMEOUT | DELETE_TIMEOUT, _) => {
                    let millis: u64 = config::parse_value(key, value)?;
                    let slot = config.slot(service);
                    if kind == BEAT_TIMEOUT {
                        slot.unhealthy_after = Some(millis);
                    } else {
                        slot.delete_after = Some(millis);
                    }
                }
                _ => return Err(format!("config {key}: unknown setting")),
            }
        }
        Ok(config)
    }

    fn slot(&mut self, service: Option<String>) -> &mut Timeouts {
        let at = match self.timeouts.iter().position(|t| t.service == service) {
            Some(at) => at,
            None => {
                self.timeouts.push(Timeouts {
                    service,
                    ..Timeouts::default()
                });
                self.timeouts.len() - 1
            }
        };
        &mut self.timeouts[at]
    }

    /// (unhealthy after, deleted after) for `service`, if configured; a
    /// service's own entries win over the plugin-wide ones, and the node's
    /// timeouts fill in what neither sets.
    pub fn timeouts_for(&self, service: &str, node: (u64, u64)) -> Option<(u64, u64)> {
        let own = self
            .timeouts
            .iter()
            .find(|t| t.service.as_deref() == Some(service));
        let all = self.timeouts.iter().find(|t| t.service.is_none());
        if own.is_none() && all.is_none() {
            return None;
        }
        let pick = |f: fn(&Timeouts) -> Option<u64>| own.and_then(f).or_else(|| all.and_then(f));
        Some((
            pick(|t| t.unhealthy_after).unwrap_or(node.0),
            pick(|t| t.delete_after).unwrap_or(node.1),
        ))
    }

    /// The verdict for one beat or periodic check.
    pub fn judge(&self, context: &BeatContext) -> HealthVerdict {
        if context.on_beat {
            if let (Some(max), Some(load)) = (self.max_load, context.beat_meta(&self.load_key)) {
                match load.trim().parse::<f64>() {
                    Ok(load) if load > max => return HealthVerdict::Unhealthy,
                    Ok(_) => {}
                    Err(_) => host::warn(
                        "beat reports a load that is not a number; ignored",
                        &[("load", load), ("instance", &context.instance.ip)],
                    ),
                }
            }
            // A beat that is not overloaded: the default rules make it healthy.
            return HealthVerdict::NoOpinion;
        }
        let node = (context.beat_timeout_millis, context.delete_timeout_millis);
        let Some((unhealthy_after, delete_after)) = self.timeouts_for(&context.service.name, node)
        else {
            return HealthVerdict::NoOpinion;
        };
        let silent = context.silent_millis();
        if silent > delete_after as i64 {
            HealthVerdict::Delete
        } else if silent > unhealthy_after as i64 {
            HealthVerdict::Unhealthy
        } else if context.instance.healthy {
            HealthVerdict::Healthy
        } else {
            // Unhealthy within its timeout (overloaded): only a beat changes that.
            HealthVerdict::Unhealthy
        }
    }
}

fn policy_config() -> &'static Result<PolicyConfig, String> {
    static CONFIG: OnceLock<Result<PolicyConfig, String>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let parsed = PolicyConfig::from_entries(&config::all());
        if let Err(e) = &parsed {
            host::error(
                "bad configuration; leaving health to the default rules",
                &[("error", e)],
            );
        }
        parsed
    })
}

pub struct MetadataHealth;

impl HealthPolicy for MetadataHealth {
    fn judge(context: BeatContext) -> HealthVerdict {
        match policy_config() {
            Ok(config) => config.judge(&context),
            Err(_) => HealthVerdict::NoOpinion,
        }
    }
}

nacre_plugin_sdk::export_health_policy!(MetadataHealth);

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_plugin_sdk::{Instance, ServiceKey};

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn context(service: &str, silent: i64, healthy: bool, beat: Option<&str>) -> BeatContext {
        BeatContext {
            service: ServiceKey {
                namespace: "public".into(),
                group: "DEFAULT_GROUP".into(),
                name: service.into(),
            },
            instance: Instance {
                ip: "10.0.0.1".into(),
                port: 1,
                cluster: "DEFAULT".into(),
                weight: 1.0,
                healthy,
                enabled: true,
                ephemeral: true,
                marked: false,
                metadata: Vec::new(),
                last_beat_millis: 1_000_000 - silent,
            },
            on_beat: beat.is_some(),
            beat_metadata: beat
                .map(|l| vec![("load".into(), l.into())])
                .unwrap_or_default(),
            now_millis: 1_000_000,
            beat_timeout_millis: 15_000,
            delete_timeout_millis: 30_000,
        }
    }

    #[test]
    fn per_service_timeouts_decide_silence() {
        let config = PolicyConfig::from_entries(&entries(&[
            ("beat_timeout_ms.orders", "300"),
            ("delete_timeout_ms.orders", "1000"),
        ]))
        .unwrap();
        assert_eq!(
            config.judge(&context("orders", 100, true, None)),
            HealthVerdict::Healthy
        );
        assert_eq!(
            config.judge(&context("orders", 500, true, None)),
            HealthVerdict::Unhealthy
        );
        assert_eq!(
            config.judge(&context("orders", 1500, false, None)),
            HealthVerdict::Delete
        );
        assert_eq!(
            config.judge(&context("users", 500, true, None)),
            HealthVerdict::NoOpinion
        );
    }

    #[test]
    fn overload_in_a_beat_makes_an_instance_unhealthy() {
        let config = PolicyConfig::from_entries(&entries(&[("max_load", "0.8")])).unwrap();
        assert_eq!(
            config.judge(&context("x", 0, true, Some("0.95"))),
            HealthVerdict::Unhealthy
        );
        assert_eq!(
            config.judge(&context("x", 0, false, Some("0.2"))),
            HealthVerdict::NoOpinion
        );
        assert_eq!(
            config.judge(&context("x", 0, true, None)),
            HealthVerdict::NoOpinion
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            ("max_load", "high"),
            ("beat_timeout_ms", "-1"),
            ("surprise", "1"),
        ] {
            assert!(
                PolicyConfig::from_entries(&entries(&[bad])).is_err(),
                "{bad:?}"
            );
        }
    }
}
