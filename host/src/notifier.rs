//! The change notifier: one coalescing queue of change events, delivered to
//! listeners off the write path (the seed's `Notifier#addTask`/`run`).
//!
//! A write only marks its service as changed. If the service is already
//! pending, nothing is queued twice: the listener later sees the state as it is
//! when the event is delivered, so a burst of writes to one service becomes one
//! event. Listeners (UDP push, plugins) read whatever they need from the
//! registry at delivery time.
//!
//! A change made of several writes (a gRPC connection replacing its
//! publication: the new instances registered, then the old ones removed)
//! holds its service's delivery until it is complete ([`Notifier::hold`]),
//! so listeners see its end state once, not the state between its writes
//! (Nacos 2.x replaces a client's publication as one change).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::registry::model::ServiceKey;
use crate::registry::{FastHash, Registry};
use crate::shutdown::Shutdown;

/// What kinds of change a coalesced event carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeKinds {
    /// An instance was added, removed or changed (including health).
    pub instances: bool,
    /// The service definition (threshold, metadata, selector) changed.
    pub service: bool,
    /// The service itself was removed.
    pub removed: bool,
}

impl ChangeKinds {
    /// Instances changed.
    pub const INSTANCES: ChangeKinds = ChangeKinds {
        instances: true,
        service: false,
        removed: false,
    };
    /// The service definition changed.
    pub const SERVICE: ChangeKinds = ChangeKinds {
        instances: false,
        service: true,
        removed: false,
    };
    /// The service was removed (with its instances).
    pub const REMOVED: ChangeKinds = ChangeKinds {
        instances: true,
        service: true,
        removed: true,
    };

    fn merge(&mut self, other: ChangeKinds) {
        self.instances |= other.instances;
        self.service |= other.service;
        self.removed |= other.removed;
    }
}

/// One coalesced change, as delivered to listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The service that changed.
    pub service: ServiceKey,
    /// What changed, merged over every write since the last delivery.
    pub kinds: ChangeKinds,
    /// The service's revision at delivery time (0 if it no longer exists).
    pub revision: u64,
}

/// Something that wants to hear about changes. Called on the notifier's task:
/// keep it short, hand heavy work to a queue of your own.
pub trait ChangeListener: Send + Sync + 'static {
    /// Called once per coalesced event, on the notifier's task.
    fn on_change(&self, event: &ChangeEvent);

    /// Whether this listener cares about `service` now. Asked on the write
    /// path before anything is queued, so keep it cheap: a change nobody
    /// wants costs the writer nothing more.
    fn wants(&self, _service: &ServiceKey) -> bool {
        true
    }
}

#[derive(Default)]
struct Pending {
    kinds: HashMap<ServiceKey, ChangeKinds, FastHash>,
    order: VecDeque<ServiceKey>,
    /// Services whose delivery is held, with how many holds each.
    held: HashMap<ServiceKey, usize, FastHash>,
    /// Changes to held services, queued when their last hold ends.
    deferred: HashMap<ServiceKey, ChangeKinds, FastHash>,
}

impl Pending {
    /// Queues `kinds` for `service`: merged into its pending event, or a
    /// new one at the back of the queue.
    fn queue(&mut self, service: &ServiceKey, kinds: ChangeKinds) {
        match self.kinds.get_mut(service) {
            Some(existing) => existing.merge(kinds),
            None => {
                self.kinds.insert(service.clone(), kinds);
                self.order.push_back(service.clone());
            }
        }
    }
}

/// The queue of pending changes and the listeners they go to.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    pending: Mutex<Pending>,
    wake: Notify,
    listeners: RwLock<Vec<Arc<dyn ChangeListener>>>,
    /// Notifiers of their own pace that hear every change as it is made.
    relays: RwLock<Vec<Notifier>>,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier {
    /// A notifier with no listeners; nothing is delivered until it runs.
    pub fn new() -> Self {
        Notifier {
            inner: Arc::new(Inner {
                pending: Mutex::new(Pending::default()),
                wake: Notify::new(),
                listeners: RwLock::new(Vec::new()),
                relays: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Adds `listener`; it hears events delivered from now on.
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.inner
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    /// Passes every change, as it is made, to `downstream`: a notifier with
    /// its own listeners and its own pace (see [`Notifier::run_paced`]). The
    /// change skips this notifier's queue, so a writer pays for one queue
    /// entry, not two, and nothing here waits for the downstream's rounds.
    pub fn relay_to(&self, downstream: Notifier) {
        self.inner
            .relays
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(downstream);
    }

    /// Marks a service as changed. Cheap, never blocks on listeners; when no
    /// listener wants the service it does nothing at all.
    pub fn notify(&self, service: &ServiceKey, kinds: ChangeKinds) {
        for relay in self
            .inner
            .relays
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            relay.notify(service, kinds);
        }
        let wanted = self
            .inner
            .listeners
            .read()
            .map(|l| l.iter().any(|listener| listener.wants(service)))
            .unwrap_or(true);
        if !wanted {
            return;
        }
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.held.contains_key(service) {
            pending
                .deferred
                .entry(service.clone())
                .or_default()
                .merge(kinds);
            return;
        }
        pending.queue(service, kinds);
        drop(pending);
        self.inner.wake.notify_one();
    }

    /// Holds the delivery of `service`'s changes until the returned guard
    /// is dropped: changes made meanwhile are queued then, as one event.
    /// Holds nest; a change pending before the hold is delivered as usual.
    /// Relays ([`Notifier::relay_to`]) are not held: they hear each change
    /// as it is made, at their own pace.
    pub fn hold(&self, service: &ServiceKey) -> DeliveryHold {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.held.entry(service.clone()).or_default() += 1;
        DeliveryHold {
            notifier: self.clone(),
            service: service.clone(),
        }
    }

    /// Ends one hold of `service`; after its last, what was deferred is
    /// queued and the delivery task woken.
    fn release(&self, service: &ServiceKey) {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(holds) = pending.held.get_mut(service) else {
            return;
        };
        *holds -= 1;
        if *holds > 0 {
            return;
        }
        pending.held.remove(service);
        let Some(kinds) = pending.deferred.remove(service) else {
            return;
        };
        pending.queue(service, kinds);
        drop(pending);
        self.inner.wake.notify_one();
    }

    /// Number of services waiting for delivery.
    pub fn pending(&self) -> usize {
        self.inner
            .pending
            .lock()
            .map(|p| p.order.len())
            .unwrap_or(0)
    }

    fn pop(&self) -> Option<(ServiceKey, ChangeKinds)> {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = pending.order.pop_front()?;
        let kinds = pending.kinds.remove(&key).unwrap_or_default();
        Some((key, kinds))
    }

    /// Delivers pending events until shutdown.
    pub async fn run(self, registry: Arc<Registry>, shutdown: Shutdown) {
        self.run_paced(registry, Pace::EAGER, shutdown).await;
    }

    /// Like [`Notifier::run`], paced: after a delivery round it rests at least
    /// `pace.window` (changes to one service within it are delivered once,
    /// with the final state) and long enough that delivering takes at most
    /// `pace.busy_share` of the time. A slow listener then costs the node a
    /// bounded share of one core; under load its events are coalesced more,
    /// never queued without bound (at most one pending entry per service).
    pub async fn run_paced(self, registry: Arc<Registry>, pace: Pace, mut shutdown: Shutdown) {
        loop {
            let started = std::time::Instant::now();
            let cpu_before = thread_cpu_time();
            // Deliver what is pending now; what arrives meanwhile waits for the next round.
            for _ in 0..self.pending() {
                let Some((service, kinds)) = self.pop() else {
                    break;
                };
                let revision = registry.service(&service).map_or(0, |s| s.revision());
                let event = ChangeEvent {
                    service,
                    kinds,
                    revision,
                };
                let listeners = self
                    .inner
                    .listeners
                    .read()
                    .map(|l| l.clone())
                    .unwrap_or_default();
                for listener in listeners {
                    listener.on_change(&event);
                }
            }
            // CPU time of this round on this thread (the plugin listeners
            // have a thread of their own): a listener waiting on its webhook
            // costs no CPU and is not paced for it. Wall time where the
            // kernel does not say.
            let busy = match (cpu_before, thread_cpu_time()) {
                (Some(before), Some(after)) => after.saturating_sub(before),
                _ => started.elapsed(),
            };
            let rest = pace.rest_after(busy);
            if self.pending() == 0 {
                tokio::select! {
                    _ = self.inner.wake.notified() => {}
                    _ = shutdown.recv() => return,
                }
            }
            if !rest.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(rest) => {}
                    _ = shutdown.recv() => return,
                }
            }
        }
    }
}

/// A hold on the delivery of one service's changes ([`Notifier::hold`]),
/// released when dropped.
pub struct DeliveryHold {
    notifier: Notifier,
    service: ServiceKey,
}

impl Drop for DeliveryHold {
    fn drop(&mut self) {
        self.notifier.release(&self.service);
    }
}

/// CPU time the calling thread has used (Linux: `/proc/thread-self/schedstat`,
/// nanoseconds on the CPU); `None` where that is not available.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// How a notifier paces its deliveries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Least rest between delivery rounds.
    pub window: Duration,
    /// Largest share of one core's CPU time spent delivering, in (0, 1].
    pub busy_share: f64,
}

impl Pace {
    /// Deliver as soon as anything is pending.
    pub const EAGER: Pace = Pace {
        window: Duration::ZERO,
        busy_share: 1.0,
    };

    /// The rest after a round that used `busy` of CPU time.
    pub fn rest_after(&self, busy: Duration) -> Duration {
        let share = self.busy_share.clamp(0.01, 1.0);
        let keep_share = busy.mul_f64(1.0 / share - 1.0);
        keep_share.max(self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Recorder(Mutex<Vec<ChangeEvent>>);

    impl ChangeListener for Recorder {
        fn on_change(&self, event: &ChangeEvent) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(event.clone());
        }
    }

    fn key(name: &str) -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", name)
    }

    #[test]
    fn pace_rests_for_the_window_and_keeps_the_busy_share() {
        let pace = Pace {
            window: Duration::from_millis(50),
            busy_share: 0.1,
        };
        // A short round rests the window; a long one nine times its length.
        assert_eq!(
            pace.rest_after(Duration::from_millis(1)),
            Duration::from_millis(50)
        );
        let rest = pace.rest_after(Duration::from_millis(100));
        assert!((rest.as_secs_f64() - 0.9).abs() < 1e-6, "{rest:?}");
        assert_eq!(
            Pace::EAGER.rest_after(Duration::from_secs(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn thread_cpu_time_counts_work_not_waiting() {
        let Some(before) = thread_cpu_time() else {
            return; // not Linux: the notifier falls back to wall time
        };
        std::thread::sleep(Duration::from_millis(50));
        let slept = thread_cpu_time().expect("still readable");
        let mut x = 0u64;
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spun = thread_cpu_time().expect("still readable");
        assert!(
            slept - before < Duration::from_millis(25),
            "sleeping counted {:?}",
            slept - before
        );
        assert!(
            spun - slept >= Duration::from_millis(10),
            "spinning counted {:?}",
            spun - slept
        );
    }

    #[test]
    fn pending_service_is_queued_once_and_kinds_merge() {
        let notifier = Notifier::new();
        notifier.listen(Arc::new(Recorder(Mutex::new(Vec::new()))));
        for _ in 0..100 {
            notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        }
        notifier.notify(&key("b"), ChangeKinds::INSTANCES);
        notifier.notify(&key("a"), ChangeKinds::SERVICE);
        assert_eq!(notifier.pending(), 2);
        let (first, kinds) = notifier.pop().expect("a is pending");
        assert_eq!(first, key("a"));
        assert!(kinds.instances && kinds.service && !kinds.removed);
        assert_eq!(notifier.pop().map(|p| p.0), Some(key("b")));
        assert_eq!(notifier.pop(), None);
    }

    #[test]
    fn a_held_service_is_queued_once_when_its_last_hold_ends() {
        let notifier = Notifier::new();
        notifier.listen(Arc::new(Recorder(Mutex::new(Vec::new()))));
        let outer = notifier.hold(&key("a"));
        let inner = notifier.hold(&key("a"));
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        notifier.notify(&key("b"), ChangeKinds::INSTANCES);
        notifier.notify(&key("a"), ChangeKinds::SERVICE);
        // Only the service that is not held is up for delivery.
        assert_eq!(notifier.pop().map(|p| p.0), Some(key("b")));
        assert_eq!(notifier.pop(), None);
        drop(inner);
        assert_eq!(notifier.pop(), None, "one hold is left");
        drop(outer);
        let (service, kinds) = notifier.pop().expect("released with its changes");
        assert_eq!(service, key("a"));
        assert!(kinds.instances && kinds.service && !kinds.removed);
        assert_eq!(notifier.pop(), None);
        // No hold left: a change goes straight to the queue again.
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        assert_eq!(notifier.pending(), 1);
    }

    #[test]
    fn a_hold_without_changes_queues_nothing() {
        let notifier = Notifier::new();
        notifier.listen(Arc::new(Recorder(Mutex::new(Vec::new()))));
        drop(notifier.hold(&key("a")));
        assert_eq!(notifier.pending(), 0);
    }

    #[test]
    fn without_listeners_nothing_is_queued() {
        let notifier = Notifier::new();
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        assert_eq!(notifier.pending(), 0);
    }

    struct WantsNothing;

    impl ChangeListener for WantsNothing {
        fn on_change(&self, _event: &ChangeEvent) {}
        fn wants(&self, _service: &ServiceKey) -> bool {
            false
        }
    }

    #[test]
    fn changes_nobody_wants_are_not_queued() {
        let notifier = Notifier::new();
        notifier.listen(Arc::new(WantsNothing));
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        assert_eq!(notifier.pending(), 0);
        notifier.listen(Arc::new(Recorder(Mutex::new(Vec::new()))));
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        assert_eq!(notifier.pending(), 1);
    }

    #[test]
    fn a_relay_hears_each_change_without_queuing_it_upstream() {
        let upstream = Notifier::new();
        upstream.listen(Arc::new(WantsNothing));
        let relay = Notifier::new();
        relay.listen(Arc::new(Recorder(Mutex::new(Vec::new()))));
        upstream.relay_to(relay.clone());
        upstream.notify(&key("a"), ChangeKinds::INSTANCES);
        upstream.notify(&key("a"), ChangeKinds::SERVICE);
        assert_eq!(upstream.pending(), 0);
        assert_eq!(relay.pending(), 1);
        let (service, kinds) = relay.pop().expect("a is pending on the relay");
        assert_eq!(service, key("a"));
        assert!(kinds.instances && kinds.service);
    }

    #[tokio::test]
    async fn events_are_delivered_off_the_write_path() {
        let notifier = Notifier::new();
        let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
        notifier.listen(recorder.clone());
        let (trigger, shutdown) = crate::shutdown::channel();
        let task = tokio::spawn(notifier.clone().run(Arc::new(Registry::new()), shutdown));
        notifier.notify(&key("a"), ChangeKinds::INSTANCES);
        let delivered = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if !recorder
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(delivered.is_ok(), "event not delivered within 5 s");
        trigger.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        let events = recorder.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].service, key("a"));
        assert_eq!(events[0].revision, 0);
    }
}
