//! Active health checks of persistent instances (Nacos's `HealthCheckTask`
//! with its TCP and HTTP processors). Persistent instances do not beat; the
//! node responsible for a service probes them instead, every
//! `probe_interval_ms`:
//!
//! - TCP (the default): healthy while a connection to `ip:port` opens within
//!   `probe_timeout_ms`;
//! - HTTP, when the instance's cluster says so (`PUT /nacos/v1/ns/cluster`
//!   with a `healthChecker` of type HTTP): healthy while `GET path` answers
//!   the expected status.
//!
//! An instance turns unhealthy after `checkTimes` failed probes in a row (a
//! runtime switch, 3 by default) and healthy again after one success. Health
//! changes are writes through the consistency facade (Raft in a cluster), so
//! they reach every node and every listener. Only instances whose health
//! the prober owns are probed ([`crate::naming::health_owner`]): persistent,
//! unmarked, in a cluster whose checker is not `NONE`. Addresses are probed
//! in every form clients register them: IPv4, IPv6 (bracketed or with a
//! zone) and host names.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::config::HealthConfig;
use crate::consistency::{ConsistencyService, Record};
use crate::naming::health_owner::HealthOwner;
use crate::registry::feed::{Cause, What};
use crate::registry::model::{HealthChecker, InstanceId, ServiceKey};
use crate::registry::{FastHash, Registry};
use crate::shutdown::Shutdown;
use crate::switches::Switches;

/// Probes in flight at once, at most.
const PARALLEL_PROBES: usize = 64;

/// One instance to probe.
struct Target {
    service: ServiceKey,
    id: InstanceId,
    healthy: bool,
    /// The instance's address as registered (an IP in any form clients
    /// send, or a host name) and the port to check.
    host: String,
    port: u16,
    checker: HealthChecker,
}

/// The active health check of persistent instances (Nacos's
/// `HealthCheckProcessor`): TCP connects or HTTP GETs, every
/// `health.probe_interval_ms`, on the member responsible for the service;
/// `checkTimes` failures in a row turn an instance unhealthy, one success
/// healthy again.
pub struct HealthProber {
    registry: Arc<Registry>,
    consistency: Arc<ConsistencyService>,
    switches: Arc<Switches>,
    config: HealthConfig,
    cluster: Option<Arc<Cluster>>,
    http: reqwest::Client,
    /// Failed probes in a row, per instance.
    failures: Mutex<HashMap<(ServiceKey, InstanceId), u32, FastHash>>,
}

impl HealthProber {
    /// A prober writing its verdicts through `consistency`. Fails only if its HTTP
    /// client cannot be built.
    pub fn new(
        consistency: Arc<ConsistencyService>,
        switches: Arc<Switches>,
        config: HealthConfig,
        cluster: Option<Arc<Cluster>>,
    ) -> anyhow::Result<Arc<HealthProber>> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.probe_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Arc::new(HealthProber {
            registry: Arc::clone(consistency.registry()),
            consistency,
            switches,
            config,
            cluster,
            http,
            failures: Mutex::new(HashMap::default()),
        }))
    }

    /// Probes every `probe_interval_ms` until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.probe_interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            if self.switches.with(|s| s.health_check_enabled) {
                self.probe_once().await;
            }
        }
    }

    /// Persistent, unmarked instances of the services this node is responsible for.
    fn targets(&self) -> Vec<Target> {
        let view = self
            .cluster
            .as_ref()
            .map(|c| (c.view(), c.me(), c.is_ready()));
        let mut targets = Vec::new();
        for service in self.registry.services() {
            let key = service.key();
            let responsible = view
                .as_ref()
                .is_none_or(|(v, me, ready)| *ready && v.responsible(key) == Some(*me));
            if !responsible {
                continue;
            }
            let state = service.read_state();
            for (id, slot) in &state.instances {
                let cluster = state.meta.clusters.get(&id.cluster);
                let checker = cluster
                    .map(|c| c.health_checker.clone())
                    .unwrap_or_default();
                let owner = HealthOwner::of(slot.ephemeral, &slot.lease, slot.marked, &checker);
                if owner != HealthOwner::Prober {
                    continue;
                }
                let port = cluster
                    .map(|c| c.check_port)
                    .filter(|p| *p != 0)
                    .unwrap_or(id.port);
                targets.push(Target {
                    service: key.clone(),
                    id: id.clone(),
                    healthy: slot.healthy,
                    host: id.ip.clone(),
                    port,
                    checker,
                });
            }
        }
        targets
    }

    async fn probe_once(self: &Arc<Self>) {
        let targets = self.targets();
        self.forget_gone(&targets);
        let mut probes = JoinSet::new();
        for target in targets {
            while probes.len() >= PARALLEL_PROBES {
                probes.join_next().await;
            }
            let prober = Arc::clone(self);
            probes.spawn(async move {
                let ok = prober.probe(&target).await;
                prober.record(target, ok).await;
            });
        }
        while probes.join_next().await.is_some() {}
    }

    async fn probe(&self, target: &Target) -> bool {
        let deadline = Duration::from_millis(self.config.probe_timeout_ms);
        let addrs = match tokio::time::timeout(deadline, resolve(&target.host, target.port)).await {
            Ok(addrs) if !addrs.is_empty() => addrs,
            _ => return false,
        };
        match &target.checker {
            // Healthy if any of its addresses accepts (tried in order).
            HealthChecker::Tcp | HealthChecker::None => {
                matches!(
                    tokio::time::timeout(deadline, tokio::net::TcpStream::connect(&addrs[..]))
                        .await,
                    Ok(Ok(_))
                )
            }
            HealthChecker::Http {
                path,
                expected_code,
            } => {
                let url = format!("http://{}{path}", addrs[0]);
                match self.http.get(&url).send().await {
                    Ok(reply) => reply.status().as_u16() == *expected_code,
                    Err(_) => false,
                }
            }
        }
    }

    /// Counts the result and writes a health change when one is due.
    async fn record(&self, target: Target, ok: bool) {
        let check_times = self.switches.with(|s| s.check_times).max(1);
        let failed_in_a_row = {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            let key = (target.service.clone(), target.id.clone());
            if ok {
                failures.remove(&key);
                0
            } else {
                let count = failures.entry(key).or_insert(0);
                *count = count.saturating_add(1);
                *count
            }
        };
        let wanted = if ok {
            true
        } else if failed_in_a_row >= check_times {
            false
        } else {
            // Failing, but not yet often enough to count.
            target.healthy
        };
        if wanted == target.healthy {
            return;
        }
        let Some(mut instance) = self.registry.instance(&target.service, &target.id) else {
            return;
        };
        if instance.marked || instance.healthy == wanted {
            return;
        }
        instance.healthy = wanted;
        tracing::info!(service = %target.service, ip = %target.id.ip, port = target.id.port, healthy = wanted, "probe changed a persistent instance's health");
        let record = Record::Instance {
            service: target.service.clone(),
            instance,
        };
        let deadline = crate::consistency::Deadline::now()
            + Duration::from_millis(self.config.probe_interval_ms);
        // Only if it still exists: a deregistration racing the probe wins.
        let write = self
            .consistency
            .write_verdict(crate::consistency::Write::Update(record), deadline);
        match write.await {
            Ok(()) => self.registry.feed().record(
                crate::clock::now_millis(),
                &target.service,
                &target.id,
                if wanted {
                    What::Healthy
                } else {
                    What::Unhealthy
                },
                Cause::Probe {
                    check: match target.checker {
                        HealthChecker::Http { .. } => "HTTP",
                        _ => "TCP",
                    }
                    .to_string(),
                    ok,
                },
            ),
            Err(e) => {
                tracing::warn!(service = %target.service, error = %e, "could not record a probe's verdict")
            }
        }
    }

    /// Drops failure counts of instances no longer probed here.
    fn forget_gone(&self, targets: &[Target]) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.is_empty() {
            return;
        }
        let live: std::collections::HashSet<(&ServiceKey, &InstanceId)> =
            targets.iter().map(|t| (&t.service, &t.id)).collect();
        failures.retain(|(s, i), _| live.contains(&(s, i)));
    }
}

/// Where to probe an instance registered at `host`: an IP address (also in
/// brackets, `[::1]`), or what the system resolver makes of the rest (an
/// IPv6 address with a zone, `fe80::1%eth0`, or a host name, which may have
/// several addresses). Empty when it resolves to nothing.
async fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => addrs.collect(),
        Err(_) => Vec::new(),
    }
}
