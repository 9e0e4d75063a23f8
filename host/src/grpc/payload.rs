//! The `Payload` envelope (NACOS-V2.md §3): a message's Java class name in
//! `metadata.type` and its JSON in `body.value`, with an empty type URL.
//! Dispatch is on the type name alone.

use super::proto::{Metadata, Payload};

/// Nacos's error codes that travel in an `ErrorResponse` (NACOS-V2.md §3).
/// Clients treat these as transport failures and retry or reconnect, so
/// they are kept for the protocol's own failures; a request the node
/// understood but refuses gets its typed response with errorCode 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The node is not ready to serve (a cluster member still loading).
    Starting = 300,
    /// The connection has not done `ConnectionSetupRequest` (or was closed).
    Unregistered = 301,
    /// No handler for the message type.
    UnknownType = 302,
    /// The body did not parse as the message its type names.
    BadBody = 502,
}

/// The type name of a payload (`""` when absent).
pub fn type_of(payload: &Payload) -> &str {
    payload.metadata.as_ref().map_or("", |m| m.r#type.as_str())
}

/// The JSON body of a payload (empty when absent).
pub fn body_of(payload: &Payload) -> &[u8] {
    payload.body.as_ref().map_or(&[], |b| b.value.as_slice())
}

/// The sender's own idea of its IP (`metadata.clientIp`).
pub fn client_ip_of(payload: &Payload) -> &str {
    payload
        .metadata
        .as_ref()
        .map_or("", |m| m.client_ip.as_str())
}

/// Wraps a JSON body as a payload of `kind`.
pub fn payload(kind: &str, json: impl Into<Vec<u8>>) -> Payload {
    Payload {
        metadata: Some(Metadata {
            r#type: kind.to_string(),
            client_ip: String::new(),
            headers: Default::default(),
        }),
        body: Some(prost_types::Any {
            type_url: String::new(),
            value: json.into(),
        }),
    }
}

/// An `ErrorResponse`, whose `resultCode` equals its `errorCode` as in Nacos.
pub fn error_response(code: ErrorCode, message: &str) -> Payload {
    let json = serde_json::json!({
        "resultCode": code as u16,
        "errorCode": code as u16,
        "message": message,
        "requestId": "",
        "success": false,
    });
    payload("ErrorResponse", json.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_carries_its_code_twice_and_no_nulls() -> Result<(), serde_json::Error> {
        let p = error_response(ErrorCode::UnknownType, "no handler");
        assert_eq!(type_of(&p), "ErrorResponse");
        let json: serde_json::Value = serde_json::from_slice(body_of(&p))?;
        assert_eq!(json["resultCode"], 302);
        assert_eq!(json["errorCode"], 302);
        assert_eq!(json["message"], "no handler");
        assert_eq!(json["requestId"], "");
        Ok(())
    }
}
