//! `/nacos/v1/console/namespaces` in Nacos's shapes
//! (`console/.../controller/NamespaceController.java`, 2.4):
//!
//! - `GET` → `{"code":200,"message":null,"data":[<namespace>]}`, `public`
//!   first with the id `""` (as 1.x/2.x name it), then the others by id;
//! - `GET ?show=all&namespaceId=X` → the bare namespace object (404 when
//!   unknown);
//! - `GET ?checkNamespaceIdExist=true&customNamespaceId=X` → bare `true`/`false`.
//!
//! A namespace object: `namespace`, `namespaceShowName`, `namespaceDesc`
//! (null), `quota` (200, Nacos's default), `configCount` (0: Nacre holds no
//! configuration), `type` (0 public, 2 custom), and Nacre's `serviceCount`.
//!
//! With auth on, a user sees only the namespaces they may read as a whole.
//!
//! Nacre keeps no namespace records: a namespace exists while services live
//! in it, created by the first registration into it, as Nacos's naming side
//! does. So `POST`, `PUT` and `DELETE` answer 501 and say so.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::params::{Bad, text};
use super::{Console, Query};
use crate::accounts::Action;
use crate::auth::Caller;
use crate::auth::resource::{Need, allowed, naming_resource};

const PUBLIC: &str = "public";
/// Nacos's default namespace quota (shown, not enforced).
const QUOTA: u32 = 200;

/// `GET /nacos/v1/console/namespaces` (see the module's documentation).
pub(super) async fn list(
    State(console): State<Console>,
    caller: Option<Extension<Caller>>,
    query: Query,
) -> Result<Response, Bad> {
    let mut counts = service_counts(&console);
    if let Some(Extension(Caller {
        username: Some(user),
    })) = &caller
    {
        counts.retain(|id, _| may_read(&console, user, id));
    }
    if text(&query, "checkNamespaceIdExist")? == "true" {
        let id = text(&query, "customNamespaceId")?;
        return Ok(Json(counts.contains_key(id)).into_response());
    }
    if text(&query, "show")? == "all" {
        let id = match text(&query, "namespaceId")? {
            "" => PUBLIC,
            id => id,
        };
        return Ok(match counts.get(id) {
            Some(count) => Json(namespace_json(id, *count)).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                format!("caused: namespace {id} is not found;"),
            )
                .into_response(),
        });
    }
    let public = counts.get(PUBLIC).map(|n| (PUBLIC, *n));
    let others = counts
        .iter()
        .filter(|(id, _)| id.as_str() != PUBLIC)
        .map(|(id, n)| (id.as_str(), *n));
    let data: Vec<Value> = public
        .into_iter()
        .chain(others)
        .map(|(id, count)| namespace_json(id, count))
        .collect();
    Ok(Json(json!({ "code": 200, "message": null, "data": data })).into_response())
}

/// `POST|PUT|DELETE /nacos/v1/console/namespaces`: 501, with the reason.
pub(super) async fn not_served() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_IMPLEMENTED,
        "caused: namespaces are not records in Nacre: one exists while services \
         live in it, and the first registration into a namespace creates it;",
    )
}

/// Whether `user` may read the whole namespace `id` (the permission the
/// console's service list needs there): the namespace list shows a user
/// only those (alibaba/nacos#8107: users without `public` rights were
/// thrown to the login page).
fn may_read(console: &Console, user: &str, id: &str) -> bool {
    let need = Need::Naming {
        action: Action::Read,
        resource: naming_resource(id, None, None),
    };
    allowed(&console.auth.tables(), user, &need)
}

/// Services per namespace, by id; `public` is always there.
fn service_counts(console: &Console) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::from([(PUBLIC.to_string(), 0)]);
    for service in console.naming.registry().services() {
        if service.is_listed() {
            *counts.entry(service.key().namespace.clone()).or_default() += 1;
        }
    }
    counts
}

fn namespace_json(id: &str, services: usize) -> Value {
    let public = id == PUBLIC;
    json!({
        "namespace": if public { "" } else { id },
        "namespaceShowName": id,
        "namespaceDesc": null,
        "quota": QUOTA,
        "configCount": 0,
        "type": if public { 0 } else { 2 },
        "serviceCount": services,
    })
}
