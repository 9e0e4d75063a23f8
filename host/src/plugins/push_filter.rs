//! The push-filter world: plugins that decide what one subscriber is sent,
//! before an `instance/list` reply or a UDP push.
//!
//! Filters run while a client waits, so their calls run on each plugin's
//! worker thread and a request waits for all of them together at most
//! [`REQUEST_PATH_WAIT`]; a filter that has not answered by then (or whose
//! queue is full, or that is quarantined) is passed over and the list goes on
//! as it was (fail open). An answer is checked ([`super::answer`]) and lifted
//! under hostcall fuel sized from what was offered ([`answer_fuel`]), so an
//! oversized answer fails before the host copies it.

use std::sync::Arc;

use super::answer;
use super::bindings::{instance_to_wit, service_to_wit, wit};
use super::error::PluginError;
use super::manifest::World;
use super::runtime::Bound;
use super::runtime::limits::{REQUEST_PATH_WAIT, answer_fuel};
use super::set::Plugins;
use crate::registry::model::{Instance, ServiceKey};

/// What a push filter decided for one subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterOutcome {
    /// No filter applies (or none answered): send the list as it is.
    Unchanged,
    /// Send these instances instead (checked against what was offered).
    Send(Vec<Instance>),
    /// Send nothing to this subscriber this time.
    Skip,
}

/// What a subscriber looks like to a push filter.
pub struct SubscriberInfo<'a> {
    /// `ip:port` the client is reached at.
    pub address: String,
    /// The client's User-Agent (e.g. `Nacos-Java-Client:v1.4.1`).
    pub client_agent: &'a str,
    /// The namespace the subscription is in.
    pub namespace: &'a str,
    /// The clusters the client asked for; empty means all.
    pub clusters: Vec<String>,
    /// The `app` parameter the client sent (empty when none).
    pub app: &'a str,
}

impl Plugins {
    /// Runs the push filters that apply to `service`, in manifest order, each
    /// on the previous one's output. A filter that fails, is refused, or does
    /// not answer in time is passed over (fail open); a refused answer counts
    /// as a failure of the plugin.
    pub async fn filter(
        &self,
        subscriber: &SubscriberInfo<'_>,
        service: &ServiceKey,
        instances: &[Instance],
    ) -> FilterOutcome {
        let filters = self.applicable(World::PushFilter, service);
        if filters.is_empty() {
            return FilterOutcome::Unchanged;
        }
        let until = tokio::time::Instant::now() + REQUEST_PATH_WAIT;
        let asked = Arc::new((
            wit::Subscriber {
                address: subscriber.address.clone(),
                client_agent: subscriber.client_agent.to_string(),
                namespace: subscriber.namespace.to_string(),
                clusters: subscriber.clusters.clone(),
                app: subscriber.app.to_string(),
            },
            service_to_wit(service),
        ));
        let mut current: Option<Vec<Instance>> = None;
        for plugin in filters {
            // Shared with the worker thread, where the answer is checked.
            let offered: Arc<[Instance]> = Arc::from(current.as_deref().unwrap_or(instances));
            let wit_offered: Vec<wit::Instance> = offered.iter().map(instance_to_wit).collect();
            let fuel = answer_fuel(&wit_offered);
            let asked = Arc::clone(&asked);
            let answer = plugin
                .call_off_thread(
                    until,
                    move |store, bound| match bound {
                        Bound::PushFilter(f) => {
                            store.set_hostcall_fuel(fuel);
                            f.call_filter(store, &asked.0, &asked.1, &wit_offered)
                        }
                        _ => Err(wasmtime::Error::msg("not a push filter")),
                    },
                    move |answer| match answer {
                        wit::FilterResult::Skip => Ok(None),
                        wit::FilterResult::Send(list) => answer::check(&offered, list)
                            .map(Some)
                            .map_err(PluginError::from),
                    },
                )
                .await;
            match answer {
                Ok(None) => return FilterOutcome::Skip,
                Ok(Some(list)) => current = Some(list),
                // Passed over: the next filter gets what this one was offered.
                Err(_) => {}
            }
        }
        current.map_or(FilterOutcome::Unchanged, FilterOutcome::Send)
    }

    /// Whether some push filter applies to `service` (so list replies cannot come from the cache).
    pub(crate) fn filters(&self, service: &ServiceKey) -> bool {
        self.applies(World::PushFilter, service)
    }
}
