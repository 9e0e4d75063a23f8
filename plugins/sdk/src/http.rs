//! Outbound HTTP through `wasi:http/outgoing-handler` (feature `http`).
//!
//! The node links `wasi:http` only into plugins whose manifest grants
//! `[capabilities] http = ["host:port", ...]`, and refuses every request to an
//! authority not in that list: the request then fails with
//! [`HttpError::Refused`]. Without the grant a plugin that uses this module is
//! refused at load. Only `http://` URLs are supported for now.
//!
//! A request runs inside the plugin call's deadline: the node ends the
//! connection when the deadline passes, and the call is cut off.

use std::fmt;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

/// Why a request did not get a response.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The URL is not `http://host:port/path` (or `http://host/path`).
    BadUrl(String),
    /// The node refused the request: its authority is not in the plugin's allow-list.
    Refused,
    /// Building or sending the request failed (the node's error code, in words).
    Failed(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadUrl(url) => write!(f, "not an http://host[:port]/path URL: {url}"),
            HttpError::Refused => f.write_str(
                "the node refused the request: its host:port is not in the plugin's http allow-list",
            ),
            HttpError::Failed(why) => write!(f, "HTTP request failed: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// An `http://` URL split the way `wasi:http` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`; the port is always present (80 when the URL has none).
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path_with_query: String,
}

impl Url {
    /// Parses `http://host[:port][/path][?query]`.
    pub fn parse(url: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let has_port = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') && host.contains(':') => {
                // A bare IPv6 address: needs brackets.
                let _ = port;
                return Err(bad());
            }
            Some((host, port)) => {
                if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
                    return Err(bad());
                }
                true
            }
            None => false,
        };
        let authority = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path_with_query = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Url {
            authority,
            path_with_query,
        })
    }
}

/// Sends `body` to `url` with method POST and the given content type, and
/// returns the response status. The response body is not read.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<u16, HttpError> {
    let url = Url::parse(url)?;
    let failed = |what: &str| HttpError::Failed(what.to_string());
    let headers = Fields::from_list(&[
        ("content-type".to_string(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_string(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .map_err(|e| HttpError::Failed(format!("headers: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&Method::Post)
        .map_err(|()| failed("method"))?;
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| failed("scheme"))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| failed("authority"))?;
    request
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| failed("path"))?;
    let outgoing_body = request.body().map_err(|()| failed("body"))?;

    // Hand the request over first, then stream the body: the node sends the
    // body as the connection takes it, so writing it before `handle` could
    // wait on a reader that does not exist yet.
    let response = outgoing_handler::handle(request, None).map_err(error_code)?;
    // When the node refuses or gives up on the request it drops the body, so
    // writing fails too; the response says why, so it is looked at first.
    let body_written = write_body(outgoing_body, body);
    response.subscribe().block();
    let status = match response.get() {
        Some(Ok(Ok(response))) => response.status(),
        Some(Ok(Err(code))) => return Err(error_code(code)),
        Some(Err(())) => return Err(failed("the response was already taken")),
        None => return Err(failed("no response after waiting for one")),
    };
    body_written?;
    Ok(status)
}

fn write_body(outgoing_body: OutgoingBody, body: &[u8]) -> Result<(), HttpError> {
    {
        let stream = outgoing_body
            .write()
            .map_err(|()| HttpError::Failed("body stream".into()))?;
        // `blocking-write-and-flush` takes at most 4096 bytes per call.
        for chunk in body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Failed(format!("writing the body: {e:?}")))?;
        }
    }
    OutgoingBody::finish(outgoing_body, None).map_err(error_code)
}

fn error_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Refused,
        other => HttpError::Failed(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        let url = Url::parse("http://127.0.0.1:9000/hooks/nacre?x=1").unwrap();
        assert_eq!(url.authority, "127.0.0.1:9000");
        assert_eq!(url.path_with_query, "/hooks/nacre?x=1");
        let url = Url::parse("http://example.com").unwrap();
        assert_eq!(url.authority, "example.com:80");
        assert_eq!(url.path_with_query, "/");
        assert_eq!(
            Url::parse("http://[::1]:81/").unwrap().authority,
            "[::1]:81"
        );
        for bad in [
            "https://example.com/",
            "http://",
            "http://user@host/",
            "http://host:0/",
            "http://host:99999/",
            "http://::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "accepted {bad}");
        }
    }
}
