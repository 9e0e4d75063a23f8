//! From change events to datagrams.
//!
//! A change schedules one push of its service after the merge window; more
//! changes to that service inside the window ride along, so a burst becomes one
//! push carrying the final state. Each subscriber gets the list as it would get
//! it from `instance/list` (its clusters, the push cache time as `cacheMillis`).
//! A push is retransmitted every ack timeout until acked or out of retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{PendingPush, PushService, PushSubscriber, packet};
use crate::naming::client_agent::ClientKind;
use crate::naming::list::{self, ListRequest};
use crate::naming::model::{ServiceKey, now_millis};
use crate::naming::registry::Service;
use crate::notifier::{ChangeEvent, ChangeListener};
use crate::plugins::{FilterOutcome, Plugins, SubscriberInfo};
use crate::shutdown::Shutdown;

impl ChangeListener for PushService {
    fn wants(&self, service: &ServiceKey) -> bool {
        self.inner.subscribers.any(service)
    }

    fn on_change(&self, event: &ChangeEvent) {
        if self
            .inner
            .scheduled
            .insert(event.service.clone(), ())
            .is_some()
        {
            return; // a push of this service is already waiting in its window
        }
        let push = self.clone();
        let service = event.service.clone();
        let window = Duration::from_millis(self.inner.config.merge_window_ms);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            // Unschedule before reading the state: a change from now on gets a push of its own.
            push.inner.scheduled.remove(&service);
            push.push_service(&service).await;
        });
    }
}

/// Encodes one push; `None` if it cannot be sent (too large, or encoding failed).
fn encode(service: &ServiceKey, json: &str, last_ref_time: u64) -> Option<Arc<Vec<u8>>> {
    match packet::encode_push(json, last_ref_time) {
        Ok(d) if d.len() <= packet::MAX_DATAGRAM => Some(Arc::new(d)),
        Ok(d) => {
            tracing::warn!(%service, bytes = d.len(), "push too large for one datagram");
            None
        }
        Err(e) => {
            tracing::warn!(%service, error = %e, "could not encode push");
            None
        }
    }
}

/// Runs the push filters for one subscriber.
fn filter_for(
    plugins: &Plugins,
    subscriber: &PushSubscriber,
    service: &ServiceKey,
    found: &Service,
) -> FilterOutcome {
    let info = SubscriberInfo {
        address: subscriber.addr.to_string(),
        client_agent: &subscriber.user_agent,
        namespace: &service.namespace,
        clusters: subscriber.cluster_list(),
        app: &subscriber.app,
    };
    plugins.filter(&info, service, &found.instances())
}

/// What distinguishes one rendering of a list from another.
#[derive(Hash, PartialEq, Eq)]
struct Variant {
    clusters: String,
    grouped_dom: bool,
}

impl PushService {
    /// Pushes the current state of `service` to each live subscriber.
    pub async fn push_service(&self, service: &ServiceKey) {
        let (subscribers, zombies) = self.inner.subscribers.live(service, self.zombie_ttl());
        self.count_zombies(zombies);
        if subscribers.is_empty() {
            return;
        }
        let last_ref_time = self.inner.next_ref_time.fetch_add(1, Ordering::Relaxed);
        let cache_millis = self.inner.switches.with(|s| s.default_push_cache_millis);
        let found = self.inner.registry.service(service);
        let mut datagrams: HashMap<Variant, Option<Arc<Vec<u8>>>> = HashMap::new();
        let filtered = self
            .inner
            .plugins
            .as_ref()
            .filter(|p| p.filters(service))
            .zip(found.as_ref());
        for subscriber in subscribers {
            let grouped_dom =
                subscriber.agent.kind == ClientKind::Java && subscriber.agent.at_least("1.0.0");
            let clusters = subscriber.cluster_list();
            let request = ListRequest {
                clusters: &clusters,
                clusters_param: &subscriber.clusters,
                healthy_only: false,
                cache_millis,
                grouped_dom,
                env: "",
            };
            let datagram = match filtered {
                // A push filter decides per subscriber: no sharing of renderings.
                Some((plugins, found)) => match filter_for(plugins, &subscriber, service, found) {
                    FilterOutcome::Skip => continue,
                    FilterOutcome::Send(list) => encode(
                        service,
                        &list::render_instances(found, &list, &request, now_millis()),
                        last_ref_time,
                    ),
                    FilterOutcome::Unchanged => encode(
                        service,
                        &list::render(found, &request, now_millis()),
                        last_ref_time,
                    ),
                },
                None => datagrams
                    .entry(Variant {
                        clusters: subscriber.clusters.clone(),
                        grouped_dom,
                    })
                    .or_insert_with(|| {
                        let json = match &found {
                            Some(s) => list::render(s, &request, now_millis()),
                            None => list::render_unknown(service, &request, now_millis()),
                        };
                        encode(service, &json, last_ref_time)
                    })
                    .clone(),
            };
            self.inner.counters.total.fetch_add(1, Ordering::Relaxed);
            match datagram {
                Some(datagram) => {
                    self.send_tracked(&subscriber, datagram, last_ref_time)
                        .await
                }
                None => {
                    self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Sends one push and keeps it until acked, retransmitting on a timer.
    async fn send_tracked(
        &self,
        subscriber: &PushSubscriber,
        datagram: Arc<Vec<u8>>,
        last_ref_time: u64,
    ) {
        let key = (subscriber.addr, last_ref_time);
        self.inner.pending.insert(
            key,
            PendingPush {
                datagram: Arc::clone(&datagram),
                first_sent: Instant::now(),
                retries: 0,
            },
        );
        if let Err(e) = self.inner.socket.send_to(&datagram, subscriber.addr).await {
            tracing::debug!(addr = %subscriber.addr, error = %e, "push send failed");
        }
        let push = self.clone();
        tokio::spawn(async move { push.retransmit_until_acked(key).await });
    }

    async fn retransmit_until_acked(&self, key: (std::net::SocketAddr, u64)) {
        let timeout = Duration::from_millis(self.inner.config.ack_timeout_ms);
        loop {
            tokio::time::sleep(timeout).await;
            let datagram = {
                let Some(mut pending) = self.inner.pending.get_mut(&key) else {
                    return; // acked
                };
                if pending.retries >= self.inner.config.max_retransmits {
                    drop(pending);
                    self.inner.pending.remove(&key);
                    self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(addr = %key.0, last_ref_time = key.1, "push unacked after all retries");
                    return;
                }
                pending.retries += 1;
                Arc::clone(&pending.datagram)
            };
            self.inner
                .counters
                .retransmits
                .fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.inner.socket.send_to(&datagram, key.0).await {
                tracing::debug!(addr = %key.0, error = %e, "push retransmit failed");
            }
        }
    }

    /// Records an ack from `from`; only the address a push went to can ack it.
    pub(super) fn acknowledge(&self, from: std::net::SocketAddr, last_ref_time: u64) -> bool {
        match self.inner.pending.remove(&(from, last_ref_time)) {
            Some((_, pending)) => {
                let cost = pending.first_sent.elapsed().as_millis() as u64;
                self.inner
                    .counters
                    .succeeded
                    .fetch_add(1, Ordering::Relaxed);
                self.inner
                    .counters
                    .ack_cost_ms
                    .fetch_add(cost, Ordering::Relaxed);
                true
            }
            None => {
                self.inner
                    .counters
                    .unmatched_acks
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn count_zombies(&self, dropped: usize) {
        if dropped > 0 {
            self.inner
                .counters
                .zombies_dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
            tracing::debug!(dropped, "dropped zombie subscribers");
        }
    }

    /// Drops zombie subscribers periodically, so idle services do not keep them.
    pub async fn sweep_zombies(self, mut shutdown: Shutdown) {
        loop {
            let ttl = self.zombie_ttl();
            let period = (ttl / 2).max(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.recv() => return,
            }
            let dropped = self.inner.subscribers.sweep(ttl);
            self.count_zombies(dropped);
        }
    }
}
