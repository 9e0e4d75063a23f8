//! `/nacos/v1/console/namespaces` in Nacos's shapes
//! (`console/.../controller/NamespaceController.java`, 2.4):
//!
//! - `GET` → `{"code":200,"message":null,"data":[<namespace>]}`, `public`
//!   first with the id `""` (as 1.x/2.x name it), then the others by id;
//! - `GET ?show=all&namespaceId=X` → the bare namespace object (404 when
//!   unknown);
//! - `GET ?checkNamespaceIdExist=true&customNamespaceId=X` → bare `true`/`false`;
//! - `POST` `customNamespaceId` (optional: a random UUID), `namespaceName`,
//!   `namespaceDesc` → `true`;
//! - `PUT` `namespace`, `namespaceShowName`, `namespaceDesc` → `true`;
//! - `DELETE` `namespaceId` → `true`.
//!
//! A refused write answers 400 (404 for a namespace that does not exist)
//! with `caused: <why>;` where Nacos answers a bare `false`: the operator
//! learns why. The rules are [`crate::naming::namespaces`]'s.
//!
//! A namespace object: `namespace`, `namespaceShowName` (the record's name,
//! else the id), `namespaceDesc` (null without a record), `quota` (200,
//! Nacos's default), `configCount` (0: Nacre holds no configuration),
//! `type` (0 public, 2 custom), and Nacre's `serviceCount`.
//!
//! The namespaces are `public`, those with a record, and those services
//! live in (created by the first registration into them, as Nacos's naming
//! side does). With auth on, a user sees only the namespaces they may read
//! as a whole; the writes are the global admin's.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::params::{Bad, Fields, failed, text, text_up_to};
use super::{Console, Query};
use crate::accounts::Action;
use crate::auth::Caller;
use crate::auth::resource::{Need, allowed, naming_resource};
use crate::naming::namespaces::{MAX_DESCRIPTION_LEN, MAX_SHOW_NAME_LEN, PUBLIC};
use crate::registry::model::NamespaceMeta;

/// The most bytes a show name field may take: its rule counts characters
/// (`naming::namespaces`), up to four bytes each.
const NAME_BYTES: usize = 4 * MAX_SHOW_NAME_LEN;
/// The same for a description.
const DESCRIPTION_BYTES: usize = 4 * MAX_DESCRIPTION_LEN;
/// Nacos's default namespace quota (shown, not enforced).
const QUOTA: u32 = 200;

/// `GET /nacos/v1/console/namespaces` (see the module's documentation).
pub(super) async fn list(
    State(console): State<Console>,
    caller: Option<Extension<Caller>>,
    query: Query,
) -> Result<Response, Bad> {
    let mut known = known_namespaces(&console);
    if let Some(Extension(Caller {
        username: Some(user),
    })) = &caller
    {
        known.retain(|id, _| may_read(&console, user, id));
    }
    if text(&query, "checkNamespaceIdExist")? == "true" {
        let id = text(&query, "customNamespaceId")?;
        return Ok(Json(known.contains_key(id)).into_response());
    }
    if text(&query, "show")? == "all" {
        let id = match text(&query, "namespaceId")? {
            "" => PUBLIC,
            id => id,
        };
        return Ok(match known.get(id) {
            Some(known) => Json(namespace_json(id, known)).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                format!("caused: namespace {id} is not found;"),
            )
                .into_response(),
        });
    }
    let public = known.get(PUBLIC).map(|n| (PUBLIC, n));
    let others = known
        .iter()
        .filter(|(id, _)| id.as_str() != PUBLIC)
        .map(|(id, n)| (id.as_str(), n));
    let data: Vec<Value> = public
        .into_iter()
        .chain(others)
        .map(|(id, known)| namespace_json(id, known))
        .collect();
    Ok(Json(json!({ "code": 200, "message": null, "data": data })).into_response())
}

/// `POST /nacos/v1/console/namespaces`: creates a namespace record.
pub(super) async fn create(
    State(console): State<Console>,
    Fields(fields): Fields,
) -> Result<Response, Response> {
    let id = text(&fields, "customNamespaceId")?;
    let (show_name, description) = shown(&fields, "namespaceName")?;
    let id = console
        .naming
        .create_namespace(Some(id), show_name, description)
        .await
        .map_err(failed)?;
    tracing::info!(namespace = %id, "namespace created");
    Ok(Json(true).into_response())
}

/// `PUT /nacos/v1/console/namespaces`: renames a namespace and sets its
/// description.
pub(super) async fn update(
    State(console): State<Console>,
    Fields(fields): Fields,
) -> Result<Response, Response> {
    let id = text(&fields, "namespace")?;
    let (show_name, description) = shown(&fields, "namespaceShowName")?;
    console
        .naming
        .update_namespace(id, show_name, description)
        .await
        .map_err(failed)?;
    Ok(Json(true).into_response())
}

/// `DELETE /nacos/v1/console/namespaces`: deletes an empty namespace's record.
pub(super) async fn remove(
    State(console): State<Console>,
    Fields(fields): Fields,
) -> Result<Response, Response> {
    let id = text(&fields, "namespaceId")?;
    console.naming.remove_namespace(id).await.map_err(failed)?;
    tracing::info!(namespace = %id, "namespace deleted");
    Ok(Json(true).into_response())
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

/// A write's show name (given as `name_param`) and description, each
/// within the bytes its rule's characters may take.
fn shown<'a>(
    fields: &'a std::collections::HashMap<String, String>,
    name_param: &str,
) -> Result<(&'a str, &'a str), Bad> {
    let show_name = text_up_to(fields, name_param, NAME_BYTES)?;
    let description = text_up_to(fields, "namespaceDesc", DESCRIPTION_BYTES)?;
    Ok((show_name, description))
}

/// What the listing knows of one namespace.
#[derive(Default)]
struct Known {
    record: Option<NamespaceMeta>,
    services: usize,
}

/// Every namespace by id — `public`, those with a record, those services
/// live in — with its record and its count of services.
fn known_namespaces(console: &Console) -> BTreeMap<String, Known> {
    let registry = console.naming.registry();
    let mut known = BTreeMap::from([(PUBLIC.to_string(), Known::default())]);
    for record in registry.namespaces() {
        let id = record.id.clone();
        known.entry(id).or_default().record = Some(record);
    }
    for service in registry.services() {
        if service.is_listed() {
            known
                .entry(service.key().namespace.clone())
                .or_default()
                .services += 1;
        }
    }
    known
}

fn namespace_json(id: &str, known: &Known) -> Value {
    let public = id == PUBLIC;
    let (show_name, description) = match &known.record {
        Some(record) => (record.show_name.as_str(), Some(record.description.as_str())),
        None => (id, None),
    };
    json!({
        "namespace": if public { "" } else { id },
        "namespaceShowName": show_name,
        "namespaceDesc": description,
        "quota": QUOTA,
        "configCount": 0,
        "type": if public { 0 } else { 2 },
        "serviceCount": known.services,
    })
}
