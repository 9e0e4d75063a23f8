//! The member list: `ip:port` entries, optionally `ip:port@dial-ip:dial-port`
//! to reach a member through a proxy while it keeps its identity.

use std::net::SocketAddr;

use anyhow::{Context, bail};

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's identity: how every node names it (and sorts it).
    pub address: SocketAddr,
    /// Where this node connects to reach it (usually the same address).
    pub dial: SocketAddr,
}

/// Parses and sorts the member list; duplicates are refused.
pub fn parse_members(entries: &[String]) -> anyhow::Result<Vec<Member>> {
    let mut members = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry.trim();
        let (address, dial) = match entry.split_once('@') {
            Some((address, dial)) => (address, dial),
            None => (entry, entry),
        };
        let address: SocketAddr = address
            .trim()
            .parse()
            .with_context(|| format!("cluster member {entry:?}: expected ip:port"))?;
        let dial: SocketAddr = dial
            .trim()
            .parse()
            .with_context(|| format!("cluster member {entry:?}: expected ip:port after '@'"))?;
        if address.port() == 0 || address.ip().is_unspecified() {
            bail!("cluster member {entry:?}: a member needs a concrete ip and a port");
        }
        if members.iter().any(|m: &Member| m.address == address) {
            bail!("cluster member {address} is listed twice");
        }
        members.push(Member { address, dial });
    }
    members.sort_unstable_by_key(|m| m.address);
    Ok(members)
}

/// Finds this node in the list: `self_address` if given, else the bound
/// address (loopback standing in for an unspecified bind ip).
pub fn find_self(
    members: &[Member],
    self_address: &str,
    bound: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let wanted: SocketAddr = if self_address.trim().is_empty() {
        let ip = if bound.ip().is_unspecified() {
            std::net::IpAddr::from([127, 0, 0, 1])
        } else {
            bound.ip()
        };
        SocketAddr::new(ip, bound.port())
    } else {
        self_address
            .trim()
            .parse()
            .with_context(|| format!("cluster.self_address {self_address:?}: expected ip:port"))?
    };
    if members.iter().any(|m| m.address == wanted) {
        Ok(wanted)
    } else {
        bail!(
            "this node ({wanted}) is not in cluster.members; list it there or set cluster.self_address"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn members_parse_sort_and_keep_their_dial_address() -> anyhow::Result<()> {
        let members = parse_members(&list(&[
            "127.0.0.1:8849@127.0.0.1:9849",
            " 127.0.0.1:8848 ",
        ]))?;
        assert_eq!(members[0].address, "127.0.0.1:8848".parse()?);
        assert_eq!(members[0].dial, members[0].address);
        assert_eq!(members[1].dial, "127.0.0.1:9849".parse()?);
        Ok(())
    }

    #[test]
    fn bad_members_are_refused() {
        for bad in [
            &["localhost:8848"][..],
            &["127.0.0.1"],
            &["127.0.0.1:0"],
            &["0.0.0.0:8848"],
            &["127.0.0.1:8848", "127.0.0.1:8848"],
            &["127.0.0.1:8848@nowhere"],
        ] {
            assert!(parse_members(&list(bad)).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn self_is_found_by_bound_port_or_named() -> anyhow::Result<()> {
        let members = parse_members(&list(&["127.0.0.1:8848", "127.0.0.1:8849"]))?;
        let me = find_self(&members, "", "0.0.0.0:8849".parse()?)?;
        assert_eq!(me, "127.0.0.1:8849".parse()?);
        assert!(find_self(&members, "", "0.0.0.0:9000".parse()?).is_err());
        let me = find_self(&members, "127.0.0.1:8848", "0.0.0.0:1".parse()?)?;
        assert_eq!(me, "127.0.0.1:8848".parse()?);
        Ok(())
    }
}
