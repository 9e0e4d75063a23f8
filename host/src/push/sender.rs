//! From change events to datagrams, on two long-lived tasks (so shutdown
//! drains them, and a flood of changes never spawns a task per push):
//!
//! - `PushService::run_pushes`: a change schedules a push of its service
//!   through the merge window (`super::window`): at once when the service
//!   was not pushed within the last window, else at that window's end, more
//!   changes meanwhile riding along, so a burst becomes at most one push per
//!   window after its first, each carrying the state of then. Each
//!   subscriber gets the list as it would get it from `instance/list` (its
//!   clusters, the push cache time as `cacheMillis`).
//! - `PushService::run_retransmits`: an unacked push is sent again every
//!   ack timeout until acked or out of retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::window::DuePushes;
use super::{PendingPush, PushService, PushSubscriber, packet};
use crate::clock::now_millis;
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
        self.inner.window.schedule(&event.service);
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
    grouped_names: bool,
}

impl PushService {
    /// Sends each scheduled push when it falls due, until shutdown.
    pub(crate) async fn run_pushes(self, mut due: DuePushes, mut shutdown: Shutdown) {
        while let Some(service) = due.next(&self.inner.window, &mut shutdown).await {
            self.push_service(&service).await;
        }
    }

    /// Pushes the current state of `service` to each live subscriber.
    pub(crate) async fn push_service(&self, service: &ServiceKey) {
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
            let grouped_names = subscriber.agent.is_java_since_1_0();
            let clusters = subscriber.cluster_list();
            let request = ListRequest {
                clusters: &clusters,
                clusters_param: &subscriber.clusters,
                healthy_only: false,
                cache_millis,
                grouped_names,
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
                        grouped_names,
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
                    subscriber.figures.failed();
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
                figures: Arc::clone(&subscriber.figures),
            },
        );
        subscriber.figures.pushed();
        if let Err(e) = self.inner.socket.send_to(&datagram, subscriber.addr).await {
            tracing::debug!(addr = %subscriber.addr, error = %e, "push send failed");
        }
    }

    /// Sends every push unacked for an ack timeout again, until its retries
    /// run out (then it counts as failed); until shutdown.
    pub(crate) async fn run_retransmits(self, mut shutdown: Shutdown) {
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
                    pending.figures.failed();
                    tracing::debug!(addr = %key.0, last_ref_time = key.1, "push unacked after all retries");
                    return false;
                }
                pending.retries += 1;
                pending.last_sent = now;
                pending.figures.retransmitted();
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
                pending.figures.acked();
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
    pub(crate) async fn sweep_zombies(self, mut shutdown: Shutdown) {
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

#[cfg(test)]
mod tests {
    //! The sender against a real UDP socket on loopback playing the client.

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::net::UdpSocket;

    use super::*;
    use crate::config::{Config, PushConfig};
    use crate::naming::client_agent::ClientAgent;
    use crate::notifier::ChangeKinds;
    use crate::registry::Registry;
    use crate::switches::Switches;

    struct Setup {
        push: PushService,
        client: UdpSocket,
        trigger: crate::shutdown::ShutdownTrigger,
        tasks: tokio::task::JoinSet<()>,
    }

    async fn setup(max_retransmits: u32) -> anyhow::Result<Setup> {
        let config = PushConfig {
            ack_timeout_ms: 40,
            max_retransmits,
            ..PushConfig::default()
        };
        let (trigger, shutdown) = crate::shutdown::channel();
        let mut tasks = tokio::task::JoinSet::new();
        let push = PushService::start(
            [127, 0, 0, 1].into(),
            config,
            (
                Arc::new(Registry::new()),
                Arc::new(Switches::new(&Config::default())),
                None,
            ),
            (&mut tasks, &shutdown),
        )
        .await?;
        let client = UdpSocket::bind("127.0.0.1:0").await?;
        let subscriber = PushSubscriber {
            addr: client.local_addr()?,
            agent: ClientAgent::parse("Nacos-Java-Client:v1.4.1"),
            user_agent: "Nacos-Java-Client:v1.4.1".into(),
            clusters: String::new(),
            app: String::new(),
            last_refresh: Instant::now(),
            figures: Arc::default(),
        };
        assert!(push.subscribe(&key(), subscriber));
        Ok(Setup {
            push,
            client,
            trigger,
            tasks,
        })
    }

    fn key() -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", "svc")
    }

    fn change(push: &PushService) {
        push.on_change(&ChangeEvent {
            service: key(),
            kinds: ChangeKinds::INSTANCES,
            revision: 1,
        });
    }

    /// The next push datagram's `lastRefTime` (within a second).
    async fn receive(client: &UdpSocket) -> anyhow::Result<u64> {
        let mut buf = vec![0u8; 65_536];
        let (len, _) =
            tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await??;
        let packet: serde_json::Value = serde_json::from_slice(&buf[..len])?;
        anyhow::ensure!(packet["type"] == "dom", "{packet}");
        packet["lastRefTime"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no lastRefTime in {packet}"))
    }

    async fn stop(setup: Setup) {
        setup.trigger.trigger();
        let mut tasks = setup.tasks;
        let drained = tokio::time::timeout(Duration::from_secs(2), async {
            while tasks.join_next().await.is_some() {}
        });
        assert!(drained.await.is_ok(), "the push tasks did not stop");
    }

    #[tokio::test]
    async fn a_burst_is_one_push_resent_until_acked() -> anyhow::Result<()> {
        let setup = setup(10).await?;
        for _ in 0..5 {
            change(&setup.push);
        }
        let first = receive(&setup.client).await?;
        // Unacked: the same push comes again.
        assert_eq!(receive(&setup.client).await?, first);
        let ack = format!(r#"{{"type":"push-ack","lastRefTime":{first},"data":""}}"#);
        setup
            .client
            .send_to(ack.as_bytes(), setup.push.local_addr().expect("bound"))
            .await?;
        let acked = tokio::time::timeout(Duration::from_secs(1), async {
            while setup.push.state().succeed == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(acked.await.is_ok(), "the ack was not matched");
        let state = setup.push.state();
        assert_eq!((state.total, state.pending_acks), (1, 0), "{state:?}");
        assert!(state.retransmits >= 1, "{state:?}");
        // The subscriber's own figures say the same of it.
        let listed = setup.push.subscribers_matching(|_| true);
        let figures = listed[0].1.figures.snapshot();
        assert_eq!((figures.pushes, figures.acks, figures.failures), (1, 1, 0));
        assert_eq!(figures.retransmits, state.retransmits, "{figures:?}");
        assert!(figures.last_push_at.is_some() && figures.last_ack_at.is_some());
        stop(setup).await;
        Ok(())
    }

    #[tokio::test]
    async fn an_unacked_push_fails_after_its_retries() -> anyhow::Result<()> {
        let setup = setup(2).await?;
        change(&setup.push);
        let first = receive(&setup.client).await?;
        for _ in 0..2 {
            assert_eq!(receive(&setup.client).await?, first);
        }
        let failed = tokio::time::timeout(Duration::from_secs(1), async {
            while setup.push.state().failed == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(failed.await.is_ok(), "the push never counted as failed");
        let state = setup.push.state();
        assert_eq!((state.retransmits, state.pending_acks), (2, 0), "{state:?}");
        let listed = setup.push.subscribers_matching(|_| true);
        let figures = listed[0].1.figures.snapshot();
        assert_eq!(
            (
                figures.pushes,
                figures.retransmits,
                figures.failures,
                figures.acks
            ),
            (1, 2, 1, 0)
        );
        stop(setup).await;
        Ok(())
    }
}
