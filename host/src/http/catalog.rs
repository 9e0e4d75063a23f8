//! `/nacos/v1/ns/catalog/*`: what the Nacos console (and the scripts and
//! dashboards that poll it) read, in Nacos's shapes
//! (`naming/.../controllers/CatalogController.java`, 1.4):
//!
//! - `GET catalog/services`: a page of service summaries, or with
//!   `withInstances=true` a bare array of services with their hosts per cluster;
//! - `GET catalog/service`: one service and its clusters;
//! - `GET|POST catalog/instances`: a page of one cluster's instances, all of
//!   them (disabled and unhealthy too);
//! - `GET|POST catalog/rt/service`: per-cluster check response times.
//!
//! Unlike Nacos, searches are literal (not regular expressions), the order is
//! stable (by grouped name) and every page is a real page (see
//! [`crate::naming::catalog`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, illegal};
use super::service::checker_json;
use crate::naming::catalog::{ServiceFilter, ServiceSummary, page};
use crate::registry::Service;
use crate::registry::model::{Instance, ServiceKey};

/// Largest page a listing serves.
const MAX_PAGE_SIZE: usize = 100_000;
/// The console's page size, used when a caller gives none.
const DEFAULT_PAGE_SIZE: usize = 10;
/// The port Nacos shows for a cluster without a check port of its own.
const NACOS_DEFAULT_PORT: u16 = 80;

/// `pageNo` (from 1) and `pageSize` (1 to 100000); when `required` is false
/// they default to the first page of 10.
pub(crate) fn page_params(params: &Params, required: bool) -> Result<(usize, usize), ApiError> {
    let read = |name: &str, default: usize| -> Result<usize, ApiError> {
        match params.parse::<i64>(name, "a number")? {
            Some(n) if n >= 1 => Ok(n as usize),
            Some(_) => Err(illegal(name, "must be at least 1")),
            None if required => Err(ApiError::BadRequest(format!("Param '{name}' is required."))),
            None => Ok(default),
        }
    };
    let page_no = read("pageNo", 1)?;
    let page_size = read("pageSize", DEFAULT_PAGE_SIZE)?;
    if page_size > MAX_PAGE_SIZE {
        return Err(illegal(
            "pageSize",
            &format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    Ok((page_no, page_size))
}

/// `GET catalog/services`: `namespaceId`, `pageNo`, `pageSize`,
/// `serviceNameParam`, `groupNameParam` (substrings), `hasIpCount` (leave out
/// services without instances), `instance` (`ip` or `ip:port`: keep services
/// holding it), `withInstances`.
pub async fn services(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let namespace = params.namespace()?;
    let (page_no, page_size) = page_params(&params, false)?;
    let with_instances = params.flag("withInstances")?.unwrap_or(false);
    let filter = ServiceFilter {
        name: params.or("serviceNameParam", ""),
        group: params.or("groupNameParam", ""),
        with_instances: params.flag("hasIpCount")?.unwrap_or(false),
        holding: params.or("instance", ""),
    };
    let found = state.naming.find_services(&namespace, &filter);
    let shown = page(&found, page_no, page_size);
    if with_instances {
        let detailed: Vec<Value> = shown.iter().map(|s| service_with_hosts(s)).collect();
        return Ok(Json(detailed).into_response());
    }
    let rows: Vec<Value> = shown
        .iter()
        .map(|s| summary_json(&ServiceSummary::of(s)))
        .collect();
    Ok(Json(json!({ "count": found.len(), "serviceList": rows })).into_response())
}

fn summary_json(summary: &ServiceSummary) -> Value {
    json!({
        "name": summary.key.name,
        "groupName": summary.key.group,
        "clusterCount": summary.cluster_count,
        "ipCount": summary.instance_count,
        "healthyInstanceCount": summary.healthy_count,
        // A string in Nacos's answer, not a boolean.
        "triggerFlag": summary.protection_triggered().to_string(),
    })
}

/// A service with its hosts per cluster (`ServiceDetailInfo`; `valid` is
/// the instance's health).
fn service_with_hosts(service: &Service) -> Value {
    let mut clusters: BTreeMap<String, Vec<Value>> = service
        .read_state()
        .meta
        .clusters
        .keys()
        .map(|name| (name.clone(), Vec::new()))
        .collect();
    for instance in service.instances() {
        clusters
            .entry(instance.id.cluster.clone())
            .or_default()
            .push(json!({
                "ip": instance.id.ip,
                "port": instance.id.port,
                "valid": instance.healthy,
                "weight": instance.weight,
                "enabled": instance.enabled,
                "metadata": instance.metadata,
            }));
    }
    let cluster_map: serde_json::Map<String, Value> = clusters
        .into_iter()
        .map(|(name, hosts)| (name, json!({ "hosts": hosts })))
        .collect();
    let key = service.key();
    json!({
        "serviceName": key.name,
        "groupName": key.group,
        "metadata": service.read_state().meta.metadata,
        "clusterMap": cluster_map,
    })
}

/// `GET catalog/service`: one service (`serviceName`, `groupName`,
/// `namespaceId`) with its clusters; 404 when unknown.
pub async fn service(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    let meta = state.naming.registry().service_meta(&key).ok_or_else(|| {
        ApiError::NotFound(format!("service {} is not found!", key.grouped_name()))
    })?;
    let clusters: Vec<Value> = meta
        .clusters
        .iter()
        .map(|(name, cluster)| {
            json!({
                "serviceName": key.grouped_name(),
                "name": name,
                "healthChecker": checker_json(&cluster.health_checker),
                "defaultPort": NACOS_DEFAULT_PORT,
                "defaultCheckPort": if cluster.check_port == 0 { NACOS_DEFAULT_PORT } else { cluster.check_port },
                "useIPPort4Check": cluster.check_port == 0,
                "metadata": cluster.metadata,
            })
        })
        .collect();
    Ok(Json(json!({
        "service": {
            "name": key.name,
            "groupName": key.group,
            "protectThreshold": meta.protect_threshold,
            "selector": meta.selector.unwrap_or_else(|| json!({ "type": "none" })),
            "metadata": meta.metadata,
        },
        "clusters": clusters,
    }))
    .into_response())
}

/// `GET|POST catalog/instances`: `serviceName`, `clusterName`, `pageNo` and
/// `pageSize` (all required, as in Nacos); 404 for an unknown service or
/// cluster.
pub async fn instances(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    let cluster = params.required("clusterName")?;
    super::params::check_cluster("clusterName", cluster)?;
    let (page_no, page_size) = page_params(&params, true)?;
    if state.naming.registry().service(&key).is_none() {
        return Err(ApiError::NotFound(format!(
            "service {} is not found!",
            key.grouped_name()
        )));
    }
    let all = state
        .naming
        .cluster_instances(&key, cluster)
        .ok_or_else(|| ApiError::NotFound(format!("cluster {cluster} is not found!")))?;
    let list: Vec<Value> = page(&all, page_no, page_size)
        .iter()
        .map(|i| instance_json(&state, &key, i))
        .collect();
    Ok(Json(json!({ "list": list, "count": all.len() })).into_response())
}

/// An instance as Nacos 1.4 serialises it, with the beat timings that apply to it.
fn instance_json(state: &ApiState, key: &ServiceKey, instance: &Instance) -> Value {
    let timings = state.naming.beat_timings(instance);
    json!({
        "instanceId": instance.id.nacos_instance_id(key),
        "ip": instance.id.ip,
        "port": instance.id.port,
        "weight": instance.weight,
        "healthy": instance.healthy,
        "enabled": instance.enabled,
        "ephemeral": instance.ephemeral,
        "marked": instance.marked,
        "clusterName": instance.id.cluster,
        "serviceName": key.grouped_name(),
        "metadata": instance.metadata,
        "lastBeat": instance.last_beat,
        "instanceHeartBeatInterval": timings.interval,
        "instanceHeartBeatTimeOut": timings.unhealthy_after,
        "ipDeleteTimeout": timings.delete_after,
        "instanceIdGenerator": "simple",
    })
}

/// `GET|POST catalog/rt/service`: each cluster's probe response times.
/// Nacre does not measure them; it answers Nacos's "not measured yet" (-1).
pub async fn response_times(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    let meta = state
        .naming
        .registry()
        .service_meta(&key)
        .ok_or_else(|| ApiError::BadRequest("request service doesn't exist".into()))?;
    let clusters: Vec<Value> = meta
        .clusters
        .keys()
        .map(|name| {
            json!({
                "name": name,
                "checkRTBest": -1,
                "checkRTWorst": -1,
                "checkRTNormalized": -1,
            })
        })
        .collect();
    Ok(Json(json!({ "clusters": clusters })).into_response())
}
