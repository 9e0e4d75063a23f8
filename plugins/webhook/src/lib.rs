//! `webhook`: a listener that POSTs every change event, as JSON, to a URL.
//!
//! ```toml
//! world = "listener"
//! [config]
//! url = "http://127.0.0.1:9000/nacre-events"
//! [capabilities]
//! http = ["127.0.0.1:9000"]    # the node refuses any other destination
//! ```
//!
//! The body is one event:
//!
//! ```json
//! {"service": {"namespace": "public", "group": "DEFAULT_GROUP", "name": "orders"},
//!  "kinds": ["instances"], "revision": 42,
//!  "instances": [{"ip": "10.0.0.1", "port": 8080, "clusterName": "DEFAULT", "weight": 1.0,
//!                 "healthy": true, "enabled": true, "ephemeral": true, "metadata": {"zone": "a"}}]}
//! ```
//!
//! A response other than 2xx, or no response within the call's deadline, is
//! an error: the node logs and counts it (and quarantines the plugin after
//! repeated failures). Events are not retried.

use nacre_plugin_sdk::{ChangeEvent, ChangeKinds, Instance, Listener, config, http};
use serde_json::{Map, Value, json};

/// The JSON body for one event.
pub fn event_json(event: &ChangeEvent) -> Value {
    let mut kinds = Vec::new();
    for (flag, name) in [
        (ChangeKinds::INSTANCES, "instances"),
        (ChangeKinds::SERVICE, "service"),
        (ChangeKinds::REMOVED, "removed"),
    ] {
        if event.kinds.contains(flag) {
            kinds.push(name);
        }
    }
    json!({
        "service": {
            "namespace": event.service.namespace,
            "group": event.service.group,
            "name": event.service.name,
        },
        "kinds": kinds,
        "revision": event.revision,
        "instances": event.instances.iter().map(instance_json).collect::<Vec<_>>(),
    })
}

fn instance_json(instance: &Instance) -> Value {
    let metadata: Map<String, Value> = instance
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "ip": instance.ip,
        "port": instance.port,
        "clusterName": instance.cluster,
        "weight": instance.weight,
        "healthy": instance.healthy,
        "enabled": instance.enabled,
        "ephemeral": instance.ephemeral,
        "metadata": metadata,
    })
}

pub struct Webhook;

impl Listener for Webhook {
    fn on_change(event: ChangeEvent) -> Result<(), String> {
        let url = config::get("url").ok_or("config url is not set")?;
        let body = event_json(&event).to_string();
        let status = http::post(&url, "application/json", body.as_bytes())
            .map_err(|e| format!("POST {url}: {e}"))?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("POST {url}: status {status}"))
        }
    }
}

nacre_plugin_sdk::export_listener!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_plugin_sdk::ServiceKey;

    #[test]
    fn an_event_becomes_the_documented_json() {
        let event = ChangeEvent {
            service: ServiceKey {
                namespace: "public".into(),
                group: "DEFAULT_GROUP".into(),
                name: "orders".into(),
            },
            kinds: ChangeKinds::INSTANCES | ChangeKinds::SERVICE,
            revision: 42,
            instances: vec![Instance {
                ip: "10.0.0.1".into(),
                port: 8080,
                cluster: "DEFAULT".into(),
                weight: 1.0,
                healthy: true,
                enabled: true,
                ephemeral: true,
                marked: false,
                metadata: vec![("zone".into(), "a".into())],
                last_beat_millis: 0,
            }],
        };
        assert_eq!(
            event_json(&event),
            json!({
                "service": {"namespace": "public", "group": "DEFAULT_GROUP", "name": "orders"},
                "kinds": ["instances", "service"],
                "revision": 42,
                "instances": [{"ip": "10.0.0.1", "port": 8080, "clusterName": "DEFAULT", "weight": 1.0,
                               "healthy": true, "enabled": true, "ephemeral": true, "metadata": {"zone": "a"}}],
            })
        );
    }
}
