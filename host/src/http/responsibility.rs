//! `GET /nacos/v1/ns/operator/distro/*`: which member is responsible for
//! what (`OperatorController#getResponsibleServer4Service`, `#distroStatus`, 1.4).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::Params;

/// `GET operator/distro/server?serviceName=`: the member responsible for a
/// service, `{"responsibleServer":"ip:port"}`; 400 when the service is unknown.
pub async fn server(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    if state.naming.registry().service(&key).is_none() {
        return Err(ApiError::BadRequest("service not found".into()));
    }
    let owner = match &state.cluster {
        Some(cluster) => cluster.responsible(&key).map(|a| a.to_string()),
        None => Some(state.advertised.to_string()),
    };
    Ok(Json(json!({ "responsibleServer": owner })).into_response())
}

/// `GET operator/distro/status?action=view`: `{"status":[<member>]}`, the
/// members as `operator/servers` shows them (`{}` for any other action).
pub async fn status(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    if params.or("action", "view") != "view" {
        return Ok(Json(json!({})).into_response());
    }
    let members = super::operator::members(&state);
    Ok(Json(json!({ "status": members })).into_response())
}
