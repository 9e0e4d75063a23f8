//! Which Nacos client is talking, read the way Nacos 1.4 reads it
//! (`naming/.../push/ClientInfo.java`): a known prefix of the User-Agent
//! (`Nacos-Java-Client:v1.4.1`), falling back to the `Client-Version` header
//! when the User-Agent is empty (`core/.../utils/WebUtils#getUserAgent`).
//!
//! Nacos 1.4 keys these rules on the agent, and Nacre keeps each of them:
//!
//! - `PUT instance` updates (and refuses an unknown instance) only for Java
//!   clients from 1.0.0; every other agent registers the instance
//!   (`InstanceController#update`).
//! - `instance/list` and UDP pushes name the service `group@@name` (in `dom`
//!   and in each host's `serviceName`) only for Java clients from 1.0.0;
//!   every other agent gets the bare name (`InstanceController#doSrvIpxt`).
//! - Only Java, DNS, C, Go and C# clients at or above the switches'
//!   `push*Version` become UDP push subscribers (`PushService#canEnablePush`).
//! - `api/allDomNames` answers DNS-F clients up to 1.0.1 in the old shape
//!   (`ApiController#allDomNames`).
//!
//! Nacos also trusts the agent `Nacos-Server` (a peer): no redirect, let
//! through while the server is not UP, and (before 1.4.1) no authentication.
//! Nacre does not: anyone can send that header. Its members mark forwarded
//! requests with the cluster credential instead (see `docs/COMPATIBILITY.md`).

/// The family of a Nacos client, from its User-Agent prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// `Nacos-Java-Client` (also what the npm `nacos-naming` client sends).
    Java,
    /// `Nacos-Go-Client`.
    Go,
    /// `Nacos-C-Client` and `vip-client4cpp`.
    C,
    /// `Nacos-CSharp-Client`.
    CSharp,
    /// `Nacos-DNS` (DNS-F).
    Dns,
    /// `Nacos-SDK-Java`: a Java SDK Nacos names apart from the Java client;
    /// no rule treats it as Java.
    JavaSdk,
    /// `Nacos-Server`: what Nacos members call each other with. Known, so
    /// subscriber lists can show it, and given no privilege.
    NacosServer,
    /// `unit-nginx` (Tengine's Nacos module).
    Tengine,
    /// `Nacos-Python-Client`. Nacos 1.4 does not know it (it is "unknown"
    /// there), and no rule here treats it otherwise.
    Python,
    /// An agent Nacos does not recognise (or none): no push, bare names.
    Unknown,
}

/// A client as its User-Agent names it: family and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAgent {
    /// The client's family.
    pub kind: ClientKind,
    /// Dotted version numbers; empty when unknown.
    pub version: Vec<u32>,
}

/// The prefixes Nacos 1.4 recognises, in the order it tries them, and the
/// Python client's (recognised for display only).
const PREFIXES: [(&str, ClientKind); 10] = [
    ("Nacos-Java-Client", ClientKind::Java),
    ("Nacos-DNS", ClientKind::Dns),
    ("Nacos-C-Client", ClientKind::C),
    ("Nacos-SDK-Java", ClientKind::JavaSdk),
    ("Nacos-Server", ClientKind::NacosServer),
    ("unit-nginx", ClientKind::Tengine),
    ("vip-client4cpp", ClientKind::C),
    ("Nacos-Go-Client", ClientKind::Go),
    ("Nacos-CSharp-Client", ClientKind::CSharp),
    ("Nacos-Python-Client", ClientKind::Python),
];

impl ClientAgent {
    /// Reads a User-Agent such as `Nacos-Java-Client:v1.4.1`; anything unknown
    /// is [`ClientKind::Unknown`] with no version.
    pub fn parse(user_agent: &str) -> ClientAgent {
        let agent = user_agent.trim();
        for (prefix, kind) in PREFIXES {
            if let Some(rest) = agent.strip_prefix(prefix) {
                let version = rest
                    .trim_start_matches([':', ' ', '/'])
                    .trim_start_matches(['v', 'V']);
                return ClientAgent {
                    kind,
                    version: parse_version(version),
                };
            }
        }
        ClientAgent {
            kind: ClientKind::Unknown,
            version: Vec::new(),
        }
    }

    /// Whether this client's version is at least `min` (e.g. `"1.0.0"`).
    pub fn at_least(&self, min: &str) -> bool {
        !self.version.is_empty() && self.version >= parse_version(min)
    }

    /// Whether this client's version is at most `max`; an unknown version
    /// counts as 0.0.0, as in Nacos (`Version.unknownVersion()`).
    pub fn at_most(&self, max: &str) -> bool {
        self.version <= parse_version(max)
    }

    /// A Java client from 1.0.0: the clients that know groups. Nacos 1.4 gives
    /// them grouped names in lists and pushes, and a 400 when they update an
    /// instance that does not exist (`InstanceController#update`, `#doSrvIpxt`).
    pub fn is_java_since_1_0(&self) -> bool {
        self.kind == ClientKind::Java && self.at_least("1.0.0")
    }
}

/// The agent string Nacos reads from a request's headers: the User-Agent, or
/// the `Client-Version` header when the User-Agent is empty.
pub(crate) fn agent_header<'a>(
    user_agent: Option<&'a str>,
    client_version: Option<&'a str>,
) -> &'a str {
    match user_agent.map(str::trim) {
        Some(agent) if !agent.is_empty() => agent,
        _ => client_version.map(str::trim).unwrap_or(""),
    }
}

fn parse_version(text: &str) -> Vec<u32> {
    text.split(['.', '-'])
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nacos_agents() {
        let java = ClientAgent::parse("Nacos-Java-Client:v1.4.1");
        assert_eq!(java.kind, ClientKind::Java);
        assert!(java.at_least("1.0.0") && java.is_java_since_1_0());
        assert!(!java.at_least("1.4.2"));
        assert!(java.at_most("1.4.1") && !java.at_most("1.4.0"));
        assert!(ClientAgent::parse("Nacos-DNS").at_most("1.0.1"));
        assert!(!ClientAgent::parse("Nacos-Java-Client:v0.9.1").is_java_since_1_0());
        let go = ClientAgent::parse("Nacos-Go-Client:v2.2.7");
        assert_eq!(go.kind, ClientKind::Go);
        assert!(!go.is_java_since_1_0());
        assert_eq!(
            ClientAgent::parse("vip-client4cpp:v1.0.0").kind,
            ClientKind::C
        );
        assert_eq!(
            ClientAgent::parse("Nacos-SDK-Java:v1.4.1").kind,
            ClientKind::JavaSdk
        );
        assert_eq!(
            ClientAgent::parse("Nacos-Server:1.4.2").kind,
            ClientKind::NacosServer
        );
        let curl = ClientAgent::parse("curl/8.0");
        assert_eq!(curl.kind, ClientKind::Unknown);
        assert!(!curl.at_least("0.1.0"));
    }

    #[test]
    fn client_version_header_stands_in_for_an_empty_user_agent() {
        assert_eq!(
            agent_header(Some("Nacos-Java-Client:v1.4.1"), Some("x")),
            "Nacos-Java-Client:v1.4.1"
        );
        assert_eq!(
            agent_header(Some(" "), Some("Nacos-Java-Client:v1.4.1")),
            "Nacos-Java-Client:v1.4.1"
        );
        assert_eq!(agent_header(None, None), "");
    }
}
