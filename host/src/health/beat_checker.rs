//! The beat checker (the seed's `ClientBeatCheckTask`): every check period it
//! looks at each ephemeral instance's last beat; past the beat timeout the
//! instance turns unhealthy, past the delete timeout it is removed. Both are
//! writes through the consistency facade, so they are change events like any
//! other. Instances whose health an operator marked are left alone.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::HealthConfig;
use crate::consistency::{ConsistencyService, Key, Record};
use crate::naming::model::{
    META_BEAT_TIMEOUT, META_DELETE_TIMEOUT, ServiceKey, metadata_millis, now_millis,
};
use crate::naming::registry::{InstanceSlot, Registry};
use crate::shutdown::Shutdown;
use crate::switches::Switches;

pub struct BeatChecker {
    registry: Arc<Registry>,
    consistency: Arc<ConsistencyService>,
    switches: Arc<Switches>,
    config: HealthConfig,
}

/// What the checker decided for one instance.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Unhealthy,
    Delete,
}

impl BeatChecker {
    pub fn new(
        consistency: Arc<ConsistencyService>,
        switches: Arc<Switches>,
        config: HealthConfig,
    ) -> Self {
        BeatChecker {
            registry: Arc::clone(consistency.registry()),
            consistency,
            switches,
            config,
        }
    }

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
    async fn check_once(&self, now: i64) {
        let cutoff = now - self.config.empty_service_clean_ms as i64;
        for service in self.registry.services() {
            let (verdicts, idle): (Vec<_>, bool) = {
                let state = service.read_state();
                let verdicts = state
                    .instances
                    .iter()
                    .filter_map(|(id, slot)| self.judge(slot, now).map(|v| (id.clone(), v)))
                    .collect();
                let idle = !state.explicit
                    && state.instances.is_empty()
                    && state.empty_since.is_some_and(|t| t < cutoff);
                (verdicts, idle)
            };
            let key = service.key();
            for (id, verdict) in verdicts {
                if let Err(e) = self.enforce(key, id.clone(), verdict.clone(), now).await {
                    tracing::warn!(service = %key, ip = %id.ip, port = id.port, ?verdict, error = %e, "beat check could not apply its verdict");
                }
            }
            // Checked again under the registry's lock: a registration may have come in meanwhile.
            if idle && self.registry.remove_if_idle(key, cutoff) {
                tracing::info!(service = %key, "removed empty service");
            }
        }
    }

    fn judge(&self, slot: &InstanceSlot, now: i64) -> Option<Verdict> {
        if !slot.ephemeral || slot.marked {
            return None;
        }
        let silent = now - slot.last_beat.load(Ordering::Relaxed);
        let delete_after = metadata_millis(&slot.metadata, META_DELETE_TIMEOUT)
            .unwrap_or(self.config.delete_timeout_ms);
        let unhealthy_after = metadata_millis(&slot.metadata, META_BEAT_TIMEOUT)
            .unwrap_or(self.config.beat_timeout_ms);
        if silent > delete_after as i64 {
            Some(Verdict::Delete)
        } else if silent > unhealthy_after as i64 && slot.healthy {
            Some(Verdict::Unhealthy)
        } else {
            None
        }
    }

    async fn enforce(
        &self,
        service: &ServiceKey,
        id: crate::naming::model::InstanceId,
        verdict: Verdict,
        now: i64,
    ) -> Result<(), crate::consistency::ConsistencyError> {
        // Look again: a beat may have arrived since the scan.
        let Some(mut instance) = self.registry.instance(service, &id) else {
            return Ok(());
        };
        let service_state = self.registry.service(service);
        let still = service_state.as_ref().and_then(|s| {
            let state = s.read_state();
            state
                .instances
                .get(&id)
                .and_then(|slot| self.judge(slot, now))
        });
        if still != Some(verdict.clone()) {
            return Ok(());
        }
        match verdict {
            Verdict::Unhealthy => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, last_beat = instance.last_beat, "instance unhealthy: no beat within timeout");
                instance.healthy = false;
                self.consistency
                    .put(Record::Instance {
                        service: service.clone(),
                        instance,
                    })
                    .await
            }
            Verdict::Delete => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, last_beat = instance.last_beat, "instance deleted: no beat within delete timeout");
                self.consistency
                    .remove(Key::Instance {
                        service: service.clone(),
                        id,
                        ephemeral: true,
                    })
                    .await
            }
        }
    }
}
