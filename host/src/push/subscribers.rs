//! Push subscribers: clients that list a service with a `udpPort`.
//!
//! A subscriber stays as long as it keeps listing the service; one that has not
//! refreshed within the push cache time is a zombie and is dropped (its client
//! has gone, or stopped caring).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::figures::SubscriberFigures;
use crate::naming::client_agent::ClientAgent;
use crate::registry::FastHash;
use crate::registry::model::ServiceKey;

/// One client subscribed to one service.
#[derive(Debug, Clone)]
pub struct PushSubscriber {
    /// Where pushes go (and where acks must come from).
    pub addr: SocketAddr,
    /// The client's family and version, parsed from `user_agent`.
    pub agent: ClientAgent,
    /// The User-Agent as the client sent it.
    pub user_agent: String,
    /// The `clusters` parameter of its list request, as given.
    pub clusters: String,
    /// The `app` parameter of its list request (empty when none).
    pub app: String,
    /// When it last listed the service: it is a zombie once this is older than
    /// `defaultPushCacheMillis`.
    pub last_refresh: Instant,
    /// What it has been pushed: kept when it lists again, gone with it.
    pub figures: Arc<SubscriberFigures>,
}

impl PushSubscriber {
    /// The cluster names in `clusters` (empty: every cluster).
    pub(crate) fn cluster_list(&self) -> Vec<String> {
        self.clusters
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    }
}

/// Every subscriber, by service and then by address (one entry per address:
/// a client that lists again replaces its entry).
#[derive(Default)]
pub struct Subscribers {
    by_service: DashMap<ServiceKey, HashMap<SocketAddr, PushSubscriber>, FastHash>,
}

impl Subscribers {
    /// Adds a subscriber or refreshes an existing one (which keeps its figures).
    pub(crate) fn refresh(&self, service: &ServiceKey, mut subscriber: PushSubscriber) {
        match self.by_service.get_mut(service) {
            Some(mut subs) => {
                if let Some(held) = subs.get(&subscriber.addr) {
                    subscriber.figures = Arc::clone(&held.figures);
                }
                subs.insert(subscriber.addr, subscriber);
            }
            None => {
                self.by_service
                    .entry(service.clone())
                    .or_default()
                    .insert(subscriber.addr, subscriber);
            }
        }
    }

    /// The live subscribers of a service; zombies older than `ttl` are dropped
    /// on the way and counted in the second value.
    pub(crate) fn live(&self, service: &ServiceKey, ttl: Duration) -> (Vec<PushSubscriber>, usize) {
        let Some(mut subs) = self.by_service.get_mut(service) else {
            return (Vec::new(), 0);
        };
        let before = subs.len();
        subs.retain(|_, s| s.last_refresh.elapsed() <= ttl);
        let dropped = before - subs.len();
        let live = subs.values().cloned().collect();
        let empty = subs.is_empty();
        drop(subs);
        if empty {
            self.by_service
                .remove_if(service, |_, subs| subs.is_empty());
        }
        (live, dropped)
    }

    /// Drops every zombie; returns how many.
    pub(crate) fn sweep(&self, ttl: Duration) -> usize {
        let mut dropped = 0;
        self.by_service.retain(|_, subs| {
            let before = subs.len();
            subs.retain(|_, s| s.last_refresh.elapsed() <= ttl);
            dropped += before - subs.len();
            !subs.is_empty()
        });
        dropped
    }

    /// The live subscribers (refreshed within `ttl`) of every service `keep`
    /// accepts, each with its service, for listings (`service/subscribers`).
    pub(crate) fn matching(
        &self,
        ttl: Duration,
        keep: impl Fn(&ServiceKey) -> bool,
    ) -> Vec<(ServiceKey, PushSubscriber)> {
        self.by_service
            .iter()
            .filter(|entry| keep(entry.key()))
            .flat_map(|entry| {
                let service = entry.key().clone();
                entry
                    .value()
                    .values()
                    .filter(|s| s.last_refresh.elapsed() <= ttl)
                    .map(|s| (service.clone(), s.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Whether anyone is subscribed to `service` (a cheap check before scheduling a push).
    pub fn any(&self, service: &ServiceKey) -> bool {
        self.by_service.get(service).is_some_and(|s| !s.is_empty())
    }

    /// Subscribers across every service.
    pub fn count(&self) -> usize {
        self.by_service.iter().map(|s| s.value().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(port: u16, age: Duration) -> PushSubscriber {
        PushSubscriber {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            agent: ClientAgent::parse("Nacos-Java-Client:v1.4.1"),
            user_agent: "Nacos-Java-Client:v1.4.1".into(),
            clusters: String::new(),
            app: String::new(),
            last_refresh: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
            figures: Arc::default(),
        }
    }

    #[test]
    fn refresh_replaces_and_zombies_are_dropped() {
        let subs = Subscribers::default();
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "svc");
        subs.refresh(&key, subscriber(1, Duration::from_secs(60)));
        subs.refresh(&key, subscriber(2, Duration::ZERO));
        subs.refresh(&key, subscriber(2, Duration::ZERO));
        assert_eq!(subs.count(), 2);
        let (live, dropped) = subs.live(&key, Duration::from_secs(10));
        assert_eq!((live.len(), dropped), (1, 1));
        subs.refresh(&key, subscriber(3, Duration::from_secs(5)));
        let other = ServiceKey::new("public", "DEFAULT_GROUP", "other");
        subs.refresh(&other, subscriber(4, Duration::ZERO));
        let listed = subs.matching(Duration::from_secs(1), |k| k.name == "svc");
        assert_eq!(listed.len(), 1, "a zombie or another service was listed");
        assert_eq!(listed[0].1.addr.port(), 2);
        assert_eq!(subs.sweep(Duration::from_secs(1)), 1);
        assert_eq!(subs.count(), 2);
    }

    #[test]
    fn listing_again_keeps_the_figures() {
        let subs = Subscribers::default();
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "svc");
        subs.refresh(&key, subscriber(1, Duration::ZERO));
        let (live, _) = subs.live(&key, Duration::from_secs(10));
        live[0].figures.pushed();
        subs.refresh(&key, subscriber(1, Duration::ZERO));
        let (live, _) = subs.live(&key, Duration::from_secs(10));
        assert_eq!(live[0].figures.snapshot().pushes, 1);
    }
}
