//! What the console reads beyond Nacos's API: the change feed (what happened
//! to instances and why), instances across services with their overrides
//! (where is `ip:port`? which instances are down?), and the node it talks to.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::gather::{Gathered, gather};
use super::params::{Bad, namespace, number, page, text};
use super::{Console, Query};
use crate::naming::catalog::{ServiceFilter, page as slice};
use crate::registry::feed::FEED_CAPACITY;
use crate::registry::model::{DEFAULT_GROUP, Instance, ServiceKey};
use crate::wire::FeedQuery;

/// `GET /nacre/v1/console/state`: the node the console talks to:
/// `{"node","version","standalone","bundleBytes","feedCapacity"}`.
pub(super) async fn state(State(console): State<Console>) -> Response {
    Json(json!({
        "node": console.advertised.to_string(),
        "version": env!("CARGO_PKG_VERSION"),
        "standalone": console.cluster.is_none(),
        "bundleBytes": super::assets::bundle_bytes(),
        "feedCapacity": FEED_CAPACITY,
    }))
    .into_response()
}

/// `GET /nacre/v1/console/feed`: the newest changes of every member, newest
/// first: `{"changes":[{"seq","at","node","service","instance","what","cause"}]}`.
/// Filters: `namespaceId` (with `serviceName` and `groupName`, exact: one
/// service's feed), `ip` (part of `ip:port`), `limit` (1 to 4096, 100).
pub(super) async fn feed(State(console): State<Console>, query: Query) -> Result<Response, Bad> {
    let wanted = FeedQuery {
        namespace: namespace(&query)?,
        group: text(&query, "groupName")?.to_string(),
        name: text(&query, "serviceName")?.to_string(),
        address: text(&query, "ip")?.to_string(),
        limit: number(&query, "limit", 100, (1, FEED_CAPACITY))?,
    };
    let gathered = gather(&console, &wanted).await;
    Ok(Json(json!({ "changes": gathered.changes })).into_response())
}

/// Which instances a listing keeps.
struct InstanceFilter<'a> {
    /// Part of `ip:port`.
    address: &'a str,
    /// Only unhealthy ones.
    unhealthy: bool,
    /// A metadata key the instance has, and the value it has there (exact),
    /// if one is given.
    metadata: Option<(&'a str, Option<&'a str>)>,
}

impl InstanceFilter<'_> {
    fn keeps(&self, instance: &Instance) -> bool {
        (!self.unhealthy || !instance.healthy)
            && (self.address.is_empty()
                || format!("{}:{}", instance.id.ip, instance.id.port).contains(self.address))
            && self.metadata.is_none_or(|(key, value)| {
                instance
                    .metadata
                    .get(key)
                    .is_some_and(|found| value.is_none_or(|v| found == v))
            })
    }
}

/// A `metadata` filter: `key=value` (that value exactly) or `key` (any
/// value); empty means none.
fn metadata_filter(raw: &str) -> Option<(&str, Option<&str>)> {
    match raw.split_once('=') {
        _ if raw.is_empty() => None,
        Some((key, value)) => Some((key.trim(), Some(value.trim()))),
        None => Some((raw, None)),
    }
}

/// `GET /nacre/v1/console/instances`: instances of every service of a
/// namespace that the filters keep, ordered by service, cluster and
/// address, a page at a time: `{"count","list":[<instance>]}`. Filters:
/// `serviceName` with `groupName` (one service, exactly), or
/// `serviceNameParam`, `groupNameParam` (parts of names, as
/// `catalog/services`), `ip` (part of `ip:port`), `unhealthy=true`,
/// `metadata` (`key=value`, exactly, or `key`: any value);
/// `pageNo`, `pageSize` (20). Each instance carries what `catalog/instances`
/// shows plus its `override` (an operator's weight/enabled still in force,
/// or null) and its newest `change`, from every member's feed, and the
/// member `responsible` for it.
pub(super) async fn instances(
    State(console): State<Console>,
    query: Query,
) -> Result<Response, Bad> {
    let ns = namespace(&query)?;
    let services = ServiceFilter {
        name: text(&query, "serviceNameParam")?,
        group: text(&query, "groupNameParam")?,
        with_instances: true,
        holding: "",
    };
    let filter = InstanceFilter {
        address: text(&query, "ip")?,
        unhealthy: text(&query, "unhealthy")? == "true",
        metadata: metadata_filter(text(&query, "metadata")?),
    };
    let (page_no, page_size) = page(&query, 20)?;
    let exact = text(&query, "serviceName")?;
    let group = match text(&query, "groupName")? {
        "" => DEFAULT_GROUP,
        group => group,
    };
    let scanned = match exact {
        "" => console.naming.find_services(&ns, &services),
        name => console
            .naming
            .registry()
            .service(&ServiceKey::new(ns.as_str(), group, name))
            .into_iter()
            .collect(),
    };
    let mut found: Vec<(ServiceKey, Instance)> = Vec::new();
    for service in scanned {
        let key = service.key().clone();
        let mut kept: Vec<Instance> = service
            .instances()
            .into_iter()
            .filter(|i| filter.keeps(i))
            .collect();
        kept.sort_by(|a, b| a.id.cmp(&b.id));
        found.extend(kept.into_iter().map(|i| (key.clone(), i)));
    }
    let shown = slice(&found, page_no, page_size);
    // What every member recorded about the instances shown.
    let about = FeedQuery {
        namespace: ns.clone(),
        group: if exact.is_empty() { "" } else { group }.to_string(),
        name: exact.to_string(),
        address: filter.address.to_string(),
        limit: FEED_CAPACITY,
    };
    let gathered = match shown.is_empty() {
        true => Gathered::default(),
        false => gather(&console, &about).await,
    };
    let list: Vec<Value> = shown
        .iter()
        .map(|(key, instance)| instance_json(&console, &gathered, key, instance))
        .collect();
    Ok(Json(json!({ "count": found.len(), "list": list })).into_response())
}

fn instance_json(
    console: &Console,
    gathered: &Gathered,
    key: &ServiceKey,
    instance: &Instance,
) -> Value {
    let responsible = match &console.cluster {
        Some(cluster) => cluster.responsible(key).map(|a| a.to_string()),
        None => Some(console.advertised.to_string()),
    };
    let timings = console.naming.beat_timings(instance);
    json!({
        "service": key,
        "instanceId": instance.id.nacos_instance_id(key),
        "ip": instance.id.ip,
        "port": instance.id.port,
        "clusterName": instance.id.cluster,
        "weight": instance.weight,
        "healthy": instance.healthy,
        "enabled": instance.enabled,
        "ephemeral": instance.ephemeral,
        "marked": instance.marked,
        "metadata": instance.metadata,
        "lastBeat": instance.last_beat,
        // `"Beat"` (a v1 client beats) or `{"Connection": {...}}` (a v2 client's connection).
        "lease": instance.lease,
        "instanceHeartBeatTimeOut": timings.unhealthy_after,
        "ipDeleteTimeout": timings.delete_after,
        "override": gathered.override_of(key, &instance.id),
        "change": gathered.latest(key, &instance.id),
        "responsible": responsible,
    })
}
