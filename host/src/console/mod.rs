//! The web console: the front door of operators (issue 16). The node serves
//! it itself at `/nacos/` — the URL operators have bookmarked — as one small
//! static bundle of plain JavaScript modules, embedded in the binary; every
//! view is a hash route (`/nacos/#/services?q=orders`), so every view is a
//! deep link.
//!
//! The bundle reads the node's ordinary APIs (`catalog/*`, `instance`,
//! `service/subscribers`, `operator/*`, `/nacre/v1/plugins`) and the
//! console-facing routes served here:
//!
//! - [`assets`]: `GET /nacos` (redirect), `/nacos/` and `/nacos/console/*`.
//! - [`namespaces`]: `/nacos/v1/console/namespaces`, Nacos's shapes: the
//!   list, and namespace records created, renamed and deleted.
//! - [`nodes`]: `GET /nacos/v1/core/cluster/nodes`, Nacos's shapes, and
//!   `GET /nacre/v1/console/cluster` (members, Distro and Raft as this node
//!   sees them).
//! - [`feed`]: `GET /nacre/v1/console/feed` (what happened and why),
//!   `GET /nacre/v1/console/instances` (instances with their overrides, across
//!   services: where is `ip:port`?) and `GET /nacre/v1/console/state`.
//! - [`live`]: `GET /nacre/v1/console/events`, a server-sent event stream of
//!   the change feed.
//! - [`history`]: `GET /nacre/v1/console/metrics`, this node's figures over
//!   the last minutes, sampled by a task of its own.
//! - [`access`]: `GET /nacre/v1/console/access`, what the signed-in user may
//!   do in the namespace (or service) shown, so the page hides what they
//!   may not.
//!
//! With `console.enabled = false` only the Nacos-shaped routes stay (tools
//! call them); the bundle, the feed and the stream are not served. With
//! auth on, each route is guarded by what it shows ([`Routes`]).

mod access;
mod assets;
mod feed;
mod gather;
pub mod history;
mod live;
mod namespaces;
mod nodes;
mod params;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::consistency::RaftStore;
use crate::consistency::distro::Distro;
use crate::naming::ServiceManager;
use crate::shutdown::Shutdown;

pub(crate) use gather::member_feed;
pub use history::MetricsHistory;
pub use live::ServiceChanges;

/// What the console's routes read. Cheap to clone.
#[derive(Clone)]
pub struct Console(Arc<Parts>);

/// The node's parts the console reads, built once by [`crate::node`].
pub struct Parts {
    /// `console.enabled`: serve the bundle, the feed and the live stream.
    pub enabled: bool,
    /// The registry and the naming reads.
    pub naming: Arc<ServiceManager>,
    /// The address this node tells others to reach it at.
    pub advertised: SocketAddr,
    /// Membership, when the node is part of a cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// Distro, when the node is part of a cluster: its sync backlog.
    pub distro: Option<Arc<Distro>>,
    /// Raft, when the node is part of a cluster: leader, term, indexes.
    pub raft: Option<Arc<RaftStore>>,
    /// This node's figures over the last minutes.
    pub history: Arc<MetricsHistory>,
    /// Ends the live streams when the node stops.
    pub shutdown: Shutdown,
    /// Services changed by any member, for the live streams (the node has
    /// the notifier tell it).
    pub services: Arc<ServiceChanges>,
    /// Users and permissions: the namespace list shows a user only the
    /// namespaces they may read.
    pub auth: Arc<Auth>,
}

impl std::ops::Deref for Console {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Console {
    /// The console over `parts`.
    pub fn new(parts: Parts) -> Self {
        Console(Arc::new(parts))
    }
}

/// Query parameters as given (the console's routes take a few plain ones).
pub(crate) type Query = axum::extract::Query<HashMap<String, String>>;

/// The console's routes, with their state, grouped by what a caller needs
/// when auth is on; the HTTP door puts each group behind its guard. A group
/// with no route is `None`.
pub struct Routes<S> {
    /// Open to anyone: the bundle (the login page is part of it).
    pub open: Option<Router<S>>,
    /// Any signed-in user: the namespace list (each user sees which exist
    /// and picks one), the cluster, the node's figures, and what the user
    /// may do.
    pub signed_in: Router<S>,
    /// Reads of the namespace (and service) the parameters name: the feed,
    /// instances across services, the live stream of one namespace.
    pub reads: Option<Router<S>>,
    /// The global admin's: creating, renaming and deleting namespaces.
    pub admin: Router<S>,
}

/// The console's routes (see [`Routes`]).
pub fn routes<S: Clone + Send + Sync + 'static>(console: &Console) -> Routes<S> {
    let signed_in = Router::new()
        .route("/nacos/v1/console/namespaces", get(namespaces::list))
        .route("/nacos/v1/core/cluster/nodes", get(nodes::nodes));
    let admin = Router::new()
        .route(
            "/nacos/v1/console/namespaces",
            post(namespaces::create)
                .put(namespaces::update)
                .delete(namespaces::remove),
        )
        .with_state(console.clone());
    if !console.enabled {
        return Routes {
            open: None,
            signed_in: signed_in.with_state(console.clone()),
            reads: None,
            admin,
        };
    }
    let signed_in = signed_in
        .route("/nacre/v1/console/state", get(feed::state))
        .route("/nacre/v1/console/cluster", get(nodes::cluster))
        .route("/nacre/v1/console/metrics", get(history::recent))
        .route("/nacre/v1/console/access", get(access::access));
    let reads = Router::new()
        .route("/nacre/v1/console/feed", get(feed::feed))
        .route("/nacre/v1/console/instances", get(feed::instances))
        .route("/nacre/v1/console/events", get(live::events));
    Routes {
        open: Some(assets::routes()),
        signed_in: signed_in.with_state(console.clone()),
        reads: Some(reads.with_state(console.clone())),
        admin,
    }
}
