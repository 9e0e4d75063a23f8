//! The auth guard of the HTTP door: each route states what it needs
//! ([`reads`], [`writes`], [`admin`], [`signed_in`], or the same for a
//! whole router), and this middleware reads the caller's
//! credential and the request's resource, asks [`crate::auth::Auth::check`],
//! and either runs the route with a [`Caller`] extension or answers 403 the
//! way Nacos does. A path that matches no route never reaches a guard: it is
//! 404 (Nacos let unmatched URL variants through, alibaba/nacos#4701).
//!
//! The guard reads the request's parameters (`Params`, query and form) and
//! hands them to the route as an extension, so a request is parsed once with
//! auth on as with auth off; the route authorizes on exactly the values it
//! then acts on.
//!
//! Credentials are read where real clients put them (NACOS-AUTH.md §4):
//! `Authorization: Bearer`, `accessToken`, `username` + `password`, as
//! headers or parameters (query or form; parameters win). Nothing about the
//! request's origin or User-Agent is trusted (CVE-2021-29441).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use super::ApiState;
use super::params::Params;
use crate::accounts::Action;
use crate::auth::resource::naming_need;
use crate::auth::{Caller, Credentials, Denied, Need};
use crate::logging::time::UtcMillis;

/// What a guarded route needs.
#[derive(Clone, Copy, Debug)]
enum Needs {
    Read,
    Write,
    Admin,
    SignedIn,
}

#[derive(Clone)]
struct Guard {
    state: ApiState,
    needs: Needs,
}

fn guarded(
    state: &ApiState,
    needs: Needs,
    route: MethodRouter<ApiState>,
) -> MethodRouter<ApiState> {
    let guard = Guard {
        state: state.clone(),
        needs,
    };
    route.route_layer(middleware::from_fn_with_state(guard, check))
}

/// The route reads the naming resource its parameters name (`r`).
pub(super) fn reads(state: &ApiState, route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    guarded(state, Needs::Read, route)
}

/// The route writes the naming resource its parameters name (`w`).
pub(super) fn writes(state: &ApiState, route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    guarded(state, Needs::Write, route)
}

/// The route is the global admin's.
pub(super) fn admin(state: &ApiState, route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    guarded(state, Needs::Admin, route)
}

/// Any signed-in user; the route decides the rest from the [`Caller`].
pub(super) fn signed_in(state: &ApiState, route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    guarded(state, Needs::SignedIn, route)
}

/// Guards a whole router: any signed-in user.
pub(super) fn signed_in_router(
    state: &ApiState,
    router: axum::Router<ApiState>,
) -> axum::Router<ApiState> {
    guarded_router(state, Needs::SignedIn, router)
}

/// Guards a whole router: the global admin's.
pub(super) fn admin_router(
    state: &ApiState,
    router: axum::Router<ApiState>,
) -> axum::Router<ApiState> {
    guarded_router(state, Needs::Admin, router)
}

/// Guards a whole router whose routes read what their parameters name.
pub(super) fn reads_router(
    state: &ApiState,
    router: axum::Router<ApiState>,
) -> axum::Router<ApiState> {
    guarded_router(state, Needs::Read, router)
}

/// Guards a whole router whose routes write what their parameters name.
/// Apply it last (outermost), so that it runs before forwarding to the
/// responsible member.
pub(super) fn writes_router(
    state: &ApiState,
    router: axum::Router<ApiState>,
) -> axum::Router<ApiState> {
    guarded_router(state, Needs::Write, router)
}

fn guarded_router(
    state: &ApiState,
    needs: Needs,
    router: axum::Router<ApiState>,
) -> axum::Router<ApiState> {
    let guard = Guard {
        state: state.clone(),
        needs,
    };
    router.route_layer(middleware::from_fn_with_state(guard, check))
}

async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let auth = &guard.state.auth;
    if !auth.enabled() {
        let mut request = request;
        request.extensions_mut().insert(Caller::default());
        return next.run(request).await;
    }
    // The parameters are read once, here, and handed to the route.
    let (parts, body) = request.into_parts();
    let (params, body) = match Params::read(&parts, body, &guard.state.limits).await {
        Ok(read) => read,
        Err(e) => return e.into_response(),
    };
    let credentials = credentials_of(&parts.headers, |name| params.get(name));
    let source = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let need = match guard.needs {
        Needs::Read => naming_need_of(&params, Action::Read),
        Needs::Write => naming_need_of(&params, Action::Write),
        Needs::Admin => Need::Admin,
        Needs::SignedIn => Need::SignedIn,
    };
    match auth.check(&credentials, source, &need).await {
        Ok(caller) => {
            let mut request = Request::from_parts(parts, Body::from(body));
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(params);
            next.run(request).await
        }
        Err(denied) => {
            let path = parts
                .extensions
                .get::<OriginalUri>()
                .map_or(parts.uri.path(), |o| o.0.path());
            denial(&denied, path)
        }
    }
}

/// `action` on the service the parameters name (leniently: a malformed
/// name is refused by the route itself, once allowed).
fn naming_need_of(params: &Params, action: Action) -> Need {
    naming_need(
        action,
        params.get("namespaceId"),
        params.get("groupName"),
        params.get("serviceName").or_else(|| params.get("dom")),
    )
}

/// The credential of a request: headers first, parameters win
/// (Nacos 2.x `HttpIdentityContextBuilder`).
pub(super) fn credentials_of<'a>(
    headers: &'a HeaderMap,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Credentials<'a> {
    // Header names are matched lowercase; named once, not parsed per request.
    static ACCESS_TOKEN: HeaderName = HeaderName::from_static("accesstoken");
    static USERNAME: HeaderName = HeaderName::from_static("username");
    static PASSWORD: HeaderName = HeaderName::from_static("password");
    let header = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bearer = header(&header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let token = bearer
        .or_else(|| param("accessToken"))
        .or_else(|| header(&ACCESS_TOKEN));
    if let Some(token) = token {
        // A token decides alone (a bad one is refused whatever else is
        // given): the password is not looked for.
        return Credentials {
            token: Some(token),
            username: None,
            password: None,
        };
    }
    let username = param("username").or_else(|| header(&USERNAME));
    let password = param("password").or_else(|| header(&PASSWORD));
    Credentials {
        token: None,
        username,
        password,
    }
}

/// A refusal as Nacos answers it: Spring Boot's error document
/// (NACOS-AUTH.md §7), 403 (429 while throttled, 503 before a key exists).
pub(super) fn denial(denied: &Denied, path: &str) -> Response {
    let status = match denied {
        Denied::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        Denied::NotReady => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::FORBIDDEN,
    };
    let body = serde_json::json!({
        "timestamp": UtcMillis(crate::clock::now_millis()).to_string(),
        "status": status.as_u16(),
        "error": status.canonical_reason().unwrap_or(""),
        "message": denied.to_string(),
        "path": path,
    });
    let mut response = (status, axum::Json(body)).into_response();
    if let Denied::Throttled(seconds) = denied
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(query: &str) -> Need {
        naming_need_of(&Params::from_query_and_form(query, b""), Action::Read)
    }

    fn resource(query: &str) -> String {
        match need(query) {
            Need::Naming { resource, .. } => resource,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_resource_comes_from_the_parameters() {
        assert_eq!(resource("serviceName=orders"), ":*:naming/orders");
        assert_eq!(
            resource("serviceName=G%40%40orders&namespaceId=dev"),
            "dev:G:naming/orders"
        );
        assert_eq!(
            resource("serviceName=orders&groupName=G&namespaceId=public"),
            ":G:naming/orders"
        );
        assert_eq!(resource(""), ":*:naming/*");
    }

    #[test]
    fn parameters_come_decoded_from_query_and_form() {
        let params = Params::from_query_and_form(
            "serviceName=a%40%40b&beat=%7B%22x%22%3D1%7D",
            b"password=p+w%3D%3D&user%6eame=ann&other=1",
        );
        assert_eq!(params.get("serviceName"), Some("a@@b"));
        assert_eq!(params.get("password"), Some("p w=="));
        assert_eq!(params.get("username"), Some("ann"));
    }

    #[test]
    fn credentials_come_from_headers_and_parameters_win() {
        let mut headers = HeaderMap::new();
        headers.insert("username", HeaderValue::from_static("h-user"));
        headers.insert("password", HeaderValue::from_static("h-pw"));
        let params = Params::from_query_and_form("username=p-user", b"");
        let c = credentials_of(&headers, |n| params.get(n));
        assert_eq!(c.token, None);
        assert_eq!(c.username, Some("p-user"));
        assert_eq!(c.password, Some("h-pw"));

        // A token decides alone: the password is not looked for.
        headers.insert("accesstoken", HeaderValue::from_static("from-header"));
        let c = credentials_of(&headers, |n| params.get(n));
        assert_eq!(c.token, Some("from-header"));
        assert_eq!((c.username, c.password), (None, None));

        let params = Params::from_query_and_form("accessToken=from-param", b"");
        let c = credentials_of(&headers, |n| params.get(n));
        assert_eq!(c.token, Some("from-param"));

        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer from-bearer"),
        );
        let c = credentials_of(&headers, |n| params.get(n));
        assert_eq!(c.token, Some("from-bearer"));
    }
}
