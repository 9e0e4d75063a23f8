//! The static bundle: `GET /nacos` redirects to `/nacos/`, which serves the
//! page; `GET /nacos/console/<file>` serves its scripts and style. The files
//! are embedded in the binary (no build step, nothing read from disk at run
//! time), so a node serves exactly the console it was built with.
//!
//! Every answer forbids framing and sniffing, and the page may load scripts
//! and styles only from the node itself (a content security policy).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Name, content type, bytes: every file of the bundle.
const FILES: [(&str, &str, &str); 7] = [
    ("index.html", HTML, include_str!("assets/index.html")),
    ("style.css", CSS, include_str!("assets/style.css")),
    ("app.js", JS, include_str!("assets/app.js")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("services.js", JS, include_str!("assets/services.js")),
    ("instances.js", JS, include_str!("assets/instances.js")),
    ("node.js", JS, include_str!("assets/node.js")),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// What the page may load: only the node's own scripts, styles and APIs.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The bundle's routes.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/nacos", get(|| async { Redirect::permanent("/nacos/") }))
        .route("/nacos/", get(|| async { file("index.html") }))
        .route(
            "/nacos/console/{file}",
            get(|Path(name): Path<String>| async move { file(&name) }),
        )
}

/// One file of the bundle, or 404.
fn file(name: &str) -> Response {
    let Some((_, kind, body)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            "caused: no such file in the console;",
        )
            .into_response();
    };
    let mut response = (*body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    response
}

/// Bytes of the whole bundle (what a first load transfers, uncompressed).
pub(super) fn bundle_bytes() -> usize {
    FILES.iter().map(|(_, _, body)| body.len()).sum()
}
