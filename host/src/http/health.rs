//! `/nacos/v1/ns/health/*` besides setting an instance's health (which is
//! an instance write, [`super::instance::mark_health`]): the naming module's
//! own liveness message and the health checkers a cluster may use
//! (`naming/.../controllers/HealthController.java`, 1.4).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::service::checker_json;
use crate::registry::model::HealthChecker;

/// `GET health/server`: Nacos's greeting, with the same figures.
pub async fn server(State(state): State<ApiState>) -> Response {
    let services = state.naming.registry().service_count();
    let port = state.advertised.port();
    Json(json!({
        "msg": format!(
            "Hello! I am Nacos-Naming and healthy! total services: raft {services}, local port:{port}"
        )
    }))
    .into_response()
}

/// `GET health/checkers`: each checker type with its default settings.
/// Nacos also lists `MYSQL`, which Nacre does not check with.
pub async fn checkers() -> Response {
    let http = HealthChecker::Http {
        path: String::new(),
        expected_code: 200,
    };
    Json(json!({
        "TCP": checker_json(&HealthChecker::Tcp),
        "HTTP": checker_json(&http),
        "NONE": checker_json(&HealthChecker::None),
    }))
    .into_response()
}
