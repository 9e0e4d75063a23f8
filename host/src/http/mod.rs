//! The HTTP API: Nacos's v1 naming open API under `/nacos/v1/ns` (with the
//! console-facing `catalog/*`, `service/subscribers` and the oldest `api/*`
//! routes), plus the console health probes. Handlers are free functions on
//! [`ApiState`], one file per resource, registered in `router`. Every
//! Nacos 1.4 naming route and how Nacre answers it: `docs/COMPATIBILITY.md`.

mod accounts;
mod auth;
mod catalog;
mod cluster;
mod error;
mod forward;
mod health;
mod instance;
mod legacy;
mod loader;
mod metadata;
mod operator;
mod params;
mod ready;
mod responsibility;
mod service;
mod subscribers;
mod unsupported;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::routing::{get, post, put};

pub use error::ApiError;
pub use params::Params;

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::config::HttpConfig;
use crate::consistency::RaftStore;
use crate::consistency::distro::Distro;
use crate::grpc::GrpcDoor;
use crate::naming::ServiceManager;
use crate::plugins::Plugins;
use crate::push::PushService;
use crate::system_stats::SystemStats;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState(Arc<Shared>);

/// The node's parts the HTTP handlers use, built once by [`crate::node`].
pub struct Shared {
    /// The naming operations every client route ends in.
    pub naming: Arc<ServiceManager>,
    /// `[http]`: body and query limits.
    pub limits: HttpConfig,
    /// Memory and CPU figures for metrics and `operator/metrics`.
    pub system: SystemStats,
    /// UDP push: subscribers are added by `instance/list` with a `udpPort`.
    pub push: PushService,
    /// The plugin set, when a plugin folder is configured.
    pub plugins: Option<Arc<Plugins>>,
    /// The address this node tells others to reach it at.
    pub advertised: SocketAddr,
    /// Membership and Distro, when the node is part of a cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// Distro, when the node is part of a cluster: forwarding and the sync routes.
    pub distro: Option<Arc<Distro>>,
    /// Raft, when the node is part of a cluster: the persistent store's routes.
    pub raft: Option<Arc<RaftStore>>,
    /// The gRPC door, when enabled: its figures and connections.
    pub grpc: Option<Arc<GrpcDoor>>,
    /// The web console's routes and what they read.
    pub console: crate::console::Console,
    /// Authentication and authorization of every client route.
    pub auth: Arc<Auth>,
}

impl std::ops::Deref for ApiState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl ApiState {
    /// Shares `shared` between the handlers.
    pub fn new(shared: Shared) -> Self {
        ApiState(Arc::new(shared))
    }
}

const NS: &str = "/nacos/v1/ns";

/// Writes to one instance, Nacos's `@CanDistro` routes. In a cluster they
/// are routed to the responsible node (`forward`), which runs them through
/// these same routes. (The instance detail, `GET /instance`, shares the path
/// but is a read answered where it arrives.)
fn instance_write_routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/instance",
            post(instance::register)
                .put(instance::update)
                .patch(instance::patch)
                .delete(instance::deregister),
        )
        .route("/instance/beat", put(instance::beat))
        .route(
            "/instance/metadata/batch",
            put(metadata::merge).delete(metadata::remove),
        )
        .route("/health", put(instance::mark_health))
        .route("/health/instance", put(instance::mark_health))
        .route("/api/clientBeat", put(instance::beat).post(instance::beat))
}

/// `operator/*`, also served under Nacos's alias `ops/*`. Reading them
/// needs no credential, as in Nacos (Java clients read `operator/metrics`
/// to tell a live server); changing a switch is the admin's.
fn operator_routes(state: &ApiState) -> Router<ApiState> {
    Router::new()
        .route(
            "/switches",
            get(operator::switches).merge(auth::admin(state, put(operator::update_switch))),
        )
        .route("/metrics", get(operator::metrics))
        .route("/servers", get(operator::servers))
        .route("/push/state", get(operator::push_state))
        .route("/distro/server", get(responsibility::server))
        .route("/distro/status", get(responsibility::status))
}

/// Every route of the node: the v1 naming API under `/nacos/v1/ns`, the
/// operator and plugin routes, and the internal cluster routes under
/// `/nacre/v1` (which check the cluster credential).
///
/// Every client route states what its caller needs (`auth::reads`,
/// `writes`, `admin`; docs/AUTH.md has the table); routes without a guard
/// are open on purpose (health probes, server state, login).
pub(crate) fn router(state: ApiState) -> Router {
    let s = &state;
    let instance_writes = instance_write_routes().route_layer(middleware::from_fn_with_state(
        state.clone(),
        forward::route_to_responsible,
    ));
    // The guard is applied after (outside) forwarding: a write is
    // authorized here before it goes to its responsible member.
    let instance_writes = auth::writes_router(s, instance_writes);
    let ns = Router::new()
        .merge(instance_writes)
        .route("/instance", auth::reads(s, get(instance::detail)))
        .route("/instance/list", auth::reads(s, get(instance::list)))
        .route(
            "/instance/statuses",
            auth::reads(s, get(instance::statuses).post(instance::statuses)),
        )
        .route(
            "/service",
            auth::reads(s, get(service::detail)).merge(auth::writes(
                s,
                post(service::create)
                    .put(service::update)
                    .delete(service::remove),
            )),
        )
        .route("/service/list", auth::reads(s, get(service::list)))
        .route(
            "/service/names",
            auth::reads(s, get(legacy::service_names).post(legacy::service_names)),
        )
        .route("/service/checksum", auth::reads(s, put(service::checksum)))
        .route(
            "/service/subscribers",
            auth::reads(s, get(subscribers::list)),
        )
        .route("/cluster", auth::writes(s, put(service::update_cluster)))
        .route("/catalog/services", auth::reads(s, get(catalog::services)))
        .route("/catalog/service", auth::reads(s, get(catalog::service)))
        .route(
            "/catalog/instances",
            auth::reads(s, get(catalog::instances).post(catalog::instances)),
        )
        .route(
            "/catalog/rt/service",
            auth::reads(
                s,
                get(catalog::response_times).post(catalog::response_times),
            ),
        )
        .route("/health/server", get(health::server))
        .route("/health/checkers", get(health::checkers))
        .route(
            "/api/srvIPXT",
            auth::reads(s, get(instance::list).post(instance::list)),
        )
        .route(
            "/api/allDomNames",
            auth::reads(s, get(legacy::all_dom_names).post(legacy::all_dom_names)),
        )
        .nest("/operator", operator_routes(s))
        .nest("/ops", operator_routes(s))
        .merge(unsupported::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            ready::only_when_ready,
        ));
    Router::new()
        .nest(NS, ns)
        .route(
            "/nacos/v1/console/health/liveness",
            get(operator::health_probe),
        )
        .route(
            "/nacos/v1/console/health/readiness",
            get(operator::readiness),
        )
        .route("/nacre/v1/metrics", get(operator::prometheus))
        .route(
            "/nacos/v2/core/loader/current",
            auth::admin(s, get(loader::current)),
        )
        .route("/nacre/v1/plugins", auth::admin(s, get(operator::plugins)))
        .route(
            "/nacre/v1/plugins/reload",
            auth::admin(s, post(operator::reload_plugins)),
        )
        .merge(accounts::routes(s))
        .merge(cluster::routes(&state))
        .merge(console_routes(s))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// The web console's routes, each group behind its guard
/// ([`crate::console::Routes`]).
fn console_routes(state: &ApiState) -> Router<ApiState> {
    let routes = crate::console::routes(&state.console);
    let mut router = auth::signed_in_router(state, routes.signed_in)
        .merge(auth::admin_router(state, routes.admin));
    if let Some(open) = routes.open {
        router = router.merge(open);
    }
    if let Some(reads) = routes.reads {
        router = router.merge(auth::reads_router(state, reads));
    }
    router
}

async fn not_found(uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::NOT_FOUND,
        format!("caused: no such API: {};", uri.path()),
    )
}

async fn method_not_allowed(uri: Uri) -> (StatusCode, String) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        format!("caused: method not allowed on {};", uri.path()),
    )
}
