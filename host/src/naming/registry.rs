//! The live registry: every service this node knows, with its instances.
//!
//! The consistency stores are the only writers (`apply_*`), so every write has
//! already been routed, logged or replicated as its kind of data requires when
//! it lands here. Readers (the HTTP layer, the beat checker, listeners) get
//! snapshots and never hold a lock across an await.
//!
//! Each service sits behind its own lock, so writes to different services never
//! contend; a write to one service is O(1) in the number of its instances, and
//! the `instance/list` rendering is cached per revision (see [`super::list`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dashmap::DashMap;

use super::list::HostsView;
use super::model::{
    Instance, InstanceId, META_BEAT_INTERVAL, Metadata, ServiceKey, ServiceMeta, metadata_millis,
};

/// The hasher of the registry's maps: fast, and seeded per process so clients
/// cannot aim collisions at it.
pub(crate) type FastHash = foldhash::fast::RandomState;

/// All services of this node, in every namespace.
#[derive(Default)]
pub struct Registry {
    services: DashMap<ServiceKey, Arc<Service>, FastHash>,
    /// Source of revisions: every change to any service takes the next one, so a
    /// revision never repeats, even for a service that was removed and re-created.
    revisions: AtomicU64,
}

/// One service and its instances.
pub struct Service {
    key: ServiceKey,
    state: RwLock<ServiceState>,
    /// Revision of the last change; readers compare it to detect staleness.
    revision: AtomicU64,
    /// The rendered instance list of the current revision, built on first read.
    hosts_view: Mutex<Option<Arc<HostsView>>>,
}

pub(crate) struct ServiceState {
    pub meta: ServiceMeta,
    /// Written explicitly (`POST service`) or through the persistent store; an
    /// implicit service (created by an ephemeral registration) may be cleaned up
    /// once it has been empty for a while.
    pub explicit: bool,
    pub instances: HashMap<InstanceId, InstanceSlot, FastHash>,
    /// Wall-clock ms since which the service has had no instances.
    pub empty_since: Option<i64>,
    /// Version of the service's ephemeral instances as Distro replicates them:
    /// a replica keeps only newer versions (see `consistency::distro`).
    pub ephemeral_version: u64,
    /// Set when the service is unlinked from the registry; a writer that still
    /// holds the `Arc` must look the service up again.
    removed: bool,
}

impl ServiceState {
    /// Inserts an instance, or updates the one with its id (its beat time never
    /// goes back). Returns whether anything a client can see changed.
    fn upsert(&mut self, instance: Instance) -> bool {
        if !self.meta.clusters.contains_key(&instance.id.cluster) {
            self.meta
                .clusters
                .insert(instance.id.cluster.clone(), Default::default());
        }
        let (id, new) = InstanceSlot::from_instance(instance);
        match self.instances.get_mut(&id) {
            Some(slot) => slot.replace_with(new),
            None => {
                self.instances.insert(id, new);
                self.track_emptiness();
                true
            }
        }
    }

    /// Keeps `empty_since` true to the instances: set when the last one goes,
    /// cleared when one arrives.
    fn track_emptiness(&mut self) {
        match (self.instances.is_empty(), self.empty_since) {
            (true, None) => self.empty_since = Some(super::model::now_millis()),
            (false, Some(_)) => self.empty_since = None,
            _ => {}
        }
    }
}

/// An instance as stored: the id is the map key, the last beat is atomic so a
/// beat only needs the read lock.
pub(crate) struct InstanceSlot {
    pub weight: f64,
    pub healthy: bool,
    pub enabled: bool,
    pub ephemeral: bool,
    pub marked: bool,
    pub metadata: Metadata,
    pub last_beat: AtomicI64,
}

impl InstanceSlot {
    fn from_instance(instance: Instance) -> (InstanceId, InstanceSlot) {
        let slot = InstanceSlot {
            weight: instance.weight,
            healthy: instance.healthy,
            enabled: instance.enabled,
            ephemeral: instance.ephemeral,
            marked: instance.marked,
            metadata: instance.metadata,
            last_beat: AtomicI64::new(instance.last_beat),
        };
        (instance.id, slot)
    }

    pub fn to_instance(&self, id: &InstanceId) -> Instance {
        Instance {
            id: id.clone(),
            weight: self.weight,
            healthy: self.healthy,
            enabled: self.enabled,
            ephemeral: self.ephemeral,
            marked: self.marked,
            metadata: self.metadata.clone(),
            last_beat: self.last_beat.load(Ordering::Relaxed),
        }
    }

    /// Takes `new`'s data, keeping the later of the two beat times. Returns
    /// whether anything a client can see changed.
    fn replace_with(&mut self, new: InstanceSlot) -> bool {
        let newest = self
            .last_beat
            .load(Ordering::Relaxed)
            .max(new.last_beat.load(Ordering::Relaxed));
        let changed = !self.same_data(&new);
        *self = new;
        self.last_beat.store(newest, Ordering::Relaxed);
        changed
    }

    /// Whether the replicated data differs (the beat time is not data).
    fn same_data(&self, other: &InstanceSlot) -> bool {
        self.weight == other.weight
            && self.healthy == other.healthy
            && self.enabled == other.enabled
            && self.ephemeral == other.ephemeral
            && self.marked == other.marked
            && self.metadata == other.metadata
    }
}

/// What became of a Distro delta ([`Registry::apply_ephemeral_delta`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// Applied; `changed` when anything a client can see changed.
    Applied { changed: bool },
    /// This node does not hold the delta's base version: nothing applied.
    Stale,
}

/// What a beat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatOutcome {
    pub healthy: bool,
    pub marked: bool,
    pub ephemeral: bool,
    /// The instance's own beat interval (metadata `preserved.heart.beat.interval`).
    pub beat_interval: Option<u64>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn service(&self, key: &ServiceKey) -> Option<Arc<Service>> {
        self.services.get(key).map(|s| Arc::clone(s.value()))
    }

    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Every service, for periodic scans (beat checks, metrics).
    pub fn services(&self) -> Vec<Arc<Service>> {
        self.services
            .iter()
            .map(|s| Arc::clone(s.value()))
            .collect()
    }

    /// Service names of one namespace and group, sorted.
    pub fn service_names(&self, namespace: &str, group: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
            .iter()
            .filter(|s| s.key().namespace == namespace && s.key().group == group)
            .map(|s| s.key().name.clone())
            .collect();
        names.sort_unstable();
        names
    }

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
    /// service (implicitly) if needed. When `write` reports a change, the
    /// service takes a new revision, which is returned. Returns `None` without
    /// creating anything when `create` is false and the service does not exist.
    fn write_service(
        &self,
        key: &ServiceKey,
        create: bool,
        write: impl FnOnce(&mut ServiceState) -> bool,
    ) -> Option<u64> {
        let mut write = Some(write);
        loop {
            let service = match self.service(key) {
                Some(s) => s,
                None if create => Arc::clone(
                    self.services
                        .entry(key.clone())
                        .or_insert_with(|| Arc::new(Service::new(key.clone())))
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

    /// Inserts or replaces an instance. Returns the new revision if anything a
    /// client can see changed (a repeated identical registration only refreshes
    /// the beat time and returns `None`).
    pub fn apply_put_instance(&self, service: &ServiceKey, instance: Instance) -> Option<u64> {
        self.write_service(service, true, |state| state.upsert(instance))
    }

    /// Removes an instance; returns the new revision if it existed.
    pub fn apply_remove_instance(&self, service: &ServiceKey, id: &InstanceId) -> Option<u64> {
        self.write_service(service, false, |state| {
            if state.instances.remove(id).is_none() {
                return false;
            }
            state.track_emptiness();
            true
        })
    }

    /// Creates or replaces a service definition; returns the new revision.
    pub fn apply_put_service(&self, meta: ServiceMeta) -> Option<u64> {
        let key = meta.key.clone();
        self.write_service(&key, true, |state| {
            state.meta = meta;
            state.explicit = true;
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

    /// Unlinks an implicit service that has been empty since before `cutoff`.
    /// Returns whether it was removed.
    pub fn remove_if_idle(&self, key: &ServiceKey, cutoff: i64) -> bool {
        self.services
            .remove_if(key, |_, service| {
                let mut state = service.write_state();
                let idle = !state.explicit
                    && state.instances.is_empty()
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

    pub fn instance(&self, service: &ServiceKey, id: &InstanceId) -> Option<Instance> {
        let service = self.service(service)?;
        let state = service.read_state();
        state.instances.get(id).map(|slot| slot.to_instance(id))
    }

    /// The ephemeral instances of a service (sorted) with their Distro version.
    pub fn ephemeral_instances(&self, key: &ServiceKey) -> Option<(u64, Vec<Instance>)> {
        let service = self.service(key)?;
        let state = service.read_state();
        let mut instances: Vec<Instance> = state
            .instances
            .iter()
            .filter(|(_, slot)| slot.ephemeral)
            .map(|(id, slot)| slot.to_instance(id))
            .collect();
        instances.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Some((state.ephemeral_version, instances))
    }

    /// The current state of some ephemeral instances of a service, for a
    /// Distro delta: the version, the listed ids that exist (as instances) and
    /// the listed ids that are gone. `None` if the service does not exist.
    pub fn ephemeral_changes<'a>(
        &self,
        key: &ServiceKey,
        ids: impl IntoIterator<Item = &'a InstanceId>,
    ) -> Option<(u64, Vec<Instance>, Vec<InstanceId>)> {
        let service = self.service(key)?;
        let state = service.read_state();
        let mut present = Vec::new();
        let mut gone = Vec::new();
        for id in ids {
            match state.instances.get(id) {
                Some(slot) if slot.ephemeral => present.push(slot.to_instance(id)),
                _ => gone.push(id.clone()),
            }
        }
        Some((state.ephemeral_version, present, gone))
    }

    /// Applies a Distro delta: `upserts` and `removed` take the service from
    /// version `base` to `version`. Applied only when this node holds exactly
    /// `base` (otherwise the delta would apply to data it was not computed
    /// from): returns [`DeltaOutcome::Stale`] and changes nothing, and the
    /// sender sends the whole service instead.
    pub fn apply_ephemeral_delta(
        &self,
        key: &ServiceKey,
        base: u64,
        version: u64,
        upserts: Vec<Instance>,
        removed: &[InstanceId],
    ) -> DeltaOutcome {
        let mut outcome = DeltaOutcome::Stale;
        self.write_service(key, false, |state| {
            if state.ephemeral_version != base || version < base {
                return false;
            }
            state.ephemeral_version = version;
            let mut changed = false;
            for id in removed {
                if state.instances.get(id).is_some_and(|slot| slot.ephemeral) {
                    state.instances.remove(id);
                    changed = true;
                }
            }
            for instance in upserts.into_iter().filter(|i| i.ephemeral) {
                changed |= state.upsert(instance);
            }
            state.track_emptiness();
            outcome = DeltaOutcome::Applied { changed };
            changed
        });
        outcome
    }

    /// Raises the ephemeral version of a service after a local write: to
    /// `floor` (a clock reading) or one past the current version, whichever is
    /// larger. Returns the new version (0 if the service does not exist).
    pub fn bump_ephemeral_version(&self, key: &ServiceKey, floor: u64) -> u64 {
        let Some(service) = self.service(key) else {
            return 0;
        };
        let mut state = service.write_state();
        state.ephemeral_version = floor.max(state.ephemeral_version.saturating_add(1));
        state.ephemeral_version
    }

    /// Replaces the ephemeral instances of a service with a replica's copy.
    /// Unless `force`, a copy not newer than what is held is ignored. Beat
    /// times never go backwards. Returns the new revision if anything visible
    /// changed.
    pub fn replace_ephemeral(
        &self,
        key: &ServiceKey,
        version: u64,
        instances: Vec<Instance>,
        force: bool,
    ) -> Option<u64> {
        let create = !instances.is_empty();
        self.write_service(key, create, |state| {
            if !force && version <= state.ephemeral_version {
                return false;
            }
            state.ephemeral_version = version;
            let mut incoming: HashMap<InstanceId, InstanceSlot, FastHash> = instances
                .into_iter()
                .filter(|i| i.ephemeral)
                .map(InstanceSlot::from_instance)
                .collect();
            let mut changed = false;
            state.instances.retain(|id, slot| {
                if !slot.ephemeral {
                    return true;
                }
                match incoming.remove(id) {
                    Some(new) => {
                        changed |= slot.replace_with(new);
                        true
                    }
                    None => {
                        changed = true;
                        false
                    }
                }
            });
            for (id, slot) in incoming {
                state.meta.clusters.entry(id.cluster.clone()).or_default();
                state.instances.insert(id, slot);
                changed = true;
            }
            state.track_emptiness();
            changed
        })
    }

    pub fn service_meta(&self, key: &ServiceKey) -> Option<ServiceMeta> {
        self.service(key).map(|s| s.read_state().meta.clone())
    }
}

impl Service {
    fn new(key: ServiceKey) -> Self {
        Service {
            state: RwLock::new(ServiceState {
                meta: ServiceMeta::new(key.clone()),
                explicit: false,
                instances: HashMap::default(),
                empty_since: Some(super::model::now_millis()),
                ephemeral_version: 0,
                removed: false,
            }),
            key,
            revision: AtomicU64::new(0),
            hosts_view: Mutex::new(None),
        }
    }

    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    pub fn instance_count(&self) -> usize {
        self.read_state().instances.len()
    }

    /// Every instance, in a stable order (cluster, ip, port).
    pub fn instances(&self) -> Vec<Instance> {
        let state = self.read_state();
        let mut all: Vec<Instance> = state
            .instances
            .iter()
            .map(|(id, slot)| slot.to_instance(id))
            .collect();
        all.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, ServiceState> {
        // A poisoned lock means a panic while writing plain data; the data is
        // still consistent at field level, so keep serving it.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, ServiceState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_changed(&self, revision: u64, _state: &mut ServiceState) {
        // Called with the write lock held, so readers that see the new
        // revision also see the new state.
        self.revision.store(revision, Ordering::Release);
    }

    /// The cached rendering of the current revision, built by `build` if stale.
    pub(crate) fn hosts_view(
        &self,
        build: impl FnOnce(&ServiceState) -> HostsView,
    ) -> Arc<HostsView> {
        let mut cached = self.hosts_view.lock().unwrap_or_else(|e| e.into_inner());
        let state = self.read_state();
        let revision = self.revision();
        if let Some(view) = cached.as_ref().filter(|v| v.revision == revision) {
            return Arc::clone(view);
        }
        let view = Arc::new(build(&state));
        *cached = Some(Arc::clone(&view));
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::model::InstanceId;

    fn instance(ip: &str, port: u16) -> Instance {
        Instance {
            id: InstanceId::new("DEFAULT", ip, port),
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            marked: false,
            metadata: Metadata::new(),
            last_beat: 100,
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
                .apply_put_instance(&key(), instance("1.1.1.1", 80))
                .is_some()
        );
        let mut again = instance("1.1.1.1", 80);
        again.last_beat = 500;
        assert_eq!(registry.apply_put_instance(&key(), again), None);
        let stored = registry.instance(&key(), &InstanceId::new("DEFAULT", "1.1.1.1", 80));
        assert_eq!(stored.map(|i| i.last_beat), Some(500));
    }

    #[test]
    fn an_older_beat_time_never_rewinds() {
        let registry = Registry::new();
        registry.apply_put_instance(&key(), instance("1.1.1.1", 80));
        let id = InstanceId::new("DEFAULT", "1.1.1.1", 80);
        registry.touch(&key(), &id, 900);
        let mut unhealthy = instance("1.1.1.1", 80);
        unhealthy.healthy = false;
        assert!(registry.apply_put_instance(&key(), unhealthy).is_some());
        assert_eq!(
            registry.instance(&key(), &id).map(|i| i.last_beat),
            Some(900)
        );
    }

    #[test]
    fn revisions_increase_across_services_and_recreation() {
        let registry = Registry::new();
        let r1 = registry
            .apply_put_instance(&key(), instance("1.1.1.1", 80))
            .unwrap_or(0);
        let r2 = registry.apply_remove_service(&key()).unwrap_or(0);
        let r3 = registry
            .apply_put_instance(&key(), instance("1.1.1.1", 80))
            .unwrap_or(0);
        assert!(r1 < r2 && r2 < r3, "{r1} {r2} {r3}");
    }

    #[test]
    fn idle_implicit_services_are_removed_explicit_ones_kept() {
        let registry = Registry::new();
        registry.apply_put_instance(&key(), instance("1.1.1.1", 80));
        registry.apply_remove_instance(&key(), &InstanceId::new("DEFAULT", "1.1.1.1", 80));
        assert!(registry.remove_if_idle(&key(), i64::MAX));
        assert!(registry.service(&key()).is_none());

        registry.apply_put_service(ServiceMeta::new(key()));
        assert!(!registry.remove_if_idle(&key(), i64::MAX));
    }

    #[test]
    fn a_delta_applies_only_onto_its_base() {
        let registry = Registry::new();
        let a = instance("1.1.1.1", 80);
        let b = instance("2.2.2.2", 80);
        registry.replace_ephemeral(&key(), 10, vec![a.clone(), b.clone()], false);

        // Computed from another version: nothing changes.
        let mut heavier = a.clone();
        heavier.weight = 5.0;
        let stale = registry.apply_ephemeral_delta(
            &key(),
            9,
            11,
            vec![heavier.clone()],
            std::slice::from_ref(&b.id),
        );
        assert_eq!(stale, DeltaOutcome::Stale);
        assert_eq!(
            registry
                .ephemeral_instances(&key())
                .map(|(v, i)| (v, i.len())),
            Some((10, 2))
        );

        // Onto its base: upserts and removals land, the version moves.
        let applied = registry.apply_ephemeral_delta(
            &key(),
            10,
            11,
            vec![heavier.clone()],
            std::slice::from_ref(&b.id),
        );
        assert_eq!(applied, DeltaOutcome::Applied { changed: true });
        let (version, instances) = registry.ephemeral_instances(&key()).unwrap_or_default();
        assert_eq!(version, 11);
        assert_eq!(instances, vec![heavier.clone()]);

        // What the sender reads for the same ids is the same delta.
        let changes = registry.ephemeral_changes(&key(), [&a.id, &b.id]);
        assert_eq!(changes, Some((11, vec![heavier], vec![b.id.clone()])));

        // A service this node does not hold cannot take a delta.
        let other = ServiceKey::new("public", "DEFAULT_GROUP", "absent");
        let absent = registry.apply_ephemeral_delta(&other, 0, 1, vec![a], &[]);
        assert_eq!(absent, DeltaOutcome::Stale);
        assert!(registry.service(&other).is_none());
    }
}
