//! The sample input of `nacre plugin test`: JSON shaped like what a node
//! passes the plugin's world, read strictly. A field the tester does not
//! know, or one that belongs to another world, is refused with its name: a
//! typo (`beatMetaData`) must not silently test something else.
//!
//! - every world: `service` (`{"namespace", "group", "name"}`, namespace and
//!   group optional) and `instances` (written as in `instance/list`: `ip`,
//!   `port`, `clusterName`, `weight`, `healthy`, `enabled`, `ephemeral`,
//!   `metadata`), which the plugin's `list-instances` queries see;
//! - listener: `revision`; the event carries `instances`;
//! - health-policy: `instance` (required), `onBeat`, `beatMetadata`,
//!   `beatTimeoutMillis`, `deleteTimeoutMillis`;
//! - push-filter: `subscriber` (`address`, `clientAgent`, `namespace`,
//!   `clusters`, `app`); the filter is offered `instances`.

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Deserialize;

use crate::clock::now_millis;
use crate::plugins::manifest::World;
use crate::registry::model::{
    DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, Instance, InstanceId, ServiceKey,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ServiceJson {
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(default = "default_group")]
    group: String,
    name: String,
}

fn default_namespace() -> String {
    DEFAULT_NAMESPACE.into()
}
fn default_group() -> String {
    DEFAULT_GROUP.into()
}
fn default_cluster() -> String {
    DEFAULT_CLUSTER.into()
}
fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}

/// An instance as `instance/list` writes it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct InstanceJson {
    ip: String,
    port: u16,
    #[serde(default = "default_cluster")]
    cluster_name: String,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default = "yes")]
    healthy: bool,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "yes")]
    ephemeral: bool,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl InstanceJson {
    pub(super) fn into_instance(self) -> Instance {
        Instance {
            id: InstanceId::new(self.cluster_name, self.ip, self.port),
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral: self.ephemeral,
            marked: false,
            metadata: self.metadata,
            last_beat: now_millis(),
            version: Default::default(),
            lease: Default::default(),
        }
    }
}

/// The client a push filter decides for. In a node (`http/instance.rs`,
/// `push/sender.rs`): `address` is the client's `clientIP` (else the
/// connection's address) and `udpPort` (`0` when it does not take pushes);
/// `clientAgent` its User-Agent; `namespace` always the namespace of the
/// service it listed; `clusters` the `clusters` it asked for (empty: all);
/// `app` the `app` parameter it sent (empty if none).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct SubscriberJson {
    #[serde(default = "default_address")]
    pub address: String,
    #[serde(default)]
    pub client_agent: String,
    /// Must be the service's namespace, as in a node; defaults to it.
    pub namespace: Option<String>,
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub app: String,
}

fn default_address() -> String {
    "127.0.0.1:0".into()
}

impl Default for SubscriberJson {
    fn default() -> Self {
        SubscriberJson {
            address: default_address(),
            client_agent: String::new(),
            namespace: None,
            clusters: Vec::new(),
            app: String::new(),
        }
    }
}

/// A whole sample, every world's fields optional; [`Sample::check_for`]
/// refuses those of another world.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Sample {
    pub service: ServiceJson,
    #[serde(default)]
    pub instances: Vec<InstanceJson>,
    pub revision: Option<u64>,
    pub instance: Option<InstanceJson>,
    pub on_beat: Option<bool>,
    pub beat_metadata: Option<BTreeMap<String, String>>,
    pub beat_timeout_millis: Option<u64>,
    pub delete_timeout_millis: Option<u64>,
    pub subscriber: Option<SubscriberJson>,
}

impl Sample {
    /// The service key of the sample.
    pub(super) fn service_key(&self) -> ServiceKey {
        let s = &self.service;
        ServiceKey::new(s.namespace.clone(), s.group.clone(), s.name.clone())
    }

    /// Refuses the fields of another world, and a health-policy sample
    /// without its `instance`.
    pub(super) fn check_for(&self, world: World) -> anyhow::Result<()> {
        let present = [
            ("revision", self.revision.is_some(), World::Listener),
            ("instance", self.instance.is_some(), World::HealthPolicy),
            ("onBeat", self.on_beat.is_some(), World::HealthPolicy),
            (
                "beatMetadata",
                self.beat_metadata.is_some(),
                World::HealthPolicy,
            ),
            (
                "beatTimeoutMillis",
                self.beat_timeout_millis.is_some(),
                World::HealthPolicy,
            ),
            (
                "deleteTimeoutMillis",
                self.delete_timeout_millis.is_some(),
                World::HealthPolicy,
            ),
            ("subscriber", self.subscriber.is_some(), World::PushFilter),
        ];
        for (field, set, owner) in present {
            if set && owner != world {
                bail!("`{field}` is a field of a {owner} sample, and this plugin is a {world}");
            }
        }
        if world == World::HealthPolicy && self.instance.is_none() {
            bail!("a health-policy sample needs the `instance` to judge");
        }
        if let Some(namespace) = self.subscriber.as_ref().and_then(|s| s.namespace.as_ref())
            && *namespace != self.service.namespace
        {
            bail!(
                "subscriber.namespace {namespace:?} is not the service's namespace {:?}: in a \
                 node a subscriber's namespace is always that of the service it listed",
                self.service.namespace
            );
        }
        Ok(())
    }
}
