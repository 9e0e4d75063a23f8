//! The values plugins see, as generated from the WIT `types` interface (each
//! type is documented there), with a few helpers plugins keep needing.

use std::fmt;

pub use crate::bindings::wit_types::{
    BeatContext, ChangeEvent, ChangeKinds, FilterResult, HealthVerdict, Instance, LogLevel,
    ServiceKey, Subscriber,
};

/// Looks `key` up in a WIT key/value list.
pub fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Instance {
    /// One entry of the instance's metadata.
    pub fn meta(&self, key: &str) -> Option<&str> {
        lookup(&self.metadata, key)
    }

    /// Whether the node would hand this instance to a client asking for healthy ones.
    pub fn is_serving(&self) -> bool {
        self.healthy && self.enabled && self.weight > 0.0
    }
}

impl BeatContext {
    /// One entry of the metadata that came with this beat (none on periodic checks).
    pub fn beat_meta(&self, key: &str) -> Option<&str> {
        lookup(&self.beat_metadata, key)
    }

    /// Milliseconds since the instance's last beat (or registration).
    pub fn silent_millis(&self) -> i64 {
        self.now_millis
            .saturating_sub(self.instance.last_beat_millis)
    }
}

impl Subscriber {
    /// The IP part of [`Subscriber::address`] (`ip:port`, `[v6]:port` or a bare IP).
    pub fn ip(&self) -> &str {
        let address = self.address.as_str();
        if let Some(rest) = address.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        match address.rsplit_once(':') {
            // More than one colon and no brackets: a bare IPv6 address.
            Some((ip, _)) if !ip.contains(':') => ip,
            Some(_) => address,
            None => address,
        }
    }
}

/// `namespace/group@@name`, as the node writes services in its logs.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@@{}", self.namespace, self.group, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(address: &str) -> Subscriber {
        Subscriber {
            address: address.into(),
            client_agent: String::new(),
            namespace: "public".into(),
            clusters: Vec::new(),
            app: String::new(),
        }
    }

    #[test]
    fn subscriber_ip_handles_v4_v6_and_bare_addresses() {
        assert_eq!(subscriber("10.1.2.3:5000").ip(), "10.1.2.3");
        assert_eq!(subscriber("[::1]:5000").ip(), "::1");
        assert_eq!(subscriber("fe80::1").ip(), "fe80::1");
        assert_eq!(subscriber("10.1.2.3").ip(), "10.1.2.3");
    }
}
