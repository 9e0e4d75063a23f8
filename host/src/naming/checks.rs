//! Parameter rules shared by both front doors: a name, a cluster, an IP, a
//! port, a weight or a metadata map that one door refuses, the other refuses
//! too, with the same message naming the parameter (Nacos's
//! `Param '<name>' is illegal: ...`). The v1 HTTP door answers it as a 400
//! body; the gRPC door as a typed response with errorCode 400.

use std::net::IpAddr;

use super::NamingError;
use crate::registry::model::{MAX_WEIGHT, MIN_WEIGHT, Metadata};

/// Longest accepted name (service, group, namespace, cluster, ip), in bytes.
pub const MAX_NAME_LEN: usize = 512;

/// The error for a parameter that is present but wrong.
pub fn illegal(name: &str, reason: &str) -> NamingError {
    NamingError::InvalidParam(format!("Param '{name}' is illegal: {reason}"))
}

/// The error for a parameter that is missing.
pub fn required(name: &str) -> NamingError {
    NamingError::InvalidParam(format!("Param '{name}' is required."))
}

/// Any name: bounded length, no control characters.
pub fn check_name(param: &str, value: &str) -> Result<(), NamingError> {
    if value.len() > MAX_NAME_LEN {
        return Err(illegal(param, &format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(illegal(param, "contains control characters"));
    }
    Ok(())
}

/// Nacos's cluster name syntax: `[0-9a-zA-Z-]+`.
pub fn check_cluster(param: &str, value: &str) -> Result<(), NamingError> {
    check_name(param, value)?;
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(illegal(
            param,
            "cluster name can only have these characters: 0-9a-zA-Z-",
        ))
    }
}

/// An IP address or a host name; a dotted number must be a valid IPv4 address.
pub fn check_ip(param: &str, value: &str) -> Result<(), NamingError> {
    check_name(param, value)?;
    if value.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(illegal(
            param,
            &format!("{value:?} is not a valid IP address"),
        ));
    }
    let host_like = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if host_like {
        Ok(())
    } else {
        Err(illegal(
            param,
            &format!("{value:?} is neither an IP address nor a host name"),
        ))
    }
}

/// A port as a number already read (gRPC JSON): 1 to 65535.
pub fn check_port(param: &str, value: i64) -> Result<u16, NamingError> {
    match u16::try_from(value) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(illegal(param, &format!("port {value} is outside 1-65535"))),
    }
}

/// A port as text (v1 parameters).
pub fn parse_port(param: &str, value: &str) -> Result<u16, NamingError> {
    match value.parse::<i64>() {
        Ok(p) => check_port(param, p),
        Err(_) => Err(illegal(
            param,
            &format!("expected a port number, got {value:?}"),
        )),
    }
}

/// A weight: a finite number from [`MIN_WEIGHT`] to [`MAX_WEIGHT`].
pub fn check_weight(weight: f64) -> Result<f64, NamingError> {
    if !weight.is_finite() || !(MIN_WEIGHT..=MAX_WEIGHT).contains(&weight) {
        return Err(illegal(
            "weight",
            &format!("the weights range from {MIN_WEIGHT} to {MAX_WEIGHT}, got {weight}"),
        ));
    }
    Ok(weight)
}

/// A weight as text (v1 parameters).
pub fn parse_weight(value: &str) -> Result<f64, NamingError> {
    let weight: f64 = value
        .parse()
        .map_err(|_| illegal("weight", &format!("expected a number, got {value:?}")))?;
    check_weight(weight)
}

/// Metadata from a JSON object: strings as they are, numbers and booleans as
/// their text, `null` as `""`; nested values are refused.
pub fn metadata_from_json(
    param: &str,
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<Metadata, NamingError> {
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            serde_json::Value::Null => Ok((k, String::new())),
            _ => Err(illegal(
                param,
                &format!("value of key {k:?} must be a string"),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_weights_clusters_and_ips() {
        assert!(check_port("port", 0).is_err());
        assert!(check_port("port", 65536).is_err());
        assert!(matches!(check_port("port", 65535), Ok(65535)));
        assert!(parse_port("port", "80a").is_err());
        assert!(check_weight(f64::NAN).is_err());
        assert!(check_weight(10000.5).is_err());
        assert!(check_cluster("clusterName", "").is_err());
        assert!(check_cluster("clusterName", "zone_a").is_err());
        assert!(check_ip("ip", "").is_err());
        assert!(check_ip("ip", "db-1.internal").is_ok());
        let err = check_port("port", 70000).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Param 'port' is illegal: port 70000 is outside 1-65535")
        );
    }
}
