//! The console routes' query parameters: a few plain ones, each checked, a
//! bad one answered 400 with Nacos's `caused: <why>;` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Query;
use crate::naming::checks::illegal;

/// Longest search text or name a console route takes.
const MAX_TEXT: usize = 512;
/// Largest page a console listing serves.
const MAX_PAGE_SIZE: usize = 1000;

/// A refused parameter: 400 with `caused: <why>;`.
#[derive(Debug)]
pub(crate) struct Bad(String);

impl IntoResponse for Bad {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, format!("caused: {};", self.0)).into_response()
    }
}

/// `name`'s value, `""` when absent; refused when longer than 512 bytes.
pub(crate) fn text<'a>(query: &'a Query, name: &str) -> Result<&'a str, Bad> {
    let value = query.get(name).map(String::as_str).unwrap_or("").trim();
    if value.len() > MAX_TEXT {
        return Err(Bad(
            illegal(name, &format!("longer than {MAX_TEXT} bytes")).to_string()
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
