//! `nacre plugin test`: one call of one plugin against a sample input, with no
//! node running — a plugin author's test loop. The input is JSON:
//!
//! - listener: `{"service": {...}, "instances": [...], "revision": 1}`
//! - health-policy: `{"service": {...}, "instance": {...}, "onBeat": true,
//!   "beatMetadata": {"load": "0.9"}, "beatTimeoutMillis": 15000, "deleteTimeoutMillis": 30000}`
//! - push-filter: `{"subscriber": {"address": "10.0.0.9:5000", "clientAgent": "...",
//!   "clusters": [], "app": ""}, "service": {...}, "instances": [...]}`
//!
//! A service is `{"namespace": "public", "group": "DEFAULT_GROUP", "name": "orders"}`
//! (namespace and group optional); an instance is written as in `instance/list`
//! (`ip`, `port`, `clusterName`, `weight`, `healthy`, `enabled`, `ephemeral`, `metadata`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Plugins;
use super::bindings::{instance_to_wit, service_to_wit, wit};
use super::manifest::{Limits, World};
use super::runtime::{Bound, LogSink};
use crate::clock::now_millis;
use crate::registry::Registry;
use crate::registry::model::{
    DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, Instance, InstanceId, ServiceKey,
};

#[derive(Deserialize)]
struct ServiceJson {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceJson {
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
    fn into_instance(self) -> Instance {
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriberJson {
    #[serde(default)]
    address: String,
    #[serde(default)]
    client_agent: String,
    #[serde(default)]
    clusters: Vec<String>,
    #[serde(default)]
    app: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sample {
    service: ServiceJson,
    #[serde(default)]
    instances: Vec<InstanceJson>,
    instance: Option<InstanceJson>,
    subscriber: Option<SubscriberJson>,
    #[serde(default)]
    revision: u64,
    #[serde(default)]
    on_beat: bool,
    #[serde(default)]
    beat_metadata: BTreeMap<String, String>,
    beat_timeout_millis: Option<u64>,
    delete_timeout_millis: Option<u64>,
}

/// What one test call produced.
pub struct TestOutcome {
    /// The plugin's answer as JSON, or `None` if the call failed.
    pub result: Option<Value>,
    pub logs: Vec<String>,
    pub failure: Option<String>,
    /// With `repeat > 1`: timings of the repeated calls.
    pub timing: Option<Timing>,
}

/// How long a plugin takes, measured by repeating the sample call.
pub struct Timing {
    pub calls: u32,
    /// Mean wall time of one call, including building the call's arguments.
    pub mean_call_ns: u64,
    /// Mean time to instantiate the component afresh (as after a failure).
    pub mean_instantiate_ns: u64,
}

/// Loads the plugin of `manifest` and calls it with the sample in `event`,
/// `repeat` times (at least once); more than once also measures it.
pub fn run(
    manifest: &Path,
    event: &Path,
    defaults: Limits,
    repeat: u32,
) -> anyhow::Result<TestOutcome> {
    let text =
        std::fs::read_to_string(event).with_context(|| format!("reading {}", event.display()))?;
    let sample: Sample =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", event.display()))?;
    let service = ServiceKey::new(
        sample.service.namespace,
        sample.service.group,
        sample.service.name,
    );
    let instances: Vec<Instance> = sample
        .instances
        .into_iter()
        .map(InstanceJson::into_instance)
        .collect();

    // The plugin's registry queries see the sample's instances.
    let registry = Arc::new(Registry::new());
    for instance in &instances {
        registry.apply_put_instance(&service, instance.clone(), now_millis());
    }
    // No cache: an author's test loop rebuilds the component every time.
    let plugins = Plugins::new(Arc::clone(&registry), None, defaults, None)?;
    let plugin = plugins.load_one(manifest, LogSink::Capture(Default::default()))?;

    // The arguments of each world's call, built once.
    let event = wit::ChangeEvent {
        service: service_to_wit(&service),
        kinds: wit::ChangeKinds::INSTANCES,
        revision: sample.revision,
        instances: instances.iter().map(instance_to_wit).collect(),
    };
    let context = sample.instance.map(|instance| wit::BeatContext {
        service: service_to_wit(&service),
        instance: instance_to_wit(&instance.into_instance()),
        on_beat: sample.on_beat,
        beat_metadata: sample.beat_metadata.into_iter().collect(),
        now_millis: now_millis(),
        beat_timeout_millis: sample.beat_timeout_millis.unwrap_or(15_000),
        delete_timeout_millis: sample.delete_timeout_millis.unwrap_or(30_000),
    });
    let subscriber = sample.subscriber.unwrap_or(SubscriberJson {
        address: "127.0.0.1:0".into(),
        client_agent: String::new(),
        clusters: Vec::new(),
        app: String::new(),
    });
    let subscriber = wit::Subscriber {
        address: subscriber.address,
        client_agent: subscriber.client_agent,
        namespace: service.namespace.clone(),
        clusters: subscriber.clusters,
        app: subscriber.app,
    };
    let offered: Vec<wit::Instance> = instances.iter().map(instance_to_wit).collect();
    let wit_service = service_to_wit(&service);

    let call_once = || -> anyhow::Result<Option<Value>> {
        Ok(match plugin.manifest.world {
            World::Listener => plugin
                .call(|store, bound| match bound {
                    Bound::Listener(l) => l.call_on_change(store, &event),
                    _ => Err(wasmtime::Error::msg("not a listener")),
                })
                .map(|r| match r {
                    Ok(()) => json!({"ok": null}),
                    Err(message) => json!({"error": message}),
                }),
            World::HealthPolicy => {
                let Some(context) = context.as_ref() else {
                    bail!("a health-policy sample needs an `instance`");
                };
                plugin
                    .call(|store, bound| match bound {
                        Bound::HealthPolicy(h) => h.call_judge(store, context),
                        _ => Err(wasmtime::Error::msg("not a health policy")),
                    })
                    .map(|verdict| {
                        let verdict = match verdict {
                            wit::HealthVerdict::Healthy => "healthy",
                            wit::HealthVerdict::Unhealthy => "unhealthy",
                            wit::HealthVerdict::Delete => "delete",
                            wit::HealthVerdict::NoOpinion => "no-opinion",
                        };
                        json!({ "verdict": verdict })
                    })
            }
            World::PushFilter => plugin
                .call(|store, bound| match bound {
                    Bound::PushFilter(f) => f.call_filter(store, &subscriber, &wit_service, &offered),
                    _ => Err(wasmtime::Error::msg("not a push filter")),
                })
                .map(|answer| match answer {
                    wit::FilterResult::Skip => json!({"skip": null}),
                    wit::FilterResult::Send(list) => json!({
                        "send": list.iter().map(|i| json!({
                            "ip": i.ip, "port": i.port, "clusterName": i.cluster, "weight": i.weight,
                            "healthy": i.healthy, "metadata": i.metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
                        })).collect::<Vec<_>>()
                    }),
                }),
        })
    };
    let repeat = repeat.max(1);
    // Calls run inside a Tokio runtime, as in the node (on the listener thread
    // or an API worker), so that a plugin that blocks in WASI fails here the
    // way it fails there.
    let like_the_node = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a Tokio runtime")?;
    let started = std::time::Instant::now();
    let result = like_the_node.block_on(async {
        let mut result = None;
        for _ in 0..repeat {
            result = call_once()?;
            if result.is_none() {
                break;
            }
        }
        anyhow::Ok(result)
    })?;
    let mean_call_ns = (started.elapsed().as_nanos() / u128::from(repeat)) as u64;
    let timing = if repeat > 1 && result.is_some() {
        let rounds = repeat.min(1000);
        let mut total = std::time::Duration::ZERO;
        for _ in 0..rounds {
            total += plugin.reinstantiate()?;
        }
        Some(Timing {
            calls: repeat,
            mean_call_ns,
            mean_instantiate_ns: (total.as_nanos() / u128::from(rounds)) as u64,
        })
    } else {
        None
    };
    let logs = match &plugin.context().log {
        LogSink::Capture(lines) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
        LogSink::Tracing => Vec::new(),
    };
    let failure = result.is_none().then(|| {
        plugin
            .last_failure()
            .unwrap_or_else(|| "the plugin did not answer".to_string())
    });
    Ok(TestOutcome {
        result,
        logs,
        failure,
        timing,
    })
}
