//! The change feed: what happened to instances on this node and why, for
//! operators (the console's feed and live stream; alibaba/nacos#2961,
//! #5480, #11057 ask "when and why did it go down, who changed it").
//!
//! The part of the node that *decides* a change records it, with a typed
//! [`Cause`]: naming (client requests, operator edits, beats), the beat
//! checker (timeouts, health policies) and the prober (TCP/HTTP verdicts).
//! Entries go to a bounded ring (the oldest fall off) and to a broadcast
//! channel that live streams read; a reader that falls behind loses entries
//! and is told so — the writer never waits.
//!
//! The feed also keeps the *overrides*: an operator's edit of an instance's
//! weight or `enabled` lasts until its client registers it again (a
//! registration carries the client's own values and replaces it, as in
//! Nacos, alibaba/nacos#1814), or the instance goes; beats keep it.
//!
//! A leaf like the rest of the registry: the time and the deciding node come
//! in as arguments.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::model::{InstanceId, ServiceKey};

/// How many entries the ring keeps.
pub const FEED_CAPACITY: usize = 4096;
/// How many entries a live reader may fall behind before it is dropped.
pub const LIVE_BUFFER: usize = 256;
/// How many overrides are remembered at most (one per edited instance).
const MAX_OVERRIDES: usize = 100_000;

/// Which front door a client request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    /// The v1 HTTP API (Nacos 1.x clients, scripts).
    Http,
    /// The gRPC door (Nacos 2.x clients).
    Grpc,
}

/// Why a change happened. Serialised as `{"kind": ..., <fields>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Cause {
    /// The instance's client asked for it.
    Client {
        /// The door the request came in by.
        door: Door,
    },
    /// A beat for an instance this node did not hold registered it again.
    BeatOfUnknown,
    /// A beat arrived after the instance had turned unhealthy.
    BeatResumed,
    /// No beat for `silentMs` milliseconds (past the unhealthy or delete timeout).
    #[serde(rename_all = "camelCase")]
    BeatTimeout {
        /// How long the instance had been silent, in ms.
        silent_ms: u64,
    },
    /// A TCP or HTTP probe of a persistent instance decided its health.
    Probe {
        /// `TCP` or `HTTP`.
        check: String,
        /// Whether the probe (or the run of failures) said healthy.
        ok: bool,
    },
    /// A health policy plugin's verdict.
    Policy,
    /// An operator's edit through the open API or the console; `by` is the
    /// signed-in user, `None` with auth off.
    Edit {
        /// Who made the edit.
        by: Option<String>,
    },
    /// The client's gRPC connection closed.
    ConnectionClosed,
}

/// What happened to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum What {
    /// It was added.
    Registered,
    /// It was registered again (its client's fields replace the old ones).
    Reregistered,
    /// It was removed.
    Deregistered,
    /// It turned healthy.
    Healthy,
    /// It turned unhealthy.
    Unhealthy,
    /// Its weight, `enabled` or metadata changed.
    Edited,
}

/// An operator's edit of an instance's weight or `enabled` still in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The weight the edit set.
    pub weight: f64,
    /// The `enabled` the edit set.
    pub enabled: bool,
    /// Who made it (`None`: anonymous, auth off).
    pub by: Option<String>,
    /// When, in ms since the epoch.
    pub at: i64,
}

/// One entry of the feed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    /// Position in the feed, from 1, never repeating.
    pub seq: u64,
    /// When it was decided, in ms since the epoch.
    pub at: i64,
    /// The member that decided it (`ip:port`).
    pub node: String,
    /// The service, `namespace`, `group`, `name`.
    pub service: ServiceKey,
    /// The instance: `ip`, `port`, `cluster`.
    pub instance: InstanceId,
    /// What happened.
    pub what: What,
    /// Why.
    pub cause: Cause,
}

/// The feed of one node (see the module's documentation).
pub struct ChangeFeed {
    ring: Mutex<VecDeque<Change>>,
    seq: AtomicU64,
    node: Mutex<String>,
    live: broadcast::Sender<Change>,
    overrides: Mutex<HashMap<(ServiceKey, InstanceId), Override>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed {
            ring: Mutex::new(VecDeque::with_capacity(FEED_CAPACITY)),
            seq: AtomicU64::new(0),
            node: Mutex::new(String::new()),
            live: broadcast::channel(LIVE_BUFFER).0,
            overrides: Mutex::new(HashMap::new()),
        }
    }
}

impl ChangeFeed {
    /// Names the member entries are decided by (its advertised `ip:port`).
    pub fn set_node(&self, node: String) {
        *self.node.lock().unwrap_or_else(|e| e.into_inner()) = node;
    }

    /// Records one change decided at `at` (ms). Never blocks on readers.
    pub fn record(
        &self,
        at: i64,
        service: &ServiceKey,
        instance: &InstanceId,
        what: What,
        cause: Cause,
    ) {
        self.settle_override(service, instance, what);
        let change = Change {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            at,
            node: self.node.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            service: service.clone(),
            instance: instance.clone(),
            what,
            cause,
        };
        // Copied for live readers only when there are some (a console on
        // the live stream): registrations and beats record here.
        let live = (self.live.receiver_count() > 0).then(|| change.clone());
        {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            if ring.len() == FEED_CAPACITY {
                ring.pop_front();
            }
            ring.push_back(change);
        }
        if let Some(change) = live {
            // A reader gone meanwhile is not an error.
            let _ = self.live.send(change);
        }
    }

    /// Records an operator's edit that set `weight` and `enabled`: it is
    /// shown as an override until the client registers again.
    pub fn record_override(
        &self,
        at: i64,
        service: &ServiceKey,
        instance: &InstanceId,
        weight: f64,
        enabled: bool,
        by: Option<String>,
    ) {
        let mut overrides = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
        let key = (service.clone(), instance.clone());
        if overrides.len() < MAX_OVERRIDES || overrides.contains_key(&key) {
            overrides.insert(
                key,
                Override {
                    weight,
                    enabled,
                    by: by.clone(),
                    at,
                },
            );
        }
        drop(overrides);
        self.record(at, service, instance, What::Edited, Cause::Edit { by });
    }

    fn settle_override(&self, service: &ServiceKey, instance: &InstanceId, what: What) {
        if matches!(
            what,
            What::Registered | What::Reregistered | What::Deregistered
        ) {
            let mut overrides = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
            // Usually none: then no key is built (a copy of the service and
            // instance names per registration).
            if !overrides.is_empty() {
                overrides.remove(&(service.clone(), instance.clone()));
            }
        }
    }

    /// The override in force on an instance, if any.
    pub fn override_of(&self, service: &ServiceKey, instance: &InstanceId) -> Option<Override> {
        self.overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(service.clone(), instance.clone()))
            .cloned()
    }

    /// The overrides in force on the instances `filter` keeps.
    pub fn overrides(
        &self,
        filter: impl Fn(&ServiceKey, &InstanceId) -> bool,
    ) -> Vec<(ServiceKey, InstanceId, Override)> {
        let overrides = self.overrides.lock().unwrap_or_else(|e| e.into_inner());
        overrides
            .iter()
            .filter(|((key, id), _)| filter(key, id))
            .map(|((key, id), o)| (key.clone(), id.clone(), o.clone()))
            .collect()
    }

    /// The newest entries kept by `filter`, newest first, at most `limit`.
    pub fn latest(&self, limit: usize, filter: impl Fn(&Change) -> bool) -> Vec<Change> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter()
            .rev()
            .filter(|c| filter(c))
            .take(limit)
            .cloned()
            .collect()
    }

    /// A live reader: every entry recorded from now on, until it falls
    /// [`LIVE_BUFFER`] entries behind.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.live.subscribe()
    }

    /// How many entries were ever recorded.
    pub fn recorded(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// How many live readers there are.
    pub fn readers(&self) -> usize {
        self.live.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", "orders")
    }

    #[test]
    fn the_ring_keeps_the_newest_and_numbers_them() {
        let feed = ChangeFeed::default();
        let id = InstanceId::new("DEFAULT", "10.0.0.1", 80);
        for at in 0..(FEED_CAPACITY as i64 + 10) {
            feed.record(at, &key(), &id, What::Healthy, Cause::BeatResumed);
        }
        let latest = feed.latest(usize::MAX, |_| true);
        assert_eq!(latest.len(), FEED_CAPACITY);
        assert_eq!(latest[0].seq, FEED_CAPACITY as u64 + 10);
        assert_eq!(latest[0].at, FEED_CAPACITY as i64 + 9);
    }

    #[test]
    fn a_registration_ends_an_override_and_a_beat_does_not() {
        let feed = ChangeFeed::default();
        let id = InstanceId::new("DEFAULT", "10.0.0.1", 80);
        feed.record_override(1, &key(), &id, 0.0, false, Some("ops".into()));
        feed.record(2, &key(), &id, What::Healthy, Cause::BeatResumed);
        assert_eq!(
            feed.override_of(&key(), &id).map(|o| o.enabled),
            Some(false)
        );
        feed.record(
            3,
            &key(),
            &id,
            What::Reregistered,
            Cause::Client { door: Door::Http },
        );
        assert_eq!(feed.override_of(&key(), &id), None);
    }

    #[test]
    fn a_slow_reader_is_told_it_lagged() {
        let feed = ChangeFeed::default();
        let mut reader = feed.subscribe();
        let id = InstanceId::new("DEFAULT", "10.0.0.1", 80);
        for at in 0..(LIVE_BUFFER as i64 + 1) {
            feed.record(at, &key(), &id, What::Healthy, Cause::BeatResumed);
        }
        assert!(matches!(
            reader.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
