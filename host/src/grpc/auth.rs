//! The auth check of the gRPC door (NACOS-AUTH.md §5): the naming requests
//! Nacos secures — `InstanceRequest`, `BatchInstanceRequest`,
//! `PersistentInstanceRequest` (write), `ServiceQueryRequest`,
//! `SubscribeServiceRequest`, `ServiceListRequest` (read) — need the
//! credential a client puts in `metadata.headers` (`accessToken`,
//! `Authorization: Bearer …`, or `username` + `password`). `ServerCheck`,
//! the setup and `HealthCheck` need none, as in Nacos. A refusal is the
//! request's own response type with `resultCode` 500 and `errorCode` 403
//! (`RemoteRequestAuthFilter`); Java 3.x logs in again on it.

use super::GrpcDoor;
use super::handlers::parse;
use super::messages::{Reply, Target};
use super::proto::Payload;
use crate::accounts::Action;
use crate::auth::Credentials;
use crate::auth::resource::naming_need;

/// The response type and the action of a secured request type.
fn secured(kind: &str) -> Option<(&'static str, Action)> {
    match kind {
        "InstanceRequest" | "PersistentInstanceRequest" => {
            Some(("InstanceResponse", Action::Write))
        }
        "BatchInstanceRequest" => Some(("BatchInstanceResponse", Action::Write)),
        "SubscribeServiceRequest" => Some(("SubscribeServiceResponse", Action::Read)),
        "ServiceQueryRequest" => Some(("QueryServiceResponse", Action::Read)),
        "ServiceListRequest" => Some(("ServiceListResponse", Action::Read)),
        _ => None,
    }
}

impl GrpcDoor {
    /// `Err(the refusal)` when auth is on and the request's credential does
    /// not allow it; `Ok` for everything else (a body that does not parse is
    /// left for its handler to refuse).
    pub(super) async fn authorize(
        &self,
        kind: &str,
        body: &[u8],
        request: &Payload,
    ) -> Result<(), Payload> {
        if !self.auth.enabled() {
            return Ok(());
        }
        let Some((response, action)) = secured(kind) else {
            return Ok(());
        };
        let Ok(target) = parse::<Target>(kind, body) else {
            return Ok(());
        };
        let headers = request.metadata.as_ref().map(|m| &m.headers);
        let header = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let token = header("Authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| header("accessToken"));
        let credentials = Credentials {
            token,
            username: header("username"),
            password: header("password"),
        };
        let need = naming_need(
            action,
            target.namespace.as_deref(),
            target.group_name.as_deref(),
            target.service_name.as_deref(),
        );
        match self.auth.check(&credentials, None, &need).await {
            Ok(_) => Ok(()),
            Err(denied) => {
                let rid = target.request_id.unwrap_or_default();
                Err(Reply::ok(response, &rid)
                    .fail(403, denied.to_string())
                    .into_payload())
            }
        }
    }
}
