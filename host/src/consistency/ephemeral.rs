//! Ephemeral data: instances that live on beats and in memory only.
//!
//! A standalone node applies every write at once. The Distro cluster mode
//! (responsible-node routing, batched replication, checksum repair) plugs in
//! here without changing the facade.

use std::sync::Arc;

use super::{ConsistencyError, Write, apply};
use crate::naming::registry::Registry;
use crate::notifier::Notifier;

pub struct EphemeralStore {
    registry: Arc<Registry>,
    notifier: Notifier,
}

impl EphemeralStore {
    pub fn standalone(registry: Arc<Registry>, notifier: Notifier) -> Self {
        EphemeralStore { registry, notifier }
    }

    pub async fn write(&self, write: Write) -> Result<(), ConsistencyError> {
        apply(&self.registry, &self.notifier, write);
        Ok(())
    }
}
