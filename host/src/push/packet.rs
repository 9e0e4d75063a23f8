//! The UDP push wire format, as Nacos 1.x clients expect it.
//!
//! Server → client: `{"type":"dom","data":"<instance/list JSON>","lastRefTime":n}`,
//! gzip-compressed when 1 KiB or larger (clients detect gzip by its magic bytes).
//! Client → server: `{"type":"push-ack","lastRefTime":n,"data":""}`, with
//! `lastRefTime` as a number (Node.js client) or a string (Java client).

use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::Deserialize;

/// Packets at or above this size are gzip-compressed.
pub const GZIP_THRESHOLD: usize = 1024;
/// The largest payload a UDP datagram can carry over IPv4.
pub const MAX_DATAGRAM: usize = 65_507;
/// Acks are tiny; anything bigger is not an ack.
pub const MAX_ACK_BYTES: usize = 1024;

/// Builds the datagram for one push of `list_json`.
pub(crate) fn encode_push(list_json: &str, last_ref_time: u64) -> std::io::Result<Vec<u8>> {
    let packet = serde_json::json!({
        "type": "dom",
        "data": list_json,
        "lastRefTime": last_ref_time,
    })
    .to_string();
    if packet.len() < GZIP_THRESHOLD {
        return Ok(packet.into_bytes());
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(packet.len() / 4), Compression::fast());
    gz.write_all(packet.as_bytes())?;
    gz.finish()
}

/// Why a received packet is not a usable ack.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadPacket {
    /// Larger than [`MAX_ACK_BYTES`]; the size in bytes.
    #[error("packet of {0} bytes is too large for an ack")]
    Oversized(usize),
    /// Not a JSON object with a string `type`.
    #[error("packet is not an ack JSON object")]
    Malformed,
    /// A JSON object whose `type` is not `push-ack`; the type, cut short.
    #[error("packet type {0:?} is not push-ack")]
    NotAnAck(String),
    /// `lastRefTime` is missing or not a whole number.
    #[error("lastRefTime is missing or not a number")]
    BadRefTime,
}

#[derive(Deserialize)]
struct AckPacket {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "lastRefTime")]
    last_ref_time: Option<serde_json::Value>,
}

/// Reads an ack and returns the `lastRefTime` it acknowledges.
pub(crate) fn decode_ack(bytes: &[u8]) -> Result<u64, BadPacket> {
    if bytes.len() > MAX_ACK_BYTES {
        return Err(BadPacket::Oversized(bytes.len()));
    }
    let ack: AckPacket =
        serde_json::from_slice(trim_ascii(bytes)).map_err(|_| BadPacket::Malformed)?;
    if ack.kind != "push-ack" {
        return Err(BadPacket::NotAnAck(ack.kind.chars().take(32).collect()));
    }
    match ack.last_ref_time {
        Some(serde_json::Value::Number(n)) => n.as_u64().ok_or(BadPacket::BadRefTime),
        Some(serde_json::Value::String(s)) => s.trim().parse().map_err(|_| BadPacket::BadRefTime),
        _ => Err(BadPacket::BadRefTime),
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn small_pushes_are_plain_json_large_ones_gzip() -> std::io::Result<()> {
        let small = encode_push(r#"{"hosts":[]}"#, 7)?;
        let value: serde_json::Value = serde_json::from_slice(&small)?;
        assert_eq!(value["type"], "dom");
        assert_eq!(value["lastRefTime"], 7);
        assert_eq!(value["data"], r#"{"hosts":[]}"#);

        let big_list = format!(r#"{{"hosts":"{}"}}"#, "x".repeat(2000));
        let big = encode_push(&big_list, 8)?;
        assert_eq!(&big[..2], &[0x1f, 0x8b]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&big[..]).read_to_string(&mut text)?;
        let value: serde_json::Value = serde_json::from_str(&text)?;
        assert_eq!(value["data"], big_list);
        Ok(())
    }

    #[test]
    fn acks_with_number_or_string_ref_times() {
        assert_eq!(
            decode_ack(br#"{"type":"push-ack","lastRefTime":42,"data":""}"#),
            Ok(42)
        );
        assert_eq!(
            decode_ack(br#" {"type":"push-ack","lastRefTime":"43","data":""} "#),
            Ok(43)
        );
        assert_eq!(decode_ack(b"\x00\xff garbage"), Err(BadPacket::Malformed));
        assert_eq!(
            decode_ack(br#"{"type":"push-ack","lastRefTime":"#),
            Err(BadPacket::Malformed)
        );
        assert_eq!(
            decode_ack(br#"{"type":"dump-ack","lastRefTime":1}"#),
            Err(BadPacket::NotAnAck("dump-ack".into()))
        );
        assert_eq!(
            decode_ack(br#"{"type":"push-ack","lastRefTime":-1}"#),
            Err(BadPacket::BadRefTime)
        );
        assert_eq!(
            decode_ack(br#"{"type":"push-ack"}"#),
            Err(BadPacket::BadRefTime)
        );
        assert_eq!(decode_ack(&[b' '; 2000]), Err(BadPacket::Oversized(2000)));
    }
}
