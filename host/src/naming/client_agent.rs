//! Which Nacos client is talking, from its User-Agent (`Nacos-Java-Client:v1.4.1`).
//! Nacos shapes some replies by client (the grouped `dom` for Java clients from
//! 1.0) and only pushes to client kinds and versions it knows can take pushes.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    Java,
    Go,
    C,
    CSharp,
    Python,
    Dns,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAgent {
    pub kind: ClientKind,
    /// Dotted version numbers; empty when unknown.
    pub version: Vec<u32>,
}

impl ClientAgent {
    pub fn parse(user_agent: &str) -> ClientAgent {
        let prefixes = [
            ("Nacos-Java-Client", ClientKind::Java),
            ("Nacos-Go-Client", ClientKind::Go),
            ("Nacos-C-Client", ClientKind::C),
            ("Nacos-CSharp-Client", ClientKind::CSharp),
            ("Nacos-Python-Client", ClientKind::Python),
            ("Nacos-DNS", ClientKind::Dns),
        ];
        let agent = user_agent.trim();
        for (prefix, kind) in prefixes {
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
        assert!(java.at_least("1.0.0"));
        assert!(!java.at_least("1.4.2"));
        let go = ClientAgent::parse("Nacos-Go-Client:v2.2.7");
        assert_eq!(go.kind, ClientKind::Go);
        let curl = ClientAgent::parse("curl/8.0");
        assert_eq!(curl.kind, ClientKind::Unknown);
        assert!(!curl.at_least("0.1.0"));
    }
}
