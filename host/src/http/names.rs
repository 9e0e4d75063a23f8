//! What names and addresses may be: the rules for service, group,
//! namespace and cluster names and for instance addresses, each refusal
//! naming the parameter.

use std::net::IpAddr;

use super::error::ApiError;
use super::params::illegal;

/// Longest accepted name (service, group, namespace, cluster, ip).
const MAX_NAME_LEN: usize = 512;

/// Any name: at most [`MAX_NAME_LEN`] bytes, no control characters.
pub(super) fn check_name(param: &str, value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_NAME_LEN {
        return Err(illegal(param, &format!("longer than {MAX_NAME_LEN} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(illegal(param, "contains control characters"));
    }
    Ok(())
}

/// Nacos's cluster name syntax: `[0-9a-zA-Z-]+`.
pub fn check_cluster(param: &str, value: &str) -> Result<(), ApiError> {
    check_name(param, value)?;
    if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
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
pub fn check_ip(param: &str, value: &str) -> Result<(), ApiError> {
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
pub(super) fn check_service_part(param: &str, value: &str) -> Result<(), ApiError> {
    check_name(param, value)?;
    if value.contains('#') {
        return Err(illegal(
            param,
            "'#' is not allowed: it separates the parts of an instance id (ip#port#cluster#group@@service)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
