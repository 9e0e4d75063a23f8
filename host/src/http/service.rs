//! `/nacos/v1/ns/service*`: service definitions.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, illegal};
use crate::naming::ServicePatch;
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
    let check_port = params.port("checkPort")?;
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
                (Some(true), _) => c.check_port = 0,
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

fn checker_json(checker: &HealthChecker) -> serde_json::Value {
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

/// `GET service/list`: a page of service names of one group.
pub async fn list(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let page_no: i64 = params
        .parse("pageNo", "a page number")?
        .ok_or_else(|| ApiError::BadRequest("Param 'pageNo' is required.".into()))?;
    let page_size: i64 = params
        .parse("pageSize", "a page size")?
        .ok_or_else(|| ApiError::BadRequest("Param 'pageSize' is required.".into()))?;
    if page_no < 1 {
        return Err(illegal("pageNo", "must be at least 1"));
    }
    if !(1..=100_000).contains(&page_size) {
        return Err(illegal("pageSize", "must be between 1 and 100000"));
    }
    let namespace = params.namespace()?;
    let group = params.or("groupName", DEFAULT_GROUP);
    let names = state.naming.registry().service_names(&namespace, group);
    let start = ((page_no - 1) * page_size).min(names.len() as i64) as usize;
    let end = (start + page_size as usize).min(names.len());
    Ok(Json(json!({ "count": names.len(), "doms": &names[start..end] })).into_response())
}
