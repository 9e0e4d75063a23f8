//! Login and the user, role and permission API under `/nacos/v1/auth`, with
//! Nacos's paths, parameters and answers (NACOS-AUTH.md §2, §8), and the
//! console's unauthenticated start-up state.
//!
//! Differences from Nacos, on purpose: user listings never carry password
//! hashes; `users/admin` (the first admin) answers only a request from the
//! node's own machine; a password change or deletion revokes the user's
//! tokens at once; new passwords need 8 characters.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::{self as guard, credentials_of, denial};
use super::params::Params;
use crate::accounts::{ADMIN_ROLE, AccountChange, Action, Permission};
use crate::auth::{AccountError, Caller, bootstrap, check_username};

/// Every route of this file, each with its own guard.
pub(super) fn routes(state: &ApiState) -> Router<ApiState> {
    let login_route = get(login).post(login);
    let users = guard::admin(state, get(list_users).post(create_user).delete(delete_user))
        .merge(guard::signed_in(state, axum::routing::put(change_password)));
    let roles = guard::admin(state, get(list_roles).post(add_role).delete(remove_role));
    let permissions = guard::admin(
        state,
        get(list_permissions)
            .post(grant_permission)
            .delete(revoke_permission),
    );
    let auth = Router::new()
        .route("/login", login_route.clone())
        .route("/users/login", login_route.clone())
        .route("/users", users.clone())
        .route("/users/search", guard::admin(state, get(search_users)))
        .route("/users/admin", post(first_admin))
        .route("/roles", roles)
        .route("/roles/search", guard::admin(state, get(search_roles)))
        .route("/permissions", permissions);
    Router::new()
        .nest("/nacos/v1/auth", auth)
        // Nacos maps its user controller on `/v1/auth` too.
        .route("/nacos/v1/auth", users)
        .route("/nacos/v3/auth/user/login", login_route)
        .route("/nacos/v1/console/server/state", get(server_state))
        .route(
            "/nacre/v1/auth/tokens",
            guard::signed_in(state, axum::routing::delete(revoke_tokens)),
        )
        .route(
            "/nacre/v1/auth/keys/rotate",
            guard::admin(state, post(rotate_key)),
        )
}

/// An answer of the management API: `{"code":200,"message":null,"data":…}`.
fn rest_ok(data: impl Serialize) -> Response {
    Json(json!({"code": 200, "message": null, "data": data})).into_response()
}

/// A refused change: 400 with the reason as plain text (Nacos's
/// `IllegalArgumentException` answer); a store failure 503 or 500.
fn refused(e: AccountError) -> Response {
    match e {
        AccountError::Invalid(m) => (StatusCode::BAD_REQUEST, m).into_response(),
        AccountError::Store(e) if e.retryable() => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
        AccountError::Store(e) => {
            tracing::error!(error = %e, "auth: a change could not be stored");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

fn invalid(message: impl Into<String>) -> Response {
    refused(AccountError::Invalid(message.into()))
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, AccountError> {
    params
        .get(name)
        .ok_or_else(|| AccountError::Invalid(format!("Param '{name}' is required.")))
}

/// `POST|GET /nacos/v1/auth/login` (and `users/login`, v3 `user/login`):
/// `username` + `password` (or a token) → the token, `tokenTtl` seconds,
/// `globalAdmin`, `username`; header `Authorization: Bearer <token>`.
/// Wrong credentials: 403 `unknown user!`; too many failures: 429.
async fn login(
    State(state): State<ApiState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let source = params.remote.map(|r| r.ip());
    let mut credentials = credentials_of(&headers, |name| params.get(name));
    // A token decides alone; the name sent beside it is still echoed back
    // while auth is off.
    credentials.username = credentials.username.or_else(|| params.get("username"));
    if credentials.token.is_none()
        && (credentials.username.is_none() || credentials.password.is_none())
    {
        let missing = if credentials.username.is_none() {
            "username"
        } else {
            "password"
        };
        return invalid(format!("Param '{missing}' is required."));
    }
    match state.auth.login(&credentials, source).await {
        Ok(issued) => {
            let body = json!({
                "accessToken": issued.token,
                "tokenTtl": issued.ttl_seconds,
                "globalAdmin": issued.global_admin,
                "username": issued.username,
            });
            let mut response = Json(body).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", issued.token)) {
                response.headers_mut().insert(header::AUTHORIZATION, value);
            }
            response
        }
        Err(denied) => denial(&denied, uri.path()),
    }
}

/// A page of a listing (Nacos's `Page`): `pageNo` from 1, `pageSize` 1–1000.
fn page<T: Serialize>(params: &Params, items: Vec<T>) -> Response {
    let number = match params.parse::<usize>("pageNo", "a page number from 1") {
        Ok(n) => n.unwrap_or(1).max(1),
        Err(e) => return e.into_response(),
    };
    let size = match params.parse::<usize>("pageSize", "a page size from 1 to 1000") {
        Ok(n) => n.unwrap_or(100).clamp(1, 1000),
        Err(e) => return e.into_response(),
    };
    let total = items.len();
    let page: Vec<T> = items
        .into_iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .collect();
    Json(json!({
        "totalCount": total,
        "pageNumber": number,
        "pagesAvailable": total.div_ceil(size),
        "pageItems": page,
    }))
    .into_response()
}

/// Whether `value` passes the `search` filter for `wanted`: `blur` matches
/// a part of the text, `accurate` (the default) the whole.
fn matches_search(params: &Params, wanted: Option<&str>, value: &str) -> bool {
    match wanted {
        None => true,
        Some(w) if params.get("search") == Some("blur") => value.contains(w),
        Some(w) => value == w,
    }
}

/// `GET users`: a page of `{"username"}` (never the hash).
async fn list_users(State(state): State<ApiState>, params: Params) -> Response {
    let wanted = params.get("username");
    let users: Vec<Value> = state
        .auth
        .tables()
        .users()
        .filter(|(name, _)| matches_search(&params, wanted, name))
        .map(|(name, _)| json!({"username": name}))
        .collect();
    page(&params, users)
}

/// `GET users/search?username=`: names containing the text.
async fn search_users(State(state): State<ApiState>, params: Params) -> Response {
    let wanted = params.get("username").unwrap_or("");
    let names: Vec<String> = state
        .auth
        .tables()
        .users()
        .filter(|(name, _)| name.contains(wanted))
        .map(|(name, _)| name.to_string())
        .collect();
    Json(names).into_response()
}

/// `POST users`: `username`, `password`.
async fn create_user(State(state): State<ApiState>, params: Params) -> Response {
    let username = match required(&params, "username") {
        Ok(u) => u.to_string(),
        Err(e) => return refused(e),
    };
    if let Err(m) = check_username("username", &username) {
        return invalid(m);
    }
    let password = match required(&params, "password") {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    if state.auth.tables().user(&username).is_some() {
        return invalid(format!("user '{username}' already exist!"));
    }
    let password_hash = match state.auth.hash_new_password(password).await {
        Ok(h) => h,
        Err(e) => return refused(e),
    };
    let change = AccountChange::CreateUser {
        username: username.clone(),
        password_hash,
    };
    match state.auth.write(change).await {
        Ok(()) => {
            tracing::info!(user = %username, "auth: user created");
            rest_ok("create user ok!")
        }
        Err(e) => refused(e),
    }
}

/// `PUT users`: `username`, `newPassword`; the user itself or an admin.
/// Revokes the user's tokens.
async fn change_password(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let username = match required(&params, "username") {
        Ok(u) => u.to_string(),
        Err(e) => return refused(e),
    };
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    let permitted = match &caller.username {
        None => true, // auth off
        Some(me) => *me == username || state.auth.tables().is_admin(me),
    };
    if !permitted {
        return denial(&crate::auth::Denied::Forbidden, "/nacos/v1/auth/users");
    }
    let password = match required(&params, "newPassword") {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    if state.auth.tables().user(&username).is_none() {
        return invalid(format!("user '{username}' not found!"));
    }
    let password_hash = match state.auth.hash_new_password(password).await {
        Ok(h) => h,
        Err(e) => return refused(e),
    };
    let change = AccountChange::SetPassword {
        username: username.clone(),
        password_hash,
    };
    match state.auth.write(change).await {
        Ok(()) => {
            tracing::info!(user = %username, "auth: password changed; the user's tokens are revoked");
            rest_ok("update user ok!")
        }
        Err(e) => refused(e),
    }
}

/// `DELETE users`: `username`; an admin cannot be deleted.
async fn delete_user(State(state): State<ApiState>, params: Params) -> Response {
    let username = match required(&params, "username") {
        Ok(u) => u.to_string(),
        Err(e) => return refused(e),
    };
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    {
        let tables = state.auth.tables();
        if tables.user(&username).is_none() {
            return invalid(format!("user '{username}' not found!"));
        }
        if tables.is_admin(&username) {
            return invalid(format!("cannot delete admin: {username}"));
        }
    }
    match state
        .auth
        .write(AccountChange::DeleteUser {
            username: username.clone(),
        })
        .await
    {
        Ok(()) => {
            tracing::info!(user = %username, "auth: user deleted");
            rest_ok("delete user ok!")
        }
        Err(e) => refused(e),
    }
}

/// `DELETE /nacre/v1/auth/tokens?username=`: revokes every token of the
/// user ("log out everywhere"); the user itself or an admin.
async fn revoke_tokens(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    let username = match (params.get("username"), &caller.username) {
        (Some(u), _) => u.to_string(),
        (None, Some(me)) => me.clone(),
        (None, None) => return invalid("Param 'username' is required."),
    };
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    let permitted = match &caller.username {
        None => true,
        Some(me) => *me == username || state.auth.tables().is_admin(me),
    };
    if !permitted {
        return denial(&crate::auth::Denied::Forbidden, "/nacre/v1/auth/tokens");
    }
    if state.auth.tables().user(&username).is_none() {
        return invalid(format!("user '{username}' not found!"));
    }
    match state
        .auth
        .write(AccountChange::RevokeTokens {
            username: username.clone(),
        })
        .await
    {
        Ok(()) => {
            tracing::info!(user = %username, "auth: tokens revoked");
            rest_ok("revoke tokens ok!")
        }
        Err(e) => refused(e),
    }
}

/// `POST users/admin`: creates the first admin (`auth.admin_username`) with
/// `password`, or a random one that is answered once — only while no admin
/// exists, and only from the node's own machine (Nacos 2.4 answered anyone).
async fn first_admin(State(state): State<ApiState>, params: Params) -> Response {
    let from_loopback = params.remote.is_some_and(|r| r.ip().is_loopback());
    if !from_loopback {
        return denial(
            &crate::auth::Denied::Forbidden,
            "/nacos/v1/auth/users/admin",
        );
    }
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    if state.auth.tables().has_admin() {
        return Json(
            json!({"code": 409, "message": null, "data": "have admin user cannot use it"}),
        )
        .into_response();
    }
    let (password, generated) = match params.get("password") {
        Some(p) => (p.to_string(), false),
        None => match random_password() {
            Ok(p) => (p, true),
            Err(e) => return refused(e),
        },
    };
    let password_hash = match state.auth.hash_new_password(&password).await {
        Ok(h) => h,
        Err(e) => return refused(e),
    };
    let username = state.auth.admin_username().to_string();
    let change = AccountChange::BootstrapAdmin {
        username: username.clone(),
        password_hash,
    };
    if let Err(e) = state.auth.write(change).await {
        return refused(e);
    }
    if !state.auth.tables().is_admin(&username) {
        return Json(
            json!({"code": 409, "message": null, "data": "have admin user cannot use it"}),
        )
        .into_response();
    }
    tracing::info!(user = %username, "auth: first admin created from the node's own machine");
    let shown = if generated { password } else { String::new() };
    Json(json!({"username": username, "password": shown})).into_response()
}

fn random_password() -> Result<String, AccountError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| AccountError::Invalid(format!("no randomness for a password: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// `GET roles`: a page of `{"role","username"}`, filtered by `username` and `role`.
async fn list_roles(State(state): State<ApiState>, params: Params) -> Response {
    let (user, role) = (params.get("username"), params.get("role"));
    let items: Vec<Value> = state
        .auth
        .tables()
        .role_bindings()
        .filter(|(r, u)| matches_search(&params, user, u) && matches_search(&params, role, r))
        .map(|(r, u)| json!({"role": r, "username": u}))
        .collect();
    page(&params, items)
}

/// `GET roles/search?role=`: role names containing the text.
async fn search_roles(State(state): State<ApiState>, params: Params) -> Response {
    let wanted = params.get("role").unwrap_or("");
    let mut names: Vec<String> = state
        .auth
        .tables()
        .role_bindings()
        .filter(|(r, _)| r.contains(wanted))
        .map(|(r, _)| r.to_string())
        .collect();
    names.dedup();
    Json(names).into_response()
}

/// `POST roles`: `role`, `username`. `ROLE_ADMIN` cannot be given this way.
async fn add_role(State(state): State<ApiState>, params: Params) -> Response {
    let (role, username) = match (required(&params, "role"), required(&params, "username")) {
        (Ok(r), Ok(u)) => (r.to_string(), u.to_string()),
        (Err(e), _) | (_, Err(e)) => return refused(e),
    };
    if let Err(m) = check_username("role", &role) {
        return invalid(m);
    }
    if role == ADMIN_ROLE {
        return invalid(format!("role '{ADMIN_ROLE}' is not permitted to create!"));
    }
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    if state.auth.tables().user(&username).is_none() {
        return invalid(format!("user '{username}' not found!"));
    }
    match state
        .auth
        .write(AccountChange::BindRole { role, username })
        .await
    {
        Ok(()) => rest_ok("add role ok!"),
        Err(e) => refused(e),
    }
}

/// `DELETE roles`: `role`, and `username` (without it the role is dropped
/// from everyone, with its permissions). `ROLE_ADMIN` cannot be removed.
async fn remove_role(State(state): State<ApiState>, params: Params) -> Response {
    let role = match required(&params, "role") {
        Ok(r) => r.to_string(),
        Err(e) => return refused(e),
    };
    if role == ADMIN_ROLE {
        return invalid(format!("role '{ADMIN_ROLE}' cannot be deleted"));
    }
    let username = params.get("username").map(str::to_string);
    match state
        .auth
        .write(AccountChange::UnbindRole { role, username })
        .await
    {
        Ok(()) => rest_ok("delete role of user ok!"),
        Err(e) => refused(e),
    }
}

/// `GET permissions`: a page of `{"role","resource","action"}`, filtered by `role`.
async fn list_permissions(State(state): State<ApiState>, params: Params) -> Response {
    let role = params.get("role");
    let items: Vec<Value> = state
        .auth
        .tables()
        .permissions()
        .filter(|p| matches_search(&params, role, &p.role))
        .map(|p| json!({"role": p.role, "resource": p.resource, "action": p.action.as_str()}))
        .collect();
    page(&params, items)
}

fn permission_of(params: &Params) -> Result<Permission, AccountError> {
    let role = required(params, "role")?.to_string();
    let resource = required(params, "resource")?.to_string();
    let action = required(params, "action")?;
    let action = Action::parse(action).ok_or_else(|| {
        AccountError::Invalid(format!("action must be r, w or rw, got {action:?}"))
    })?;
    if resource.len() > 1024
        || resource
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AccountError::Invalid(
            "resource must be at most 1024 bytes, without whitespace (e.g. 'dev:*:*')".into(),
        ));
    }
    Ok(Permission {
        role,
        resource,
        action,
    })
}

/// `POST permissions`: `role` (held by someone), `resource`, `action`.
async fn grant_permission(State(state): State<ApiState>, params: Params) -> Response {
    let permission = match permission_of(&params) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    if let Err(e) = state.auth.linearize().await {
        return refused(e);
    }
    if !state.auth.tables().role_exists(&permission.role) {
        return invalid(format!("role {} not found!", permission.role));
    }
    match state.auth.write(AccountChange::Grant(permission)).await {
        Ok(()) => rest_ok("add permission ok!"),
        Err(e) => refused(e),
    }
}

/// `DELETE permissions`: `role`, `resource`, `action`.
async fn revoke_permission(State(state): State<ApiState>, params: Params) -> Response {
    let permission = match permission_of(&params) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    match state.auth.write(AccountChange::Revoke(permission)).await {
        Ok(()) => rest_ok("delete permission ok!"),
        Err(e) => refused(e),
    }
}

/// `POST /nacre/v1/auth/keys/rotate`: a new signing key signs from now on;
/// tokens signed with the previous one keep verifying.
async fn rotate_key(State(state): State<ApiState>) -> Response {
    match bootstrap::rotate(&state.auth).await {
        Ok(id) => rest_ok(json!({"keyId": id})),
        Err(e) => refused(e),
    }
}

/// `GET /nacos/v1/console/server/state`: what the console needs before
/// anyone logs in — and nothing more (no version: scanners read it).
async fn server_state(State(state): State<ApiState>) -> Response {
    let enabled = state.auth.enabled();
    let admin_request = enabled && !state.auth.tables().has_admin();
    Json(json!({
        "auth_enabled": enabled.to_string(),
        "login_page_enabled": enabled.to_string(),
        "auth_admin_request": admin_request.to_string(),
        "auth_system_type": "nacos",
    }))
    .into_response()
}
