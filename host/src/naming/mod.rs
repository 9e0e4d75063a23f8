//! Naming: the rules clients meet, whatever door they come in by (v1 HTTP
//! today; v2 gRPC and the console call the same operations). Nacos's
//! `ServiceManager` and `InstanceOperator`: each operation reads the
//! registry and writes through the consistency facade, under the client's
//! deadline.
//!
//! - [`instances`]: register, deregister, update, patch, mark health, detail.
//! - [`beat`]: a v1 client's beat, and what health policies say on it.
//! - [`services`]: service definitions and their clusters.
//! - [`list`]: what a client sees of a service (`instance/list` and pushes).
//! - [`service_info`]: what a v2 (gRPC) client sees of a service.
//! - [`catalog`]: listings over many services (`service/list`, `catalog/*`).
//! - [`metadata`]: batch changes to instances' metadata.
//! - [`namespaces`]: namespace records (create, rename, delete).
//! - [`client_agent`]: which Nacos client is calling, and the rules Nacos keys on it.
//! - [`health_owner`]: who decides an instance's health.
//! - [`checks`]: parameter rules both front doors apply.

pub mod beat;
pub mod catalog;
pub mod checks;
pub mod client_agent;
pub mod health_owner;
pub mod instances;
pub mod list;
pub mod metadata;
pub mod namespaces;
pub mod service_info;
pub mod services;

use std::sync::Arc;
use std::time::Duration;

use crate::consistency::{ConsistencyError, ConsistencyService, Deadline};
use crate::plugins::Plugins;
use crate::registry::Registry;
use crate::registry::model::BeatTimeouts;
use crate::switches::Switches;

pub use beat::{BEAT_OK, BEAT_UNKNOWN_INSTANCE, BeatInfo, BeatReply};
pub use instances::InstancePatch;
pub use services::ServicePatch;

/// Why a naming operation failed; each front door maps it to its own answer.
#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    /// The request cannot be served as asked (HTTP 400).
    #[error("{0}")]
    InvalidParam(String),
    /// What the request names does not exist (HTTP 404).
    #[error("{0}")]
    NotFound(String),
    /// The store could not take the write (HTTP 503 when the client should
    /// retry, else 500).
    #[error(transparent)]
    Consistency(#[from] ConsistencyError),
}

/// The naming operations of one node.
pub struct ServiceManager {
    registry: Arc<Registry>,
    consistency: Arc<ConsistencyService>,
    switches: Arc<Switches>,
    /// Health policies are consulted on each beat.
    plugins: Option<Arc<Plugins>>,
    /// The node's beat timeouts, told to health policies.
    beat_timeouts: BeatTimeouts,
    /// How long a client waits for a persistent write (`raft.write_timeout_ms`).
    write_timeout: Duration,
    /// Namespace writes on this node, one at a time: a check and the write
    /// it decides are not interleaved with another's (see [`namespaces`]).
    namespace_writes: tokio::sync::Mutex<()>,
}

impl ServiceManager {
    /// The operations over `consistency`'s stores; a persistent write waits at
    /// most `write_timeout`.
    pub fn new(
        consistency: Arc<ConsistencyService>,
        switches: Arc<Switches>,
        plugins: Option<Arc<Plugins>>,
        beat_timeouts: BeatTimeouts,
        write_timeout: Duration,
    ) -> Self {
        ServiceManager {
            registry: Arc::clone(consistency.registry()),
            consistency,
            switches,
            plugins,
            beat_timeouts,
            write_timeout,
            namespace_writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The deadline of a client request arriving now.
    pub fn deadline(&self) -> Deadline {
        Deadline::now() + self.write_timeout
    }

    /// Waits until a read here sees every persistent write committed before now.
    pub async fn linearize(&self) -> Result<(), NamingError> {
        self.consistency.linearize(self.deadline()).await?;
        Ok(())
    }

    /// The registry the operations read.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The runtime switches (`operator/switches`).
    pub fn switches(&self) -> &Arc<Switches> {
        &self.switches
    }
}
