//! `/nacos/v1/ns/service*`: service definitions.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, illegal};
use crate::naming::manager::ServicePatch;
use crate::naming::model::{DEFAULT_GROUP, ServiceMeta};

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
                "healthChecker": { "type": "NONE" },
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
