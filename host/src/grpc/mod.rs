//! The front door of Nacos 2.x clients: gRPC (h2c) on the HTTP port + 1000,
//! the `Request` and `BiRequestStream` services of NACOS-V2.md, translated
//! into the same naming operations as the v1 door. docs/DESIGN-V2.md tells
//! the connection lifecycle, leases, pushes and limits.
//!
//! - [`server`]: binds the port, accepts transports (one connection each)
//!   and serves HTTP/2 on them; closes them on request and at shutdown.
//! - `transports`: the threads (a runtime per core) the transports are
//!   served on.
//! - [`service`]: the two gRPC services: unary dispatch on the message type,
//!   and the stream (setup, the client's answers).
//! - [`handlers`]: one function per naming request.
//! - [`connection`]: the connection registry and what each connection holds.
//! - [`publish`]: the only way a connection changes the registry
//!   (publish, unpublish, release); in a cluster, local writes of the
//!   member holding the connection, replicated by Distro.
//! - [`push`]: stream subscribers, pushes, acks and resends.
//! - [`info`]: what a client is shown of a service (push filters applied).
//! - [`liveness`]: probes of idle connections, closing stuck ones.
//! - [`stats`]: counters, metrics and the connection listing.
//! - [`payload`], [`messages`], [`proto`], [`codec`]: the wire;
//!   [`coalesce`]: one socket write per HTTP/2 flush.

mod auth;
pub mod coalesce;
pub mod codec;
pub mod connection;
pub mod handlers;
pub mod info;
pub mod liveness;
pub mod messages;
pub mod payload;
pub mod proto;
pub mod publish;
pub mod push;
pub mod server;
pub mod service;
pub mod stats;
mod transports;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::Auth;
use crate::config::GrpcConfig;
use crate::naming::ServiceManager;
use crate::naming::service_info::RefTimes;
use crate::notifier::Notifier;
use crate::plugins::Plugins;
use crate::shutdown::Shutdown;
use connection::{Connection, Connections};
use publish::Publisher;
use push::PushHub;
use stats::GrpcStats;
use transports::TransportThreads;

/// Whether the node may serve clients now (a cluster member that has not
/// loaded its peers' data answers 300, "server starting").
pub type Readiness = Box<dyn Fn() -> bool + Send + Sync>;

/// The gRPC door of one node: everything its tasks and handlers share.
pub struct GrpcDoor {
    pub(crate) config: GrpcConfig,
    pub(crate) naming: Arc<ServiceManager>,
    pub(crate) plugins: Option<Arc<Plugins>>,
    pub(crate) auth: Arc<Auth>,
    pub(crate) connections: Connections,
    pub(crate) publisher: Publisher,
    pub(crate) push: PushHub,
    pub(crate) ref_times: RefTimes,
    pub(crate) stats: GrpcStats,
    ready: Readiness,
    close_when_not_ready_after: Duration,
    /// The address the gRPC server is bound to.
    addr: SocketAddr,
    /// Each transport thread's push queue, by thread index (set once the
    /// threads have started): pushes are sent from there.
    push_writers: OnceLock<Vec<push::PushWriter>>,
}

/// What [`GrpcDoor::start`] needs from the node.
pub struct Parts {
    /// The `[grpc]` section: limits, queue sizes, probe and ack timeouts.
    pub config: GrpcConfig,
    /// The naming operations both doors call.
    pub naming: Arc<ServiceManager>,
    /// The notifier the naming operations' changes go through (held while
    /// a publication changes in several writes).
    pub notifier: Notifier,
    /// The loaded plugins (push filters shape pushes and answers).
    pub plugins: Option<Arc<Plugins>>,
    /// Auth: the secured naming requests are checked against it.
    pub auth: Arc<Auth>,
    /// This node's advertised address and incarnation (its start time, ms):
    /// named in the leases of its connections.
    pub node: SocketAddr,
    /// See `node`.
    pub incarnation: u64,
    /// How long changes to one service gather before a push.
    pub merge_window: Duration,
    /// Whether the node may serve clients now (always, standalone).
    pub ready: Readiness,
    /// A cluster member not ready for this long tells its clients to
    /// reconnect elsewhere and closes their connections (half of
    /// `cluster.lease_grace_ms`: before the other members forget them).
    pub close_when_not_ready_after: Duration,
}

impl GrpcDoor {
    /// Starts serving on `listener` (see [`server::bind`]): the accept
    /// loop, the push sender, resends and liveness checks run in `tasks`
    /// until `shutdown`, the transports on one thread per core
    /// (`transports`). The caller registers the door with the notifier
    /// ([`push::DoorListener`]).
    ///
    /// # Errors
    /// The listener has no address, or a transport thread could not be
    /// started.
    pub fn start(
        parts: Parts,
        listener: TcpListener,
        tasks: &mut JoinSet<()>,
        shutdown: &Shutdown,
    ) -> std::io::Result<Arc<GrpcDoor>> {
        let addr = listener.local_addr()?;
        let (push, schedule) = PushHub::new(parts.merge_window);
        let door = Arc::new(GrpcDoor {
            publisher: Publisher::new(
                Arc::clone(&parts.naming),
                parts.notifier,
                parts.node,
                parts.incarnation,
            ),
            config: parts.config,
            naming: parts.naming,
            plugins: parts.plugins,
            auth: parts.auth,
            connections: Connections::default(),
            push,
            ref_times: RefTimes::default(),
            stats: GrpcStats::default(),
            ready: parts.ready,
            close_when_not_ready_after: parts.close_when_not_ready_after,
            addr,
            push_writers: OnceLock::new(),
        });
        let count = match door.config.transport_threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        };
        let mut threads = TransportThreads::start(&door, addr.port(), count)?;
        let writers = push::start_writers(&door, threads.take_runtimes());
        let _ = door.push_writers.set(writers);
        tasks.spawn(Arc::clone(&door).serve(listener, threads, shutdown.clone()));
        tasks.spawn(Arc::clone(&door).run_pushes(schedule, shutdown.clone()));
        tasks.spawn(Arc::clone(&door).run_resends(shutdown.clone()));
        tasks.spawn(Arc::clone(&door).run_liveness(shutdown.clone()));
        tracing::info!(%addr, "gRPC server started");
        Ok(door)
    }

    /// The address the gRPC server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn is_ready(&self) -> bool {
        (self.ready)()
    }

    /// Ends a connection's effects: its instances leave the registry, its
    /// subscriptions end. Idempotent.
    pub(crate) async fn release(&self, conn: &Connection) {
        self.publisher.release(conn, self.is_ready()).await;
        self.push.drop_connection(conn);
    }
}
