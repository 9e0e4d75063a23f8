//! Ephemeral data: instances that live on beats and in memory only.
//!
//! A standalone node applies every write at once. In a cluster the write has
//! already been routed to the service's responsible node (`http::forward`);
//! the node that applies it hands the service to Distro, which replicates it
//! to every peer (see [`super::distro`]).

use std::sync::Arc;

use super::distro::Distro;
use super::{ConsistencyError, Write, apply};
use crate::naming::registry::Registry;
use crate::notifier::Notifier;

pub struct EphemeralStore {
    registry: Arc<Registry>,
    notifier: Notifier,
    distro: Option<Arc<Distro>>,
}

impl EphemeralStore {
    pub fn standalone(registry: Arc<Registry>, notifier: Notifier) -> Self {
        EphemeralStore {
            registry,
            notifier,
            distro: None,
        }
    }

    pub fn clustered(registry: Arc<Registry>, notifier: Notifier, distro: Arc<Distro>) -> Self {
        EphemeralStore {
            registry,
            notifier,
            distro: Some(distro),
        }
    }

    pub async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        let Some(distro) = &self.distro else {
            apply(&self.registry, &self.notifier, write);
            return Ok(());
        };
        // Service definitions are persistent data: they go through Raft.
        let changed = write
            .instance()
            .map(|(service, id)| (service.clone(), id.clone()));
        if apply(&self.registry, &self.notifier, write).is_some()
            && let Some((service, id)) = changed
        {
            distro.changed(&service, &id);
        }
        Ok(())
    }
}
