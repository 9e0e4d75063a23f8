//! Service operations (Nacos's `ServiceController` rules): define, update,
//! remove, read a service and its clusters, and list its instances.

use super::list::{self, ListRequest};
use super::{NamingError, ServiceManager};
use crate::clock::now_millis;
use crate::consistency::{Key, Record};
use crate::registry::model::{ClusterMeta, Metadata, ServiceKey, ServiceMeta};

/// Fields a `PUT service` may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    /// New protect threshold (0 to 1).
    pub protect_threshold: Option<f64>,
    /// Metadata to replace the service's whole metadata with.
    pub metadata: Option<Metadata>,
    /// New selector JSON.
    pub selector: Option<serde_json::Value>,
}

impl ServiceManager {
    /// Renders `instance/list` for a service (an empty list if unknown).
    pub fn list(&self, service: &ServiceKey, request: &ListRequest<'_>) -> String {
        let now = now_millis();
        match self.registry.service(service) {
            Some(s) => list::render(&s, request, now),
            None => list::render_unknown(service, request, now),
        }
    }

    /// `POST service`: defines a service. Fails with [`NamingError::InvalidParam`]
    /// when it is already defined (an implicit one, created by a registration, is
    /// taken over, its cluster settings kept).
    pub async fn create_service(&self, meta: ServiceMeta) -> Result<(), NamingError> {
        if self.registry.is_explicit(&meta.key) {
            return Err(NamingError::InvalidParam(format!(
                "specified service already exists, serviceName : {}",
                meta.key.grouped_name()
            )));
        }
        let mut meta = meta;
        if let Some(existing) = self.registry.service_meta(&meta.key) {
            meta.clusters = existing.clusters;
        }
        self.consistency
            .put(Record::Service(meta), self.deadline())
            .await?;
        Ok(())
    }

    /// `PUT service`: changes what `patch` sets. Fails with
    /// [`NamingError::InvalidParam`] when the service does not exist (Nacos's text).
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
        self.consistency
            .put(Record::Service(meta), self.deadline())
            .await?;
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
        self.consistency
            .put(Record::Service(meta), self.deadline())
            .await?;
        Ok(())
    }

    /// `DELETE service`: removes an empty service. Fails with
    /// [`NamingError::InvalidParam`] when it does not exist or still has instances.
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
        self.consistency
            .remove(Key::Service(key), self.deadline())
            .await?;
        Ok(())
    }

    /// A service's definition; [`NamingError::InvalidParam`] when it does not exist
    /// (Nacos answers 400 there, not 404).
    pub fn service(&self, key: &ServiceKey) -> Result<ServiceMeta, NamingError> {
        self.registry.service_meta(key).ok_or_else(|| {
            NamingError::InvalidParam(format!("service {} is not found!", key.grouped_name()))
        })
    }
}
