//! Unit-test harness: real plugins from inline WAT, loaded by the real engine.

use std::path::Path;
use std::sync::{Arc, LazyLock};

use super::super::bindings::wit;
use super::super::error::PluginError;
use super::super::manifest::{Limits, Manifest};
use super::{Bound, LogSink, Plugin, PluginContext, PluginEngine};
use crate::registry::Registry;

pub(super) use super::test_components as components;

static ENGINE: LazyLock<PluginEngine> = LazyLock::new(|| PluginEngine::new(None).expect("engine"));

const DEFAULTS: Limits = Limits {
    timeout_ms: 100,
    memory_bytes: 16 << 20,
};

/// A plugin of `world` from WAT, with `limits` (TOML lines of `[limits]`).
pub fn plugin(world: &str, wat: &str, limits: &str) -> Arc<Plugin> {
    let text =
        format!("name = \"t\"\nworld = \"{world}\"\nwasm = \"t.wasm\"\n[limits]\n{limits}\n");
    let manifest =
        Manifest::parse(&text, Path::new("/nowhere/t.toml"), DEFAULTS).expect("manifest");
    let bytes = ::wat::parse_str(wat).expect("valid WAT");
    let ctx = Arc::new(PluginContext::new(
        &manifest,
        Arc::new(Registry::new()),
        LogSink::Capture(Default::default()),
    ));
    Arc::new(ENGINE.load(manifest, &bytes, ctx).expect("loads"))
}

/// One `on-change` call of a listener, on this thread.
pub fn on_change(plugin: &Plugin) -> Result<Result<(), String>, PluginError> {
    let event = event();
    plugin.try_call(|store, bound| match bound {
        Bound::Listener(l) => l.call_on_change(store, &event),
        _ => Err(wasmtime::Error::msg("not a listener")),
    })
}

pub fn event() -> wit::ChangeEvent {
    wit::ChangeEvent {
        service: wit::ServiceKey {
            namespace: "public".into(),
            group: "DEFAULT_GROUP".into(),
            name: "svc".into(),
        },
        kinds: wit::ChangeKinds::INSTANCES,
        revision: 1,
        instances: Vec::new(),
    }
}

pub fn beat_context() -> wit::BeatContext {
    wit::BeatContext {
        service: event().service,
        instance: instance("10.0.0.1", &[]),
        on_beat: true,
        beat_metadata: Vec::new(),
        now_millis: 0,
        beat_timeout_millis: 15_000,
        delete_timeout_millis: 30_000,
    }
}

/// An instance at `ip`:1 with `metadata`.
pub fn instance(ip: &str, metadata: &[(&str, &str)]) -> wit::Instance {
    wit::Instance {
        ip: ip.into(),
        port: 1,
        cluster: "DEFAULT".into(),
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral: true,
        marked: false,
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        last_beat_millis: 0,
    }
}
