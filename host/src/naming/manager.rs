//! The naming operations behind the HTTP API (Nacos's `ServiceManager`):
//! Nacos's rules for registering, updating, beating and listing, expressed as
//! reads of the registry and writes through the consistency facade.

use std::sync::Arc;

use serde::Serialize;

use super::list::{self, ListRequest};
use super::model::{
    ClusterMeta, Instance, InstanceId, Metadata, ServiceKey, ServiceMeta, now_millis,
};
use super::registry::Registry;
use crate::consistency::{ConsistencyError, ConsistencyService, Key, Record};
use crate::plugins::{HealthVerdict, Plugins};
use crate::switches::Switches;

#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    /// The request cannot be served as asked (HTTP 400).
    #[error("{0}")]
    InvalidParam(String),
    /// What the request names does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The store could not take the write (HTTP 500).
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
}

/// Beat result codes the Nacos clients understand.
pub const BEAT_OK: u32 = 10200;
pub const BEAT_UNKNOWN_INSTANCE: u32 = 20404;

/// What a client sends in a beat body (the Java client's `BeatInfo`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BeatInfo {
    pub ip: String,
    pub port: u16,
    pub weight: Option<f64>,
    pub service_name: String,
    pub cluster: String,
    pub metadata: Metadata,
    pub scheduled: bool,
    pub period: Option<i64>,
    pub stopped: bool,
    pub ephemeral: Option<bool>,
}

/// The answer to a beat, in Nacos's shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BeatReply {
    pub client_beat_interval: u64,
    pub code: u32,
    pub light_beat_enabled: bool,
}

/// Fields a `PATCH instance` may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct InstancePatch {
    pub weight: Option<f64>,
    pub enabled: Option<bool>,
    pub metadata: Option<Metadata>,
}

/// Fields a `PUT service` may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub protect_threshold: Option<f64>,
    pub metadata: Option<Metadata>,
    pub selector: Option<serde_json::Value>,
}

pub struct ServiceManager {
    registry: Arc<Registry>,
    consistency: Arc<ConsistencyService>,
    switches: Arc<Switches>,
    /// Health policies are consulted on each beat.
    plugins: Option<Arc<Plugins>>,
    /// The node's (beat, delete) timeouts in ms, told to health policies.
    beat_timeouts: (u64, u64),
}

impl ServiceManager {
    pub fn new(
        consistency: Arc<ConsistencyService>,
        switches: Arc<Switches>,
        plugins: Option<Arc<Plugins>>,
        beat_timeouts: (u64, u64),
    ) -> Self {
        ServiceManager {
            registry: Arc::clone(consistency.registry()),
            consistency,
            switches,
            plugins,
            beat_timeouts,
        }
    }

    /// Waits until a read here sees every persistent write committed before now.
    pub async fn linearize(&self) -> Result<(), NamingError> {
        self.consistency.linearize().await?;
        Ok(())
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn switches(&self) -> &Arc<Switches> {
        &self.switches
    }

    /// Registers (or re-registers) an instance.
    pub async fn register_instance(
        &self,
        service: ServiceKey,
        mut instance: Instance,
    ) -> Result<(), NamingError> {
        match self.registry.instance_kind(&service, &instance.id) {
            Some(ephemeral) if ephemeral != instance.ephemeral => {
                return Err(NamingError::InvalidParam(format!(
                    "instance {}:{} is already registered as {} in cluster {}",
                    instance.id.ip,
                    instance.id.port,
                    kind(ephemeral),
                    instance.id.cluster
                )));
            }
            Some(_) => {}
            None if self.switches.with(|s| s.disable_add_ip) => {
                return Err(NamingError::InvalidParam(
                    "Adding new IP is disabled by the disableAddIP switch".into(),
                ));
            }
            None => {}
        }
        instance.last_beat = now_millis();
        if !instance.ephemeral {
            self.ensure_persistent_service(&service).await?;
        }
        self.consistency
            .put(Record::Instance { service, instance })
            .await?;
        Ok(())
    }

    /// A persistent instance needs a persistent service definition, so that the
    /// service survives a restart together with it.
    async fn ensure_persistent_service(&self, key: &ServiceKey) -> Result<(), NamingError> {
        let explicit = self
            .registry
            .service(key)
            .is_some_and(|s| s.read_state().explicit);
        if !explicit {
            let meta = self
                .registry
                .service_meta(key)
                .unwrap_or_else(|| ServiceMeta::new(key.clone()));
            self.consistency.put(Record::Service(meta)).await?;
        }
        Ok(())
    }

    /// Removes an instance; an unknown instance or service is not an error (as Nacos).
    pub async fn deregister_instance(
        &self,
        service: ServiceKey,
        id: InstanceId,
        ephemeral: bool,
    ) -> Result<(), NamingError> {
        let ephemeral = self
            .registry
            .instance_kind(&service, &id)
            .unwrap_or(ephemeral);
        self.consistency
            .remove(Key::Instance {
                service,
                id,
                ephemeral,
            })
            .await?;
        Ok(())
    }

    /// Replaces an existing instance's fields (`PUT instance`).
    pub async fn update_instance(
        &self,
        service: ServiceKey,
        mut instance: Instance,
    ) -> Result<(), NamingError> {
        let existing = self.require_instance(&service, &instance.id)?;
        instance.ephemeral = existing.ephemeral;
        instance.marked = existing.marked;
        instance.healthy = existing.healthy;
        instance.last_beat = existing.last_beat;
        self.consistency
            .put(Record::Instance { service, instance })
            .await?;
        Ok(())
    }

    /// Changes only the given fields of an existing instance (`PATCH instance`).
    pub async fn patch_instance(
        &self,
        service: ServiceKey,
        id: InstanceId,
        patch: InstancePatch,
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
        self.consistency
            .put(Record::Instance { service, instance })
            .await?;
        Ok(())
    }

    /// Sets an instance's health by hand; the beat checker leaves it alone afterwards.
    pub async fn mark_health(
        &self,
        service: ServiceKey,
        id: InstanceId,
        healthy: bool,
    ) -> Result<(), NamingError> {
        let mut instance = self.require_instance(&service, &id)?;
        instance.healthy = healthy;
        instance.marked = true;
        self.consistency
            .put(Record::Instance { service, instance })
            .await?;
        Ok(())
    }

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

    fn require_instance(
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

    /// Processes a beat. `body` is the parsed beat JSON, if the client sent one;
    /// without it (a light beat) an unknown instance answers 20404 so the client
    /// re-registers, with it the instance is re-registered from the body.
    pub async fn beat(
        &self,
        service: ServiceKey,
        id: InstanceId,
        body: Option<BeatInfo>,
    ) -> Result<BeatReply, NamingError> {
        let (interval, light) = self
            .switches
            .with(|s| (s.client_beat_interval, s.light_beat_enabled));
        let mut reply = BeatReply {
            client_beat_interval: interval,
            code: BEAT_OK,
            light_beat_enabled: light,
        };
        let now = now_millis();
        // Health policies see the beat's metadata; without them it is not needed.
        let beat_metadata = self
            .plugins
            .as_ref()
            .and(body.as_ref())
            .map(|b| b.metadata.clone());
        let outcome = match self.registry.touch(&service, &id, now) {
            Some(outcome) => outcome,
            None => {
                let Some(body) = body else {
                    reply.code = BEAT_UNKNOWN_INSTANCE;
                    return Ok(reply);
                };
                let instance = Instance {
                    id: id.clone(),
                    weight: body.weight.unwrap_or(1.0),
                    healthy: true,
                    enabled: true,
                    ephemeral: body.ephemeral.unwrap_or(true),
                    marked: false,
                    metadata: body.metadata,
                    last_beat: now,
                };
                tracing::info!(service = %service, ip = %id.ip, port = id.port, "re-registering instance from its beat");
                self.register_instance(service.clone(), instance).await?;
                match self.registry.touch(&service, &id, now) {
                    Some(outcome) => outcome,
                    None => {
                        reply.code = BEAT_UNKNOWN_INSTANCE;
                        return Ok(reply);
                    }
                }
            }
        };
        if !outcome.marked {
            let verdict = self.beat_verdict(&service, &id, beat_metadata.as_ref());
            let wanted = match verdict {
                Some(HealthVerdict::Delete) => {
                    tracing::info!(service = %service, ip = %id.ip, port = id.port, "health policy deleted the instance on its beat");
                    self.deregister_instance(service, id, outcome.ephemeral)
                        .await?;
                    return Ok(reply);
                }
                Some(HealthVerdict::Unhealthy) => false,
                Some(HealthVerdict::Healthy) | None => true,
            };
            if wanted != outcome.healthy
                && let Ok(mut instance) = self.require_instance(&service, &id)
            {
                instance.healthy = wanted;
                tracing::info!(service = %service, ip = %id.ip, port = id.port, healthy = wanted, "instance health changed on its beat");
                self.consistency
                    .put(Record::Instance {
                        service: service.clone(),
                        instance,
                    })
                    .await?;
            }
        }
        if let Some(interval) = outcome.beat_interval {
            reply.client_beat_interval = interval;
        }
        Ok(reply)
    }

    /// What the health policies say about an instance that just beat, if any applies.
    fn beat_verdict(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        beat_metadata: Option<&Metadata>,
    ) -> Option<HealthVerdict> {
        let plugins = self.plugins.as_ref()?;
        let instance = self.registry.instance(service, id)?;
        let beat_metadata: Vec<(String, String)> = beat_metadata
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        plugins.judge(service, &instance, true, &beat_metadata, self.beat_timeouts)
    }

    /// Renders `instance/list` for a service (an empty list if unknown).
    pub fn list(&self, service: &ServiceKey, request: &ListRequest<'_>) -> String {
        let now = now_millis();
        match self.registry.service(service) {
            Some(s) => list::render(&s, request, now),
            None => list::render_unknown(service, request, now),
        }
    }

    pub async fn create_service(&self, meta: ServiceMeta) -> Result<(), NamingError> {
        if self
            .registry
            .service(&meta.key)
            .is_some_and(|s| s.read_state().explicit)
        {
            return Err(NamingError::InvalidParam(format!(
                "specified service already exists, serviceName : {}",
                meta.key.grouped_name()
            )));
        }
        let mut meta = meta;
        if let Some(existing) = self.registry.service_meta(&meta.key) {
            meta.clusters = existing.clusters;
        }
        self.consistency.put(Record::Service(meta)).await?;
        Ok(())
    }

    pub async fn update_service(
        &self,
        key: ServiceKey,
        patch: ServicePatch,
    ) -> Result<(), NamingError> {
        let mut meta = self.registry.service_meta(&key).ok_or_else(|| {
            NamingError::InvalidParam(format!("service {} not found!", key.grouped_name()))
        })?;
        if let Some(threshold) = patch.protect_threshold {
            meta.protect_threshold = threshold;
        }
        if let Some(metadata) = patch.metadata {
            meta.metadata = metadata;
        }
        if let Some(selector) = patch.selector {
            meta.selector = Some(selector);
        }
        self.consistency.put(Record::Service(meta)).await?;
        Ok(())
    }

    /// Changes one cluster's settings (`PUT cluster`): its health checker,
    /// check port and metadata. The service must exist.
    pub async fn update_cluster(
        &self,
        key: ServiceKey,
        cluster: String,
        change: impl FnOnce(&mut ClusterMeta),
    ) -> Result<(), NamingError> {
        let mut meta = self.registry.service_meta(&key).ok_or_else(|| {
            NamingError::InvalidParam(format!("service {} not found!", key.grouped_name()))
        })?;
        change(meta.clusters.entry(cluster).or_default());
        self.consistency.put(Record::Service(meta)).await?;
        Ok(())
    }

    pub async fn remove_service(&self, key: ServiceKey) -> Result<(), NamingError> {
        let service = self.registry.service(&key).ok_or_else(|| {
            NamingError::InvalidParam(format!(
                "specified service not exist, serviceName : {}",
                key.grouped_name()
            ))
        })?;
        if service.instance_count() > 0 {
            return Err(NamingError::InvalidParam(format!(
                "service {} not empty, cannot delete",
                key.grouped_name()
            )));
        }
        self.consistency.remove(Key::Service(key)).await?;
        Ok(())
    }

    pub fn service(&self, key: &ServiceKey) -> Result<ServiceMeta, NamingError> {
        self.registry.service_meta(key).ok_or_else(|| {
            NamingError::InvalidParam(format!("service {} is not found!", key.grouped_name()))
        })
    }
}

fn kind(ephemeral: bool) -> &'static str {
    if ephemeral { "ephemeral" } else { "persistent" }
}
