//! `nacre plugin test`: calls of one plugin against a sample input, with no
//! node running — a plugin author's test loop. The sample's shape per world
//! is in `sample` (and docs/PLUGINS.md); unknown fields are refused.
//!
//! The plugin is loaded as a node loads it (same limits, same confined
//! folder, same compiled-component cache when one is given), and called on
//! a Tokio runtime thread as a node calls it, so that what fails here fails
//! there.

mod sample;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::Plugins;
use super::artifact_cache::Artifact;
use super::bindings::{instance_to_wit, service_to_wit, wit};
use super::manifest::{Limits, World};
use super::runtime::{Bound, LogSink, Plugin};
use crate::clock::now_millis;
use crate::registry::Registry;
use crate::registry::model::Instance;
use sample::Sample;

/// Compiled components the tester's cache keeps besides the one it just
/// used: an author's recent builds of a few plugins, not every build ever.
const CACHE_KEEPS: usize = 16;

/// One `nacre plugin test` run.
pub struct PluginTest<'a> {
    /// The plugin's manifest; its folder confines the component, as a node's plugin folder does.
    pub manifest: &'a Path,
    /// The sample input (JSON).
    pub event: &'a Path,
    /// Limits of a manifest that sets none (the node's `[plugins]` defaults).
    pub limits: Limits,
    /// Calls to make (at least one); more than one also measures the plugin.
    pub repeat: u32,
    /// Where compiled components are kept between runs; `None` compiles every time.
    pub cache_dir: Option<&'a Path>,
}

/// What a test run produced.
pub struct TestOutcome {
    /// The plugin's answer as JSON, or `None` if the call failed.
    pub result: Option<Value>,
    /// The plugin's log lines, `LEVEL message key=value ...`.
    pub logs: Vec<String>,
    /// Why the call failed, if it did (the same text the status page shows).
    pub failure: Option<String>,
    /// With `repeat > 1`: timings of the repeated calls.
    pub timing: Option<Timing>,
    /// Where the compiled component came from: `compiled` or `cached`.
    pub artifact: &'static str,
}

/// How long a plugin takes, measured by repeating the sample call.
pub struct Timing {
    /// Calls made.
    pub calls: u32,
    /// Mean wall time of one call, including building the call's arguments.
    pub mean_call_ns: u64,
    /// Mean time to instantiate the component afresh (as after a failure).
    pub mean_instantiate_ns: u64,
}

impl PluginTest<'_> {
    /// Loads the plugin, calls it with the sample `repeat` times and reports.
    pub fn run(&self) -> anyhow::Result<TestOutcome> {
        let text = std::fs::read_to_string(self.event)
            .with_context(|| format!("reading {}", self.event.display()))?;
        let mut sample: Sample = serde_json::from_str(&text)
            .with_context(|| format!("reading the sample {}", self.event.display()))?;
        let service = sample.service_key();
        let instances: Vec<Instance> = std::mem::take(&mut sample.instances)
            .into_iter()
            .map(sample::InstanceJson::into_instance)
            .collect();
        // The plugin's registry queries see the sample's instances.
        let registry = Arc::new(Registry::new());
        for instance in &instances {
            registry.apply_put_instance(&service, instance.clone(), now_millis());
        }
        let plugins = Plugins::new(
            registry,
            None,
            self.limits,
            self.cache_dir.map(Path::to_path_buf),
        )?;
        let plugin = plugins.load_one(self.manifest, LogSink::Capture(Default::default()))?;
        if let Some(file) = &plugin.cache_file {
            prune_cache(&plugins, file);
        }
        sample
            .check_for(plugin.manifest.world)
            .with_context(|| format!("the sample {}", self.event.display()))?;
        let call = Call::new(sample, &instances);
        let repeat = self.repeat.max(1);
        let (result, mean_call_ns) = call_repeatedly(&plugin, &call, repeat)?;
        let timing = match (repeat > 1, &result) {
            (true, Some(_)) => Some(time_instantiation(&plugin, repeat, mean_call_ns)?),
            _ => None,
        };
        Ok(TestOutcome {
            failure: result.is_none().then(|| {
                plugin
                    .last_failure()
                    .unwrap_or_else(|| "the plugin did not answer".to_string())
            }),
            result,
            logs: captured_logs(&plugin),
            timing,
            artifact: match (self.cache_dir, plugin.artifact) {
                (None, _) => "compiled (no cache)",
                (Some(_), Artifact::Compiled) => "compiled (now cached)",
                (Some(_), Artifact::Cached) => "cached",
            },
        })
    }
}

/// The arguments of the plugin's call, built once from the sample.
struct Call {
    event: wit::ChangeEvent,
    context: Option<wit::BeatContext>,
    subscriber: wit::Subscriber,
    service: wit::ServiceKey,
    offered: Vec<wit::Instance>,
}

impl Call {
    fn new(sample: Sample, instances: &[Instance]) -> Call {
        let key = sample.service_key();
        let service = service_to_wit(&key);
        let offered: Vec<wit::Instance> = instances.iter().map(instance_to_wit).collect();
        let context = sample.instance.map(|instance| wit::BeatContext {
            service: service.clone(),
            instance: instance_to_wit(&instance.into_instance()),
            on_beat: sample.on_beat.unwrap_or(false),
            beat_metadata: sample
                .beat_metadata
                .unwrap_or_default()
                .into_iter()
                .collect(),
            now_millis: now_millis(),
            beat_timeout_millis: sample.beat_timeout_millis.unwrap_or(15_000),
            delete_timeout_millis: sample.delete_timeout_millis.unwrap_or(30_000),
        });
        let subscriber = sample.subscriber.unwrap_or_default();
        Call {
            event: wit::ChangeEvent {
                service: service.clone(),
                kinds: wit::ChangeKinds::INSTANCES,
                revision: sample.revision.unwrap_or(0),
                instances: offered.clone(),
            },
            context,
            subscriber: wit::Subscriber {
                address: subscriber.address,
                client_agent: subscriber.client_agent,
                namespace: key.namespace.clone(),
                clusters: subscriber.clusters,
                app: subscriber.app,
            },
            service,
            offered,
        }
    }

    /// One call of `plugin`, its answer as JSON (`None`: the call failed).
    fn once(&self, plugin: &Plugin) -> anyhow::Result<Option<Value>> {
        Ok(match plugin.manifest.world {
            World::Listener => plugin
                .call(|store, bound| match bound {
                    Bound::Listener(l) => l.call_on_change(store, &self.event),
                    _ => Err(wasmtime::Error::msg("not a listener")),
                })
                .map(|r| match r {
                    Ok(()) => json!({"ok": null}),
                    Err(message) => json!({"error": message}),
                }),
            World::HealthPolicy => {
                let Some(context) = self.context.as_ref() else {
                    bail!("a health-policy sample needs an `instance`");
                };
                plugin
                    .call(|store, bound| match bound {
                        Bound::HealthPolicy(h) => h.call_judge(store, context),
                        _ => Err(wasmtime::Error::msg("not a health policy")),
                    })
                    .map(|verdict| json!({ "verdict": verdict_name(verdict) }))
            }
            World::PushFilter => plugin
                .call(|store, bound| match bound {
                    Bound::PushFilter(f) => {
                        f.call_filter(store, &self.subscriber, &self.service, &self.offered)
                    }
                    _ => Err(wasmtime::Error::msg("not a push filter")),
                })
                .map(filter_answer),
        })
    }
}

fn verdict_name(verdict: wit::HealthVerdict) -> &'static str {
    match verdict {
        wit::HealthVerdict::Healthy => "healthy",
        wit::HealthVerdict::Unhealthy => "unhealthy",
        wit::HealthVerdict::Delete => "delete",
        wit::HealthVerdict::NoOpinion => "no-opinion",
    }
}

fn filter_answer(answer: wit::FilterResult) -> Value {
    match answer {
        wit::FilterResult::Skip => json!({"skip": null}),
        wit::FilterResult::Send(list) => json!({
            "send": list.iter().map(|i| json!({
                "ip": i.ip, "port": i.port, "clusterName": i.cluster, "weight": i.weight,
                "healthy": i.healthy,
                "metadata": i.metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
            })).collect::<Vec<_>>()
        }),
    }
}

/// Calls `repeat` times (stopping at a failure) inside a Tokio runtime, as in
/// the node (on the listener thread or an API worker), so that a plugin that
/// blocks in WASI fails here the way it fails there. Returns the last answer
/// and the mean time per call.
fn call_repeatedly(
    plugin: &Plugin,
    call: &Call,
    repeat: u32,
) -> anyhow::Result<(Option<Value>, u64)> {
    let like_the_node = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a Tokio runtime")?;
    let started = Instant::now();
    let result = like_the_node.block_on(async {
        let mut result = None;
        for _ in 0..repeat {
            result = call.once(plugin)?;
            if result.is_none() {
                break;
            }
        }
        anyhow::Ok(result)
    })?;
    let mean_call_ns = (started.elapsed().as_nanos() / u128::from(repeat)) as u64;
    Ok((result, mean_call_ns))
}

/// The mean time to instantiate the component afresh, over up to 1000 rounds.
fn time_instantiation(plugin: &Plugin, calls: u32, mean_call_ns: u64) -> anyhow::Result<Timing> {
    let rounds = calls.min(1000);
    let mut total = Duration::ZERO;
    for _ in 0..rounds {
        total += plugin.reinstantiate()?;
    }
    Ok(Timing {
        calls,
        mean_call_ns,
        mean_instantiate_ns: (total.as_nanos() / u128::from(rounds)) as u64,
    })
}

fn captured_logs(plugin: &Plugin) -> Vec<String> {
    match &plugin.context().log {
        LogSink::Capture(lines) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
        LogSink::Tracing => Vec::new(),
    }
}

/// Keeps the cache to the component just used and the [`CACHE_KEEPS`] most
/// recently written others; a node prunes its own cache to what it runs.
fn prune_cache(plugins: &Plugins, used: &Path) {
    let Some(dir) = used.parent() else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut artifacts: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    artifacts.sort_unstable_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    let mut keep: HashSet<PathBuf> = artifacts
        .into_iter()
        .take(CACHE_KEEPS)
        .map(|(_, path)| path)
        .collect();
    keep.insert(used.to_path_buf());
    plugins.engine.prune_cache(&keep);
}
