//! The health-policy world: plugins that judge an instance's health on each
//! beat (while the client waits for its reply) and on each periodic check.
//! Their calls run on each plugin's worker thread, and a beat waits for all
//! of them together at most [`REQUEST_PATH_WAIT`]; a policy that did not
//! answer leaves the decision to the next one, then to the default rules.

use std::sync::Arc;

use super::bindings::{instance_to_wit, service_to_wit, wit};
use super::manifest::World;
use super::runtime::Bound;
use super::runtime::limits::REQUEST_PATH_WAIT;
use super::set::Plugins;
use crate::registry::model::{BeatTimeouts, Instance, ServiceKey};

/// A health policy's verdict, in the registry's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthVerdict {
    /// Mark the instance healthy.
    Healthy,
    /// Mark the instance unhealthy (it stays registered and listed as such).
    Unhealthy,
    /// Deregister the instance now.
    Delete,
}

impl Plugins {
    /// Asks the health policies that apply to `service` about `instance`, in
    /// manifest order; the first with an opinion decides. `on_beat`: the call
    /// is for a beat that just arrived (with the beat's metadata), else a
    /// periodic check. `None`: no policy had an opinion (or none answered in
    /// time): the default beat rules decide.
    pub(crate) async fn judge(
        &self,
        service: &ServiceKey,
        instance: &Instance,
        on_beat: bool,
        beat_metadata: &[(String, String)],
        timeouts: BeatTimeouts,
    ) -> Option<HealthVerdict> {
        let policies = self.applicable(World::HealthPolicy, service);
        if policies.is_empty() {
            return None;
        }
        let until = tokio::time::Instant::now() + REQUEST_PATH_WAIT;
        let context = Arc::new(wit::BeatContext {
            service: service_to_wit(service),
            instance: instance_to_wit(instance),
            on_beat,
            beat_metadata: beat_metadata.to_vec(),
            now_millis: crate::clock::now_millis(),
            beat_timeout_millis: timeouts.unhealthy_after_ms,
            delete_timeout_millis: timeouts.delete_after_ms,
        });
        for plugin in policies {
            let context = Arc::clone(&context);
            let verdict = plugin
                .call_off_thread(
                    until,
                    move |store, bound| match bound {
                        Bound::HealthPolicy(h) => h.call_judge(store, &context),
                        _ => Err(wasmtime::Error::msg("not a health policy")),
                    },
                    Ok,
                )
                .await;
            match verdict {
                Ok(wit::HealthVerdict::Healthy) => return Some(HealthVerdict::Healthy),
                Ok(wit::HealthVerdict::Unhealthy) => return Some(HealthVerdict::Unhealthy),
                Ok(wit::HealthVerdict::Delete) => return Some(HealthVerdict::Delete),
                Ok(wit::HealthVerdict::NoOpinion) | Err(_) => {}
            }
        }
        None
    }

    /// Whether some health policy applies to `service`.
    pub(crate) fn judges(&self, service: &ServiceKey) -> bool {
        self.applies(World::HealthPolicy, service)
    }
}
