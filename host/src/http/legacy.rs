//! Nacos's oldest naming routes, still served by Nacos 1.4 for DNS-F and
//! clients older than 0.8 (`naming/.../controllers/ApiController.java`), and
//! the service-name search (`ServiceController#searchService`):
//!
//! - `api/srvIPXT?dom=`: `instance/list` of `DEFAULT_GROUP@@dom` (routed to
//!   [`super::instance::list`]: `dom` stands in for `serviceName`);
//! - `api/clientBeat?dom=`: a beat (routed to [`super::instance::beat`]);
//! - `api/allDomNames`: every service name per namespace;
//! - `service/names?expr=`: the service names containing `expr`, per namespace.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::Params;
use crate::naming::client_agent::{ClientAgent, ClientKind};
use crate::registry::model::{DEFAULT_NAMESPACE, ServiceKey};

/// The last DNS-F version that gets `allDomNames` in its old shape.
const OLD_DNSF: &str = "1.0.1";

/// `api/allDomNames`: `{"count":N,"doms":{"<namespace>":["name",...]}}`,
/// names without their group (so one name stands for the services of that
/// name in every group). `responsibleOnly=true` keeps the services this node
/// is responsible for. A DNS-F client up to 1.0.1 gets the old shape, the
/// default namespace only: `{"count":N,"doms":["name",...]}`.
pub async fn all_dom_names(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let responsible_only = params.flag("responsibleOnly")?.unwrap_or(false);
    let mut doms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for service in state.naming.registry().services() {
        let key = service.key();
        if !service.is_listed() || (responsible_only && !responsible(&state, key)) {
            continue;
        }
        doms.entry(key.namespace.clone())
            .or_default()
            .insert(key.name.clone());
    }
    let agent = ClientAgent::parse(&params.user_agent);
    if agent.kind == ClientKind::Dns && agent.at_most(OLD_DNSF) {
        let names = doms.remove(DEFAULT_NAMESPACE).unwrap_or_default();
        return Ok(Json(json!({ "count": names.len(), "doms": names })).into_response());
    }
    let count: usize = doms.values().map(BTreeSet::len).sum();
    Ok(Json(json!({ "count": count, "doms": doms })).into_response())
}

fn responsible(state: &ApiState, key: &ServiceKey) -> bool {
    state
        .cluster
        .as_ref()
        .is_none_or(|cluster| cluster.is_responsible(key))
}

/// `service/names`: `namespaceId` (every namespace when absent), `expr`
/// (part of the grouped name; Nacos makes it a regular expression, Nacre
/// reads it literally), `responsibleOnly`. Answers
/// `{"services":{"<namespace>":["name",...]},"count":<namespaces>}`: the
/// count is of namespaces, as in Nacos.
pub async fn service_names(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let namespace = params
        .get("namespaceId")
        .map(|_| params.namespace())
        .transpose()?;
    let expr = params.or("expr", "");
    let responsible_only = params.flag("responsibleOnly")?.unwrap_or(false);
    let mut services: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for service in state.naming.registry().services() {
        let key = service.key();
        if namespace.as_ref().is_some_and(|ns| *ns != key.namespace) || !service.is_listed() {
            continue;
        }
        let names = services.entry(key.namespace.clone()).or_default();
        if key.grouped_name().contains(expr) && (!responsible_only || responsible(&state, key)) {
            names.insert(key.name.clone());
        }
    }
    Ok(Json(json!({ "count": services.len(), "services": services })).into_response())
}
