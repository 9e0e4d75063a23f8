//! Request parameters, read the way Nacos reads them: from the query string and
//! from a form body alike (query first), with Nacos's names and defaults, and
//! every malformed value refused with a message that names the parameter.

use std::net::SocketAddr;
use std::str::FromStr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::{BodyExt, Limited};

use super::ApiState;
use super::error::ApiError;
use crate::config::HttpConfig;
use crate::naming::checks;
use crate::naming::client_agent::agent_header;
use crate::registry::model::{
    DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, GROUP_SEPARATOR, InstanceId, Metadata,
    ServiceKey,
};

/// Where Nacos clients that send no User-Agent name themselves
/// (`HttpHeaderConsts.CLIENT_VERSION_HEADER`).
const CLIENT_VERSION_HEADER: &str = "Client-Version";

/// The merged parameters of one request.
#[derive(Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The client's agent: its User-Agent, or its `Client-Version` header
    /// when the User-Agent is empty (Nacos clients name themselves there).
    pub user_agent: String,
    /// Where the request came from, when known.
    pub remote: Option<SocketAddr>,
}

impl FromRequest<ApiState> for Params {
    type Rejection = ApiError;

    async fn from_request(mut req: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        // A route behind the auth guard finds them read already (http/auth.rs).
        if let Some(params) = req.extensions_mut().remove::<Params>() {
            return Ok(params);
        }
        let (parts, body) = req.into_parts();
        Params::read(&parts, body, &state.limits)
            .await
            .map(|(params, _)| params)
    }
}

impl Params {
    /// Reads a request's parameters: its query, and its body when that is a
    /// form, within `limits`. Answers them with the body as read (for a
    /// layer that passes the request on). Errors: 414 for a query over
    /// `max_query_bytes`, 413 for a body over `max_body_bytes`, 400 for a
    /// body that cannot be read.
    pub(super) async fn read(
        parts: &Parts,
        body: Body,
        limits: &HttpConfig,
    ) -> Result<(Params, Bytes), ApiError> {
        let query = parts.uri.query().unwrap_or("");
        if query.len() > limits.max_query_bytes {
            return Err(ApiError::UriTooLong(limits.max_query_bytes));
        }
        let mut pairs = decode_pairs(query.as_bytes());
        let header_value = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let user_agent = agent_header(
            header_value(header::USER_AGENT.as_str()),
            header_value(CLIENT_VERSION_HEADER),
        )
        .to_string();
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let is_form = is_form(header_value(header::CONTENT_TYPE.as_str()));
        let declared =
            header_value(header::CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > limits.max_body_bytes) {
            return Err(ApiError::BodyTooLarge(limits.max_body_bytes));
        }
        let body = Limited::new(body, limits.max_body_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    ApiError::BodyTooLarge(limits.max_body_bytes)
                } else {
                    ApiError::BadRequest(format!("could not read the request body: {e}"))
                }
            })?
            .to_bytes();
        if is_form && !body.is_empty() {
            pairs.extend(decode_pairs(&body));
        }
        let params = Params {
            pairs,
            user_agent,
            remote,
        };
        Ok((params, body))
    }
}

/// The name/value pairs of a query string or form body, decoded as
/// `application/x-www-form-urlencoded` exactly as `form_urlencoded::parse`
/// decodes them (pieces split at `&`, empty ones skipped, a name ends at
/// the first `=`, `+` is a space, percent-escapes decoded, invalid UTF-8
/// replaced). A part with neither `%` nor `+` (most of them, and an access
/// token always) is taken as it is, without the decoder's byte-by-byte
/// pass: every request is read this way.
pub(crate) fn decode_pairs(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match memchr::memchr(b'=', piece) {
            Some(at) => (decode_part(&piece[..at]), decode_part(&piece[at + 1..])),
            None => (decode_part(piece), String::new()),
        })
        .collect()
}

fn decode_part(part: &[u8]) -> String {
    if memchr::memchr2(b'%', b'+', part).is_none()
        && let Ok(text) = std::str::from_utf8(part)
    {
        return text.to_owned();
    }
    let spaced: Vec<u8> = part
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether a request's body is a form (Nacos clients send forms, or nothing).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

impl Params {
    /// Parameters from a query string and a form body already read.
    pub fn from_query_and_form(query: &str, form: &[u8]) -> Self {
        let mut pairs = decode_pairs(query.as_bytes());
        pairs.extend(decode_pairs(form));
        Params {
            pairs,
            user_agent: String::new(),
            remote: None,
        }
    }

    /// Builds parameters directly (for tests and internal callers).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Params {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user_agent: String::new(),
            remote: None,
        }
    }

    /// The first non-blank value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or 400 `Param '<name>' is required.` (Nacos's text).
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::BadRequest(format!("Param '{name}' is required.")))
    }

    /// The value of `name`, or `default` when it is absent or blank.
    pub fn or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.get(name).unwrap_or(default)
    }

    /// Parses `name` if present; a value that does not parse is an error.
    pub fn parse<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| illegal(name, &format!("expected {expected}, got {v:?}")))
            })
            .transpose()
    }

    /// A boolean, accepting Nacos clients' spellings (`true`/`false`, `1`/`0`, ...).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(illegal(name, &format!("expected true or false, got {v:?}"))),
            })
            .transpose()
    }

    /// `namespaceId` (`public` when absent); at most 512 bytes, no control characters.
    pub fn namespace(&self) -> Result<String, ApiError> {
        let namespace = self.or("namespaceId", DEFAULT_NAMESPACE);
        check_name("namespaceId", namespace)?;
        Ok(namespace.to_string())
    }

    /// The service named by `serviceName` (`group@@name`, or a bare name with
    /// `groupName`), in `namespaceId`. Clients older than Nacos 0.8 name it
    /// `dom` instead (`DistroFilter`), which is read when `serviceName` is absent.
    ///
    /// Neither part may contain `#` (`check_service_part`).
    pub fn service_key(&self) -> Result<ServiceKey, ApiError> {
        let namespace = self.namespace()?;
        let raw = match self.get("serviceName").or_else(|| self.get("dom")) {
            Some(raw) => raw,
            None => self.required("serviceName")?,
        };
        let (group, name) = match raw.split_once(GROUP_SEPARATOR) {
            Some((group, name)) => {
                if group.is_empty() || name.is_empty() || name.contains(GROUP_SEPARATOR) {
                    return Err(illegal(
                        "serviceName",
                        "it should be format as 'groupName@@serviceName'",
                    ));
                }
                (group, name)
            }
            None => {
                let group = self.or("groupName", DEFAULT_GROUP);
                if group.contains(GROUP_SEPARATOR) {
                    return Err(illegal(
                        "groupName",
                        "a group name cannot contain '@@', which separates group and service",
                    ));
                }
                (group, raw)
            }
        };
        check_service_part("serviceName", name)?;
        check_service_part("groupName", group)?;
        Ok(ServiceKey::new(namespace, group, name))
    }

    /// The cluster name in parameter `name` (`DEFAULT` when absent); 400 unless it
    /// matches Nacos's `[0-9a-zA-Z-]+`.
    pub fn cluster(&self, name: &str) -> Result<String, ApiError> {
        let cluster = self.or(name, DEFAULT_CLUSTER);
        check_cluster(name, cluster)?;
        Ok(cluster.to_string())
    }

    /// The instance named by `ip`, `port` and `clusterName` (or `cluster`,
    /// which Nacos reads when `clusterName` is blank: `getBasicIpAddress`).
    pub fn instance_id(&self) -> Result<InstanceId, ApiError> {
        let cluster = self.instance_cluster()?;
        let ip = self.required("ip")?;
        check_ip("ip", ip)?;
        let port = self
            .port("port")?
            .ok_or_else(|| ApiError::BadRequest("Param 'port' is required.".into()))?;
        Ok(InstanceId::new(cluster, ip, port))
    }

    /// The cluster of an instance: `clusterName`, or `cluster` when that is
    /// blank, or `DEFAULT`.
    pub fn instance_cluster(&self) -> Result<String, ApiError> {
        match self.get("clusterName") {
            Some(_) => self.cluster("clusterName"),
            None => self.cluster("cluster"),
        }
    }

    /// A port in parameter `name`, 1 to 65535; `None` when absent, 400 when malformed.
    pub fn port(&self, name: &str) -> Result<Option<u16>, ApiError> {
        self.get(name).map(|v| parse_port(name, v)).transpose()
    }

    /// A port that may be 0 (`udpPort`: 0 means "no push").
    pub fn port_or_zero(&self, name: &str) -> Result<u16, ApiError> {
        match self.get(name) {
            None | Some("0") => Ok(0),
            Some(v) => parse_port(name, v),
        }
    }

    /// `weight`, from 0 to 10000 as Nacos accepts; `None` when absent.
    pub fn weight(&self) -> Result<Option<f64>, ApiError> {
        self.get("weight").map(parse_weight).transpose()
    }

    /// Metadata as a JSON object or as `k1=v1,k2=v2`.
    pub fn metadata(&self, name: &str) -> Result<Option<Metadata>, ApiError> {
        self.get(name).map(|v| parse_metadata(name, v)).transpose()
    }
}

pub fn illegal(name: &str, reason: &str) -> ApiError {
    checks::illegal(name, reason).into()
}

// The rules themselves live in `naming::checks`, shared with the gRPC door.

fn check_name(param: &str, value: &str) -> Result<(), ApiError> {
    Ok(checks::check_name(param, value)?)
}

/// Nacos's cluster name syntax: `[0-9a-zA-Z-]+`.
pub fn check_cluster(param: &str, value: &str) -> Result<(), ApiError> {
    Ok(checks::check_cluster(param, value)?)
}

/// An address as clients send it ([`checks::check_ip`]).
pub fn check_ip(param: &str, value: &str) -> Result<(), ApiError> {
    Ok(checks::check_ip(param, value)?)
}

/// A service or group name: no `#` ([`checks::check_service_part`]).
fn check_service_part(param: &str, value: &str) -> Result<(), ApiError> {
    Ok(checks::check_service_part(param, value)?)
}

pub fn parse_port(param: &str, value: &str) -> Result<u16, ApiError> {
    Ok(checks::parse_port(param, value)?)
}

pub fn parse_weight(value: &str) -> Result<f64, ApiError> {
    Ok(checks::parse_weight(value)?)
}

pub fn parse_metadata(param: &str, value: &str) -> Result<Metadata, ApiError> {
    if value.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(value)
            .map_err(|e| illegal(param, &format!("malformed JSON: {e}")))?;
        return Ok(checks::metadata_from_json(param, map)?);
    }
    value
        .split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    illegal(
                        param,
                        &format!("expected a JSON object or k=v pairs, got {kv:?}"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_decode_as_form_urlencoded_does() {
        for input in [
            &b""[..],
            b"a=1&b=2",
            b"&&a=&=b&c",
            b"serviceName=G%40%40orders&x=a+b%2Bc",
            b"token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJuYWNvcyJ9.abc-_def",
            b"k=v=w==&%zz=%4&%e2%82%ac=%ff%fe",
            b"m=%7B%22a%22%3A1%7D&n=\xc3\xa9t\xc3\xa9",
            b"a=\xff\xfe&b=ok&\xff",
        ] {
            let expected: Vec<(String, String)> =
                form_urlencoded::parse(input).into_owned().collect();
            assert_eq!(decode_pairs(input), expected, "{input:?}");
        }
    }

    #[test]
    fn pairs_decode_as_form_urlencoded_does_on_random_input() {
        // Bytes that matter to the decoder, and some that do not.
        const ALPHABET: &[u8] = b"a=&%+2F0fg \xc3\xa9\xe2\x82\xac\xff.";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let input: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let expected: Vec<(String, String)> =
                form_urlencoded::parse(&input).into_owned().collect();
            assert_eq!(decode_pairs(&input), expected, "{input:?}");
        }
    }

    #[test]
    fn grouped_and_bare_service_names() -> Result<(), ApiError> {
        let p = Params::from_pairs(&[("serviceName", "g1@@orders")]);
        assert_eq!(p.service_key()?, ServiceKey::new("public", "g1", "orders"));
        let p = Params::from_pairs(&[
            ("serviceName", "orders"),
            ("groupName", "g2"),
            ("namespaceId", "dev"),
        ]);
        assert_eq!(p.service_key()?, ServiceKey::new("dev", "g2", "orders"));
        for bad in ["@@orders", "g@@", "a@@b@@c", "", "a#b", "g#1@@b"] {
            let p = Params::from_pairs(&[("serviceName", bad)]);
            assert!(p.service_key().is_err(), "{bad:?} accepted");
        }
        let p = Params::from_pairs(&[("serviceName", "b"), ("groupName", "x@@y")]);
        assert!(p.service_key().is_err());
        let p = Params::from_pairs(&[("dom", "legacy")]);
        assert_eq!(
            p.service_key()?,
            ServiceKey::new("public", "DEFAULT_GROUP", "legacy")
        );
        Ok(())
    }

    #[test]
    fn numbers_are_range_checked() {
        assert!(parse_port("port", "0").is_err());
        assert!(parse_port("port", "65536").is_err());
        assert!(parse_port("port", "80a").is_err());
        assert!(matches!(parse_port("port", "65535"), Ok(65535)));
        assert!(parse_weight("10000.5").is_err());
        assert!(parse_weight("-1").is_err());
        assert!(parse_weight("NaN").is_err());
        assert!(matches!(parse_weight("0"), Ok(w) if w == 0.0));
    }

    #[test]
    fn metadata_in_both_nacos_forms() -> Result<(), ApiError> {
        let json = parse_metadata("metadata", r#"{"zone":"a","n":1}"#)?;
        assert_eq!(json.get("zone").map(String::as_str), Some("a"));
        assert_eq!(json.get("n").map(String::as_str), Some("1"));
        let kv = parse_metadata("metadata", "zone=a, version = 2")?;
        assert_eq!(kv.get("version").map(String::as_str), Some("2"));
        assert!(parse_metadata("metadata", "{not json").is_err());
        assert!(parse_metadata("metadata", "novalue").is_err());
        assert!(parse_metadata("metadata", r#"{"a":{"b":1}}"#).is_err());
        Ok(())
    }
}
