//! Batch changes to instances' metadata (Nacos 1.4's beta
//! `PUT|DELETE instance/metadata/batch`, `InstanceController` and
//! `ServiceManager#updateMetadata`): merge keys into, or remove keys from,
//! the metadata of every instance of one kind, or of the instances named.
//! Only metadata changes: health, weight and the rest stay as they are.

use super::{NamingError, ServiceManager};
use crate::registry::model::{Instance, InstanceId, Metadata, ServiceKey};

/// What to do with the given keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataAction {
    /// Add the keys, replacing the values of those already there.
    Merge,
    /// Remove the keys (their values are ignored).
    Remove,
}

/// Which instances a batch touches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BatchTarget {
    /// Every instance of the service of this kind (`consistencyType`).
    All { ephemeral: bool },
    /// The instances named, each with its kind; names that match no
    /// instance (or one of the other kind) are skipped, as in Nacos.
    Listed(Vec<(InstanceId, bool)>),
}

impl ServiceManager {
    /// Applies `action` with `metadata`'s keys to the targeted instances of
    /// `service`; returns the instances changed, as they now are. An unknown
    /// service changes nothing (Nacos answers an empty list then, too).
    pub(crate) async fn batch_metadata(
        &self,
        service: ServiceKey,
        target: &BatchTarget,
        metadata: &Metadata,
        action: MetadataAction,
    ) -> Result<Vec<Instance>, NamingError> {
        let Some(found) = self.registry.service(&service) else {
            return Ok(Vec::new());
        };
        let located: Vec<Instance> = found
            .instances()
            .into_iter()
            .filter(|i| match target {
                BatchTarget::All { ephemeral } => i.ephemeral == *ephemeral,
                BatchTarget::Listed(named) => named
                    .iter()
                    .any(|(id, ephemeral)| *id == i.id && *ephemeral == i.ephemeral),
            })
            .collect();
        let mut updated = Vec::with_capacity(located.len());
        for mut instance in located {
            match action {
                MetadataAction::Merge => instance
                    .metadata
                    .extend(metadata.iter().map(|(k, v)| (k.clone(), v.clone()))),
                MetadataAction::Remove => {
                    instance.metadata.retain(|k, _| !metadata.contains_key(k))
                }
            }
            self.update_existing(service.clone(), instance.clone())
                .await?;
            updated.push(instance);
        }
        Ok(updated)
    }
}
