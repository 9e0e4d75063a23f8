//! The console routes' query parameters: a few plain ones, each checked, a
//! bad one answered 400 with Nacos's `caused: <why>;` body.

use std::collections::HashMap;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::Query;
use crate::naming::NamingError;
use crate::naming::checks::illegal;

/// Longest search text or name a console route takes.
const MAX_TEXT: usize = 512;
/// Largest page a console listing serves.
const MAX_PAGE_SIZE: usize = 1000;
/// Largest form body a console write takes, in bytes.
const MAX_FORM: usize = 16 * 1024;

/// A refused parameter: 400 with `caused: <why>;`.
#[derive(Debug)]
pub(crate) struct Bad(String);

impl IntoResponse for Bad {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, format!("caused: {};", self.0)).into_response()
    }
}

/// So a handler answering `Result<_, Response>` can use `?` on a refused
/// parameter.
impl From<Bad> for Response {
    fn from(bad: Bad) -> Response {
        bad.into_response()
    }
}

/// A naming operation's failure, answered as the HTTP door answers it:
/// 400 for a refused parameter, 404 for what does not exist, 503 when the
/// client should try again (no Raft leader, a timeout), else 500; the body
/// `caused: <why>;`.
pub(crate) fn failed(e: NamingError) -> Response {
    let status = match &e {
        NamingError::InvalidParam(_) => StatusCode::BAD_REQUEST,
        NamingError::NotFound(_) => StatusCode::NOT_FOUND,
        NamingError::Consistency(c) if c.retryable() => StatusCode::SERVICE_UNAVAILABLE,
        NamingError::Consistency(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!(error = %e, "console write failed");
    }
    (status, format!("caused: {e};")).into_response()
}

/// A console write's fields: its query and its form body, as Nacos's
/// console sends them; a field given twice takes its first value, the
/// query's before the body's (as the HTTP door's parameters). A body over
/// 16 KiB is refused with 413, one that cannot be read with 400.
pub(crate) struct Fields(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(request: Request, _: &S) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        let body = match Limited::new(body, MAX_FORM).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("caused: request body larger than {MAX_FORM} bytes;"),
                )
                    .into_response());
            }
            Err(e) => {
                return Err(Bad(format!("could not read the request body: {e}")).into_response());
            }
        };
        let query = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes());
        let form = form_urlencoded::parse(if is_form { &body } else { &[] });
        let mut fields = HashMap::new();
        for (name, value) in query.chain(form) {
            fields
                .entry(name.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Ok(Fields(fields))
    }
}

/// `name`'s value, `""` when absent; refused when longer than 512 bytes.
pub(crate) fn text<'a>(query: &'a HashMap<String, String>, name: &str) -> Result<&'a str, Bad> {
    text_up_to(query, name, MAX_TEXT)
}

/// `name`'s value, `""` when absent; refused when longer than `max` bytes
/// (for fields whose own rule counts characters, the bytes of that many
/// characters of any script).
pub(crate) fn text_up_to<'a>(
    query: &'a HashMap<String, String>,
    name: &str,
    max: usize,
) -> Result<&'a str, Bad> {
    let value = query.get(name).map(String::as_str).unwrap_or("").trim();
    if value.len() > max {
        return Err(Bad(
            illegal(name, &format!("longer than {max} bytes")).to_string()
        ));
    }
    Ok(value)
}

/// The namespace asked for (`namespaceId`, default `public`; Nacos 1.x/2.x
/// name it `""` in the console).
pub(crate) fn namespace(query: &Query) -> Result<String, Bad> {
    let given = text(query, "namespaceId")?;
    Ok(if given.is_empty() { "public" } else { given }.to_string())
}

/// A whole number `name` from `min` to `max`, `default` when absent.
pub(crate) fn number(
    query: &Query,
    name: &str,
    default: usize,
    (min, max): (usize, usize),
) -> Result<usize, Bad> {
    let Some(raw) = query.get(name).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Bad(illegal(
            name,
            &format!("must be a number from {min} to {max}"),
        )
        .to_string())),
    }
}

/// `pageNo` (from 1, default 1) and `pageSize` (1 to 1000, default `size`).
pub(crate) fn page(query: &Query, size: usize) -> Result<(usize, usize), Bad> {
    Ok((
        number(query, "pageNo", 1, (1, usize::MAX))?,
        number(query, "pageSize", size, (1, MAX_PAGE_SIZE))?,
    ))
}
