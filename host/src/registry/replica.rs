//! Ephemeral instances as replicas: versioned writes, tombstones and the
//! per-instance merge that Distro's sync, repair and snapshots end in.
//!
//! Every ephemeral write takes a [`Version`] later than anything this node
//! knows of that instance (its live copy or its tombstone). A deletion leaves
//! a tombstone with its version. A copy from a peer is merged instance by
//! instance: it wins only where it is newer. So:
//! - a whole-service copy never deletes an instance: absence proves nothing,
//!   only a newer tombstone does;
//! - an older copy never brings back an instance deleted later (the
//!   tombstone is newer), and a later registration wins over an older
//!   deletion;
//! - merging is idempotent and order-free: members that saw the same writes
//!   hold the same data, whatever order the messages came in.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::model::{Instance, InstanceId, Lease, ServiceKey, Stamp, Version};
use super::{FastHash, Registry};

/// A deleted ephemeral instance as replicated: its id and the version of the
/// deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The deleted instance.
    pub id: InstanceId,
    /// The version of the deletion: a copy with an older version loses to it.
    pub version: Version,
}

/// Some or all of one service's ephemeral records: live instances and
/// tombstones. What Distro sends, fetches and loads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecords {
    /// The service the records belong to.
    pub service: ServiceKey,
    /// Live ephemeral instances, each with its version.
    pub instances: Vec<Instance>,
    /// Deletions still remembered (see [`Tombstone`]).
    pub tombstones: Vec<Tombstone>,
}

impl ServiceRecords {
    /// What of these records is newer than `theirs` (another member's records
    /// of the same service): instances they lack or hold older, tombstones of
    /// instances they still hold older. `None` if nothing.
    pub fn newer_than(self, theirs: &ServiceRecords) -> Option<ServiceRecords> {
        let mut known: HashMap<&InstanceId, Version, FastHash> = HashMap::default();
        let versions = theirs.instances.iter().map(|i| (&i.id, i.version));
        let deletions = theirs.tombstones.iter().map(|t| (&t.id, t.version));
        for (id, version) in versions.chain(deletions) {
            let at = known.entry(id).or_insert(version);
            *at = (*at).max(version);
        }
        let newer = |id: &InstanceId, version: Version| known.get(id).is_none_or(|v| *v < version);
        let instances: Vec<Instance> = self
            .instances
            .into_iter()
            .filter(|i| newer(&i.id, i.version))
            .collect();
        let tombstones: Vec<Tombstone> = self
            .tombstones
            .into_iter()
            .filter(|t| known.contains_key(&t.id) && newer(&t.id, t.version))
            .collect();
        let newer = !instances.is_empty() || !tombstones.is_empty();
        newer.then_some(ServiceRecords {
            service: self.service,
            instances,
            tombstones,
        })
    }
}

/// What an ephemeral write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The service's new revision, if anything a client can see changed.
    pub revision: Option<u64>,
    /// Whether the replicated record changed (a new version to send peers).
    pub replicate: bool,
}

impl Registry {
    /// Writes an ephemeral instance on this node: it takes a version later
    /// than anything known of it — even when nothing but the beat time
    /// changes, because a client's write is news: it must win over a
    /// deletion some other member acknowledged earlier and has not yet
    /// delivered here (a member cut off before it noticed).
    pub fn put_ephemeral(&self, service: &ServiceKey, instance: Instance, at: Stamp) -> Written {
        self.write_ephemeral(service, instance, at, false)
    }

    /// [`Registry::put_ephemeral`], but only if the instance is here (a
    /// read-modify-write must not bring back an instance deleted meanwhile).
    pub fn update_ephemeral(&self, service: &ServiceKey, instance: Instance, at: Stamp) -> Written {
        self.write_ephemeral(service, instance, at, true)
    }

    /// Both of the above: a persistent instance of the same id is never
    /// overwritten; with `only_if_present` neither is a missing one created.
    fn write_ephemeral(
        &self,
        service: &ServiceKey,
        mut instance: Instance,
        at: Stamp,
        only_if_present: bool,
    ) -> Written {
        let mut replicate = false;
        let revision = self.write_service(service, !only_if_present, at.millis, |state| {
            let allowed = match state.instances.get(&instance.id) {
                Some(slot) => slot.ephemeral,
                None => !only_if_present,
            };
            if !allowed {
                return false;
            }
            instance.version = Version::after(state.known_version(&instance.id), at);
            replicate = true;
            state.upsert(instance, at.millis)
        });
        Written {
            revision,
            replicate,
        }
    }

    /// Deletes an ephemeral instance on this node, leaving a tombstone later
    /// than anything known of it — also when this node never had it, so a
    /// registration still on its way from another member cannot outlive the
    /// deletion the client was told of.
    pub fn remove_ephemeral(&self, service: &ServiceKey, id: &InstanceId, at: Stamp) -> Written {
        if !self.keeps_tombstones {
            return Written {
                revision: self.apply_remove_instance(service, id, at.millis),
                replicate: false,
            };
        }
        let mut replicate = false;
        let revision = self.write_service(service, true, at.millis, |state| {
            if state.instances.get(id).is_some_and(|slot| !slot.ephemeral) {
                return false;
            }
            let version = Version::after(state.known_version(id), at);
            state.tombstones.insert(id.clone(), (version, at.millis));
            replicate = true;
            state.take(id, at.millis).is_some()
        });
        Written {
            revision,
            replicate,
        }
    }

    /// Merges a peer's records of one service, instance by instance: each
    /// record and tombstone wins only over older versions, and a copy whose
    /// lease `alive` says is dead is not taken in. Returns the new revision if
    /// anything a client can see changed.
    pub fn merge_ephemeral(
        &self,
        records: ServiceRecords,
        now: i64,
        alive: impl Fn(&Lease) -> bool,
    ) -> Option<u64> {
        let ServiceRecords {
            service,
            instances,
            tombstones,
        } = records;
        if instances.is_empty() && tombstones.is_empty() {
            return None;
        }
        self.write_service(&service, true, now, |state| {
            let mut changed = false;
            for tombstone in tombstones {
                if tombstone.version <= state.known_version(&tombstone.id)
                    || state
                        .instances
                        .get(&tombstone.id)
                        .is_some_and(|slot| !slot.ephemeral)
                {
                    continue;
                }
                state
                    .tombstones
                    .insert(tombstone.id.clone(), (tombstone.version, now));
                changed |= state.take(&tombstone.id, now).is_some();
            }
            for instance in instances.into_iter().filter(|i| i.ephemeral) {
                let persistent_here = state
                    .instances
                    .get(&instance.id)
                    .is_some_and(|slot| !slot.ephemeral);
                if persistent_here
                    || instance.version <= state.known_version(&instance.id)
                    || !alive(&instance.lease)
                {
                    continue;
                }
                changed |= state.upsert(instance, now);
            }
            changed
        })
    }

    /// This node's records of a service's ephemeral instances: all of them
    /// with every tombstone (`ids` = `None`), or just those named (an id with
    /// neither a copy nor a tombstone here is left out). `None` if the
    /// service does not exist here.
    pub fn ephemeral_records(
        &self,
        service: &ServiceKey,
        ids: Option<&HashSet<InstanceId, FastHash>>,
    ) -> Option<ServiceRecords> {
        let found = self.service(service)?;
        let state = found.read_state();
        let mut records = ServiceRecords {
            service: service.clone(),
            ..ServiceRecords::default()
        };
        let mut add = |id: &InstanceId| {
            if let Some(slot) = state.instances.get(id).filter(|slot| slot.ephemeral) {
                records.instances.push(slot.to_instance(id));
            }
            if let Some((version, _)) = state.tombstones.get(id) {
                records.tombstones.push(Tombstone {
                    id: id.clone(),
                    version: *version,
                });
            }
        };
        match ids {
            // A few named instances (a forwarded write, a delta): looked up,
            // not found by a scan of a service that may hold thousands.
            Some(ids) => ids.iter().for_each(&mut add),
            None => {
                for (id, slot) in &state.instances {
                    if slot.ephemeral {
                        records.instances.push(slot.to_instance(id));
                    }
                }
                for (id, (version, _)) in &state.tombstones {
                    records.tombstones.push(Tombstone {
                        id: id.clone(),
                        version: *version,
                    });
                }
            }
        }
        records.instances.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        records.tombstones.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Some(records)
    }

    /// A checksum of a service's live ephemeral instances and their versions,
    /// equal on members that hold the same writes; 0 for none. Order-free, so
    /// nothing is sorted or copied.
    pub fn ephemeral_checksum(&self, service: &ServiceKey) -> u64 {
        let Some(found) = self.service(service) else {
            return 0;
        };
        let state = found.read_state();
        state
            .instances
            .iter()
            .filter(|(_, slot)| slot.ephemeral)
            .fold(0, |sum, (id, slot)| {
                sum ^ record_hash(service, id, slot.version)
            })
    }

    /// Forgets this replica's copies of instances whose lease `dead` says is
    /// gone — without tombstones: it is not this node's deletion to
    /// replicate (the lease's own node deletes with authority, or is gone).
    /// Returns the services in which something a client sees changed.
    pub fn forget_leased(&self, dead: impl Fn(&Lease) -> bool, now: i64) -> Vec<ServiceKey> {
        let mut changed = Vec::new();
        for service in self.services() {
            let doomed: Vec<InstanceId> = {
                let state = service.read_state();
                state
                    .instances
                    .iter()
                    .filter(|(_, slot)| slot.ephemeral && dead(&slot.lease))
                    .map(|(id, _)| id.clone())
                    .collect()
            };
            if doomed.is_empty() {
                continue;
            }
            let revision = self.write_service(service.key(), false, now, |state| {
                let mut gone = false;
                for id in &doomed {
                    let still_dead = state
                        .instances
                        .get(id)
                        .is_some_and(|slot| slot.ephemeral && dead(&slot.lease));
                    if still_dead {
                        gone |= state.take(id, now).is_some();
                    }
                }
                gone
            });
            if revision.is_some() {
                changed.push(service.key().clone());
            }
        }
        changed
    }

    /// The ids of the ephemeral instances, per service, whose lease `select`
    /// picks (a node's own connections, to announce them again).
    pub fn leased(&self, select: impl Fn(&Lease) -> bool) -> Vec<(ServiceKey, Vec<InstanceId>)> {
        self.services()
            .into_iter()
            .filter_map(|service| {
                let state = service.read_state();
                let ids: Vec<InstanceId> = state
                    .instances
                    .iter()
                    .filter(|(_, slot)| slot.ephemeral && select(&slot.lease))
                    .map(|(id, _)| id.clone())
                    .collect();
                drop(state);
                (!ids.is_empty()).then(|| (service.key().clone(), ids))
            })
            .collect()
    }

    /// Forgets tombstones written before `before` (wall-clock ms); an implicit
    /// service left with neither instances nor tombstones becomes idle.
    /// Returns how many were forgotten.
    pub fn forget_tombstones(&self, before: i64) -> usize {
        let mut forgotten = 0;
        for service in self.services() {
            let mut state = service.write_state();
            let held = state.tombstones.len();
            state.tombstones.retain(|_, (_, at)| *at >= before);
            forgotten += held - state.tombstones.len();
        }
        forgotten
    }
}

/// FNV-1a of one record's identity and version.
fn record_hash(service: &ServiceKey, id: &InstanceId, version: Version) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut write = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    write(service.name.as_bytes());
    write(b"\0");
    write(id.cluster.as_bytes());
    write(b"\0");
    write(id.ip.as_bytes());
    write(&id.port.to_le_bytes());
    write(&version.0.to_le_bytes());
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::Lease;

    fn key() -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", "svc")
    }

    fn instance(ip: &str) -> Instance {
        Instance::for_test(ip, 80, 100)
    }

    fn at(micros: u64, node: u16) -> Stamp {
        Stamp {
            millis: (micros / 1000) as i64,
            micros,
            node,
        }
    }

    fn records(registry: &Registry) -> ServiceRecords {
        registry.ephemeral_records(&key(), None).unwrap_or_default()
    }

    fn listed(registry: &Registry) -> Vec<String> {
        registry
            .service(&key())
            .map(|s| s.instances().into_iter().map(|i| i.id.ip).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_whole_copy_never_deletes_and_an_older_copy_never_resurrects() {
        // Member A holds a and b; B registers c (newer) and deregisters b (newer).
        let a = Registry::replicated();
        a.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        a.put_ephemeral(&key(), instance("2.2.2.2"), at(1_001, 1));
        let b = Registry::replicated();
        b.merge_ephemeral(records(&a), 0, |_| true);
        b.put_ephemeral(&key(), instance("3.3.3.3"), at(2_000, 2));
        b.remove_ephemeral(&key(), &instance("2.2.2.2").id, at(2_001, 2));

        // A's older whole copy reaches B: nothing of B's is lost or undone.
        b.merge_ephemeral(records(&a), 0, |_| true);
        assert_eq!(listed(&b), ["1.1.1.1", "3.3.3.3"]);
        // B's copy reaches A: the deletion and the registration apply.
        a.merge_ephemeral(records(&b), 0, |_| true);
        assert_eq!(listed(&a), ["1.1.1.1", "3.3.3.3"]);
        assert_eq!(a.ephemeral_checksum(&key()), b.ephemeral_checksum(&key()));

        // A registration later than the deletion wins over it.
        a.put_ephemeral(&key(), instance("2.2.2.2"), at(3_000, 1));
        b.merge_ephemeral(records(&a), 0, |_| true);
        assert_eq!(listed(&b), ["1.1.1.1", "2.2.2.2", "3.3.3.3"]);
    }

    #[test]
    fn a_client_writing_again_wins_over_an_older_deletion_from_elsewhere() {
        // Member B (cut off, not knowing it yet) deletes; the client then
        // registers the same instance again through member A, which still
        // holds it unchanged.
        let a = Registry::replicated();
        a.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        let b = Registry::replicated();
        b.merge_ephemeral(records(&a), 0, |_| true);
        b.remove_ephemeral(&key(), &instance("1.1.1.1").id, at(2_000, 2));
        a.put_ephemeral(&key(), instance("1.1.1.1"), at(3_000, 1));
        // The heal: the later write wins on both.
        a.merge_ephemeral(records(&b), 0, |_| true);
        b.merge_ephemeral(records(&a), 0, |_| true);
        assert_eq!(listed(&a), ["1.1.1.1"]);
        assert_eq!(listed(&b), ["1.1.1.1"]);
    }

    #[test]
    fn a_deletion_of_an_instance_never_seen_outlives_its_late_registration() {
        let owner = Registry::replicated();
        let removed = owner.remove_ephemeral(&key(), &instance("1.1.1.1").id, at(5_000, 1));
        assert!(removed.replicate && removed.revision.is_none());
        // The service exists only for its tombstone: clients do not see it.
        assert_eq!(
            owner.service_names("public", "DEFAULT_GROUP"),
            Vec::<String>::new()
        );

        let elsewhere = Registry::replicated();
        elsewhere.put_ephemeral(&key(), instance("1.1.1.1"), at(4_000, 2));
        owner.merge_ephemeral(records(&elsewhere), 0, |_| true);
        assert!(listed(&owner).is_empty());
        elsewhere.merge_ephemeral(records(&owner), 0, |_| true);
        assert!(listed(&elsewhere).is_empty());
    }

    #[test]
    fn an_identical_write_is_news_but_no_visible_change_and_merges_are_idempotent() {
        let registry = Registry::replicated();
        let first = registry.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        assert!(first.replicate && first.revision.is_some());
        let again = registry.put_ephemeral(&key(), instance("1.1.1.1"), at(2_000, 1));
        assert!(again.replicate && again.revision.is_none());
        let copy = Registry::replicated();
        assert!(
            copy.merge_ephemeral(records(&registry), 0, |_| true)
                .is_some()
        );
        assert!(
            copy.merge_ephemeral(records(&registry), 0, |_| true)
                .is_none()
        );
    }

    #[test]
    fn an_update_changes_only_an_instance_that_is_here() {
        let registry = Registry::replicated();
        let missing = registry.update_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        assert!(!missing.replicate && missing.revision.is_none());
        assert!(listed(&registry).is_empty());
        registry.put_ephemeral(&key(), instance("1.1.1.1"), at(2_000, 1));
        registry.remove_ephemeral(&key(), &instance("1.1.1.1").id, at(3_000, 1));
        let deleted = registry.update_ephemeral(&key(), instance("1.1.1.1"), at(4_000, 1));
        assert!(
            !deleted.replicate,
            "an update brought back a deleted instance"
        );
        assert!(listed(&registry).is_empty());
        registry.put_ephemeral(&key(), instance("1.1.1.1"), at(5_000, 1));
        let mut heavier = instance("1.1.1.1");
        heavier.weight = 3.0;
        let present = registry.update_ephemeral(&key(), heavier, at(6_000, 1));
        assert!(present.replicate && present.revision.is_some());
    }

    #[test]
    fn a_standalone_registry_keeps_no_tombstones() {
        let registry = Registry::new();
        registry.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 0));
        registry.remove_ephemeral(&key(), &instance("1.1.1.1").id, at(2_000, 0));
        assert!(records(&registry).tombstones.is_empty());
        let absent = ServiceKey::new("public", "DEFAULT_GROUP", "absent");
        registry.remove_ephemeral(&absent, &instance("1.1.1.1").id, at(3_000, 0));
        assert!(registry.service(&absent).is_none());
    }

    #[test]
    fn what_is_newer_here_goes_back_and_nothing_else() {
        let theirs = Registry::replicated();
        theirs.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        theirs.put_ephemeral(&key(), instance("2.2.2.2"), at(1_000, 1));
        let mine = Registry::replicated();
        mine.merge_ephemeral(records(&theirs), 0, |_| true);
        // Nothing newer here yet.
        assert_eq!(records(&mine).newer_than(&records(&theirs)), None);
        // A newer copy of 1, a deletion of 2, and 3 they never had.
        mine.put_ephemeral(&key(), instance("3.3.3.3"), at(2_000, 2));
        let mut heavier = instance("1.1.1.1");
        heavier.weight = 3.0;
        mine.put_ephemeral(&key(), heavier, at(2_001, 2));
        mine.remove_ephemeral(&key(), &instance("2.2.2.2").id, at(2_002, 2));
        // A tombstone of something they do not know is not news to them.
        mine.remove_ephemeral(&key(), &instance("9.9.9.9").id, at(2_003, 2));
        let newer = records(&mine)
            .newer_than(&records(&theirs))
            .unwrap_or_default();
        let ips = |list: Vec<InstanceId>| list.into_iter().map(|id| id.ip).collect::<Vec<_>>();
        assert_eq!(
            ips(newer.instances.iter().map(|i| i.id.clone()).collect()),
            ["1.1.1.1", "3.3.3.3"]
        );
        assert_eq!(
            ips(newer.tombstones.iter().map(|t| t.id.clone()).collect()),
            ["2.2.2.2"]
        );
        // Sent back and merged there, the two agree.
        theirs.merge_ephemeral(newer, 0, |_| true);
        assert_eq!(
            theirs.ephemeral_checksum(&key()),
            mine.ephemeral_checksum(&key())
        );
        assert_eq!(records(&mine).newer_than(&records(&theirs)), None);
    }

    #[test]
    fn a_dead_lease_is_neither_taken_in_nor_kept() {
        let node = "127.0.0.1:9848".parse().expect("an address");
        let leased = |connection: &str| {
            let mut i = instance("1.1.1.1");
            i.lease = Lease::Connection {
                node,
                incarnation: 7,
                connection: connection.into(),
            };
            i
        };
        let owner = Registry::replicated();
        owner.put_ephemeral(&key(), leased("c1"), at(1_000, 1));
        owner.put_ephemeral(&key(), instance("2.2.2.2"), at(1_000, 1));
        let dead = |lease: &Lease| matches!(lease, Lease::Connection { .. });
        let replica = Registry::replicated();
        replica.merge_ephemeral(records(&owner), 0, |lease| !dead(lease));
        assert_eq!(listed(&replica), ["2.2.2.2"]);
        let alive = Registry::replicated();
        alive.merge_ephemeral(records(&owner), 0, |_| true);
        assert_eq!(alive.forget_leased(dead, 0), vec![key()]);
        assert_eq!(listed(&alive), ["2.2.2.2"]);
        // Forgotten, not deleted: no tombstone goes out, and the owner can
        // announce it again.
        assert!(records(&alive).tombstones.is_empty());
        assert_eq!(owner.leased(dead).len(), 1);
        alive.merge_ephemeral(records(&owner), 0, |_| true);
        assert_eq!(listed(&alive), ["1.1.1.1", "2.2.2.2"]);
    }

    #[test]
    fn an_update_never_brings_back_a_deleted_instance() {
        let registry = Registry::replicated();
        registry.put_ephemeral(&key(), instance("1.1.1.1"), at(1_000, 1));
        let mut unhealthy = instance("1.1.1.1");
        unhealthy.healthy = false;
        registry.remove_ephemeral(&key(), &unhealthy.id, at(2_000, 1));
        let updated = registry.update_ephemeral(&key(), unhealthy.clone(), at(3_000, 1));
        assert_eq!(updated, Written::default());
        assert!(listed(&registry).is_empty());
        registry.put_ephemeral(&key(), instance("1.1.1.1"), at(4_000, 1));
        assert!(
            registry
                .update_ephemeral(&key(), unhealthy, at(5_000, 1))
                .revision
                .is_some()
        );
    }

    #[test]
    fn old_tombstones_are_forgotten() {
        let registry = Registry::replicated();
        registry.remove_ephemeral(&key(), &instance("1.1.1.1").id, at(1_000_000, 1));
        assert_eq!(records(&registry).tombstones.len(), 1);
        assert_eq!(registry.forget_tombstones(999), 0);
        assert_eq!(registry.forget_tombstones(1_001), 1);
        assert!(records(&registry).tombstones.is_empty());
    }
}
