//! Wiring one node: every part is built and connected explicitly here, in data
//! flow order (registry → stores → consistency → naming → HTTP), and every
//! background task gets the node's [`Shutdown`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::consistency::{ConsistencyService, EphemeralStore, PersistentStore};
use crate::health::BeatChecker;
use crate::http::{self, ApiState, Shared};
use crate::naming::manager::ServiceManager;
use crate::naming::registry::Registry;
use crate::notifier::{ChangeListener, Notifier};
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
}

impl Node {
    /// Builds the node from `config`, binds its port and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let registry = Arc::new(Registry::new());
        let notifier = Notifier::new();
        let persistent = PersistentStore::open(
            &config.data_dir,
            Arc::clone(&registry),
            notifier.clone(),
            config.persistent.sync_writes,
        )?;
        let ephemeral = EphemeralStore::standalone(Arc::clone(&registry), notifier.clone());
        let consistency = Arc::new(ConsistencyService::new(
            Arc::clone(&registry),
            notifier.clone(),
            ephemeral,
            persistent,
        ));
        let switches = Arc::new(Switches::new(&config));
        let naming = Arc::new(ServiceManager::new(
            Arc::clone(&consistency),
            Arc::clone(&switches),
        ));

        let listener = TcpListener::bind((config.bind, config.port))
            .await
            .with_context(|| format!("binding {}:{}", config.bind, config.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let advertised = SocketAddr::new(advertised_ip(config.bind), addr.port());

        let push = PushService::bind(
            config.bind,
            config.push.clone(),
            Arc::clone(&registry),
            Arc::clone(&switches),
        )
        .await?;
        notifier.listen(Arc::new(push.clone()));

        let (trigger, shutdown) = shutdown::channel();
        let mut tasks = JoinSet::new();
        tasks.spawn(notifier.run(Arc::clone(&registry), shutdown.clone()));
        tasks.spawn(push.clone().receive_acks(shutdown.clone()));
        tasks.spawn(push.clone().sweep_zombies(shutdown.clone()));
        let checker = BeatChecker::new(
            Arc::clone(&consistency),
            Arc::clone(&switches),
            config.health.clone(),
        );
        tasks.spawn(checker.run(shutdown.clone()));

        let state = ApiState::new(Shared {
            naming: Arc::clone(&naming),
            limits: config.http.clone(),
            system: SystemStats::new(),
            push,
            advertised,
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
        tracing::info!("node stopped");
    }
}

/// The IP to tell others: the bound one, or loopback when bound to all interfaces.
fn advertised_ip(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    }
}
