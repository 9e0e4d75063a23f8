//! `PUT` and `DELETE /nacos/v1/ns/instance/metadata/batch`: merge or remove
//! metadata keys on many instances at once (Nacos 1.4, beta in its open API;
//! `InstanceController#batchUpdateInstanceMatadata` and `#batchDeleteInstanceMatadata`).
//!
//! Parameters: `serviceName`, `namespaceId`, `metadata` (required: JSON or
//! `k=v,k2=v2`; for a removal only its keys count), and either
//! `consistencyType` (`ephemeral` or `persist`: every instance of that kind)
//! or `instances` (a JSON array of `{"ip","port","clusterName","ephemeral"}`,
//! cluster `DEFAULT` and ephemeral `true` by default). The answer names each
//! instance changed as Nacos does: `{"updated":["ip:port:unknown:cluster:ephemeral"]}`.
//!
//! Where Nacos silently changes nothing, Nacre answers 400: a malformed
//! `instances`, an unknown `consistencyType`, or neither of the two given.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, check_cluster, check_ip, illegal};
use crate::naming::metadata::{BatchTarget, MetadataAction};
use crate::registry::model::{DEFAULT_CLUSTER, InstanceId};

/// The most instances one request may name.
const MAX_LISTED: usize = 10_000;

/// `PUT instance/metadata/batch`: merge the keys.
pub async fn merge(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    batch(state, params, MetadataAction::Merge).await
}

/// `DELETE instance/metadata/batch`: remove the keys.
pub async fn remove(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    batch(state, params, MetadataAction::Remove).await
}

async fn batch(
    state: ApiState,
    params: Params,
    action: MetadataAction,
) -> Result<Response, ApiError> {
    let service = params.service_key()?;
    let metadata = params
        .metadata("metadata")?
        .ok_or_else(|| ApiError::BadRequest("Param 'metadata' is required.".into()))?;
    let target = target(&params)?;
    let updated = state
        .naming
        .batch_metadata(service, &target, &metadata, action)
        .await?;
    let names: Vec<String> = updated
        .iter()
        .map(|i| {
            let kind = if i.ephemeral { "ephemeral" } else { "persist" };
            format!("{}:{}:unknown:{}:{kind}", i.id.ip, i.id.port, i.id.cluster)
        })
        .collect();
    Ok(Json(json!({ "updated": names })).into_response())
}

/// `consistencyType` wins over `instances`, as in Nacos (`ServiceManager#batchOperate`).
fn target(params: &Params) -> Result<BatchTarget, ApiError> {
    if let Some(kind) = params.get("consistencyType") {
        return match kind {
            "ephemeral" => Ok(BatchTarget::All { ephemeral: true }),
            // Nacos's name is `persist`; `persistent` is what people type.
            "persist" | "persistent" => Ok(BatchTarget::All { ephemeral: false }),
            other => Err(illegal(
                "consistencyType",
                &format!("expected ephemeral or persist, got {other:?}"),
            )),
        };
    }
    let raw = params.get("instances").ok_or_else(|| {
        ApiError::BadRequest("Param 'instances' or 'consistencyType' is required.".into())
    })?;
    let listed: Vec<serde_json::Value> = serde_json::from_str(raw)
        .map_err(|e| illegal("instances", &format!("expected a JSON array: {e}")))?;
    if listed.len() > MAX_LISTED {
        return Err(illegal(
            "instances",
            &format!("at most {MAX_LISTED} instances per request"),
        ));
    }
    listed
        .iter()
        .map(listed_instance)
        .collect::<Result<_, _>>()
        .map(BatchTarget::Listed)
}

/// One entry of `instances`: `ip` and `port` required.
fn listed_instance(entry: &serde_json::Value) -> Result<(InstanceId, bool), ApiError> {
    let bad = |why: &str| illegal("instances", why);
    let ip = entry["ip"]
        .as_str()
        .map(str::trim)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| bad("each instance needs an ip"))?;
    check_ip("instances.ip", ip)?;
    let port = entry["port"]
        .as_u64()
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| bad("each instance needs a port between 1 and 65535"))?;
    let cluster = match &entry["clusterName"] {
        serde_json::Value::Null => DEFAULT_CLUSTER,
        value => value
            .as_str()
            .map(str::trim)
            .ok_or_else(|| bad("clusterName must be a string"))?,
    };
    let cluster = if cluster.is_empty() {
        DEFAULT_CLUSTER
    } else {
        cluster
    };
    check_cluster("instances.clusterName", cluster)?;
    let ephemeral = match &entry["ephemeral"] {
        serde_json::Value::Null => true,
        value => value
            .as_bool()
            .ok_or_else(|| bad("ephemeral must be true or false"))?,
    };
    Ok((InstanceId::new(cluster, ip, port as u16), ephemeral))
}
