//! Rendering `instance/list`: the hot read path of every Nacos client.
//!
//! The JSON of a service's hosts is rendered once per revision and cached in the
//! service ([`HostsView`]); a reply then only wraps the cached bytes with the
//! per-request fields (`cacheMillis`, `lastRefTime`, `dom`). Requests that filter
//! by cluster are rendered on the spot.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::Serialize;

use crate::registry::model::{Instance, InstanceId, Metadata, ServiceKey, ServiceMeta};
use crate::registry::{InstanceSlot, Service, ServiceState};

/// The cached rendering of one revision of a service.
pub struct HostsView {
    /// The service's revision this was rendered from.
    pub revision: u64,
    /// JSON array of every enabled instance.
    pub all_hosts: String,
    /// JSON array of the instances a `healthyOnly=true` caller gets.
    pub healthy_hosts: String,
    /// Nacos's `checksum` field: a hash of the listed hosts and the threshold,
    /// as 16 hex digits.
    pub checksum: String,
    /// Whether the healthy share was at or below the protect threshold, so every
    /// instance is shown healthy (Nacos's `reachProtectThreshold`).
    pub reach_protection_threshold: bool,
    /// The service's metadata as a JSON object.
    pub metadata_json: String,
}

/// What one `instance/list` caller asked for.
pub struct ListRequest<'a> {
    /// Cluster names to include; empty means all.
    pub clusters: &'a [String],
    /// The `clusters` parameter as given, echoed back.
    pub clusters_param: &'a str,
    /// `healthyOnly`: leave out unhealthy instances.
    pub healthy_only: bool,
    /// `cacheMillis` of the reply: how long the client may keep it.
    pub cache_millis: u64,
    /// Whether the caller gets the grouped name (`group@@name`) in `dom` and
    /// in each host's `serviceName`, or the bare name: Nacos 1.4 gives the
    /// grouped one to Java clients from 1.0.0 only
    /// ([`super::client_agent::ClientAgent::is_java_since_1_0`]).
    pub grouped_names: bool,
    /// `env` as given, echoed back.
    pub env: &'a str,
}

/// One host in the reply, in Nacos's field order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HostJson<'a> {
    ip: &'a str,
    port: u16,
    valid: bool,
    healthy: bool,
    marked: bool,
    instance_id: String,
    metadata: &'a Metadata,
    enabled: bool,
    weight: f64,
    cluster_name: &'a str,
    service_name: &'a str,
    ephemeral: bool,
}

/// The cached rendering for callers that get bare service names (a type of
/// its own, so that it is cached beside the grouped one).
struct BareHostsView(Arc<HostsView>);

/// Renders the reply for a service that exists.
pub(crate) fn render(service: &Service, request: &ListRequest<'_>, now: i64) -> String {
    let view = hosts_view(service, request.clusters, request.grouped_names);
    reply(service.key(), &view, request, now)
}

/// The hosts of `service` in `clusters` (empty: all), as both front doors
/// show them, each host's `serviceName` grouped (`group@@name`) or bare:
/// cached per revision when unfiltered, rendered on the spot otherwise.
pub(crate) fn hosts_view(service: &Service, clusters: &[String], grouped: bool) -> Arc<HostsView> {
    let key = service.key();
    match (clusters.is_empty(), grouped) {
        (true, true) => {
            service.cached_view(|state, revision| build_view(key, state, revision, &[], true))
        }
        (true, false) => {
            let bare = service.cached_view(|state, revision| {
                BareHostsView(Arc::new(build_view(key, state, revision, &[], false)))
            });
            Arc::clone(&bare.0)
        }
        (false, grouped) => {
            let state = service.read_state();
            Arc::new(build_view(
                key,
                &state,
                service.revision(),
                clusters,
                grouped,
            ))
        }
    }
}

/// Wraps a rendered view into the reply for one caller.
fn reply(key: &ServiceKey, view: &HostsView, request: &ListRequest<'_>, now: i64) -> String {
    let hosts = if request.healthy_only {
        &view.healthy_hosts
    } else {
        &view.all_hosts
    };
    wrap(
        key,
        request,
        now,
        hosts,
        &view.checksum,
        view.reach_protection_threshold,
        &view.metadata_json,
    )
}

/// The reply for a service this node does not know: Nacos answers an empty list.
pub(crate) fn render_unknown(key: &ServiceKey, request: &ListRequest<'_>, now: i64) -> String {
    wrap(key, request, now, "[]", "", false, "{}")
}

fn wrap(
    key: &ServiceKey,
    request: &ListRequest<'_>,
    now: i64,
    hosts: &str,
    checksum: &str,
    protected: bool,
    metadata: &str,
) -> String {
    let grouped = key.grouped_name();
    let dom = if request.grouped_names {
        grouped.as_str()
    } else {
        key.name.as_str()
    };
    let mut out = String::with_capacity(hosts.len() + 256);
    out.push_str("{\"name\":");
    push_json_str(&mut out, &grouped);
    out.push_str(",\"groupName\":");
    push_json_str(&mut out, &key.group);
    out.push_str(",\"clusters\":");
    push_json_str(&mut out, request.clusters_param);
    out.push_str(",\"cacheMillis\":");
    out.push_str(&request.cache_millis.to_string());
    out.push_str(",\"hosts\":");
    out.push_str(hosts);
    out.push_str(",\"lastRefTime\":");
    out.push_str(&now.to_string());
    out.push_str(",\"checksum\":");
    push_json_str(&mut out, checksum);
    out.push_str(",\"allIPs\":false,\"reachProtectionThreshold\":");
    out.push_str(if protected { "true" } else { "false" });
    out.push_str(",\"valid\":true,\"dom\":");
    push_json_str(&mut out, dom);
    out.push_str(",\"env\":");
    push_json_str(&mut out, request.env);
    out.push_str(",\"metadata\":");
    out.push_str(metadata);
    out.push_str(",\"useSpecifiedURL\":false}");
    out
}

/// Appends `s` as a JSON string.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    // serde_json never fails to serialise a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// One instance as the renderer needs it, borrowed from the registry or from a
/// push filter's answer.
struct HostRef<'a> {
    id: &'a InstanceId,
    weight: f64,
    healthy: bool,
    enabled: bool,
    ephemeral: bool,
    marked: bool,
    metadata: &'a Metadata,
}

impl<'a> HostRef<'a> {
    fn from_slot((id, slot): (&'a InstanceId, &'a InstanceSlot)) -> Self {
        HostRef {
            id,
            weight: slot.weight,
            healthy: slot.healthy,
            enabled: slot.enabled,
            ephemeral: slot.ephemeral,
            marked: slot.marked,
            metadata: &slot.metadata,
        }
    }

    fn from_instance(i: &'a Instance) -> Self {
        HostRef {
            id: &i.id,
            weight: i.weight,
            healthy: i.healthy,
            enabled: i.enabled,
            ephemeral: i.ephemeral,
            marked: i.marked,
            metadata: &i.metadata,
        }
    }
}

/// Renders the hosts of `state`, sorted by (cluster, ip, port).
fn build_view(
    key: &ServiceKey,
    state: &ServiceState,
    revision: u64,
    clusters: &[String],
    grouped: bool,
) -> HostsView {
    let mut selected: Vec<HostRef<'_>> = state
        .instances
        .iter()
        .filter(|(id, _)| clusters.is_empty() || clusters.contains(&id.cluster))
        .map(HostRef::from_slot)
        .collect();
    selected.sort_unstable_by(|a, b| a.id.cmp(b.id));
    render_hosts(key, &state.meta, revision, &selected, grouped)
}

/// Renders `instances` in the order given (a push filter's answer), for one caller.
pub(crate) fn render_instances(
    service: &Service,
    instances: &[Instance],
    request: &ListRequest<'_>,
    now: i64,
) -> String {
    let view = hosts_view_of(service, instances, request.clusters, request.grouped_names);
    reply(service.key(), &view, request, now)
}

/// The hosts of a push filter's answer for `service`, in the order given,
/// keeping those in `clusters` (empty: all), `serviceName` grouped or bare.
pub(crate) fn hosts_view_of(
    service: &Service,
    instances: &[Instance],
    clusters: &[String],
    grouped: bool,
) -> HostsView {
    let state = service.read_state();
    let hosts: Vec<HostRef<'_>> = instances
        .iter()
        .filter(|i| clusters.is_empty() || clusters.contains(&i.id.cluster))
        .map(HostRef::from_instance)
        .collect();
    render_hosts(
        service.key(),
        &state.meta,
        service.revision(),
        &hosts,
        grouped,
    )
}

/// Applies Nacos's rules: disabled instances are left out, and when the
/// healthy share is at or below the protect threshold every instance is
/// returned as healthy. Each host's `serviceName` is the grouped name when
/// `grouped`, else the bare one.
fn render_hosts(
    key: &ServiceKey,
    meta: &ServiceMeta,
    revision: u64,
    selected: &[HostRef<'_>],
    grouped: bool,
) -> HostsView {
    let total = selected.len();
    let healthy = selected.iter().filter(|h| h.healthy).count();
    let protected = total > 0 && (healthy as f64 / total as f64) <= meta.protect_threshold;

    let service_name = if grouped {
        key.grouped_name()
    } else {
        key.name.clone()
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut all = Vec::with_capacity(total);
    let mut healthy_only = Vec::with_capacity(healthy);
    for host in selected {
        let shown_healthy = protected || host.healthy;
        (
            host.id,
            host.healthy,
            host.enabled,
            host.weight.to_bits(),
            host.metadata,
        )
            .hash(&mut hasher);
        if !host.enabled {
            continue;
        }
        let json_host = HostJson {
            ip: &host.id.ip,
            port: host.id.port,
            valid: shown_healthy,
            healthy: shown_healthy,
            marked: host.marked,
            instance_id: host.id.nacos_instance_id(key),
            metadata: host.metadata,
            enabled: host.enabled,
            weight: host.weight,
            cluster_name: &host.id.cluster,
            service_name: &service_name,
            ephemeral: host.ephemeral,
        };
        let json = serde_json::to_string(&json_host).unwrap_or_default();
        if shown_healthy {
            healthy_only.push(json.clone());
        }
        all.push(json);
    }
    meta.protect_threshold.to_bits().hash(&mut hasher);
    HostsView {
        revision,
        all_hosts: format!("[{}]", all.join(",")),
        healthy_hosts: format!("[{}]", healthy_only.join(",")),
        checksum: format!("{:016x}", hasher.finish()),
        reach_protection_threshold: protected,
        metadata_json: serde_json::to_string(&meta.metadata).unwrap_or_else(|_| "{}".into()),
    }
}
