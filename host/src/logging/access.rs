//! The access log (`[http] access_log`): one INFO line per HTTP request under
//! the target `nacre::access`, with the method, the path, the status, the
//! time taken and the client's address.
//!
//! The query string and the body are left out: Nacos clients put access
//! tokens and instance metadata there, and the log must not carry them.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Axum middleware: serves the request, then logs it.
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = bounded(request.uri().path());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "nacre::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        took_ms = (took_ms * 1000.0).round() / 1000.0,
        client = %client,
        "request"
    );
    response
}

/// Most of a path the log keeps (a client chooses its length).
const MAX_PATH_BYTES: usize = 1024;

fn bounded(path: &str) -> String {
    if path.len() <= MAX_PATH_BYTES {
        return path.to_string();
    }
    let mut end = MAX_PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}
