//! `GET /nacre/v1/console/access`: what the signed-in user may do with what
//! the console shows, so the page offers only the actions the node would
//! accept (a read-only user sees no edit buttons). Decided by the same rules
//! as every request ([`crate::auth::resource::allowed`] on the same resource
//! text), so the page and the API never disagree; the API still checks each
//! request, so this is a courtesy to the user, not a guard.
//!
//! Parameters: `namespaceId` (default `public`), `groupName` and
//! `serviceName` (empty: the whole namespace or group, as the API's
//! resource text puts it). Answer: `{"authEnabled","user","namespaceId",
//! "resource","read","write","admin"}`; with auth off everything is allowed
//! and `user` is null.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::params::{Bad, namespace, text};
use super::{Console, Query};
use crate::accounts::Action;
use crate::auth::Caller;
use crate::auth::resource::{Need, allowed, naming_resource};

/// `GET /nacre/v1/console/access` (see the module's documentation).
pub(super) async fn access(
    State(console): State<Console>,
    caller: Option<Extension<Caller>>,
    query: Query,
) -> Result<Response, Bad> {
    let ns = namespace(&query)?;
    let resource = naming_resource(
        &ns,
        Some(text(&query, "groupName")?),
        Some(text(&query, "serviceName")?),
    );
    let user = caller.and_then(|Extension(c)| c.username);
    let (read, write, admin) = match &user {
        // Auth off (the guard names no user): every check passes.
        None => (true, true, true),
        Some(user) => {
            let tables = console.auth.tables();
            let may = |action| {
                let need = Need::Naming {
                    action,
                    resource: resource.clone(),
                };
                allowed(&tables, user, &need)
            };
            (
                may(Action::Read),
                may(Action::Write),
                allowed(&tables, user, &Need::Admin),
            )
        }
    };
    Ok(Json(json!({
        "authEnabled": console.auth.enabled(),
        "user": user,
        "namespaceId": ns,
        "resource": resource,
        "read": read,
        "write": write,
        "admin": admin,
    }))
    .into_response())
}
