//! From change events to datagrams, on two long-lived tasks (so shutdown
//! drains them, and a flood of changes never spawns a task per push):
//!
//! - [`PushService::run_pushes`]: a change schedules one push of its service
//!   after the merge window; more changes to that service inside the window
//!   ride along, so a burst becomes one push carrying the final state. Each
//!   subscriber gets the list as it would get it from `instance/list` (its
//!   clusters, the push cache time as `cacheMillis`).
//! - [`PushService::run_retransmits`]: an unacked push is sent again every
//!   ack timeout until acked or out of retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{PendingPush, PushService, PushSubscriber, packet};
use crate::clock::now_millis;
use crate::naming::client_agent::ClientKind;
use crate::naming::list::{self, ListRequest};
use crate::notifier::{ChangeEvent, ChangeListener};
use crate::plugins::{FilterOutcome, Plugins, SubscriberInfo};
use crate::registry::Service;
use crate::registry::model::ServiceKey;
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
        let window = Duration::from_millis(self.inner.config.merge_window_ms);
        // Unbounded, but never longer than the services with a push scheduled.
        let _ = self
            .inner
            .due
            .send((event.service.clone(), tokio::time::Instant::now() + window));
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
async fn filter_for(
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
    plugins.filter(&info, service, &found.instances()).await
}

/// What distinguishes one rendering of a list from another.
#[derive(Hash, PartialEq, Eq)]
struct Variant {
    clusters: String,
    grouped_dom: bool,
}

impl PushService {
    /// Sends each scheduled push when its merge window ends, until shutdown.
    /// (Windows are all the same length, so pushes fall due in the order
    /// they were scheduled.)
    pub async fn run_pushes(
        self,
        mut due: tokio::sync::mpsc::UnboundedReceiver<(ServiceKey, tokio::time::Instant)>,
        mut shutdown: Shutdown,
    ) {
        loop {
            let (service, at) = tokio::select! {
                next = due.recv() => match next {
                    Some(next) => next,
                    None => return,
                },
                _ = shutdown.recv() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {}
                _ = shutdown.recv() => return,
            }
            // Unschedule before reading the state: a change from now on gets a push of its own.
            self.inner.scheduled.remove(&service);
            self.push_service(&service).await;
        }
    }

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
                Some((plugins, found)) => {
                    match filter_for(plugins, &subscriber, service, found).await {
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
                    }
                }
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

    /// Sends one push and keeps it until acked (see [`PushService::run_retransmits`]).
    async fn send_tracked(
        &self,
        subscriber: &PushSubscriber,
        datagram: Arc<Vec<u8>>,
        last_ref_time: u64,
    ) {
        let now = Instant::now();
        let key = (subscriber.addr, last_ref_time);
        self.inner.pending.insert(
            key,
            PendingPush {
                datagram: Arc::clone(&datagram),
                first_sent: now,
                last_sent: now,
                retries: 0,
            },
        );
        if let Err(e) = self.inner.socket.send_to(&datagram, subscriber.addr).await {
            tracing::debug!(addr = %subscriber.addr, error = %e, "push send failed");
        }
    }

    /// Sends every push unacked for an ack timeout again, until its retries
    /// run out (then it counts as failed); until shutdown.
    pub async fn run_retransmits(self, mut shutdown: Shutdown) {
        let timeout = Duration::from_millis(self.inner.config.ack_timeout_ms.max(1));
        let mut tick = tokio::time::interval((timeout / 4).max(Duration::from_millis(5)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let now = Instant::now();
            let mut resend = Vec::new();
            self.inner.pending.retain(|key, pending| {
                if now.duration_since(pending.last_sent) < timeout {
                    return true;
                }
                if pending.retries >= self.inner.config.max_retransmits {
                    self.inner.counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(addr = %key.0, last_ref_time = key.1, "push unacked after all retries");
                    return false;
                }
                pending.retries += 1;
                pending.last_sent = now;
                resend.push((key.0, Arc::clone(&pending.datagram)));
                true
            });
            for (addr, datagram) in resend {
                self.inner
                    .counters
                    .retransmits
                    .fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.inner.socket.send_to(&datagram, addr).await {
                    tracing::debug!(%addr, error = %e, "push retransmit failed");
                }
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
