//! Wiring one node: every part is built and connected explicitly here, in data
//! flow order (membership → registry → stores → consistency → naming → HTTP),
//! and every background task gets the node's [`Shutdown`](crate::shutdown::Shutdown).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::config::Config;
use crate::consistency::distro::{Distro, DistroSyncer};
use crate::consistency::{
    ConsistencyService, EphemeralStore, PersistentBackend, PersistentStore, RaftStore,
};
use crate::health::{BeatChecker, HealthProber};
use crate::http::{self, ApiState, Shared};
use crate::naming::manager::ServiceManager;
use crate::naming::registry::Registry;
use crate::notifier::{ChangeListener, Notifier, Pace};
use crate::plugins::manifest::Limits;
use crate::plugins::{PluginListener, Plugins};
use crate::push::PushService;
use crate::shutdown::{self, ShutdownTrigger};
use crate::switches::Switches;
use crate::system_stats::SystemStats;

/// How long shutdown waits for in-flight requests and tasks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running node. Dropping it without [`Node::shutdown`] aborts its tasks.
pub struct Node {
    addr: SocketAddr,
    naming: Arc<ServiceManager>,
    consistency: Arc<ConsistencyService>,
    trigger: ShutdownTrigger,
    tasks: JoinSet<()>,
    raft: Option<Arc<RaftStore>>,
}

impl Node {
    /// Builds the node from `config`, binds its port and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let listener = TcpListener::bind((config.bind, config.port))
            .await
            .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let advertised = SocketAddr::new(advertised_ip(config.bind), addr.port());
        let cluster = if config.cluster.members.is_empty() {
            None
        } else {
            Some(Cluster::new(&config.cluster, addr).context("joining the cluster")?)
        };

        let registry = Arc::new(Registry::new());
        let notifier = Notifier::new();
        // Persistent data: Raft in a cluster, the local log when standalone.
        let raft = match &cluster {
            Some(cluster) => Some(
                RaftStore::open(
                    Arc::clone(cluster),
                    &config.raft,
                    &config.data_dir,
                    Arc::clone(&registry),
                    notifier.clone(),
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
        let distro = cluster
            .as_ref()
            .map(|c| Distro::new(Arc::clone(c), Arc::clone(&registry), notifier.clone()));
        let ephemeral = match &distro {
            Some(distro) => EphemeralStore::clustered(
                Arc::clone(&registry),
                notifier.clone(),
                Arc::clone(distro),
            ),
            None => EphemeralStore::standalone(Arc::clone(&registry), notifier.clone()),
        };
        let consistency = Arc::new(ConsistencyService::new(
            Arc::clone(&registry),
            notifier.clone(),
            ephemeral,
            persistent,
        ));
        let switches = Arc::new(Switches::new(&config));
        let plugins = load_plugins(&config, &registry)?;
        let naming = Arc::new(ServiceManager::new(
            Arc::clone(&consistency),
            Arc::clone(&switches),
            plugins.clone(),
            (
                config.health.beat_timeout_ms,
                config.health.delete_timeout_ms,
            ),
        ));

        let push = PushService::bind(
            config.bind,
            config.push.clone(),
            Arc::clone(&registry),
            Arc::clone(&switches),
            plugins.clone(),
        )
        .await?;
        notifier.listen(Arc::new(push.clone()));

        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(
            notifier
                .clone()
                .run(Arc::clone(&registry), shutdown.clone()),
        );
        tasks.spawn(push.clone().receive_acks(shutdown.clone()));
        tasks.spawn(push.clone().sweep_zombies(shutdown.clone()));
        if let Some(plugins) = &plugins {
            PluginListener::start(
                Arc::clone(plugins),
                Arc::clone(&registry),
                &notifier,
                Pace {
                    window: Duration::from_millis(config.plugins.listener_window_ms),
                    busy_share: f64::from(config.plugins.listener_cpu_percent) / 100.0,
                },
                shutdown.clone(),
            )?;
            let every = Duration::from_millis(config.plugins.reload_interval_ms);
            tasks.spawn(Arc::clone(plugins).watch(every, shutdown.clone()));
        }
        if let (Some(cluster), Some(distro)) = (&cluster, &distro) {
            tasks.spawn(Arc::clone(cluster).run_probes(shutdown.clone()));
            DistroSyncer::spawn(distro, &mut tasks, &shutdown);
            distro
                .forwarder()
                .spawn(distro.cluster(), &mut tasks, &shutdown);
            tasks.spawn(Arc::clone(distro).run_checksum_rounds(shutdown.clone()));
            let loader = Arc::clone(distro);
            let stop = shutdown.clone();
            tasks.spawn(async move { loader.load_snapshot(stop).await });
        }
        let checker = BeatChecker::new(
            Arc::clone(&consistency),
            Arc::clone(&switches),
            config.health.clone(),
            plugins.clone(),
            cluster.clone(),
        );
        tasks.spawn(checker.run(shutdown.clone()));
        if config.health.probe_enabled {
            let prober = HealthProber::new(
                Arc::clone(&consistency),
                Arc::clone(&switches),
                config.health.clone(),
                cluster.clone(),
            )?;
            tasks.spawn(prober.run(shutdown.clone()));
        }

        let state = ApiState::new(Shared {
            naming: Arc::clone(&naming),
            limits: config.http.clone(),
            system: SystemStats::new(),
            push,
            plugins,
            advertised,
            cluster,
            distro,
            raft: raft.clone(),
        });
        let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let serve =
                axum::serve(listener, app).with_graceful_shutdown(async move { stop.recv().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "node started");
        Ok(Node {
            addr,
            naming,
            consistency,
            trigger,
            tasks,
            raft,
        })
    }

    /// The address the HTTP API is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn naming(&self) -> &Arc<ServiceManager> {
        &self.naming
    }

    /// Subscribes to the node's coalesced change events.
    pub fn listen(&self, listener: Arc<dyn ChangeListener>) {
        self.consistency.listen(listener);
    }

    /// Stops accepting work, lets in-flight requests and tasks finish (bounded).
    pub async fn shutdown(mut self) {
        self.trigger.trigger();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("tasks did not stop within {DRAIN_TIMEOUT:?}; aborting them");
            self.tasks.abort_all();
        }
        if let Some(raft) = &self.raft {
            raft.shutdown().await;
        }
        tracing::info!("node stopped");
    }
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
