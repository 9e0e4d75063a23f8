//! The listener world: every coalesced change reaches the listener plugins
//! that apply to its service, on a thread of their own, off the write path.

use std::sync::Arc;

use super::bindings::{instance_to_wit, service_to_wit, wit};
use super::error::{MAX_REASON_BYTES, PluginError, printable};
use super::manifest::World;
use super::runtime::Bound;
use super::set::Plugins;
use crate::notifier::{ChangeEvent, ChangeListener, Notifier, Pace};
use crate::registry::Registry;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;

impl Plugins {
    /// Delivers one change to every listener plugin that applies to its
    /// service. A listener's `error` answer counts as a failure of the
    /// plugin, like a trap (docs/PLUGINS.md, "Watching plugins").
    pub(crate) fn deliver(&self, event: &ChangeEvent) {
        let applicable = self.applicable(World::Listener, &event.service);
        if applicable.is_empty() {
            return;
        }
        let wit_event = change_event_to_wit(&self.registry, event);
        for plugin in applicable {
            // Counted and logged by the plugin's supervision; the event is not retried.
            let _ = plugin.call_checked(
                |store, bound| match bound {
                    Bound::Listener(l) => l.call_on_change(store, &wit_event),
                    _ => Err(wasmtime::Error::msg("not a listener")),
                },
                |answer| {
                    answer.map_err(|message| {
                        PluginError::Returned(printable(&message, MAX_REASON_BYTES))
                    })
                },
            );
        }
    }
}

fn change_event_to_wit(registry: &Registry, event: &ChangeEvent) -> wit::ChangeEvent {
    let mut kinds = wit::ChangeKinds::empty();
    if event.kinds.instances {
        kinds |= wit::ChangeKinds::INSTANCES;
    }
    if event.kinds.service {
        kinds |= wit::ChangeKinds::SERVICE;
    }
    if event.kinds.removed {
        kinds |= wit::ChangeKinds::REMOVED;
    }
    let instances = registry
        .service(&event.service)
        .map(|s| s.instances().iter().map(instance_to_wit).collect())
        .unwrap_or_default();
    wit::ChangeEvent {
        service: service_to_wit(&event.service),
        kinds,
        revision: event.revision,
        instances,
    }
}

/// Hands change events to listener plugins on a thread of their own, through
/// a notifier of their own that hears each change as it is made (a relay):
/// a slow plugin delays only other plugins, and a burst of changes to one
/// service is one call with the final state.
pub struct PluginListener;

impl PluginListener {
    /// Starts the delivery thread, fed by `notifier`; it stops with
    /// `shutdown`, and the node joins the returned handle.
    /// Listeners are called at `pace` (see [`Pace`]): changes to one service
    /// within the window reach them once, with the final state, and calling
    /// them takes at most the pace's share of one core, so a busy node keeps
    /// its throughput and its listeners see coalesced events.
    pub fn start(
        plugins: Arc<Plugins>,
        registry: Arc<Registry>,
        notifier: &Notifier,
        pace: Pace,
        shutdown: Shutdown,
    ) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let queue = Notifier::new();
        queue.listen(Arc::new(Deliver(plugins)));
        let runner = queue.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("plugin-listeners".into())
            .spawn(move || runtime.block_on(runner.run_paced(registry, pace, shutdown)))?;
        notifier.relay_to(queue);
        Ok(thread)
    }
}

/// The listener plugins, as one listener of the plugin thread's notifier.
struct Deliver(Arc<Plugins>);

impl ChangeListener for Deliver {
    /// Asked on the write path: only services some listener plugin applies to are queued.
    fn wants(&self, service: &ServiceKey) -> bool {
        self.0.applies(World::Listener, service)
    }

    fn on_change(&self, event: &ChangeEvent) {
        self.0.deliver(event);
    }
}
