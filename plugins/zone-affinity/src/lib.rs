//! `zone-affinity`: a push filter that sends each subscriber the instances of
//! its own zone, so traffic stays within a zone while the zone can serve it.
//!
//! - An instance's zone is its metadata entry `zone_key` (default `zone`).
//! - A subscriber's zone comes from its address: the WIT `subscriber` carries
//!   no zone of its own, so the manifest maps client address prefixes to zones,
//!   `client_zones = "10.1.=zone-a, 10.2.=zone-b"`; the longest matching prefix
//!   wins. (For `instance/list` the address is the `clientIP` parameter, else
//!   the caller's address.)
//! - When the subscriber's zone is unknown, or no instance of that zone is
//!   serving (healthy, enabled, weight above 0), every instance is sent: a
//!   zone that cannot serve falls back to all of them.
//!
//! ```toml
//! [config]
//! zone_key = "zone"
//! client_zones = "10.1.=zone-a, 10.2.=zone-b"
//! ```

use std::sync::OnceLock;

use nacre_plugin_sdk::{FilterResult, Instance, PushFilter, ServiceKey, Subscriber, config, host};

/// The plugin's configuration, read once per instance of the component.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneConfig {
    /// The instance metadata key that names its zone.
    pub zone_key: String,
    /// (client address prefix, zone), longest prefix first.
    pub client_zones: Vec<(String, String)>,
}

impl ZoneConfig {
    /// Builds the configuration from the manifest's `zone_key` and `client_zones`.
    pub fn from_entries(
        zone_key: Option<String>,
        client_zones: Option<String>,
    ) -> Result<ZoneConfig, String> {
        let zone_key = zone_key.unwrap_or_else(|| "zone".to_string());
        if zone_key.trim().is_empty() {
            return Err("config zone_key must not be empty".into());
        }
        let mut client_zones = match client_zones {
            Some(text) => config::pairs("client_zones", &text)?,
            None => Vec::new(),
        };
        client_zones.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(ZoneConfig {
            zone_key,
            client_zones,
        })
    }

    /// The zone of a client at `ip`, if a prefix maps it.
    pub fn zone_of_client(&self, ip: &str) -> Option<&str> {
        self.client_zones
            .iter()
            .find(|(prefix, _)| ip.starts_with(prefix.as_str()))
            .map(|(_, zone)| zone.as_str())
    }

    /// The instances to send to a client of `zone`: those of the zone when at
    /// least one of them is serving, else all of them.
    pub fn choose(&self, zone: &str, instances: Vec<Instance>) -> Vec<Instance> {
        let in_zone = |i: &Instance| i.meta(&self.zone_key) == Some(zone);
        if !instances.iter().any(|i| in_zone(i) && i.is_serving()) {
            return instances;
        }
        instances.into_iter().filter(in_zone).collect()
    }
}

fn zone_config() -> &'static Result<ZoneConfig, String> {
    static CONFIG: OnceLock<Result<ZoneConfig, String>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let parsed = ZoneConfig::from_entries(config::get("zone_key"), config::get("client_zones"));
        if let Err(e) = &parsed {
            host::error("bad configuration; sending every instance", &[("error", e)]);
        }
        parsed
    })
}

pub struct ZoneAffinity;

impl PushFilter for ZoneAffinity {
    fn filter(
        subscriber: Subscriber,
        _service: ServiceKey,
        instances: Vec<Instance>,
    ) -> FilterResult {
        let Ok(config) = zone_config() else {
            return FilterResult::Send(instances);
        };
        match config.zone_of_client(subscriber.ip()) {
            Some(zone) => FilterResult::Send(config.choose(zone, instances)),
            None => FilterResult::Send(instances),
        }
    }
}

nacre_plugin_sdk::export_push_filter!(ZoneAffinity);

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(ip: &str, zone: &str, healthy: bool) -> Instance {
        Instance {
            ip: ip.into(),
            port: 80,
            cluster: "DEFAULT".into(),
            weight: 1.0,
            healthy,
            enabled: true,
            ephemeral: true,
            marked: false,
            metadata: vec![("zone".into(), zone.into())],
            last_beat_millis: 0,
        }
    }

    fn ips(list: &[Instance]) -> Vec<&str> {
        list.iter().map(|i| i.ip.as_str()).collect()
    }

    #[test]
    fn longest_prefix_names_the_clients_zone() {
        let config = ZoneConfig::from_entries(None, Some("10.=wide, 10.1.=zone-a".into())).unwrap();
        assert_eq!(config.zone_of_client("10.1.0.7"), Some("zone-a"));
        assert_eq!(config.zone_of_client("10.2.0.7"), Some("wide"));
        assert_eq!(config.zone_of_client("192.168.0.1"), None);
    }

    #[test]
    fn prefers_the_zone_and_falls_back_when_it_cannot_serve() {
        let config = ZoneConfig::from_entries(None, None).unwrap();
        let all = vec![
            instance("1", "a", true),
            instance("2", "b", true),
            instance("3", "a", false),
        ];
        assert_eq!(ips(&config.choose("a", all.clone())), vec!["1", "3"]);
        assert_eq!(ips(&config.choose("c", all.clone())), vec!["1", "2", "3"]);
        let sick = vec![instance("3", "a", false), instance("2", "b", true)];
        assert_eq!(ips(&config.choose("a", sick)), vec!["3", "2"]);
    }
}
