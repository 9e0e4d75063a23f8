//! UDP push (the seed's `PushService`): clients that list a service with a
//! `udpPort` become subscribers, and every change to that service is pushed to
//! them within milliseconds.
//!
//! - [`subscribers`]: who is subscribed to what, and zombie expiry.
//! - [`sender`]: turns change events into pushes (merging bursts within a short
//!   window), sends them and retransmits until acked.
//! - [`receiver`]: reads acks from the push socket; anything else is counted and dropped.
//! - [`packet`]: the wire format.
//! - [`window`]: the merge window, shared with the gRPC door's pushes.
//! - [`figures`]: what one subscriber has been pushed, shared with the gRPC door's.

pub mod figures;
pub mod packet;
pub mod receiver;
pub mod sender;
pub mod subscribers;
pub mod window;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use dashmap::DashMap;
use serde::Serialize;
use tokio::net::UdpSocket;

use crate::config::PushConfig;
use crate::naming::client_agent::{ClientAgent, ClientKind};
use crate::plugins::Plugins;
use crate::registry::Registry;
use crate::registry::model::ServiceKey;
use crate::switches::{SwitchValues, Switches};
pub use subscribers::PushSubscriber;
use subscribers::Subscribers;
use window::MergeWindow;

/// An unacknowledged push: kept until its ack arrives or its retries run out.
struct PendingPush {
    datagram: Arc<Vec<u8>>,
    first_sent: Instant,
    last_sent: Instant,
    retries: u32,
    /// The figures of the subscriber it went to.
    figures: Arc<figures::SubscriberFigures>,
}

/// Counters of `operator/push/state` and the node's metrics.
#[derive(Default)]
pub struct PushCounters {
    /// Pushes attempted (one per subscriber and change).
    pub total: AtomicU64,
    /// Pushes the client acknowledged.
    pub succeeded: AtomicU64,
    /// Pushes that failed to encode or went unacknowledged after every retry.
    pub failed: AtomicU64,
    /// Datagrams sent again for lack of an ack.
    pub retransmits: AtomicU64,
    /// Sum of the acknowledged pushes' round trips (ms): divided by `succeeded`,
    /// the average push cost.
    pub ack_cost_ms: AtomicU64,
    /// Datagrams on the push socket that were not a valid ack.
    pub bad_packets: AtomicU64,
    /// Valid acks for no pending push (late, duplicated or forged).
    pub unmatched_acks: AtomicU64,
    /// Subscribers dropped for not listing again within their lifetime.
    pub zombies_dropped: AtomicU64,
}

/// The push state, in Nacos's shape plus Nacre's own counters.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PushState {
    /// Acknowledged pushes (Nacos's `succeed`).
    pub succeed: u64,
    /// Pushes attempted.
    pub total: u64,
    /// Pushes that failed or went unacknowledged.
    pub failed: u64,
    /// `succeed / total` (0 before any push).
    pub ratio: f64,
    /// Average round trip of an acknowledged push, ms.
    pub avg_push_cost: u64,
    /// See [`PushCounters::retransmits`].
    pub retransmits: u64,
    /// See [`PushCounters::bad_packets`].
    pub bad_packets: u64,
    /// See [`PushCounters::unmatched_acks`].
    pub unmatched_acks: u64,
    /// See [`PushCounters::zombies_dropped`].
    pub zombies_dropped: u64,
    /// Subscribers held now.
    pub subscribers: usize,
    /// Pushes sent and not yet acknowledged nor given up.
    pub pending_acks: usize,
    /// The UDP port pushes leave from (0 if the socket has no address).
    pub udp_port: u16,
}

/// The push service of one node. Cheap to clone.
#[derive(Clone)]
pub struct PushService {
    inner: Arc<Inner>,
}

struct Inner {
    socket: Arc<UdpSocket>,
    registry: Arc<Registry>,
    switches: Arc<Switches>,
    plugins: Option<Arc<Plugins>>,
    config: PushConfig,
    subscribers: Subscribers,
    /// Unacked pushes by (subscriber address, lastRefTime).
    pending: DashMap<(SocketAddr, u64), PendingPush>,
    /// Services with a push waiting in its merge window.
    window: MergeWindow,
    counters: PushCounters,
    /// Source of unique `lastRefTime`s. Starts at the wall clock in
    /// microseconds and counts up by one per push: unique, increasing, and
    /// below 2^53 so JavaScript clients echo it back exactly in their acks.
    next_ref_time: AtomicU64,
}

impl PushService {
    /// Binds the push socket and starts the push tasks (acks, pushes,
    /// retransmits, zombie sweeps) in `tasks`, all ending at `shutdown`.
    pub async fn start(
        ip: IpAddr,
        config: PushConfig,
        (registry, switches, plugins): (Arc<Registry>, Arc<Switches>, Option<Arc<Plugins>>),
        (tasks, shutdown): (&mut tokio::task::JoinSet<()>, &crate::shutdown::Shutdown),
    ) -> anyhow::Result<PushService> {
        let socket = UdpSocket::bind((ip, config.udp_port))
            .await
            .with_context(|| format!("binding the UDP push socket on {ip}:{}", config.udp_port))?;
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        let (window, due) = MergeWindow::new(Duration::from_millis(config.merge_window_ms));
        let push = PushService {
            inner: Arc::new(Inner {
                window,
                socket: Arc::new(socket),
                registry,
                switches,
                plugins,
                config,
                subscribers: Subscribers::default(),
                pending: DashMap::new(),
                counters: PushCounters::default(),
                next_ref_time: AtomicU64::new(start),
            }),
        };
        tasks.spawn(push.clone().receive_acks(shutdown.clone()));
        tasks.spawn(push.clone().run_pushes(due, shutdown.clone()));
        tasks.spawn(push.clone().run_retransmits(shutdown.clone()));
        tasks.spawn(push.clone().sweep_zombies(shutdown.clone()));
        Ok(push)
    }

    /// The address of the push socket (acks come back to it).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.socket.local_addr().ok()
    }

    /// Whether a client with this User-Agent can take pushes (Nacos's rule,
    /// `PushService#canEnablePush`: Java, Go, C, C# and DNS clients at or
    /// above the switch versions, DNS-F measured against `pushPythonVersion`).
    pub(crate) fn can_push(agent: &ClientAgent, switches: &SwitchValues) -> bool {
        if !switches.push_enabled {
            return false;
        }
        match agent.kind {
            ClientKind::Java => agent.at_least(&switches.push_java_version),
            ClientKind::Go => agent.at_least(&switches.push_go_version),
            ClientKind::C => agent.at_least(&switches.push_c_version),
            ClientKind::CSharp => agent.at_least(&switches.push_c_sharp_version),
            ClientKind::Dns => agent.at_least(&switches.push_python_version),
            ClientKind::JavaSdk
            | ClientKind::NacosServer
            | ClientKind::Tengine
            | ClientKind::Python
            | ClientKind::Unknown => false,
        }
    }

    /// Adds or refreshes a subscriber if its client can take pushes; returns
    /// whether it is now a subscriber.
    pub fn subscribe(&self, service: &ServiceKey, subscriber: PushSubscriber) -> bool {
        let capable = self
            .inner
            .switches
            .with(|s| Self::can_push(&subscriber.agent, s));
        if capable {
            self.inner.subscribers.refresh(service, subscriber);
        }
        capable
    }

    /// The live subscribers of the services `keep` accepts, each with its
    /// service (zombies are left out).
    pub(crate) fn subscribers_matching(
        &self,
        keep: impl Fn(&ServiceKey) -> bool,
    ) -> Vec<(ServiceKey, PushSubscriber)> {
        self.inner.subscribers.matching(self.zombie_ttl(), keep)
    }

    /// How long a subscriber lives without refreshing.
    fn zombie_ttl(&self) -> Duration {
        Duration::from_millis(self.inner.switches.with(|s| s.default_push_cache_millis))
    }

    /// The counters now, for `GET operator/push/state` and metrics.
    pub fn state(&self) -> PushState {
        let c = &self.inner.counters;
        let total = c.total.load(Ordering::Relaxed);
        let succeed = c.succeeded.load(Ordering::Relaxed);
        PushState {
            succeed,
            total,
            failed: c.failed.load(Ordering::Relaxed),
            ratio: if total > 0 {
                succeed as f64 / total as f64
            } else {
                0.0
            },
            avg_push_cost: c
                .ack_cost_ms
                .load(Ordering::Relaxed)
                .checked_div(succeed)
                .unwrap_or(0),
            retransmits: c.retransmits.load(Ordering::Relaxed),
            bad_packets: c.bad_packets.load(Ordering::Relaxed),
            unmatched_acks: c.unmatched_acks.load(Ordering::Relaxed),
            zombies_dropped: c.zombies_dropped.load(Ordering::Relaxed),
            subscribers: self.inner.subscribers.count(),
            pending_acks: self.inner.pending.len(),
            udp_port: self.local_addr().map_or(0, |a| a.port()),
        }
    }
}

impl crate::metrics::RenderMetrics for PushState {
    fn render_metrics(&self, out: &mut crate::metrics::Exposition) {
        out.gauge(
            "nacre_push_subscribers",
            "Live UDP push subscribers.",
            self.subscribers as f64,
        );
        out.gauge(
            "nacre_push_pending_acks",
            "Pushes sent and not yet acknowledged.",
            self.pending_acks as f64,
        );
        out.counter(
            "nacre_push_total",
            "Pushes sent to a subscriber (first sends).",
            self.total,
        );
        out.counter(
            "nacre_push_succeeded_total",
            "Pushes acknowledged by their subscriber.",
            self.succeed,
        );
        out.counter(
            "nacre_push_failed_total",
            "Pushes never acknowledged or impossible to send.",
            self.failed,
        );
        out.counter(
            "nacre_push_retransmits_total",
            "Retransmissions of unacknowledged pushes.",
            self.retransmits,
        );
        out.counter(
            "nacre_push_bad_packets_total",
            "Packets on the push socket that were not acks.",
            self.bad_packets,
        );
        out.counter(
            "nacre_push_unmatched_acks_total",
            "Acks that matched no pending push (late, duplicate or spoofed).",
            self.unmatched_acks,
        );
        out.counter(
            "nacre_push_zombies_dropped_total",
            "Subscribers dropped for not refreshing.",
            self.zombies_dropped,
        );
    }
}
