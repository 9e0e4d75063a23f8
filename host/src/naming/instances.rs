//! Instance operations (Nacos's `InstanceController` rules): register,
//! deregister, update, patch, mark health, detail.

use super::health_owner::HealthOwner;
use super::{NamingError, ServiceManager};
use crate::clock::now_millis;
use crate::consistency::{Deadline, Key, Record};
use crate::registry::feed::{Cause, What};
use crate::registry::model::{
    HealthChecker, Instance, InstanceId, Lease, Metadata, ServiceKey, ServiceMeta,
};

/// Fields a `PATCH instance` may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct InstancePatch {
    /// New weight (0 to 10000).
    pub weight: Option<f64>,
    /// Enable or disable the instance.
    pub enabled: Option<bool>,
    /// Metadata to replace the instance's whole metadata with.
    pub metadata: Option<Metadata>,
}

/// The state of a registered instance that a new registration of it keeps
/// or checks.
struct Existing {
    ephemeral: bool,
    healthy: bool,
    marked: bool,
}

impl ServiceManager {
    /// Registers (or re-registers) an instance, because of `cause` (the
    /// change feed's). A registration carries the client's weight and
    /// `enabled`, so it ends an operator's override of them.
    pub async fn register_instance(
        &self,
        service: ServiceKey,
        instance: Instance,
        cause: Cause,
    ) -> Result<(), NamingError> {
        self.register_by(service, instance, self.deadline(), cause)
            .await
    }

    pub(super) async fn register_by(
        &self,
        service: ServiceKey,
        mut instance: Instance,
        deadline: Deadline,
        cause: Cause,
    ) -> Result<(), NamingError> {
        // What a registration needs of the instance it replaces, read in
        // place: copying the whole instance (its metadata) cost every
        // registration allocations it did not need.
        let existed = self
            .registry
            .with_instance(&service, &instance.id, |slot| Existing {
                ephemeral: slot.ephemeral,
                healthy: slot.healthy,
                marked: slot.marked,
            });
        let what = if existed.is_some() {
            What::Reregistered
        } else {
            What::Registered
        };
        match existed {
            Some(existing) if existing.ephemeral != instance.ephemeral => {
                return Err(NamingError::InvalidParam(format!(
                    "instance {}:{} is already registered as {} in cluster {}",
                    instance.id.ip,
                    instance.id.port,
                    kind(existing.ephemeral),
                    instance.id.cluster
                )));
            }
            // A registration does not decide the health of an instance that
            // exists: its checker (or the operator's mark) does. Nacos:
            // `Cluster#updateIps` keeps the old health of an unmarked instance.
            Some(existing) => {
                instance.healthy = existing.healthy;
                instance.marked = existing.marked;
            }
            None if self.switches.with(|s| s.disable_add_ip) => {
                return Err(NamingError::InvalidParam(
                    "Adding new IP is disabled by the disableAddIP switch".into(),
                ));
            }
            None => {}
        }
        instance.last_beat = now_millis();
        if !instance.ephemeral {
            self.ensure_persistent_service(&service, deadline).await?;
        }
        let id = instance.id.clone();
        self.consistency
            .put(
                Record::Instance {
                    service: service.clone(),
                    instance,
                },
                deadline,
            )
            .await?;
        self.registry
            .feed()
            .record(now_millis(), &service, &id, what, cause);
        Ok(())
    }

    /// A persistent instance needs a persistent service definition, so that the
    /// service survives a restart together with it.
    async fn ensure_persistent_service(
        &self,
        key: &ServiceKey,
        deadline: Deadline,
    ) -> Result<(), NamingError> {
        if !self.registry.is_explicit(key) {
            let meta = self
                .registry
                .service_meta(key)
                .unwrap_or_else(|| ServiceMeta::new(key.clone()));
            self.consistency
                .put(Record::Service(meta), deadline)
                .await?;
        }
        Ok(())
    }

    /// Drops, on this member only and without replicating a deletion, the
    /// instances of a connection it closes while not ready
    /// ([`crate::consistency::EphemeralStore::forget_lease`]).
    pub fn forget_lease(&self, lease: &Lease) {
        self.consistency.forget_lease(lease);
    }

    /// Removes an instance, because of `cause`; an unknown instance or
    /// service is not an error (as Nacos).
    pub async fn deregister_instance(
        &self,
        service: ServiceKey,
        id: InstanceId,
        ephemeral: bool,
        cause: Cause,
    ) -> Result<(), NamingError> {
        let held = self.registry.instance_kind(&service, &id);
        let key = Key::Instance {
            service: service.clone(),
            id: id.clone(),
            ephemeral: held.unwrap_or(ephemeral),
        };
        self.consistency.remove(key, self.deadline()).await?;
        if held.is_some() {
            self.registry
                .feed()
                .record(now_millis(), &service, &id, What::Deregistered, cause);
        }
        Ok(())
    }

    /// Replaces an existing instance's fields (`PUT instance`): an edit by
    /// `by` (the signed-in user; `None` with auth off).
    pub async fn update_instance(
        &self,
        service: ServiceKey,
        mut instance: Instance,
        by: Option<String>,
    ) -> Result<(), NamingError> {
        let existing = self.require_instance(&service, &instance.id)?;
        instance.ephemeral = existing.ephemeral;
        instance.marked = existing.marked;
        instance.healthy = existing.healthy;
        instance.last_beat = existing.last_beat;
        instance.lease = existing.lease;
        self.edit(service, instance, by).await
    }

    /// Changes only the given fields of an existing instance (`PATCH
    /// instance`, what the console sends): an edit by `by`.
    pub async fn patch_instance(
        &self,
        service: ServiceKey,
        id: InstanceId,
        patch: InstancePatch,
        by: Option<String>,
    ) -> Result<(), NamingError> {
        let mut instance = self.require_instance(&service, &id)?;
        if let Some(weight) = patch.weight {
            instance.weight = weight;
        }
        if let Some(enabled) = patch.enabled {
            instance.enabled = enabled;
        }
        if let Some(metadata) = patch.metadata {
            instance.metadata = metadata;
        }
        self.edit(service, instance, by).await
    }

    /// Stores an operator's edit and records it: for an ephemeral instance
    /// its weight and `enabled` become an override that lasts until the
    /// client registers again ([`crate::registry::feed`]).
    async fn edit(
        &self,
        service: ServiceKey,
        instance: Instance,
        by: Option<String>,
    ) -> Result<(), NamingError> {
        let (id, weight, enabled, ephemeral) = (
            instance.id.clone(),
            instance.weight,
            instance.enabled,
            instance.ephemeral,
        );
        self.update_existing(service.clone(), instance).await?;
        let feed = self.registry.feed();
        if ephemeral {
            feed.record_override(now_millis(), &service, &id, weight, enabled, by);
        } else {
            feed.record(
                now_millis(),
                &service,
                &id,
                What::Edited,
                Cause::Edit { by },
            );
        }
        Ok(())
    }

    /// Sets an instance's health by hand and marks it, so that no checker
    /// changes it afterwards. Allowed only where no checker owns the health:
    /// the instance's cluster has the checker `NONE` (Nacos's
    /// `HealthController#update`; see [`super::health_owner`]).
    pub async fn mark_health(
        &self,
        service: ServiceKey,
        id: InstanceId,
        healthy: bool,
        by: Option<String>,
    ) -> Result<(), NamingError> {
        let mut instance = self.require_instance(&service, &id)?;
        let checker = self
            .registry
            .service_meta(&service)
            .and_then(|meta| {
                meta.clusters
                    .get(&id.cluster)
                    .map(|c| c.health_checker.clone())
            })
            .unwrap_or_default();
        if !HealthOwner::operator_may_set(&checker) {
            return Err(NamingError::InvalidParam(format!(
                "health check is still working, service: {}: cluster {} is checked by {}; \
                 set its healthChecker to NONE (PUT /nacos/v1/ns/cluster) to set health by hand",
                service.grouped_name(),
                id.cluster,
                checker_name(&checker),
            )));
        }
        instance.healthy = healthy;
        instance.marked = true;
        self.update_existing(service.clone(), instance).await?;
        let what = if healthy {
            What::Healthy
        } else {
            What::Unhealthy
        };
        self.registry
            .feed()
            .record(now_millis(), &service, &id, what, Cause::Edit { by });
        Ok(())
    }

    /// Stores an instance read and changed here — only if it still exists
    /// when the write applies (a deregistration racing a change wins).
    pub(super) async fn update_existing(
        &self,
        service: ServiceKey,
        instance: Instance,
    ) -> Result<(), NamingError> {
        self.consistency
            .update(Record::Instance { service, instance }, self.deadline())
            .await?;
        Ok(())
    }

    /// One instance; [`NamingError::NotFound`] (Nacos's texts) when the service or
    /// the instance is absent.
    pub fn instance(&self, service: &ServiceKey, id: &InstanceId) -> Result<Instance, NamingError> {
        if self.registry.service(service).is_none() {
            return Err(NamingError::NotFound(format!(
                "no service {} found!",
                service.grouped_name()
            )));
        }
        self.registry
            .instance(service, id)
            .ok_or_else(|| NamingError::NotFound("no matched ip found!".into()))
    }

    pub(super) fn require_instance(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
    ) -> Result<Instance, NamingError> {
        self.registry.instance(service, id).ok_or_else(|| {
            NamingError::InvalidParam(format!(
                "instance not exist: {}:{} in cluster {} of service {}",
                id.ip,
                id.port,
                id.cluster,
                service.grouped_name()
            ))
        })
    }
}

fn checker_name(checker: &HealthChecker) -> &'static str {
    match checker {
        HealthChecker::Tcp => "TCP",
        HealthChecker::Http { .. } => "HTTP",
        HealthChecker::None => "NONE",
    }
}

fn kind(ephemeral: bool) -> &'static str {
    if ephemeral { "ephemeral" } else { "persistent" }
}
