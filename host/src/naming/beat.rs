//! A v1 client's beat (Nacos's `InstanceController#beat` and
//! `ClientBeatProcessor`): refreshes the instance's last beat on its
//! responsible member, re-registers it from the beat's body when it is gone,
//! and lets health policies judge it.

use serde::Serialize;

use super::{NamingError, ServiceManager};
use crate::clock::now_millis;
use crate::plugins::HealthVerdict;
use crate::registry::model::{Instance, InstanceId, Lease, Metadata, ServiceKey, Version};

/// Beat result codes the Nacos clients understand.
pub const BEAT_OK: u32 = 10200;
pub const BEAT_UNKNOWN_INSTANCE: u32 = 20404;

/// What a client sends in a beat body (the Java client's `BeatInfo`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BeatInfo {
    pub ip: String,
    pub port: u16,
    pub weight: Option<f64>,
    pub service_name: String,
    pub cluster: String,
    pub metadata: Metadata,
    pub scheduled: bool,
    pub period: Option<i64>,
    pub stopped: bool,
    pub ephemeral: Option<bool>,
}

/// The answer to a beat, in Nacos's shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BeatReply {
    pub client_beat_interval: u64,
    pub code: u32,
    pub light_beat_enabled: bool,
}

impl ServiceManager {
    /// Processes a beat. `body` is the parsed beat JSON, if the client sent one;
    /// without it (a light beat) an unknown instance answers 20404 so the client
    /// re-registers, with it the instance is re-registered from the body.
    pub async fn beat(
        &self,
        service: ServiceKey,
        id: InstanceId,
        body: Option<BeatInfo>,
    ) -> Result<BeatReply, NamingError> {
        let (interval, light) = self
            .switches
            .with(|s| (s.client_beat_interval, s.light_beat_enabled));
        let mut reply = BeatReply {
            client_beat_interval: interval,
            code: BEAT_OK,
            light_beat_enabled: light,
        };
        let now = now_millis();
        // Health policies see the beat's metadata; without them it is not needed.
        let beat_metadata = self
            .plugins
            .as_ref()
            .and(body.as_ref())
            .map(|b| b.metadata.clone());
        let outcome = match self.registry.touch(&service, &id, now) {
            Some(outcome) => outcome,
            None => {
                let Some(body) = body else {
                    reply.code = BEAT_UNKNOWN_INSTANCE;
                    return Ok(reply);
                };
                let instance = Instance {
                    id: id.clone(),
                    weight: body.weight.unwrap_or(1.0),
                    healthy: true,
                    enabled: true,
                    ephemeral: body.ephemeral.unwrap_or(true),
                    marked: false,
                    metadata: body.metadata,
                    last_beat: now,
                    version: Version::ZERO,
                    lease: Lease::Beat,
                };
                tracing::info!(service = %service, ip = %id.ip, port = id.port, "re-registering instance from its beat");
                self.register_by(service.clone(), instance, self.deadline())
                    .await?;
                match self.registry.touch(&service, &id, now) {
                    Some(outcome) => outcome,
                    None => {
                        reply.code = BEAT_UNKNOWN_INSTANCE;
                        return Ok(reply);
                    }
                }
            }
        };
        if !outcome.marked {
            let verdict = self
                .beat_verdict(&service, &id, beat_metadata.as_ref())
                .await;
            let wanted = match verdict {
                Some(HealthVerdict::Delete) => {
                    tracing::info!(service = %service, ip = %id.ip, port = id.port, "health policy deleted the instance on its beat");
                    self.deregister_instance(service, id, outcome.ephemeral)
                        .await?;
                    return Ok(reply);
                }
                Some(HealthVerdict::Unhealthy) => false,
                Some(HealthVerdict::Healthy) | None => true,
            };
            if wanted != outcome.healthy
                && let Ok(mut instance) = self.require_instance(&service, &id)
            {
                instance.healthy = wanted;
                tracing::info!(service = %service, ip = %id.ip, port = id.port, healthy = wanted, "instance health changed on its beat");
                self.put(service.clone(), instance).await?;
            }
        }
        if let Some(interval) = outcome.beat_interval {
            reply.client_beat_interval = interval;
        }
        Ok(reply)
    }

    /// What the health policies say about an instance that just beat, if any
    /// applies (waiting for them at most the plugins' request-path budget).
    async fn beat_verdict(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        beat_metadata: Option<&Metadata>,
    ) -> Option<HealthVerdict> {
        let plugins = self.plugins.as_ref()?;
        let instance = self.registry.instance(service, id)?;
        let beat_metadata: Vec<(String, String)> = beat_metadata
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        plugins
            .judge(service, &instance, true, &beat_metadata, self.beat_timeouts)
            .await
    }
}
