//! Nacos 1.4 naming routes that Nacre knows and deliberately does not serve:
//! they answer 501 with the reason, so a tool can tell "not here on purpose"
//! from a typo (404). Each is listed in `docs/COMPATIBILITY.md`.

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::routing::any;

use super::ApiState;

/// Path (under `/nacos/v1/ns`) and why it is not served.
const NOT_SERVED: [(&str, &str); 6] = [
    (
        "/distro/{*rest}",
        "Nacos 1.x cluster-internal API: Nacre members replicate over their own authenticated routes",
    ),
    (
        "/raft/{*rest}",
        "Nacos 1.x cluster-internal API: Nacre runs a real Raft over its own authenticated routes (leader and terms in GET operator/servers)",
    ),
    (
        "/service/status",
        "Nacos 1.x cluster-internal checksum exchange: Nacre members compare checksums over their own authenticated routes",
    ),
    (
        "/operator/server/status",
        "deprecated in Nacos 1.3: member status is probed over Nacre's own routes",
    ),
    (
        "/operator/cluster/state",
        "deprecated in Nacos 1.3: see GET operator/servers",
    ),
    (
        "/operator/log",
        "log levels are set at start (RUST_LOG or the log configuration), not at run time",
    ),
];

/// The routes that answer 501 (before the naming prefix is added).
pub fn routes() -> Router<ApiState> {
    let mut router = Router::new();
    for (path, why) in NOT_SERVED {
        router = router.route(
            path,
            any(move |uri: Uri| async move {
                (
                    StatusCode::NOT_IMPLEMENTED,
                    format!("caused: {} is not served by Nacre: {why};", uri.path()),
                )
            }),
        );
    }
    router
}
