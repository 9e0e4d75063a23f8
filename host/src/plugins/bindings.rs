//! The one place that runs `bindgen!`: host bindings of the three worlds of
//! `nacre:plugin@0.1.0`, and conversions between their types and the
//! registry's. The shared `types` and `host` interfaces are generated once
//! (with the listener world) and reused by the other two.

use crate::registry::model::{Instance, ServiceKey};

/// Host bindings of the `listener` world (and of the shared `types` and `host` interfaces).
pub mod listener {
    wasmtime::component::bindgen!({
        world: "listener",
        path: "../wit/nacre-plugin-0.1.0",
    });
}

/// Host bindings of the `health-policy` world.
pub mod health_policy {
    wasmtime::component::bindgen!({
        world: "health-policy",
        path: "../wit/nacre-plugin-0.1.0",
        with: {
            "nacre:plugin/types": super::listener::nacre::plugin::types,
            "nacre:plugin/host": super::listener::nacre::plugin::host,
        },
    });
}

/// Host bindings of the `push-filter` world.
pub mod push_filter {
    wasmtime::component::bindgen!({
        world: "push-filter",
        path: "../wit/nacre-plugin-0.1.0",
        with: {
            "nacre:plugin/types": super::listener::nacre::plugin::types,
            "nacre:plugin/host": super::listener::nacre::plugin::host,
        },
    });
}

pub use listener::nacre::plugin::host as wit_host;
pub use listener::nacre::plugin::types as wit;

/// A service key as the WIT `service-key` record.
pub fn service_to_wit(key: &ServiceKey) -> wit::ServiceKey {
    wit::ServiceKey {
        namespace: key.namespace.clone(),
        group: key.group.clone(),
        name: key.name.clone(),
    }
}

/// A WIT `service-key` as the registry's key (names taken as given).
pub fn service_from_wit(key: wit::ServiceKey) -> ServiceKey {
    ServiceKey::new(key.namespace, key.group, key.name)
}

/// An instance as the WIT `instance` record (`last-beat-millis` is wall-clock ms).
pub fn instance_to_wit(instance: &Instance) -> wit::Instance {
    wit::Instance {
        ip: instance.id.ip.clone(),
        port: instance.id.port,
        cluster: instance.id.cluster.clone(),
        weight: instance.weight,
        healthy: instance.healthy,
        enabled: instance.enabled,
        ephemeral: instance.ephemeral,
        marked: instance.marked,
        metadata: instance
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        last_beat_millis: instance.last_beat,
    }
}
