//! The beat checker (the seed's `ClientBeatCheckTask`): every check period it
//! looks at each ephemeral instance's last beat; past the beat timeout the
//! instance turns unhealthy, past the delete timeout it is removed. Both are
//! writes through the consistency facade, so they are change events like any
//! other. It judges only the instances whose health beats own
//! ([`crate::naming::health_owner`]): not persistent ones (the prober's), not
//! a v2 connection's, not those an operator marked.
//!
//! In a cluster only the member responsible for a service judges its
//! instances, and only while every member of its view agrees on the view
//! ([`Cluster::judging_since`]): while views differ, two members may both
//! think they are responsible and each see only part of the beats. A member
//! that has just become responsible (or regained agreement) grants every
//! instance a full timeout from that moment: its beats went elsewhere until
//! now, so the last-beat times here may be stale (Nacos's mass false
//! deletion, alibaba/nacos#1873).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::now_millis;
use crate::cluster::Cluster;
use crate::config::HealthConfig;
use crate::consistency::{ConsistencyService, Deadline, Key, Record, Write};
use crate::logging::UtcMillis;
use crate::naming::health_owner::HealthOwner;
use crate::plugins::{HealthVerdict, Plugins};
use crate::registry::feed::{Cause, What};
use crate::registry::model::{
    BeatTimeouts, HealthChecker, Instance, InstanceId, Lease, Metadata, ServiceKey,
};
use crate::registry::{InstanceSlot, Registry};
use crate::shutdown::Shutdown;
use crate::switches::Switches;

/// The beat checker (Nacos's `ClientBeatCheckTask`): every
/// `health.check_period_ms` it turns ephemeral, beat-leased, unmarked
/// instances silent for longer than their beat timeout unhealthy, then deletes
/// them after the delete timeout, on the member responsible for their service.
pub struct BeatChecker {
    registry: Arc<Registry>,
    consistency: Arc<ConsistencyService>,
    switches: Arc<Switches>,
    config: HealthConfig,
    /// Health policies, consulted before the default rules.
    plugins: Option<Arc<Plugins>>,
    /// In a cluster: who is responsible for which service.
    cluster: Option<Arc<Cluster>>,
}

/// What the checker decided for one instance.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Healthy,
    Unhealthy,
    Delete,
}

impl BeatChecker {
    /// A checker writing its verdicts through `consistency`; `plugins` (health
    /// policies) are asked first, `cluster` decides which services are this node's.
    pub fn new(
        consistency: Arc<ConsistencyService>,
        switches: Arc<Switches>,
        config: HealthConfig,
        plugins: Option<Arc<Plugins>>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        BeatChecker {
            registry: Arc::clone(consistency.registry()),
            consistency,
            switches,
            config,
            plugins,
            cluster,
        }
    }

    /// Checks every `check_period_ms` until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.check_period_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            if self.switches.with(|s| s.health_check_enabled) {
                self.check_once(now_millis()).await;
            }
        }
    }

    /// One pass over every service, judging beats against `now` (ms).
    pub(crate) async fn check_once(&self, now: i64) {
        let cutoff = now - self.config.empty_service_clean_ms as i64;
        // In a cluster: the agreed view decides what this node judges, and
        // beats count from no earlier than the moment it was agreed.
        let (judging, floor) = match &self.cluster {
            None => (true, 0),
            Some(cluster) => match cluster.judging_since() {
                Some(since) => (true, since),
                None => (false, 0),
            },
        };
        let view = self.cluster.as_ref().map(|c| (c.view(), c.me()));
        for service in self.registry.services() {
            let key = service.key();
            let responsible = judging
                && view
                    .as_ref()
                    .is_none_or(|(v, me)| v.responsible(key) == Some(*me));
            let policy = self.plugins.as_ref().filter(|p| p.judges(key));
            let (verdicts, idle): (Vec<_>, bool) = {
                let state = service.read_state();
                let idle = !state.explicit
                    && state.instances.is_empty()
                    && state.empty_since.is_some_and(|t| t < cutoff);
                let verdicts = match policy {
                    _ if !responsible => Vec::new(),
                    // Plugins are called without the service's lock held (they may read the registry).
                    Some(_) => Vec::new(),
                    None => state
                        .instances
                        .iter()
                        .filter_map(|(id, slot)| {
                            self.judge(slot, now, floor).map(|v| (id.clone(), v, false))
                        })
                        .collect(),
                };
                (verdicts, idle)
            };
            let verdicts = match policy {
                Some(plugins) if responsible => {
                    self.policy_verdicts(plugins, key, &service.instances(), now, floor)
                        .await
                }
                _ => verdicts,
            };
            let recheck = policy.is_none();
            for (id, verdict, by_policy) in verdicts {
                if let Err(e) = self
                    .enforce(
                        key,
                        id.clone(),
                        (verdict.clone(), by_policy),
                        (now, floor),
                        recheck,
                    )
                    .await
                {
                    tracing::warn!(service = %key, ip = %id.ip, port = id.port, ?verdict, error = %e, "beat check could not apply its verdict");
                }
            }
            // Checked again under the registry's lock: a registration may have come in meanwhile.
            if idle && self.registry.remove_if_idle(key, cutoff) {
                tracing::info!(service = %key, "removed empty service");
            }
        }
    }

    fn judge(&self, slot: &InstanceSlot, now: i64, floor: i64) -> Option<Verdict> {
        // Persistent instances are the prober's; a connection's live with it.
        if !beats_own(slot.ephemeral, &slot.lease, slot.marked) {
            return None;
        }
        let last_beat = slot.last_beat().max(floor);
        self.default_verdict(last_beat, slot.healthy, &slot.metadata, now)
    }

    /// The instance's timeouts: its own or the node's.
    fn timeouts(&self, metadata: &Metadata) -> BeatTimeouts {
        BeatTimeouts {
            unhealthy_after_ms: self.config.beat_timeout_ms,
            delete_after_ms: self.config.delete_timeout_ms,
        }
        .for_instance(metadata)
    }

    /// The default beat rules.
    fn default_verdict(
        &self,
        last_beat: i64,
        healthy: bool,
        metadata: &Metadata,
        now: i64,
    ) -> Option<Verdict> {
        let silent = now - last_beat;
        let timeouts = self.timeouts(metadata);
        if silent > timeouts.delete_after_ms as i64 {
            Some(Verdict::Delete)
        } else if silent > timeouts.unhealthy_after_ms as i64 && healthy {
            Some(Verdict::Unhealthy)
        } else {
            None
        }
    }

    /// The verdicts on a service's beating instances under its health
    /// policies (plugins, called off this thread).
    async fn policy_verdicts(
        &self,
        plugins: &Plugins,
        service: &ServiceKey,
        instances: &[Instance],
        now: i64,
        floor: i64,
    ) -> Vec<(InstanceId, Verdict, bool)> {
        let mut verdicts = Vec::new();
        for instance in instances
            .iter()
            .filter(|i| beats_own(i.ephemeral, &i.lease, i.marked))
        {
            if let Some((verdict, by_policy)) = self
                .policy_verdict(plugins, service, instance, now, floor)
                .await
            {
                verdicts.push((instance.id.clone(), verdict, by_policy));
            }
        }
        verdicts
    }

    /// A health policy's verdict, or the default rules' when it has no
    /// opinion; with whether the policy decided.
    async fn policy_verdict(
        &self,
        plugins: &Plugins,
        service: &ServiceKey,
        instance: &Instance,
        now: i64,
        floor: i64,
    ) -> Option<(Verdict, bool)> {
        let timeouts = self.timeouts(&instance.metadata);
        let by_policy = match plugins.judge(service, instance, false, &[], timeouts).await {
            Some(HealthVerdict::Healthy) => (!instance.healthy).then_some(Verdict::Healthy),
            Some(HealthVerdict::Unhealthy) => instance.healthy.then_some(Verdict::Unhealthy),
            Some(HealthVerdict::Delete) => Some(Verdict::Delete),
            None => {
                return self
                    .default_verdict(
                        instance.last_beat.max(floor),
                        instance.healthy,
                        &instance.metadata,
                        now,
                    )
                    .map(|v| (v, false));
            }
        };
        by_policy.map(|v| (v, true))
    }

    /// Looks again under the lock: a beat may have arrived since the scan.
    fn still(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        verdict: &Verdict,
        (now, floor): (i64, i64),
    ) -> bool {
        self.registry.service(service).is_some_and(|s| {
            let state = s.read_state();
            state
                .instances
                .get(id)
                .and_then(|slot| self.judge(slot, now, floor))
                .as_ref()
                == Some(verdict)
        })
    }

    /// Writes `verdict` (and whether a health policy gave it) and records
    /// it in the change feed.
    async fn enforce(
        &self,
        service: &ServiceKey,
        id: InstanceId,
        (verdict, by_policy): (Verdict, bool),
        clock: (i64, i64),
        recheck: bool,
    ) -> Result<(), crate::consistency::ConsistencyError> {
        if recheck && !self.still(service, &id, &verdict, clock) {
            return Ok(());
        }
        let Some(instance) = self.registry.instance(service, &id) else {
            return Ok(());
        };
        let (now, floor) = clock;
        let cause = if by_policy {
            Cause::Policy
        } else {
            Cause::BeatTimeout {
                silent_ms: (now - instance.last_beat.max(floor)).max(0) as u64,
            }
        };
        let what = match verdict {
            Verdict::Healthy => What::Healthy,
            Verdict::Unhealthy => What::Unhealthy,
            Verdict::Delete => What::Deregistered,
        };
        self.apply(service, instance, verdict).await?;
        self.registry
            .feed()
            .record(now_millis(), service, &id, what, cause);
        Ok(())
    }

    /// Writes one verdict on `instance`.
    async fn apply(
        &self,
        service: &ServiceKey,
        mut instance: Instance,
        verdict: Verdict,
    ) -> Result<(), crate::consistency::ConsistencyError> {
        let id = instance.id.clone();
        let deadline =
            Deadline::now() + std::time::Duration::from_millis(self.config.check_period_ms);
        match verdict {
            Verdict::Healthy => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, "instance healthy: health policy");
                instance.healthy = true;
                self.put(service, instance, deadline).await
            }
            Verdict::Unhealthy => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, last_beat = %UtcMillis(instance.last_beat), "instance unhealthy: no beat within timeout");
                instance.healthy = false;
                self.put(service, instance, deadline).await
            }
            Verdict::Delete => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, last_beat = %UtcMillis(instance.last_beat), "instance deleted: no beat within delete timeout");
                let key = Key::Instance {
                    service: service.clone(),
                    id,
                    ephemeral: true,
                };
                self.consistency
                    .write_verdict(Write::Remove(key), deadline)
                    .await
            }
        }
    }

    async fn put(
        &self,
        service: &ServiceKey,
        instance: Instance,
        deadline: Deadline,
    ) -> Result<(), crate::consistency::ConsistencyError> {
        let record = Record::Instance {
            service: service.clone(),
            instance,
        };
        // Only if it still exists: a deregistration racing the verdict wins.
        self.consistency
            .write_verdict(Write::Update(record), deadline)
            .await
    }
}

/// Whether an instance's health is the beats' (and so this checker's) to decide.
fn beats_own(ephemeral: bool, lease: &Lease, marked: bool) -> bool {
    HealthOwner::of(ephemeral, lease, marked, &HealthChecker::default()) == HealthOwner::Beats
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::consistency::{EphemeralStore, PersistentBackend, PersistentStore};
    use crate::notifier::Notifier;
    use crate::registry::model::META_BEAT_TIMEOUT;

    /// A standalone node's stores and a checker with the default 15 s / 30 s.
    fn checker(dir: &std::path::Path) -> anyhow::Result<BeatChecker> {
        let registry = Arc::new(Registry::new());
        let notifier = Notifier::new();
        let persistent =
            PersistentStore::open(dir, Arc::clone(&registry), notifier.clone(), false)?;
        let consistency = Arc::new(ConsistencyService::new(
            Arc::clone(&registry),
            notifier.clone(),
            EphemeralStore::standalone(registry, notifier),
            PersistentBackend::Local(persistent),
        ));
        let config = Config::default();
        Ok(BeatChecker::new(
            consistency,
            Arc::new(Switches::new(&config)),
            config.health,
            None,
            None,
        ))
    }

    fn key() -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", "svc")
    }

    async fn register(
        checker: &BeatChecker,
        ip: &str,
        last_beat: i64,
        change: impl FnOnce(&mut Instance),
    ) {
        let mut instance = Instance::for_test(ip, 80, last_beat);
        change(&mut instance);
        let record = Record::Instance {
            service: key(),
            instance,
        };
        let written = checker
            .consistency
            .put(record, Deadline::now() + std::time::Duration::from_secs(1));
        assert!(written.await.is_ok());
    }

    /// (ip, healthy) of every instance, sorted.
    fn state(checker: &BeatChecker) -> Vec<(String, bool)> {
        checker
            .registry
            .service(&key())
            .map(|s| {
                s.instances()
                    .into_iter()
                    .map(|i| (i.id.ip, i.healthy))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn silent_instances_turn_unhealthy_then_go() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let checker = checker(dir.path())?;
        register(&checker, "1.1.1.1", 0, |_| {}).await;
        checker.check_once(15_000).await;
        assert_eq!(
            state(&checker),
            [("1.1.1.1".into(), true)],
            "15 s is not past the timeout"
        );
        checker.check_once(15_001).await;
        assert_eq!(state(&checker), [("1.1.1.1".into(), false)]);
        checker.check_once(30_001).await;
        assert_eq!(state(&checker), []);
        Ok(())
    }

    #[tokio::test]
    async fn a_beat_keeps_it_and_its_own_timeout_counts() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let checker = checker(dir.path())?;
        register(&checker, "1.1.1.1", 0, |_| {}).await;
        register(&checker, "2.2.2.2", 0, |i| {
            i.metadata.insert(META_BEAT_TIMEOUT.into(), "3000".into());
        })
        .await;
        checker
            .registry
            .touch(&key(), &InstanceId::new("DEFAULT", "1.1.1.1", 80), 10_000);
        checker.check_once(20_000).await;
        assert_eq!(
            state(&checker),
            [("1.1.1.1".into(), true), ("2.2.2.2".into(), false)]
        );
        Ok(())
    }

    #[tokio::test]
    async fn marked_persistent_and_connection_instances_are_not_judged() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let checker = checker(dir.path())?;
        register(&checker, "1.1.1.1", 0, |i| i.marked = true).await;
        register(&checker, "2.2.2.2", 0, |i| i.ephemeral = false).await;
        register(&checker, "3.3.3.3", 0, |i| {
            i.lease = Lease::Connection {
                node: "127.0.0.1:8848".parse().expect("an address"),
                incarnation: 1,
                connection: "c1".into(),
            }
        })
        .await;
        checker.check_once(1_000_000).await;
        assert_eq!(
            state(&checker),
            [
                ("1.1.1.1".into(), true),
                ("2.2.2.2".into(), true),
                ("3.3.3.3".into(), true)
            ]
        );
        Ok(())
    }
}
