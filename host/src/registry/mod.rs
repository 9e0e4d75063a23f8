//! The live registry: every service this node knows, with its instances.
//!
//! A leaf: it imports nothing of the rest of the node, and what it needs to
//! know of the world (the time, the writing member) comes in as arguments.
//!
//! - [`model`]: services, clusters, instances, their keys and versions.
//! - [`service`]: one service behind its lock, with renderings cached per revision.
//! - [`feed`]: what happened to instances and why, for operators.
//! - [`replica`]: ephemeral instances as replicas — versioned writes,
//!   tombstones, the per-instance merge of peers' copies.
//!
//! The consistency stores are the only writers, so every write has already
//! been routed, logged or replicated as its kind of data requires when it
//! lands here. Readers (front doors, the beat checker, listeners) get copies
//! and never hold a lock across an await.
//!
//! Each service sits behind its own lock, so writes to different services
//! never contend; a write to one service is O(1) in the number of its
//! instances.

pub mod feed;
pub mod model;
pub mod replica;
pub mod service;
pub mod write;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use model::{
    Instance, InstanceId, META_BEAT_INTERVAL, NamespaceMeta, ServiceKey, ServiceMeta,
    metadata_millis,
};
pub use replica::{ServiceRecords, Tombstone, Written};
pub use service::{InstanceSlot, Service, ServiceState};
pub use write::{Key, Record, Write};

/// The hasher of the registry's maps: fast, and seeded per process so clients
/// cannot aim collisions at it.
pub type FastHash = foldhash::fast::RandomState;

/// All services of this node, in every namespace.
#[derive(Default)]
pub struct Registry {
    services: DashMap<ServiceKey, Arc<Service>, FastHash>,
    /// Source of revisions: every change to any service takes the next one, so a
    /// revision never repeats, even for a service that was removed and re-created.
    revisions: AtomicU64,
    /// Whether deletions of ephemeral instances leave tombstones: only a
    /// replicated registry (a cluster member) needs them.
    keeps_tombstones: bool,
    /// What happened to instances and why, recorded by whoever decided it.
    feed: feed::ChangeFeed,
    /// Namespaces with a record of their own, by id (few; read by the
    /// console, written by operators).
    namespaces: RwLock<BTreeMap<String, NamespaceMeta>>,
}

/// What a beat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatOutcome {
    /// The instance's health as the beat found it (the beat is judged after).
    pub healthy: bool,
    /// Whether an operator fixed the health (see [`model::Instance::marked`]).
    pub marked: bool,
    /// Whether the instance is ephemeral (beats only keep ephemeral ones alive).
    pub ephemeral: bool,
    /// The instance's own beat interval (metadata `preserved.heart.beat.interval`).
    pub beat_interval: Option<u64>,
}

impl Registry {
    /// The registry of a standalone node: deletions leave no tombstones.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry of a cluster member: deletions of ephemeral instances
    /// leave tombstones that replicas merge against (see [`replica`]).
    pub fn replicated() -> Self {
        Registry {
            keeps_tombstones: true,
            ..Self::default()
        }
    }

    /// The change feed: what happened to instances here, and why.
    pub fn feed(&self) -> &feed::ChangeFeed {
        &self.feed
    }

    /// The live service under `key`, if the registry holds it (listed or not).
    pub fn service(&self, key: &ServiceKey) -> Option<Arc<Service>> {
        self.services.get(key).map(|s| Arc::clone(s.value()))
    }

    /// How many services clients see.
    pub fn service_count(&self) -> usize {
        self.services.iter().filter(|s| s.is_listed()).count()
    }

    /// Every service, for periodic scans (beat checks, metrics, Distro),
    /// including those that only hold tombstones.
    pub fn services(&self) -> Vec<Arc<Service>> {
        self.services
            .iter()
            .map(|s| Arc::clone(s.value()))
            .collect()
    }

    /// Names of the services clients see in one namespace and group, sorted.
    pub fn service_names(&self, namespace: &str, group: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .iter()
            .filter(|s| s.key().namespace == namespace && s.key().group == group)
            .filter(|s| s.is_listed())
            .map(|s| s.key().name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Instances across every service, for metrics (walks all services).
    pub fn instance_count(&self) -> usize {
        self.services
            .iter()
            .map(|s| s.value().instance_count())
            .sum()
    }

    fn next_revision(&self) -> u64 {
        self.revisions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Runs `write` on the service's state under its write lock, creating the
    /// service (implicitly, at `now`) if needed. When `write` reports a
    /// visible change, the service takes a new revision, which is returned.
    /// Returns `None` without creating anything when `create` is false and the
    /// service does not exist.
    fn write_service(
        &self,
        key: &ServiceKey,
        create: bool,
        now: i64,
        write: impl FnOnce(&mut ServiceState) -> bool,
    ) -> Option<u64> {
        let mut write = Some(write);
        loop {
            let service = match self.service(key) {
                Some(s) => s,
                None if create => Arc::clone(
                    self.services
                        .entry(key.clone())
                        .or_insert_with(|| Arc::new(Service::new(key.clone(), now)))
                        .value(),
                ),
                None => return None,
            };
            let mut state = service.write_state();
            if state.removed {
                // Unlinked between our lookup and the lock: look up again.
                continue;
            }
            let write = write.take()?;
            if !write(&mut state) {
                return None;
            }
            let revision = self.next_revision();
            service.mark_changed(revision, &mut state);
            return Some(revision);
        }
    }

    /// Inserts or replaces an instance as its store decided it (persistent
    /// instances from their log; ephemeral ones go through
    /// [`Registry::put_ephemeral`]). Returns the new revision if anything a
    /// client can see changed (a repeated identical write only refreshes the
    /// beat time and returns `None`).
    pub fn apply_put_instance(
        &self,
        service: &ServiceKey,
        instance: Instance,
        now: i64,
    ) -> Option<u64> {
        self.write_service(service, true, now, |state| state.upsert(instance, now))
    }

    /// Replaces an instance only if one with its id (and kind) exists; returns
    /// the new revision if anything a client can see changed.
    pub fn apply_update_instance(
        &self,
        service: &ServiceKey,
        instance: Instance,
        now: i64,
    ) -> Option<u64> {
        self.write_service(service, false, now, |state| {
            let exists = state
                .instances
                .get(&instance.id)
                .is_some_and(|slot| slot.ephemeral == instance.ephemeral);
            exists && state.upsert(instance, now)
        })
    }

    /// Removes an instance as its store decided it; returns the new revision
    /// if it existed.
    pub fn apply_remove_instance(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        now: i64,
    ) -> Option<u64> {
        self.write_service(service, false, now, |state| state.take(id, now).is_some())
    }

    /// Creates or replaces a service definition; returns the new revision.
    pub fn apply_put_service(&self, meta: ServiceMeta, now: i64) -> Option<u64> {
        let key = meta.key.clone();
        self.write_service(&key, true, now, |state| {
            state.meta = meta;
            state.explicit = true;
            state.listed = true;
            true
        })
    }

    /// Unlinks a service with everything in it; returns the revision of the removal.
    pub fn apply_remove_service(&self, key: &ServiceKey) -> Option<u64> {
        let (_, service) = self.services.remove(key)?;
        let mut state = service.write_state();
        state.removed = true;
        let revision = self.next_revision();
        service.mark_changed(revision, &mut state);
        Some(revision)
    }

    /// Creates or replaces a namespace's record; returns a new revision
    /// unless the record was already exactly this.
    pub fn apply_put_namespace(&self, meta: NamespaceMeta) -> Option<u64> {
        let mut held = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        if held.get(&meta.id) == Some(&meta) {
            return None;
        }
        held.insert(meta.id.clone(), meta);
        Some(self.next_revision())
    }

    /// Replaces a namespace's record only if it has one; returns a new
    /// revision if it changed.
    pub fn apply_update_namespace(&self, meta: NamespaceMeta) -> Option<u64> {
        let mut held = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let record = held.get_mut(&meta.id)?;
        if *record == meta {
            return None;
        }
        *record = meta;
        Some(self.next_revision())
    }

    /// Removes a namespace's record; returns a new revision if it existed.
    /// Services living in the namespace are not touched.
    pub fn apply_remove_namespace(&self, id: &str) -> Option<u64> {
        let mut held = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        held.remove(id)?;
        Some(self.next_revision())
    }

    /// The namespaces with a record of their own, by id.
    pub fn namespaces(&self) -> Vec<NamespaceMeta> {
        let held = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        held.values().cloned().collect()
    }

    /// The record of namespace `id`, if it has one.
    pub fn namespace(&self, id: &str) -> Option<NamespaceMeta> {
        let held = self.namespaces.read().unwrap_or_else(|e| e.into_inner());
        held.get(id).cloned()
    }

    /// How many services clients see in namespace `id` (walks all services).
    pub fn namespace_service_count(&self, id: &str) -> usize {
        self.services
            .iter()
            .filter(|s| s.key().namespace == id && s.is_listed())
            .count()
    }

    /// Unlinks an implicit service that has been empty since before `cutoff`
    /// and holds no tombstones. Returns whether it was removed.
    pub fn remove_if_idle(&self, key: &ServiceKey, cutoff: i64) -> bool {
        self.services
            .remove_if(key, |_, service| {
                let mut state = service.write_state();
                let idle = !state.explicit
                    && state.instances.is_empty()
                    && state.tombstones.is_empty()
                    && state.empty_since.is_some_and(|t| t < cutoff);
                if idle {
                    state.removed = true;
                }
                idle
            })
            .is_some()
    }

    /// Records a beat: refreshes the instance's beat time under the read lock.
    pub fn touch(&self, service: &ServiceKey, id: &InstanceId, now: i64) -> Option<BeatOutcome> {
        let service = self.service(service)?;
        let state = service.read_state();
        let slot = state.instances.get(id)?;
        slot.last_beat.fetch_max(now, Ordering::Relaxed);
        Some(BeatOutcome {
            healthy: slot.healthy,
            marked: slot.marked,
            ephemeral: slot.ephemeral,
            beat_interval: metadata_millis(&slot.metadata, META_BEAT_INTERVAL),
        })
    }

    /// Whether the instance exists, and if so whether it is ephemeral (cheaper
    /// than [`Registry::instance`]: nothing is cloned).
    pub fn instance_kind(&self, service: &ServiceKey, id: &InstanceId) -> Option<bool> {
        let service = self.service(service)?;
        let state = service.read_state();
        state.instances.get(id).map(|slot| slot.ephemeral)
    }

    /// A copy of one instance, or `None` when the service or instance is absent.
    pub fn instance(&self, service: &ServiceKey, id: &InstanceId) -> Option<Instance> {
        self.with_instance(service, id, |slot| slot.to_instance(id))
    }

    /// `read` applied to one instance's slot under its service's read lock,
    /// without copying the instance; `None` when the service or the
    /// instance is absent.
    pub fn with_instance<R>(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        read: impl FnOnce(&InstanceSlot) -> R,
    ) -> Option<R> {
        let service = self.service(service)?;
        let state = service.read_state();
        state.instances.get(id).map(read)
    }

    /// A copy of a service's definition, or `None` when the service is absent.
    pub fn service_meta(&self, key: &ServiceKey) -> Option<ServiceMeta> {
        self.service(key).map(|s| s.read_state().meta.clone())
    }

    /// Whether a service is defined explicitly (`POST service`, or a
    /// persistent service), rather than created by a registration.
    pub fn is_explicit(&self, key: &ServiceKey) -> bool {
        self.service(key).is_some_and(|s| s.read_state().explicit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(ip: &str, port: u16) -> Instance {
        Instance {
            ephemeral: false,
            ..Instance::for_test(ip, port, 100)
        }
    }

    fn key() -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", "svc")
    }

    #[test]
    fn identical_put_is_not_a_change_but_refreshes_beat() {
        let registry = Registry::new();
        assert!(
            registry
                .apply_put_instance(&key(), instance("1.1.1.1", 80), 0)
                .is_some()
        );
        let mut again = instance("1.1.1.1", 80);
        again.last_beat = 500;
        assert_eq!(registry.apply_put_instance(&key(), again, 0), None);
        let stored = registry.instance(&key(), &InstanceId::new("DEFAULT", "1.1.1.1", 80));
        assert_eq!(stored.map(|i| i.last_beat), Some(500));
    }

    #[test]
    fn an_older_beat_time_never_rewinds() {
        let registry = Registry::new();
        registry.apply_put_instance(&key(), instance("1.1.1.1", 80), 0);
        let id = InstanceId::new("DEFAULT", "1.1.1.1", 80);
        registry.touch(&key(), &id, 900);
        let mut unhealthy = instance("1.1.1.1", 80);
        unhealthy.healthy = false;
        assert!(registry.apply_put_instance(&key(), unhealthy, 0).is_some());
        assert_eq!(
            registry.instance(&key(), &id).map(|i| i.last_beat),
            Some(900)
        );
    }

    #[test]
    fn revisions_increase_across_services_and_recreation() {
        let registry = Registry::new();
        let r1 = registry
            .apply_put_instance(&key(), instance("1.1.1.1", 80), 0)
            .unwrap_or(0);
        let r2 = registry.apply_remove_service(&key()).unwrap_or(0);
        let r3 = registry
            .apply_put_instance(&key(), instance("1.1.1.1", 80), 0)
            .unwrap_or(0);
        assert!(r1 < r2 && r2 < r3, "{r1} {r2} {r3}");
    }

    #[test]
    fn idle_implicit_services_are_removed_explicit_ones_kept() {
        let registry = Registry::new();
        registry.apply_put_instance(&key(), instance("1.1.1.1", 80), 0);
        registry.apply_remove_instance(&key(), &InstanceId::new("DEFAULT", "1.1.1.1", 80), 0);
        assert!(registry.remove_if_idle(&key(), i64::MAX));
        assert!(registry.service(&key()).is_none());

        registry.apply_put_service(ServiceMeta::new(key()), 0);
        assert!(!registry.remove_if_idle(&key(), i64::MAX));
    }
}
