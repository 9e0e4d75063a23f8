//! One service as the registry holds it: its definition, its instances, the
//! tombstones of its deleted ephemeral instances, and renderings cached per
//! revision.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::FastHash;
use super::model::{Instance, InstanceId, Lease, Metadata, ServiceKey, ServiceMeta, Version};

/// One service and its instances.
pub struct Service {
    key: ServiceKey,
    state: RwLock<ServiceState>,
    /// Revision of the last change; readers compare it to detect staleness.
    revision: AtomicU64,
    /// Renderings of the current revision (one per type), built on first read.
    views: Mutex<Vec<CachedView>>,
}

struct CachedView {
    kind: TypeId,
    revision: u64,
    view: Arc<dyn Any + Send + Sync>,
}

/// The state behind a service's lock. Readers outside the registry see it
/// through [`Service::read_state`]; only the registry writes it.
pub struct ServiceState {
    /// The service's definition (threshold, metadata, selector, clusters).
    pub meta: ServiceMeta,
    /// Written explicitly (`POST service`) or through the persistent store; an
    /// implicit service (created by an ephemeral registration) may be cleaned up
    /// once it has been empty for a while.
    pub explicit: bool,
    /// Live instances, by id.
    pub instances: HashMap<InstanceId, InstanceSlot, FastHash>,
    /// Deleted ephemeral instances and the version of their deletion, kept
    /// (with the wall-clock ms of the deletion) until they are older than
    /// any partition Distro heals: an older copy arriving later loses to them.
    pub tombstones: HashMap<InstanceId, (Version, i64), FastHash>,
    /// Wall-clock ms since which the service has had no instances.
    pub empty_since: Option<i64>,
    /// False while the service exists only to hold tombstones: it is not
    /// listed to clients until it is defined or gets an instance.
    pub listed: bool,
    /// Set when the service is unlinked from the registry; a writer that still
    /// holds the `Arc` must look the service up again.
    pub(super) removed: bool,
}

/// An instance as stored: the id is the map key, the last beat is atomic so a
/// beat only needs the read lock.
pub struct InstanceSlot {
    /// See [`Instance::weight`].
    pub weight: f64,
    /// See [`Instance::healthy`].
    pub healthy: bool,
    /// See [`Instance::enabled`].
    pub enabled: bool,
    /// See [`Instance::ephemeral`].
    pub ephemeral: bool,
    /// See [`Instance::marked`].
    pub marked: bool,
    /// See [`Instance::metadata`].
    pub metadata: Metadata,
    /// Wall-clock ms of the last beat; a beat stores it under the read lock.
    pub last_beat: AtomicI64,
    /// See [`Instance::version`].
    pub version: Version,
    /// See [`Instance::lease`].
    pub lease: Lease,
}

impl InstanceSlot {
    pub(super) fn from_instance(instance: Instance) -> (InstanceId, InstanceSlot) {
        let slot = InstanceSlot {
            weight: instance.weight,
            healthy: instance.healthy,
            enabled: instance.enabled,
            ephemeral: instance.ephemeral,
            marked: instance.marked,
            metadata: instance.metadata,
            last_beat: AtomicI64::new(instance.last_beat),
            version: instance.version,
            lease: instance.lease,
        };
        (instance.id, slot)
    }

    /// The instance as a value, with the beat time read now.
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
            version: self.version,
            lease: self.lease.clone(),
        }
    }

    /// Wall-clock ms of the last beat (or of the registration).
    pub fn last_beat(&self) -> i64 {
        self.last_beat.load(Ordering::Relaxed)
    }

    /// Takes `new`'s data, keeping the later of the two beat times. Returns
    /// whether anything a client can see changed.
    pub(super) fn replace_with(&mut self, new: InstanceSlot) -> bool {
        let newest = self.last_beat().max(new.last_beat());
        let changed = !self.same_data(&new);
        *self = new;
        self.last_beat.store(newest, Ordering::Relaxed);
        changed
    }

    /// Whether what clients see is the same (beat time, version and lease
    /// are not shown to clients).
    pub(super) fn same_data(&self, other: &InstanceSlot) -> bool {
        self.weight == other.weight
            && self.healthy == other.healthy
            && self.enabled == other.enabled
            && self.ephemeral == other.ephemeral
            && self.marked == other.marked
            && self.metadata == other.metadata
    }
}

impl ServiceState {
    fn new(key: ServiceKey, now: i64) -> ServiceState {
        ServiceState {
            meta: ServiceMeta::new(key),
            explicit: false,
            instances: HashMap::default(),
            tombstones: HashMap::default(),
            empty_since: Some(now),
            listed: false,
            removed: false,
        }
    }

    /// Inserts an instance, or updates the one with its id (its beat time never
    /// goes back). Returns whether anything a client can see changed.
    pub(super) fn upsert(&mut self, instance: Instance, now: i64) -> bool {
        if !self.meta.clusters.contains_key(&instance.id.cluster) {
            self.meta
                .clusters
                .insert(instance.id.cluster.clone(), Default::default());
        }
        if instance.ephemeral {
            self.tombstones.remove(&instance.id);
        }
        let (id, new) = InstanceSlot::from_instance(instance);
        match self.instances.get_mut(&id) {
            Some(slot) => slot.replace_with(new),
            None => {
                self.instances.insert(id, new);
                self.track_emptiness(now);
                true
            }
        }
    }

    /// Removes an instance; returns it if it was there.
    pub(super) fn take(&mut self, id: &InstanceId, now: i64) -> Option<InstanceSlot> {
        let slot = self.instances.remove(id)?;
        self.track_emptiness(now);
        Some(slot)
    }

    /// Keeps `empty_since` and `listed` true to the instances: set when the
    /// last one goes, cleared when one arrives.
    pub(super) fn track_emptiness(&mut self, now: i64) {
        match (self.instances.is_empty(), self.empty_since) {
            (true, None) => self.empty_since = Some(now),
            (false, Some(_)) => self.empty_since = None,
            _ => {}
        }
        self.listed |= !self.instances.is_empty() || self.explicit;
    }

    /// The newest version this node knows of an ephemeral instance: its live
    /// copy's or its tombstone's.
    pub(super) fn known_version(&self, id: &InstanceId) -> Version {
        let live = self
            .instances
            .get(id)
            .filter(|slot| slot.ephemeral)
            .map_or(Version::ZERO, |slot| slot.version);
        let dead = self.tombstones.get(id).map_or(Version::ZERO, |(v, _)| *v);
        live.max(dead)
    }
}

impl Service {
    pub(super) fn new(key: ServiceKey, now: i64) -> Self {
        Service {
            state: RwLock::new(ServiceState::new(key.clone(), now)),
            key,
            revision: AtomicU64::new(0),
            views: Mutex::new(Vec::new()),
        }
    }

    /// The service's namespace, group and name.
    pub fn key(&self) -> &ServiceKey {
        &self.key
    }

    /// Counts the service's changes; a cached rendering is valid while this is unchanged.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Instances currently held (healthy or not, enabled or not).
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

    /// Whether clients see this service (see [`ServiceState::listed`]).
    pub fn is_listed(&self) -> bool {
        self.read_state().listed
    }

    /// Takes the read lock. Hold it briefly: writers of this service wait on it.
    pub fn read_state(&self) -> RwLockReadGuard<'_, ServiceState> {
        // A poisoned lock means a panic while writing plain data; the data is
        // still consistent at field level, so keep serving it.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write_state(&self) -> RwLockWriteGuard<'_, ServiceState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Called with the write lock held, so readers that see the new revision
    /// also see the new state.
    pub(super) fn mark_changed(&self, revision: u64, _state: &mut ServiceState) {
        self.revision.store(revision, Ordering::Release);
    }

    /// The rendering of type `T` of the current revision, built by `build` if
    /// none is cached for it. Each front door caches its own rendering (the v1
    /// JSON of `instance/list`, the v2 `ServiceInfo`); `build` gets the state
    /// and the revision it renders.
    pub fn cached_view<T: Any + Send + Sync>(
        &self,
        build: impl FnOnce(&ServiceState, u64) -> T,
    ) -> Arc<T> {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        let state = self.read_state();
        let revision = self.revision();
        let kind = TypeId::of::<T>();
        let cached = views
            .iter()
            .find(|v| v.kind == kind && v.revision == revision)
            .and_then(|v| Arc::clone(&v.view).downcast::<T>().ok());
        if let Some(view) = cached {
            return view;
        }
        let view = Arc::new(build(&state, revision));
        views.retain(|v| v.kind != kind);
        views.push(CachedView {
            kind,
            revision,
            view: Arc::clone(&view) as Arc<dyn Any + Send + Sync>,
        });
        view
    }
}
