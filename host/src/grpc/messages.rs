//! The JSON bodies of the messages clients send, and the builder of the
//! answers (NACOS-V2.md §4–§6).
//!
//! Reading is lenient the way Java's is: camelCase, unknown fields ignored,
//! anything missing takes Nacos's default (Go and Rust leave out booleans
//! they consider default). Writing never emits `null` for a string or a
//! list: the Python client refuses the whole answer if it does.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::payload::payload;
use super::proto::Payload;
use crate::naming::list::push_json_str;

/// The fields every naming request carries.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Target {
    /// The client's id of this request, echoed in the answer (`""` if absent).
    pub request_id: Option<String>,
    /// The namespace (`public` when empty or absent).
    pub namespace: Option<String>,
    /// The service name; `group@@name` is split as in v1.
    pub service_name: Option<String>,
    /// The group (`DEFAULT_GROUP` when empty or absent).
    pub group_name: Option<String>,
}

/// A request that carries [`Target`]'s fields beside its own: they are
/// read by a pass over the body of their own ([`read_naming`]). (With
/// `#[serde(flatten)]` serde first buffers the target's fields and every
/// field it does not know, `module` and `headers` among them, as a tree of
/// values, and reads the target from that.)
pub trait Targeted: DeserializeOwned {
    /// Where the target goes.
    fn target_mut(&mut self) -> &mut Target;
}

macro_rules! targeted {
    ($($request:ty),*) => {
        $(impl Targeted for $request {
            fn target_mut(&mut self) -> &mut Target {
                &mut self.target
            }
        })*
    };
}

targeted!(
    InstanceRequest,
    BatchInstanceRequest,
    SubscribeRequest,
    QueryRequest,
    ServiceListRequest
);

/// A naming request `T` from its JSON body: two passes, each skipping what
/// the other reads (skipping allocates nothing). The body must be a JSON
/// object, as Nacos's Jackson reads it (serde would also fill a struct from
/// an array, by position).
pub fn read_naming<T: Targeted>(body: &[u8]) -> serde_json::Result<T> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        return Err(serde::de::Error::custom("expected a JSON object"));
    }
    let mut request: T = serde_json::from_slice(body)?;
    *request.target_mut() = serde_json::from_slice(body)?;
    Ok(request)
}

/// `InstanceRequest` and `PersistentInstanceRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstanceRequest {
    #[serde(skip)]
    /// The service it is about, and the request id (see [`Targeted`]).
    pub target: Target,
    /// `registerInstance` or `deregisterInstance`.
    pub r#type: Option<String>,
    /// The instance to register or deregister.
    pub instance: Option<InstanceBody>,
}

/// `BatchInstanceRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct BatchInstanceRequest {
    #[serde(skip)]
    /// The service it is about, and the request id (see [`Targeted`]).
    pub target: Target,
    /// `batchRegisterInstance`.
    pub r#type: Option<String>,
    /// The connection's whole publication in the service (empty: none).
    pub instances: Option<Vec<InstanceBody>>,
}

/// One instance as clients send it; `None` takes Nacos's default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InstanceBody {
    /// Address, as v1's `ip` (IPv4, IPv6, bracketed, zoned, or a host name).
    pub ip: Option<String>,
    /// Port, 1-65535.
    pub port: Option<i64>,
    /// Weight, 0.0 to 10000.0 (default 1.0).
    pub weight: Option<f64>,
    /// Initial health (default true).
    pub healthy: Option<bool>,
    /// Whether it is listed (default true).
    pub enabled: Option<bool>,
    /// Ephemeral (leased to the connection, the default) or persistent.
    pub ephemeral: Option<bool>,
    /// Cluster (`DEFAULT` when absent); `[0-9a-zA-Z-]+`.
    pub cluster_name: Option<String>,
    /// Metadata; numbers and booleans are kept as their text.
    pub metadata: Option<Map<String, Value>>,
}

/// `SubscribeServiceRequest`: `subscribe: false` unsubscribes.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscribeRequest {
    #[serde(skip)]
    /// The service it is about, and the request id (see [`Targeted`]).
    pub target: Target,
    /// True subscribes, false unsubscribes.
    pub subscribe: bool,
    /// Comma-separated clusters to be shown (empty: all).
    pub clusters: Option<String>,
}

/// `ServiceQueryRequest` (the Python client spells the flag `healthOnly`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct QueryRequest {
    #[serde(skip)]
    /// The service it is about, and the request id (see [`Targeted`]).
    pub target: Target,
    /// Comma-separated clusters to be shown (empty: all).
    pub cluster: Option<String>,
    /// Only healthy instances (Java, Go, Rust spelling).
    pub healthy_only: Option<bool>,
    /// Only healthy instances (Python's spelling).
    pub health_only: Option<bool>,
}

/// `ServiceListRequest`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceListRequest {
    #[serde(skip)]
    /// The namespace and group listed, and the request id (see [`Targeted`]).
    pub target: Target,
    /// Page, from 1 (default 1).
    pub page_no: Option<i64>,
    /// Services per page, 1 to 100,000 (default 10).
    pub page_size: Option<i64>,
}

/// `ConnectionSetupRequest`: who the client is. The abilities (a table from
/// Java and Python, the old nested object from Go and Rust) change nothing
/// here and are not read.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SetupRequest {
    /// `Nacos-Java-Client:v2.3.0` and the like.
    pub client_version: Option<String>,
    /// The client's namespace (empty: `public`).
    pub tenant: Option<String>,
    /// Labels (`module`, `source`, `AppName`, ...).
    pub labels: Option<HashMap<String, String>>,
}

/// Any message of which only the request id (and a result) matters: the
/// client's answers on the stream, ServerCheck, HealthCheck.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Bare {
    /// The request id the message answers or carries.
    pub request_id: Option<String>,
    /// An answer's result (200 when it succeeded).
    pub result_code: Option<i64>,
}

/// Builds one answer: the common fields of every response, then its own,
/// written as JSON text directly (no object tree: an answer is built for
/// every request).
pub struct Reply {
    kind: &'static str,
    result_code: u16,
    error_code: u16,
    message: String,
    request_id: String,
    /// The answer's own fields, rendered: `,"key":value` each.
    fields: String,
    /// Pre-rendered JSON appended as the last field (a `serviceInfo`).
    raw: Option<(&'static str, String)>,
}

impl Reply {
    /// A successful answer of type `kind` to the request `request_id`.
    pub fn ok(kind: &'static str, request_id: &str) -> Reply {
        Reply {
            kind,
            result_code: 200,
            error_code: 0,
            message: String::new(),
            request_id: request_id.to_string(),
            fields: String::new(),
            raw: None,
        }
    }

    /// Turns the answer into a failure with Nacos's `errorCode`
    /// (`resultCode` 500): the typed failure clients raise without retrying.
    /// It keeps the fields a client's model of its type cannot do without,
    /// empty (see [`required_fields`]).
    pub fn fail(mut self, error_code: u16, message: impl Into<String>) -> Reply {
        self.result_code = 500;
        self.error_code = error_code;
        self.message = message.into();
        for (key, empty) in required_fields(self.kind) {
            if !self.has(key) {
                self = self.with(key, empty);
            }
        }
        self
    }

    /// Adds a field of the answer (each key once; not one of the common
    /// fields). A value that cannot be rendered as JSON is left out.
    pub fn with(mut self, key: &'static str, value: impl Serialize) -> Reply {
        if let Ok(json) = serde_json::to_string(&value) {
            self.fields.push_str(",\"");
            self.fields.push_str(key);
            self.fields.push_str("\":");
            self.fields.push_str(&json);
        }
        self
    }

    /// Whether the answer already has its own field `key` (a rendered
    /// value cannot hold `,"key":` unescaped).
    fn has(&self, key: &str) -> bool {
        self.fields.contains(&format!(",\"{key}\":"))
    }

    /// Adds a field whose JSON is already rendered.
    pub fn with_raw(mut self, key: &'static str, json: String) -> Reply {
        self.raw = Some((key, json));
        self
    }

    /// The answer as a `Payload` of its type, the raw field last.
    pub fn into_payload(self) -> Payload {
        let raw_len = self
            .raw
            .as_ref()
            .map_or(0, |(k, json)| k.len() + json.len() + 4);
        let mut json = String::with_capacity(
            96 + self.message.len() + self.request_id.len() + self.fields.len() + raw_len,
        );
        json.push_str("{\"resultCode\":");
        json.push_str(&self.result_code.to_string());
        json.push_str(",\"errorCode\":");
        json.push_str(&self.error_code.to_string());
        json.push_str(",\"message\":");
        push_json_str(&mut json, &self.message);
        json.push_str(",\"requestId\":");
        push_json_str(&mut json, &self.request_id);
        json.push_str(",\"success\":");
        json.push_str(if self.result_code == 200 {
            "true"
        } else {
            "false"
        });
        json.push_str(&self.fields);
        if let Some((key, raw)) = self.raw {
            json.push_str(",\"");
            json.push_str(key);
            json.push_str("\":");
            json.push_str(&raw);
        }
        json.push('}');
        payload(self.kind, json)
    }
}

/// The fields an answer of `kind` must carry even when it is a failure,
/// with their empty values. nacos-sdk-python 3.x declares `count` and
/// `serviceNames` of `ServiceListResponse` without defaults
/// (`v2/nacos/naming/model/naming_response.py`), so a refusal without them
/// (a 403 for a service list) surfaced as a validation error with code 500
/// instead of its errorCode. Nacos leaves out null fields and fails that
/// client the same way; answering the empty page costs nothing.
fn required_fields(kind: &str) -> Vec<(&'static str, Value)> {
    match kind {
        "ServiceListResponse" => vec![
            ("count", 0.into()),
            ("serviceNames", Value::Array(Vec::new())),
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::payload::{body_of, type_of};

    #[test]
    fn lenient_reading_of_a_sparse_instance() -> Result<(), serde_json::Error> {
        let req: InstanceRequest = read_naming(
            br#"{"namespace":"public","serviceName":"s","groupName":"g","type":"registerInstance",
                "instance":{"ip":"127.0.0.1","port":80,"instanceHeartBeatInterval":5000},
                "module":"naming","headers":{},"requestId":"9"}"#,
        )?;
        let instance = req.instance.unwrap_or_default();
        assert_eq!(instance.port, Some(80));
        assert_eq!(instance.healthy, None);
        assert_eq!(req.target.service_name.as_deref(), Some("s"));
        assert_eq!(req.target.group_name.as_deref(), Some("g"));
        assert_eq!(req.target.request_id.as_deref(), Some("9"));
        assert_eq!(req.r#type.as_deref(), Some("registerInstance"));
        Ok(())
    }

    #[test]
    fn a_naming_request_must_be_an_object() {
        for body in [&b"[]"[..], b" [\"x\"]", b"\"s\"", b"7", b"null", b"", b"{"] {
            assert!(
                read_naming::<ServiceListRequest>(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(read_naming::<ServiceListRequest>(b" {}").is_ok());
    }

    #[test]
    fn reply_splices_raw_json_and_keeps_strings() -> Result<(), serde_json::Error> {
        let p = Reply::ok("QueryServiceResponse", "7")
            .with_raw("serviceInfo", r#"{"name":"s","hosts":[]}"#.into())
            .into_payload();
        assert_eq!(type_of(&p), "QueryServiceResponse");
        let json: Value = serde_json::from_slice(body_of(&p))?;
        assert_eq!(json["serviceInfo"]["name"], "s");
        assert_eq!(json["requestId"], "7");
        assert_eq!(json["success"], true);
        let failed = Reply::ok("InstanceResponse", "")
            .with("type", "registerInstance")
            .fail(400, "bad \"quoted\"")
            .into_payload();
        let json: Value = serde_json::from_slice(body_of(&failed))?;
        assert_eq!(
            (json["resultCode"].as_i64(), json["errorCode"].as_i64()),
            (Some(500), Some(400))
        );
        assert_eq!(json["message"], "bad \"quoted\"");
        assert_eq!(json["success"], false);
        assert_eq!(json["type"], "registerInstance");
        let names = ["a", "b"];
        let list = Reply::ok("ServiceListResponse", "1")
            .with("count", 2)
            .with("serviceNames", names)
            .into_payload();
        let json: Value = serde_json::from_slice(body_of(&list))?;
        assert_eq!(json["serviceNames"], serde_json::json!(["a", "b"]));
        assert_eq!(json["count"], 2);
        Ok(())
    }

    #[test]
    fn a_failed_service_list_still_carries_an_empty_page() -> Result<(), serde_json::Error> {
        let failed = Reply::ok("ServiceListResponse", "9")
            .fail(403, "token invalid!")
            .into_payload();
        let json: Value = serde_json::from_slice(body_of(&failed))?;
        assert_eq!(json["errorCode"], 403);
        assert_eq!(json["message"], "token invalid!");
        assert_eq!(json["count"], 0);
        assert_eq!(json["serviceNames"], serde_json::json!([]));
        Ok(())
    }
}
