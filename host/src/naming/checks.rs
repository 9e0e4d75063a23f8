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
pub(crate) fn illegal(name: &str, reason: &str) -> NamingError {
    NamingError::InvalidParam(format!("Param '{name}' is illegal: {reason}"))
}

/// The error for a parameter that is missing.
pub(crate) fn required(name: &str) -> NamingError {
    NamingError::InvalidParam(format!("Param '{name}' is required."))
}

/// Any name: bounded length, no control characters.
pub(crate) fn check_name(param: &str, value: &str) -> Result<(), NamingError> {
    if value.len() > MAX_NAME_LEN {
        return Err(illegal(param, &format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(illegal(param, "contains control characters"));
    }
    Ok(())
}

/// Nacos's cluster name syntax: `[0-9a-zA-Z-]+`.
pub(crate) fn check_cluster(param: &str, value: &str) -> Result<(), NamingError> {
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

/// An address as clients send it, stored as given: an IPv4 or IPv6 address,
/// an IPv6 address in brackets (`[2408:400a::1a]`, what Spring Cloud Alibaba
/// sends when it prefers IPv6) or with a zone (`fe80::1%eth0`, also in
/// brackets), or a host name. Nacos 1.4 stores any string and refuses only
/// digits-and-dots that are no IPv4 address (`Instance#validate`); Nacre also
/// refuses what is none of the forms above (spaces, quotes, `#`, ...).
pub(crate) fn check_ip(param: &str, value: &str) -> Result<(), NamingError> {
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
    let unbracketed = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if is_ipv6_with_zone(unbracketed) {
        return Ok(());
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

/// `addr` or `addr%zone`, `addr` an IPv6 address and `zone` an interface
/// name or index.
fn is_ipv6_with_zone(value: &str) -> bool {
    let (addr, zone) = match value.split_once('%') {
        Some((addr, zone)) => (addr, Some(zone)),
        None => (value, None),
    };
    addr.parse::<std::net::Ipv6Addr>().is_ok()
        && zone.is_none_or(|z| {
            !z.is_empty()
                && z.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        })
}

/// A service or group name: no `#`, which would make the instance id every
/// client splits on it (`ip#port#cluster#group@@service`) ambiguous. Nacos
/// 1.4 refuses it too, with a stricter syntax (`Service#validate`:
/// `[0-9a-zA-Z@.:_-]+` on `group@@name`); Nacos 2.x accepts any name.
pub(crate) fn check_service_part(param: &str, value: &str) -> Result<(), NamingError> {
    check_name(param, value)?;
    if value.contains('#') {
        return Err(illegal(
            param,
            "'#' is not allowed: it separates the parts of an instance id (ip#port#cluster#group@@service)",
        ));
    }
    Ok(())
}

/// A port as a number already read (gRPC JSON): 1 to 65535.
pub(crate) fn check_port(param: &str, value: i64) -> Result<u16, NamingError> {
    match u16::try_from(value) {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(illegal(param, &format!("port {value} is outside 1-65535"))),
    }
}

/// A port as text (v1 parameters).
pub(crate) fn parse_port(param: &str, value: &str) -> Result<u16, NamingError> {
    match value.parse::<i64>() {
        Ok(p) => check_port(param, p),
        Err(_) => Err(illegal(
            param,
            &format!("expected a port number, got {value:?}"),
        )),
    }
}

/// A weight: a finite number from [`MIN_WEIGHT`] to [`MAX_WEIGHT`].
pub(crate) fn check_weight(weight: f64) -> Result<f64, NamingError> {
    if !weight.is_finite() || !(MIN_WEIGHT..=MAX_WEIGHT).contains(&weight) {
        return Err(illegal(
            "weight",
            &format!("the weights range from {MIN_WEIGHT} to {MAX_WEIGHT}, got {weight}"),
        ));
    }
    Ok(weight)
}

/// A weight as text (v1 parameters).
pub(crate) fn parse_weight(value: &str) -> Result<f64, NamingError> {
    let weight: f64 = value
        .parse()
        .map_err(|_| illegal("weight", &format!("expected a number, got {value:?}")))?;
    check_weight(weight)
}

/// Metadata from a JSON object: strings as they are, numbers and booleans as
/// their text, `null` as `""`; nested values are refused.
pub(crate) fn metadata_from_json(
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

    #[test]
    fn ips_and_clusters() {
        assert!(check_ip("ip", "10.0.0.1").is_ok());
        assert!(check_ip("ip", "::1").is_ok());
        assert!(check_ip("ip", "db-1.internal").is_ok());
        assert!(check_ip("ip", "300.1.1.1").is_err());
        assert!(check_ip("ip", "a b").is_err());
        for given in ["[2408:400a:8c:5400::1a]", "fe80::1%eth0", "[fe80::1%2]"] {
            assert!(check_ip("ip", given).is_ok(), "{given} refused");
        }
        for bad in [
            "[10.0.0.1]",
            "fe80::1%",
            "[::1",
            "::1%a b",
            "10.0.0.1%eth0",
            "a#b",
        ] {
            assert!(check_ip("ip", bad).is_err(), "{bad} accepted");
        }
        assert!(check_cluster("clusterName", "zone-a1").is_ok());
        assert!(check_cluster("clusterName", "zone_a").is_err());
    }
}
