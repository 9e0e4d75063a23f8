//! Pushes to stream subscribers (NACOS-V2.md §6): the v2 kind of push
//! target on the same notifier as UDP subscribers.
//!
//! - A change schedules a push of its service through the merge window
//!   (`push::window`: at once when the service was not pushed within the
//!   last `push.merge_window_ms`, else at that window's end, the changes
//!   meanwhile riding along; Nacos waits 500 ms). The push renders the service once per
//!   cluster filter and sends a `NotifySubscriberRequest` with a fresh
//!   request id to every subscribed connection.
//! - Acks are matched by (connection, request id). Each connection keeps
//!   only the last unacked push per service; a push not acked within
//!   `grpc.push_ack_timeout_ms` (or refused by a full send queue) is sent
//!   again with the state at that time, for as long as the connection
//!   lives (Nacos retries forever too, issue #12002). A push to a
//!   connection that is gone counts as done.
//! - Pushes and resends are sent from the transport thread serving each
//!   connection (`transports`), by one writer task per thread that takes
//!   them in the order they were queued and lets them be written a few at
//!   a time; a push rendered before one already queued to the same
//!   subscriber is dropped, and each is recorded as awaiting its ack
//!   before it is queued.
//! - Sends never wait: a client that does not read fills its own bounded
//!   queue and nobody else's (see `liveness` for what happens to it then).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::GrpcDoor;
use super::connection::{Connection, SendError, UnackedPush};
use super::info::{Shaped, Shown};
use super::payload::payload;
use crate::clock::now_millis;
use crate::naming::list::push_json_str;
use crate::notifier::{ChangeEvent, ChangeListener};
use crate::push::figures::SubscriberFigures;
use crate::push::window::{DuePushes, MergeWindow};
use crate::registry::FastHash;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;
use crate::wire::SubscriberEntry;

/// How many pushes a writer queues on their streams before it lets them be
/// written. A queued push waits until the writer yields its thread: when a
/// thread queued all its pushes of a change first (500 of 1,000
/// subscribers on two threads), its first write left 3-4 ms after it
/// started on them, and the clients had nothing to read meanwhile. Sixteen at a
/// time, the first is written once sixteen are queued rather than five
/// hundred, and the clients read while the node writes; each yield costs
/// one poll of the thread's sockets (docs/BENCHMARKS.md, "Pushes written as
/// they are queued").
const PUSHES_BETWEEN_WRITES: usize = 16;

/// A transport thread's push queue: batches of one service's pushes, taken
/// in order by the thread's writer task ([`start_writers`]).
pub(crate) type PushWriter = mpsc::UnboundedSender<PushBatch>;

/// Pushes of one service to connections served by one transport thread.
pub(crate) struct PushBatch {
    service: ServiceKey,
    pushes: Vec<Outgoing>,
}

/// Starts a push writer task on each transport thread's runtime (in thread
/// order) and returns their queues. A writer holds the door weakly and
/// ends with its runtime, or once the door is gone.
pub(crate) fn start_writers(door: &Arc<GrpcDoor>, runtimes: Vec<Handle>) -> Vec<PushWriter> {
    runtimes
        .into_iter()
        .map(|runtime| {
            let (writer, queue) = mpsc::unbounded_channel();
            runtime.spawn(write_pushes(Arc::downgrade(door), queue));
            writer
        })
        .collect()
}

/// A transport thread's writer: sends each batch's pushes in order, yielding
/// the thread every [`PUSHES_BETWEEN_WRITES`] so that what was queued is
/// written (and the acks that came meanwhile read) before the next group.
/// One task per thread takes every batch, so a connection's pushes leave in
/// the order they were queued, whichever yields come between them (tokio
/// wakes yielded tasks last in, first out: two tasks yielding in turn
/// reordered them). Pushes queued out of the order they were rendered are
/// sorted out by [`GrpcDoor::send_push`].
async fn write_pushes(door: Weak<GrpcDoor>, mut queue: mpsc::UnboundedReceiver<PushBatch>) {
    let mut queued = 0;
    while let Some(batch) = queue.recv().await {
        let Some(door) = door.upgrade() else {
            return;
        };
        for push in &batch.pushes {
            door.send_push(&batch.service, push);
            queued += 1;
            if queued == PUSHES_BETWEEN_WRITES {
                queued = 0;
                tokio::task::yield_now().await;
            }
        }
        // An empty queue gives the thread back anyway (`recv` waits).
    }
}

/// One subscribed connection, with the clusters it asked for.
#[derive(Clone)]
struct Subscriber {
    conn: Arc<Connection>,
    /// The `clusters` parameter as given.
    clusters: Arc<str>,
    /// What it has been pushed: kept when it subscribes again, gone when it
    /// unsubscribes or its connection closes.
    figures: Arc<SubscriberFigures>,
}

/// Who is subscribed to what, and the pushes waiting for their window.
pub struct PushHub {
    by_service: DashMap<ServiceKey, HashMap<Arc<str>, Subscriber>, FastHash>,
    window: MergeWindow,
}

impl PushHub {
    /// A hub whose pushes wait `window` for more changes; the receiving end
    /// is for the door's push task (`run_pushes`).
    pub fn new(window: Duration) -> (PushHub, DuePushes) {
        let (window, due) = MergeWindow::new(window);
        let hub = PushHub {
            by_service: DashMap::default(),
            window,
        };
        (hub, due)
    }

    /// Subscribes `conn` to `service` (again: the clusters are replaced).
    /// False if the connection is no longer registered.
    pub fn subscribe(&self, conn: &Arc<Connection>, service: &ServiceKey, clusters: &str) -> bool {
        let mut holdings = conn.holdings();
        // Checked under the holdings' lock, which a release takes to drop
        // the subscriptions: a subscription is never left behind a release.
        if conn.is_released() {
            return false;
        }
        holdings.subscriptions.entry(service.clone()).or_insert(0);
        let mut subs = self.by_service.entry(service.clone()).or_default();
        let figures = subs
            .get(&conn.id)
            .map(|held| Arc::clone(&held.figures))
            .unwrap_or_default();
        subs.insert(
            Arc::clone(&conn.id),
            Subscriber {
                conn: Arc::clone(conn),
                clusters: clusters.into(),
                figures,
            },
        );
        true
    }

    /// Ends `conn`'s subscription to `service` (and forgets its unacked push).
    pub fn unsubscribe(&self, conn: &Connection, service: &ServiceKey) {
        let mut holdings = conn.holdings();
        holdings.subscriptions.remove(service);
        holdings.unacked.remove(service);
        drop(holdings);
        self.forget(&conn.id, service);
    }

    fn forget(&self, id: &str, service: &ServiceKey) {
        if let Some(mut subs) = self.by_service.get_mut(service) {
            subs.remove(id);
        }
        self.by_service
            .remove_if(service, |_, subs| subs.is_empty());
    }

    /// Drops every subscription of a released connection.
    pub fn drop_connection(&self, conn: &Connection) {
        let services: Vec<ServiceKey> = {
            let mut holdings = conn.holdings();
            holdings.unacked.clear();
            holdings
                .subscriptions
                .drain()
                .map(|(service, _)| service)
                .collect()
        };
        for service in services {
            self.forget(&conn.id, &service);
        }
    }

    fn subscribers(&self, service: &ServiceKey) -> Vec<Subscriber> {
        self.by_service
            .get(service)
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The subscriptions to services that `matches` accepts, as subscriber
    /// listings show them (`service/subscribers`): the connection's address,
    /// its client version as the agent, its application and clusters.
    pub fn subscribers_matching(
        &self,
        matches: impl Fn(&ServiceKey) -> bool,
    ) -> Vec<SubscriberEntry> {
        let mut found = Vec::new();
        for entry in self.by_service.iter().filter(|e| matches(e.key())) {
            for sub in entry.value().values() {
                let client = sub.conn.client();
                found.push(SubscriberEntry {
                    service: entry.key().clone(),
                    addr: sub.conn.remote,
                    agent: client.map(|c| c.version.clone()).unwrap_or_default(),
                    app: client.map(|c| c.app.clone()).unwrap_or_default(),
                    clusters: sub.clusters.to_string(),
                    push: sub.figures.snapshot(),
                });
            }
        }
        found
    }

    /// Subscriptions held, over all connections.
    pub fn count(&self) -> usize {
        self.by_service.iter().map(|s| s.value().len()).sum()
    }
}

/// One push to send: to which connection, the service as it is shown
/// there, and what to count it as.
struct Outgoing {
    conn: Arc<Connection>,
    info: Arc<String>,
    /// The `lastRefTime` in `info`: the door's ref times only grow, so it
    /// orders the pushes of one service by when they were rendered.
    ref_time: i64,
    figures: Arc<SubscriberFigures>,
    sent: Sent,
}

/// Whether a push is a subscriber's first of a change or a resend.
#[derive(Clone, Copy, PartialEq)]
enum Sent {
    First,
    Again,
}

/// The door as the notifier holds it: weakly, since the door holds the
/// naming operations that hold the notifier (a strong reference would keep
/// a stopped node's door alive).
pub struct DoorListener(pub Weak<GrpcDoor>);

impl ChangeListener for DoorListener {
    fn wants(&self, service: &ServiceKey) -> bool {
        self.0
            .upgrade()
            .is_some_and(|door| door.push.by_service.contains_key(service))
    }

    fn on_change(&self, event: &ChangeEvent) {
        if let Some(door) = self.0.upgrade() {
            door.push.window.schedule(&event.service);
        }
    }
}

impl GrpcDoor {
    /// Sends each scheduled push when it falls due, until shutdown.
    pub async fn run_pushes(self: Arc<Self>, mut due: DuePushes, mut shutdown: Shutdown) {
        while let Some(service) = due.next(&self.push.window, &mut shutdown).await {
            self.push_service(&service).await;
        }
    }

    /// Pushes the current state of `service` to every subscriber: rendered
    /// here, once per clusters parameter (or per subscriber, through a push
    /// filter), and sent from the transport thread serving each subscriber
    /// ([`GrpcDoor::send_from_threads`]).
    async fn push_service(self: &Arc<Self>, service: &ServiceKey) {
        let subscribers = self.push.subscribers(service);
        if subscribers.is_empty() {
            return;
        }
        let ref_time = self.ref_times.next();
        // Without a push filter every subscriber with the same clusters is
        // shown the same: rendered once per clusters parameter.
        let filtered = self.filtered(service);
        let mut rendered: HashMap<Arc<str>, Arc<String>> = HashMap::new();
        let mut outgoing = Vec::with_capacity(subscribers.len());
        for sub in subscribers {
            let shaped = if filtered {
                let shown = Shown::subscribed(service, &sub.clusters);
                self.shaped_info(&sub.conn, &shown, ref_time).await
            } else {
                None
            };
            let info = match shaped {
                Some(Shaped::Skip) => continue,
                Some(Shaped::Send(json)) => Arc::new(json),
                None => Arc::clone(rendered.entry(Arc::clone(&sub.clusters)).or_insert_with(
                    || {
                        let shown = Shown::subscribed(service, &sub.clusters);
                        Arc::new(self.plain_info(&shown, ref_time))
                    },
                )),
            };
            outgoing.push(Outgoing {
                conn: sub.conn,
                info,
                ref_time,
                figures: sub.figures,
                sent: Sent::First,
            });
        }
        self.send_from_threads(service, outgoing);
    }

    /// Sends pushes of `service` from the transport thread serving each
    /// connection: one batch per thread, to the thread's writer, which
    /// queues each push on its stream (a wake of a task on the same
    /// thread). Sent from the node's runtime, every push was a wake of
    /// another thread, an `eventfd` write each. A connection not handed to
    /// a thread yet is sent to from here; the pushes for a thread that has
    /// stopped are dropped (the node is going).
    fn send_from_threads(&self, service: &ServiceKey, outgoing: Vec<Outgoing>) {
        let writers = self.push_writers.get().map_or(&[][..], Vec::as_slice);
        let mut by_thread: Vec<Vec<Outgoing>> = std::iter::repeat_with(Vec::new)
            .take(writers.len())
            .collect();
        for push in outgoing {
            match push
                .conn
                .transport_thread()
                .and_then(|i| by_thread.get_mut(i))
            {
                Some(batch) => batch.push(push),
                // Not reached while the door serves: a connection gets its
                // thread before it is served, the writers are set before
                // the first is accepted.
                None => self.send_push(service, &push),
            }
        }
        for (writer, pushes) in writers.iter().zip(by_thread) {
            if !pushes.is_empty() {
                let batch = PushBatch {
                    service: service.clone(),
                    pushes,
                };
                // Only a writer that ended early (its thread stopped or its
                // task failed) refuses: say so, pushes are being lost.
                if writer.send(batch).is_err() {
                    tracing::warn!(%service, "a gRPC transport thread's push writer has ended: pushes dropped");
                }
            }
        }
    }

    /// Sends one push, recorded first as awaiting its ack (so that an ack
    /// always finds it); not sent to a connection that has unsubscribed
    /// meanwhile, nor after a push of the service rendered later (the push
    /// loop and the resend loop render at the same time; a state the later
    /// push did not show is a change, which brings a push of its own).
    fn send_push(&self, service: &ServiceKey, push: &Outgoing) {
        let conn = &push.conn;
        let request_id;
        {
            let mut holdings = conn.holdings();
            match holdings.subscriptions.get_mut(service) {
                Some(last) if *last < push.ref_time => *last = push.ref_time,
                _ => return,
            }
            request_id = self.connections.next_request_id();
            let unacked = UnackedPush {
                request_id,
                sent_at: now_millis(),
                figures: Arc::clone(&push.figures),
            };
            // The key is cloned only for a service's first push on the
            // connection; a newer push replaces the one awaiting its ack.
            match holdings.unacked.get_mut(service) {
                Some(slot) => *slot = unacked,
                None => {
                    holdings.unacked.insert(service.clone(), unacked);
                }
            }
        }
        let mut body = String::with_capacity(push.info.len() + 160);
        body.push_str("{\"namespace\":");
        push_json_str(&mut body, &service.namespace);
        body.push_str(",\"serviceName\":");
        push_json_str(&mut body, &service.name);
        body.push_str(",\"groupName\":");
        push_json_str(&mut body, &service.group);
        body.push_str(",\"serviceInfo\":");
        body.push_str(&push.info);
        body.push_str(",\"requestId\":\"");
        body.push_str(&request_id.to_string());
        body.push_str("\",\"module\":\"naming\",\"headers\":{}}");
        let stats = &self.stats;
        match conn.send(payload("NotifySubscriberRequest", body)) {
            Ok(()) => {
                stats.pushes_sent.fetch_add(1, Ordering::Relaxed);
                match push.sent {
                    Sent::First => push.figures.pushed(),
                    Sent::Again => push.figures.retransmitted(),
                }
            }
            // It stays recorded, and is sent again after the ack timeout.
            Err(SendError::Full) => {
                stats.pushes_failed.fetch_add(1, Ordering::Relaxed);
                push.figures.failed();
            }
            // Gone: a push to a connection that is gone counts as done.
            Err(SendError::Closed) => {
                let mut holdings = conn.holdings();
                if holdings
                    .unacked
                    .get(service)
                    .is_some_and(|p| p.request_id == request_id)
                {
                    holdings.unacked.remove(service);
                }
            }
        }
    }

    /// Records a client's answer to a push; a failed answer leaves the push
    /// to be sent again.
    pub fn acknowledge(&self, conn: &Connection, request_id: &str, ok: bool) {
        let Ok(id) = request_id.parse::<u64>() else {
            self.stats.acks_unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut holdings = conn.holdings();
        let found = holdings
            .unacked
            .values()
            .find(|push| push.request_id == id)
            .map(|push| Arc::clone(&push.figures));
        let Some(figures) = found else {
            self.stats.acks_unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if ok {
            // A connection waits on a few services at most: a scan, and no
            // copy of the key.
            holdings.unacked.retain(|_, push| push.request_id != id);
        }
        drop(holdings);
        if ok {
            self.stats.pushes_acked.fetch_add(1, Ordering::Relaxed);
            figures.acked();
        } else {
            self.stats.pushes_failed.fetch_add(1, Ordering::Relaxed);
            figures.failed();
        }
    }

    /// Sends again, with the state of now, every push unacked for the ack
    /// timeout; until shutdown.
    pub async fn run_resends(self: Arc<Self>, mut shutdown: Shutdown) {
        let timeout = Duration::from_millis(self.config.push_ack_timeout_ms);
        let mut tick = tokio::time::interval(
            (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(1)),
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let cutoff = now_millis() - timeout.as_millis() as i64;
            for conn in self.connections.all() {
                if !conn.is_registered() {
                    continue;
                }
                let overdue: Vec<ServiceKey> = conn
                    .holdings()
                    .unacked
                    .iter()
                    .filter(|(_, push)| push.sent_at <= cutoff)
                    .map(|(service, _)| service.clone())
                    .collect();
                for service in overdue {
                    self.resend(&conn, &service).await;
                }
            }
        }
    }

    async fn resend(self: &Arc<Self>, conn: &Arc<Connection>, service: &ServiceKey) {
        let held = self.push.by_service.get(service).and_then(|s| {
            s.get(&conn.id)
                .map(|sub| (Arc::clone(&sub.clusters), Arc::clone(&sub.figures)))
        });
        let (clusters, figures) = match held {
            Some(c) => c,
            None => {
                // Unsubscribed meanwhile: nothing to deliver.
                conn.holdings().unacked.remove(service);
                return;
            }
        };
        let shown = Shown::subscribed(service, &clusters);
        let ref_time = self.ref_times.next();
        let info = match self.shaped_info(conn, &shown, ref_time).await {
            Some(Shaped::Skip) => {
                conn.holdings().unacked.remove(service);
                return;
            }
            Some(Shaped::Send(json)) => json,
            None => self.plain_info(&shown, ref_time),
        };
        self.stats.pushes_resent.fetch_add(1, Ordering::Relaxed);
        let again = Outgoing {
            conn: Arc::clone(conn),
            info: Arc::new(info),
            ref_time,
            figures,
            sent: Sent::Again,
        };
        self.send_from_threads(service, vec![again]);
    }
}
