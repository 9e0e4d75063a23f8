//! `/nacos/v1/ns/service*`: service definitions.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::catalog::page_params;
use super::error::ApiError;
use super::params::{Params, illegal};
use crate::naming::ServicePatch;
use crate::naming::catalog::{MetadataMatch, page};
use crate::registry::model::{DEFAULT_GROUP, HealthChecker, ServiceMeta};

/// `protectThreshold` must be a number in [0, 1].
fn protect_threshold(params: &Params) -> Result<Option<f64>, ApiError> {
    let threshold: Option<f64> = params.parse("protectThreshold", "a number between 0 and 1")?;
    match threshold {
        Some(t) if !(0.0..=1.0).contains(&t) => Err(illegal(
            "protectThreshold",
            &format!("expected a number between 0 and 1, got {t}"),
        )),
        other => Ok(other),
    }
}

fn selector(params: &Params) -> Result<Option<serde_json::Value>, ApiError> {
    params
        .get("selector")
        .map(|raw| {
            let value: serde_json::Value = serde_json::from_str(raw)
                .map_err(|e| illegal("selector", &format!("malformed JSON: {e}")))?;
            if value.get("type").and_then(|t| t.as_str()).is_none() {
                return Err(illegal("selector", "a selector needs a string 'type'"));
            }
            Ok(value)
        })
        .transpose()
}

/// `POST service`: create a service definition.
pub async fn create(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let key = params.service_key()?;
    let mut meta = ServiceMeta::new(key);
    meta.protect_threshold = protect_threshold(&params)?.unwrap_or(0.0);
    meta.metadata = params.metadata("metadata")?.unwrap_or_default();
    meta.selector = selector(&params)?;
    state.naming.create_service(meta).await?;
    Ok("ok")
}

/// `DELETE service`: remove an empty service.
pub async fn remove(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let key = params.service_key()?;
    state.naming.remove_service(key).await?;
    Ok("ok")
}

/// `PUT service`: change a service's threshold, metadata or selector.
pub async fn update(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let key = params.service_key()?;
    let patch = ServicePatch {
        protect_threshold: protect_threshold(&params)?,
        metadata: params.metadata("metadata")?,
        selector: selector(&params)?,
    };
    state.naming.update_service(key, patch).await?;
    Ok("ok")
}

/// `GET service`: one service's definition, with its clusters.
pub async fn detail(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    let meta = state.naming.service(&key)?;
    let clusters: Vec<_> = meta
        .clusters
        .iter()
        .map(|(name, cluster)| {
            json!({
                "name": name,
                "healthChecker": checker_json(&cluster.health_checker),
                "defaultCheckPort": cluster.check_port,
                "useIPPort4Check": cluster.check_port == 0,
                "metadata": cluster.metadata,
            })
        })
        .collect();
    Ok(Json(json!({
        "namespaceId": key.namespace,
        "groupName": key.group,
        "name": key.name,
        "protectThreshold": meta.protect_threshold,
        "metadata": meta.metadata,
        "selector": meta.selector.unwrap_or_else(|| json!({ "type": "none" })),
        "clusters": clusters,
    }))
    .into_response())
}

/// `PUT cluster`: a cluster's health checker, check port and metadata.
pub async fn update_cluster(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let key = params.service_key()?;
    let cluster = params.cluster("clusterName")?;
    let checker = params.get("healthChecker").map(parse_checker).transpose()?;
    let metadata = params.metadata("metadata")?;
    let use_instance_port = params.flag("useInstancePort4Check")?;
    // 0 is what a caller that checks each instance's own port may send.
    let check_port = match params.get("checkPort") {
        Some(_) => Some(params.port_or_zero("checkPort")?),
        None => None,
    };
    state
        .naming
        .update_cluster(key, cluster, |c| {
            if let Some(checker) = checker {
                c.health_checker = checker;
            }
            if let Some(metadata) = metadata {
                c.metadata = metadata;
            }
            match (use_instance_port, check_port) {
                (Some(true), _) | (_, Some(0)) => c.check_port = 0,
                (_, Some(port)) => c.check_port = port,
                _ => {}
            }
        })
        .await?;
    Ok("ok")
}

/// Reads Nacos's `healthChecker` JSON: `{"type":"TCP"}`, `{"type":"NONE"}` or
/// `{"type":"HTTP","path":"/health","expectedResponseCode":200}`.
fn parse_checker(raw: &str) -> Result<HealthChecker, ApiError> {
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| illegal("healthChecker", &format!("malformed JSON: {e}")))?;
    let kind = value["type"].as_str().unwrap_or("").to_ascii_uppercase();
    match kind.as_str() {
        "TCP" => Ok(HealthChecker::Tcp),
        "NONE" => Ok(HealthChecker::None),
        "HTTP" => {
            let path = value["path"].as_str().unwrap_or("/").trim().to_string();
            if !path.starts_with('/') || path.len() > 1024 || path.chars().any(char::is_whitespace)
            {
                return Err(illegal(
                    "healthChecker",
                    "path must start with / and hold no spaces",
                ));
            }
            let code = match &value["expectedResponseCode"] {
                serde_json::Value::Null => 200,
                v => v
                    .as_u64()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(|| {
                        illegal(
                            "healthChecker",
                            "expectedResponseCode must be an HTTP status",
                        )
                    })? as u16,
            };
            Ok(HealthChecker::Http {
                path,
                expected_code: code,
            })
        }
        other => Err(illegal(
            "healthChecker",
            &format!("unsupported type {other:?} (TCP, HTTP or NONE)"),
        )),
    }
}

pub(crate) fn checker_json(checker: &HealthChecker) -> serde_json::Value {
    match checker {
        HealthChecker::Tcp => json!({ "type": "TCP" }),
        HealthChecker::None => json!({ "type": "NONE" }),
        HealthChecker::Http {
            path,
            expected_code,
        } => {
            json!({ "type": "HTTP", "path": path, "headers": "", "expectedResponseCode": expected_code })
        }
    }
}

/// `GET service/list`: a page of service names of one group, or of every
/// group with `groupName=*`, named `group@@name` then
/// (`ServiceController#list`: only the requested group's prefix is cut).
/// `selector` keeps services by metadata:
/// `{"type":"label","expression":"INSTANCE.metadata.k = 'v'"}` (or `SERVICE.`).
pub async fn list(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let (page_no, page_size) = page_params(&params, true)?;
    let namespace = params.namespace()?;
    let group = match params.or("groupName", DEFAULT_GROUP) {
        ALL_GROUPS => None,
        group => Some(group),
    };
    let selector = params
        .get("selector")
        .map(|raw| label_selector(raw, "selector"))
        .transpose()?
        .flatten();
    let keys = state
        .naming
        .service_keys(&namespace, group, selector.as_ref());
    let names: Vec<String> = page(&keys, page_no, page_size)
        .iter()
        .map(|key| match group {
            Some(_) => key.name.clone(),
            None => key.grouped_name(),
        })
        .collect();
    Ok(Json(json!({ "count": keys.len(), "doms": names })).into_response())
}

/// `groupName` meaning every group (`Constants.ALL_PATTERN`).
const ALL_GROUPS: &str = "*";

/// Reads a selector: `{"type":"none"}` selects everything (`None`), a
/// `label` selector with a metadata condition selects by it.
pub(crate) fn label_selector(raw: &str, param: &str) -> Result<Option<MetadataMatch>, ApiError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| illegal(param, &format!("malformed JSON: {e}")))?;
    match value["type"].as_str() {
        Some("none") => Ok(None),
        Some("label") => {
            let expression: String = value["expression"]
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            if expression.is_empty() {
                return Ok(None);
            }
            parse_metadata_condition(&expression)
                .map(Some)
                .ok_or_else(|| {
                    illegal(
                        param,
                        "expected an expression INSTANCE.metadata.key='value' or SERVICE.metadata.key='value'",
                    )
                })
        }
        _ => Err(illegal(param, "the selector type must be none or label")),
    }
}

/// `INSTANCE.metadata.key='value'` or `SERVICE.metadata.key='value'`.
fn parse_metadata_condition(expression: &str) -> Option<MetadataMatch> {
    let (left, value) = expression.split_once('=')?;
    let value = value.trim_matches('\'').to_string();
    let (target, key) = left.split_once(".metadata.")?;
    if key.is_empty() {
        return None;
    }
    let key = key.to_string();
    match target {
        "INSTANCE" => Some(MetadataMatch::Instance { key, value }),
        "SERVICE" => Some(MetadataMatch::Service { key, value }),
        _ => None,
    }
}

/// `PUT service/checksum`: `{"checksum":"..."}`, the checksum `instance/list`
/// carries for the service (changes whenever what clients see changes); 404
/// when the service is unknown (`ServiceController#checksum`).
pub async fn checksum(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    if state.naming.registry().service(&key).is_none() {
        return Err(ApiError::NotFound(format!(
            "serviceName not found: {}",
            key.grouped_name()
        )));
    }
    let request = crate::naming::list::ListRequest {
        clusters: &[],
        clusters_param: "",
        healthy_only: false,
        cache_millis: 0,
        grouped_names: true,
        env: "",
    };
    let listed: serde_json::Value = serde_json::from_str(&state.naming.list(&key, &request))
        .map_err(|e| ApiError::Internal(format!("rendering the list of {key}: {e}")))?;
    Ok(Json(json!({ "checksum": listed["checksum"] })).into_response())
}
