//! Wiring one node: every part is built and connected explicitly here, in data
//! flow order (membership → registry → stores → consistency → naming → front
//! doors), and every background task runs in the node's [`JoinSet`] with the
//! node's [`Shutdown`], so [`Node::shutdown`] drains them all.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::accounts::SharedTables;
use crate::auth::{self, Auth};
use crate::banner::Addresses;
use crate::clock::now_millis;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::consistency::distro::{Distro, DistroSyncer};
use crate::consistency::{
    AccountsLog, AccountsStore, ConsistencyService, EphemeralStore, PersistentBackend,
    PersistentStore, RaftStore,
};
use crate::console::{self, Console, MetricsHistory, ServiceChanges};
use crate::grpc::push::DoorListener;
use crate::grpc::{self, GrpcDoor};
use crate::health::{BeatChecker, HealthProber};
use crate::http::{self, ApiState, Shared};
use crate::naming::ServiceManager;
use crate::notifier::{ChangeListener, Notifier, Pace};
use crate::plugins::manifest::Limits;
use crate::plugins::{PluginListener, Plugins};
use crate::push::PushService;
use crate::registry::Registry;
use crate::registry::model::BeatTimeouts;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use crate::switches::Switches;
use crate::system_stats::SystemStats;

/// How long shutdown waits for in-flight requests and tasks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running node. Dropping it without [`Node::shutdown`] aborts its tasks.
pub struct Node {
    addr: SocketAddr,
    addresses: Addresses,
    naming: Arc<ServiceManager>,
    consistency: Arc<ConsistencyService>,
    trigger: ShutdownTrigger,
    tasks: JoinSet<()>,
    /// The plugin listeners' thread, joined at shutdown.
    listener_thread: Option<std::thread::JoinHandle<()>>,
    raft: Option<Arc<RaftStore>>,
    grpc: Option<Arc<GrpcDoor>>,
}

/// What [`Node::shutdown`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Background tasks that did not stop within the drain timeout and were aborted.
    pub aborted: usize,
}

/// The stores and what they share, as [`Node::start`] builds them.
struct Stores {
    registry: Arc<Registry>,
    notifier: Notifier,
    consistency: Arc<ConsistencyService>,
    distro: Option<Arc<Distro>>,
    raft: Option<Arc<RaftStore>>,
    /// Auth over the users, roles, permissions and signing keys.
    auth: Arc<Auth>,
}

impl Node {
    /// Builds the node from `config`, binds its port and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let grpc_port = config.grpc.enabled.then_some(config.grpc.port);
        let (listener, grpc_listener) = grpc::server::bind(config.bind, config.port, grpc_port)
            .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let advertised = SocketAddr::new(advertised_ip(config.bind), addr.port());
        let cluster = if config.cluster.members.is_empty() {
            None
        } else {
            Some(Cluster::new(&config.cluster, addr).context("joining the cluster")?)
        };
        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = JoinSet::new();

        let stores = open_stores(&config, cluster.as_ref(), &mut tasks, &shutdown).await?;
        let auth = Arc::clone(&stores.auth);
        tasks.spawn(auth::bootstrap::run(
            Arc::clone(&auth),
            config.auth.clone(),
            shutdown.clone(),
        ));
        let switches = Arc::new(Switches::new(&config));
        let plugins = load_plugins(&config, &stores.registry)?;
        let naming = naming_operations(&config, &stores, &switches, &plugins);
        let push = PushService::start(
            config.bind,
            config.push.clone(),
            (
                Arc::clone(&stores.registry),
                Arc::clone(&switches),
                plugins.clone(),
            ),
            (&mut tasks, &shutdown),
        )
        .await?;
        stores.notifier.listen(Arc::new(push.clone()));
        let grpc = match grpc_listener {
            Some(listener) => Some(start_grpc(
                &config,
                (&naming, &plugins, &stores.notifier, &auth),
                cluster.as_ref(),
                advertised,
                listener,
                (&mut tasks, &shutdown),
            )?),
            None => None,
        };
        tasks.spawn(
            stores
                .notifier
                .clone()
                .run(Arc::clone(&stores.registry), shutdown.clone()),
        );
        let listener_thread = match &plugins {
            Some(plugins) => Some(start_plugins(
                &config, plugins, &stores, &mut tasks, &shutdown,
            )?),
            None => None,
        };
        if let (Some(cluster), Some(distro)) = (&cluster, &stores.distro) {
            start_cluster(cluster, distro, stores.raft.as_ref(), &mut tasks, &shutdown);
        }
        start_health(
            &config,
            &stores,
            &switches,
            &plugins,
            cluster.as_ref(),
            &mut tasks,
            &shutdown,
        )?;

        let addresses = Addresses {
            http: addr,
            advertised: cluster.as_ref().map_or(advertised, |c| c.me()),
            push_udp: push.local_addr(),
            grpc: grpc.as_ref().map(|g| g.addr()),
        };
        let console = start_console(
            &config,
            (&naming, &push, &stores, cluster.as_ref()),
            grpc.as_ref(),
            addresses.advertised,
            (&mut tasks, &shutdown),
        );
        let state = ApiState::new(Shared {
            naming: Arc::clone(&naming),
            limits: config.http.clone(),
            system: SystemStats::new(),
            push,
            plugins,
            advertised,
            cluster,
            distro: stores.distro.clone(),
            raft: stores.raft.clone(),
            grpc: grpc.clone(),
            console,
            auth,
        });
        serve_http(
            listener,
            state,
            config.http.access_log,
            &mut tasks,
            shutdown,
        );
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "node started");
        Ok(Node {
            addr,
            addresses,
            naming,
            consistency: stores.consistency,
            trigger,
            tasks,
            listener_thread,
            raft: stores.raft,
            grpc,
        })
    }

    /// The address of the gRPC door (Nacos 2.x clients), when it is enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|g| g.addr())
    }

    /// The address the HTTP API is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every address the node is bound to, and the one it is known by.
    pub fn addresses(&self) -> Addresses {
        self.addresses
    }

    /// The naming operations, as the front doors call them (tests use it to reach
    /// the registry directly).
    pub fn naming(&self) -> &Arc<ServiceManager> {
        &self.naming
    }

    /// Subscribes to the node's coalesced change events.
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.consistency.listen(listener);
    }

    /// Stops accepting work, lets in-flight requests and every task finish
    /// (bounded by a drain timeout, then the rest is aborted), joins the
    /// plugin thread and shuts Raft down.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.trigger.trigger();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        let aborted = self.tasks.len();
        if drained.is_err() {
            tracing::warn!(
                aborted,
                "tasks did not stop within {DRAIN_TIMEOUT:?}; aborting them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        if let Some(thread) = self.listener_thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::warn!("the plugin listener thread ended abnormally");
            }
        }
        if let Some(raft) = &self.raft {
            raft.shutdown().await;
        }
        tracing::info!("node stopped");
        ShutdownReport { aborted }
    }
}

/// The registry and the stores: Distro and Raft in a cluster, memory and the
/// local log when standalone.
async fn open_stores(
    config: &Config,
    cluster: Option<&Arc<Cluster>>,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> anyhow::Result<Stores> {
    let registry = Arc::new(match cluster {
        Some(_) => Registry::replicated(),
        None => Registry::new(),
    });
    let notifier = Notifier::new();
    let tables = SharedTables::default();
    let raft = match cluster {
        Some(cluster) => Some(
            RaftStore::open(
                Arc::clone(cluster),
                &config.raft,
                &config.data_dir,
                (Arc::clone(&registry), notifier.clone(), Arc::clone(&tables)),
                (tasks, shutdown),
            )
            .await?,
        ),
        None => None,
    };
    let persistent = match &raft {
        Some(raft) => PersistentBackend::Raft(Arc::clone(raft)),
        None => PersistentBackend::Local(PersistentStore::open(
            &config.data_dir,
            Arc::clone(&registry),
            notifier.clone(),
            config.persistent.sync_writes,
        )?),
    };
    let accounts = match &raft {
        Some(raft) => AccountsStore::Raft(Arc::clone(raft)),
        None => AccountsStore::Local(AccountsLog::open(&config.data_dir, Arc::clone(&tables))?),
    };
    let distro =
        cluster.map(|c| Distro::new(Arc::clone(c), Arc::clone(&registry), notifier.clone()));
    let ephemeral = match &distro {
        Some(distro) => {
            EphemeralStore::clustered(Arc::clone(&registry), notifier.clone(), Arc::clone(distro))
        }
        None => EphemeralStore::standalone(Arc::clone(&registry), notifier.clone()),
    };
    let consistency = Arc::new(ConsistencyService::new(
        Arc::clone(&registry),
        notifier.clone(),
        ephemeral,
        persistent,
    ));
    Ok(Stores {
        registry,
        notifier,
        consistency,
        distro,
        raft,
        auth: Arc::new(Auth::new(
            &config.auth,
            tables,
            accounts,
            Duration::from_millis(config.raft.write_timeout_ms),
        )),
    })
}

/// Listener plugins on their thread, and the plugin folder's watcher.
fn start_plugins(
    config: &Config,
    plugins: &Arc<Plugins>,
    stores: &Stores,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let thread = PluginListener::start(
        Arc::clone(plugins),
        Arc::clone(&stores.registry),
        &stores.notifier,
        Pace {
            window: Duration::from_millis(config.plugins.listener_window_ms),
            busy_share: f64::from(config.plugins.listener_cpu_percent) / 100.0,
        },
        shutdown.clone(),
    )?;
    let every = Duration::from_millis(config.plugins.reload_interval_ms);
    tasks.spawn(Arc::clone(plugins).watch(every, shutdown.clone()));
    Ok(thread)
}

/// Membership probes and Distro: loading, sync, forwarding, repair, tombstones.
fn start_cluster(
    cluster: &Arc<Cluster>,
    distro: &Arc<Distro>,
    raft: Option<&Arc<RaftStore>>,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
) {
    tasks.spawn(Arc::clone(cluster).run_probes(shutdown.clone()));
    tasks.spawn(Arc::clone(distro).keep_loaded(raft.cloned(), shutdown.clone()));
    DistroSyncer::spawn(distro, tasks, shutdown);
    distro.forwarder().spawn(cluster, tasks, shutdown);
    tasks.spawn(Arc::clone(distro).run_checksum_rounds(shutdown.clone()));
    tasks.spawn(Arc::clone(distro).run_repairs(shutdown.clone()));
    tasks.spawn(Arc::clone(distro).forget_old_tombstones(shutdown.clone()));
    tasks.spawn(Arc::clone(distro).run_leases(shutdown.clone()));
}

/// The beat checker, and the prober of persistent instances.
fn start_health(
    config: &Config,
    stores: &Stores,
    switches: &Arc<Switches>,
    plugins: &Option<Arc<Plugins>>,
    cluster: Option<&Arc<Cluster>>,
    tasks: &mut JoinSet<()>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let checker = BeatChecker::new(
        Arc::clone(&stores.consistency),
        Arc::clone(switches),
        config.health.clone(),
        plugins.clone(),
        cluster.cloned(),
    );
    tasks.spawn(checker.run(shutdown.clone()));
    if config.health.probe_enabled {
        let prober = HealthProber::new(
            Arc::clone(&stores.consistency),
            Arc::clone(switches),
            config.health.clone(),
            cluster.cloned(),
        )?;
        tasks.spawn(prober.run(shutdown.clone()));
    }
    Ok(())
}

/// The web console's parts; its metrics sampler runs when it is enabled.
/// Feed entries name `advertised` as the member that decided them.
fn start_console(
    config: &Config,
    (naming, push, stores, cluster): (
        &Arc<ServiceManager>,
        &PushService,
        &Stores,
        Option<&Arc<Cluster>>,
    ),
    grpc: Option<&Arc<GrpcDoor>>,
    advertised: SocketAddr,
    (tasks, shutdown): (&mut JoinSet<()>, &Shutdown),
) -> Console {
    stores.registry.feed().set_node(advertised.to_string());
    let history = Arc::new(MetricsHistory::default());
    let services = Arc::new(ServiceChanges::default());
    if config.console.enabled {
        stores
            .notifier
            .listen(Arc::clone(&services) as Arc<dyn ChangeListener>);
    }
    if config.console.enabled {
        tasks.spawn(Arc::clone(&history).run(
            (Arc::clone(&stores.registry), push.clone(), grpc.cloned()),
            shutdown.clone(),
        ));
    }
    Console::new(console::Parts {
        enabled: config.console.enabled,
        naming: Arc::clone(naming),
        advertised,
        cluster: cluster.cloned(),
        distro: stores.distro.clone(),
        raft: stores.raft.clone(),
        history,
        shutdown: shutdown.clone(),
        services,
        auth: Arc::clone(&stores.auth),
    })
}

/// The HTTP front door: the v1 API and the internal routes, with the access
/// log if `access_log`.
fn serve_http(
    listener: TcpListener,
    state: ApiState,
    access_log: bool,
    tasks: &mut JoinSet<()>,
    mut stop: Shutdown,
) {
    let mut router = http::router(state);
    if access_log {
        router = router.layer(axum::middleware::from_fn(
            crate::logging::access::log_request,
        ));
    }
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    tasks.spawn(async move {
        let serve =
            axum::serve(listener, app).with_graceful_shutdown(async move { stop.recv().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
}

/// The gRPC front door of Nacos 2.x clients.
/// The naming operations both front doors call.
fn naming_operations(
    config: &Config,
    stores: &Stores,
    switches: &Arc<Switches>,
    plugins: &Option<Arc<Plugins>>,
) -> Arc<ServiceManager> {
    Arc::new(ServiceManager::new(
        Arc::clone(&stores.consistency),
        Arc::clone(switches),
        plugins.clone(),
        BeatTimeouts {
            unhealthy_after_ms: config.health.beat_timeout_ms,
            delete_after_ms: config.health.delete_timeout_ms,
        },
        Duration::from_millis(config.raft.write_timeout_ms),
    ))
}

/// Starts the gRPC door on `listener` and has the notifier tell it of
/// changes (for its pushes).
fn start_grpc(
    config: &Config,
    (naming, plugins, notifier, auth): (
        &Arc<ServiceManager>,
        &Option<Arc<Plugins>>,
        &Notifier,
        &Arc<Auth>,
    ),
    cluster: Option<&Arc<Cluster>>,
    advertised: SocketAddr,
    listener: TcpListener,
    (tasks, shutdown): (&mut JoinSet<()>, &Shutdown),
) -> anyhow::Result<Arc<GrpcDoor>> {
    let cluster = cluster.cloned();
    let parts = grpc::Parts {
        config: config.grpc.clone(),
        naming: Arc::clone(naming),
        notifier: notifier.clone(),
        plugins: plugins.clone(),
        auth: Arc::clone(auth),
        // Leases name the member as the cluster knows it (its entry in
        // cluster.members), which is what `distro::leases` compares.
        node: cluster.as_ref().map_or(advertised, |c| c.me()),
        // A standalone node's incarnation only has to differ between its runs.
        incarnation: cluster
            .as_ref()
            .map_or_else(|| now_millis() as u64, |c| c.incarnation()),
        merge_window: Duration::from_millis(config.push.merge_window_ms),
        close_when_not_ready_after: Duration::from_millis(config.cluster.lease_grace_ms / 2),
        ready: Box::new(move || cluster.as_ref().is_none_or(|c| c.is_ready())),
    };
    let door =
        GrpcDoor::start(parts, listener, tasks, shutdown).context("starting the gRPC server")?;
    notifier.listen(Arc::new(DoorListener(Arc::downgrade(&door))));
    Ok(door)
}

/// Compiled plugins are cached here, under the data directory.
pub const PLUGIN_CACHE_DIR: &str = "plugin-cache";

/// Loads the plugin folder, if one is configured.
fn load_plugins(config: &Config, registry: &Arc<Registry>) -> anyhow::Result<Option<Arc<Plugins>>> {
    let dir = &config.plugins.dir;
    if dir.as_os_str().is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the plugin folder {}", dir.display()))?;
    let limits = Limits {
        timeout_ms: config.plugins.timeout_ms,
        memory_bytes: (config.plugins.memory_mb as usize) << 20,
    };
    let plugins = Arc::new(Plugins::new(
        Arc::clone(registry),
        Some(dir.clone()),
        limits,
        Some(config.data_dir.join(PLUGIN_CACHE_DIR)),
    )?);
    plugins.reload();
    Ok(Some(plugins))
}

/// The IP to tell others: the bound one, or loopback when bound to all interfaces.
fn advertised_ip(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    }
}
