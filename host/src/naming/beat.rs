//! A v1 client's beat (Nacos's `InstanceController#beat` and
//! `ClientBeatProcessor`): refreshes the instance's last beat on its
//! responsible member, re-registers it from the beat's body when it is gone,
//! and lets health policies judge it — when its health is the beats' to
//! decide ([`super::health_owner`]): a beat to a persistent instance is
//! answered and changes nothing.

use serde::Serialize;

use super::health_owner::HealthOwner;
use super::{NamingError, ServiceManager};
use crate::clock::now_millis;
use crate::plugins::HealthVerdict;
use crate::registry::feed::{Cause, What};
use crate::registry::model::{
    HealthChecker, Instance, InstanceId, Lease, Metadata, ServiceKey, Version,
};

/// Beat result codes the Nacos clients understand.
pub const BEAT_OK: u32 = 10200;
/// The instance is unknown: the client should register it again (sent for a
/// light beat, which carries no body to re-register from).
pub const BEAT_UNKNOWN_INSTANCE: u32 = 20404;

/// What a client sends in a beat body (the Java client's `BeatInfo`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BeatInfo {
    /// The instance's address.
    pub ip: String,
    /// The instance's port.
    pub port: u16,
    /// Weight to re-register with (default 1).
    pub weight: Option<f64>,
    /// `group@@name` as the client sends it; not read: the request's
    /// `serviceName` names the service.
    pub service_name: String,
    /// The instance's cluster; when not blank it wins over `clusterName`.
    pub cluster: String,
    /// Metadata to re-register with; health policies see it on every beat.
    pub metadata: Metadata,
    /// Sent by the Java client; not read.
    pub scheduled: bool,
    /// The client's beat period (ms); not read: the interval the node asks for
    /// comes from the switches or `preserved.heart.beat.interval`.
    pub period: Option<i64>,
    /// Sent by the Java client; not read.
    pub stopped: bool,
    /// Whether a re-registration is ephemeral (default true).
    pub ephemeral: Option<bool>,
}

/// The answer to a beat, in Nacos's shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BeatReply {
    /// Milliseconds until the next beat the client should send.
    pub client_beat_interval: u64,
    /// [`BEAT_OK`] or [`BEAT_UNKNOWN_INSTANCE`].
    pub code: u32,
    /// Whether the client may send light beats (no body) from now on.
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
                self.register_by(
                    service.clone(),
                    instance,
                    self.deadline(),
                    Cause::BeatOfUnknown,
                )
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
        // Only instances whose health the beats own are judged on a beat: a
        // beat to a persistent (probed) or marked instance just answers.
        if outcome.ephemeral && !outcome.marked {
            let deleted = self
                .judge_on_beat(&service, &id, outcome.healthy, beat_metadata.as_ref())
                .await?;
            if deleted {
                return Ok(reply);
            }
        }
        if let Some(interval) = outcome.beat_interval {
            reply.client_beat_interval = interval;
        }
        Ok(reply)
    }

    /// Applies what a beat means for the health of an instance the beats
    /// own: healthy again, unless a health policy says otherwise. Returns
    /// whether a policy deleted the instance.
    async fn judge_on_beat(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        healthy: bool,
        beat_metadata: Option<&Metadata>,
    ) -> Result<bool, NamingError> {
        let verdict = self.beat_verdict(service, id, beat_metadata).await;
        let cause = match verdict {
            Some(_) => Cause::Policy,
            None => Cause::BeatResumed,
        };
        let wanted = match verdict {
            Some(HealthVerdict::Delete) => {
                tracing::info!(service = %service, ip = %id.ip, port = id.port, "health policy deleted the instance on its beat");
                self.deregister_instance(service.clone(), id.clone(), true, Cause::Policy)
                    .await?;
                return Ok(true);
            }
            Some(HealthVerdict::Unhealthy) => false,
            Some(HealthVerdict::Healthy) | None => true,
        };
        if wanted == healthy {
            return Ok(false);
        }
        let Some(mut instance) = self.beat_owned(service, id) else {
            return Ok(false);
        };
        instance.healthy = wanted;
        tracing::info!(service = %service, ip = %id.ip, port = id.port, healthy = wanted, "instance health changed on its beat");
        self.update_existing(service.clone(), instance).await?;
        let what = if wanted {
            What::Healthy
        } else {
            What::Unhealthy
        };
        self.registry
            .feed()
            .record(now_millis(), service, id, what, cause);
        Ok(false)
    }

    /// The instance, if its health is the beats' to decide.
    fn beat_owned(&self, service: &ServiceKey, id: &InstanceId) -> Option<Instance> {
        let instance = self.registry.instance(service, id)?;
        let owner = HealthOwner::of(
            instance.ephemeral,
            &instance.lease,
            instance.marked,
            &HealthChecker::default(),
        );
        (owner == HealthOwner::Beats).then_some(instance)
    }

    /// What the health policies say about an instance that just beat, if any
    /// applies (and the beats own its health).
    async fn beat_verdict(
        &self,
        service: &ServiceKey,
        id: &InstanceId,
        beat_metadata: Option<&Metadata>,
    ) -> Option<HealthVerdict> {
        let plugins = self.plugins.as_ref().filter(|p| p.judges(service))?;
        let instance = self.beat_owned(service, id)?;
        let beat_metadata: Vec<(String, String)> = beat_metadata
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        plugins
            .judge(service, &instance, true, &beat_metadata, self.beat_timeouts)
            .await
    }
}
