//! The naming model: namespace → `group@@service` → cluster → instance.
//!
//! These are the values the registry stores and replicates. They carry no
//! locks or caches; [`super::Registry`] owns the live state built from them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The namespace of requests that name none (`namespaceId` absent or empty), as in Nacos.
pub const DEFAULT_NAMESPACE: &str = "public";
/// The group of services named without `group@@`, as in Nacos.
pub const DEFAULT_GROUP: &str = "DEFAULT_GROUP";
/// The cluster of instances registered without `clusterName`, as in Nacos.
pub const DEFAULT_CLUSTER: &str = "DEFAULT";
/// Separates the group from the service in a grouped name (`group@@service`).
pub const GROUP_SEPARATOR: &str = "@@";

/// Instance weights are accepted in this closed range, as in Nacos.
pub const MIN_WEIGHT: f64 = 0.0;
/// The largest accepted weight (Nacos's `Constants.MAX_WEIGHT_VALUE`).
pub const MAX_WEIGHT: f64 = 10000.0;

/// Metadata keys through which a client overrides the beat timings of one instance (ms).
pub const META_BEAT_TIMEOUT: &str = "preserved.heart.beat.timeout";
/// Milliseconds of silence after which an instance is deleted (default 30 000).
pub const META_DELETE_TIMEOUT: &str = "preserved.ip.delete.timeout";
/// Milliseconds between the beats the client should send (default 5 000); echoed as
/// `clientBeatInterval` in the beat reply.
pub const META_BEAT_INTERVAL: &str = "preserved.heart.beat.interval";

/// Metadata is kept sorted so that checksums and JSON output are stable.
pub type Metadata = BTreeMap<String, String>;

/// Names one service: the namespace it lives in, its group and its name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// The namespace id (`public` when the client names none).
    pub namespace: String,
    /// The group (`DEFAULT_GROUP` when the client names none).
    pub group: String,
    /// The service's name without the `group@@` prefix.
    pub name: String,
}

impl ServiceKey {
    /// A key from its three parts, taken as given (callers validate names).
    pub fn new(
        namespace: impl Into<String>,
        group: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        ServiceKey {
            namespace: namespace.into(),
            group: group.into(),
            name: name.into(),
        }
    }

    /// The name Nacos clients use on the wire: `group@@service`.
    pub fn grouped_name(&self) -> String {
        format!("{}{GROUP_SEPARATOR}{}", self.group, self.name)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}##{}{GROUP_SEPARATOR}{}",
            self.namespace, self.group, self.name
        )
    }
}

/// What identifies an instance inside its service: the cluster and the address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InstanceId {
    /// The cluster the instance belongs to (`DEFAULT` unless named).
    pub cluster: String,
    /// The address as the client gave it (an IPv4, IPv6 or host name; not resolved).
    pub ip: String,
    /// The instance's port, 1 to 65535 (the v1 API refuses 0).
    pub port: u16,
}

impl InstanceId {
    /// An id from its three parts, taken as given (callers validate them).
    pub fn new(cluster: impl Into<String>, ip: impl Into<String>, port: u16) -> Self {
        InstanceId {
            cluster: cluster.into(),
            ip: ip.into(),
            port,
        }
    }

    /// The `instanceId` Nacos 1.x generates: `ip#port#cluster#group@@service`.
    pub fn nacos_instance_id(&self, service: &ServiceKey) -> String {
        format!(
            "{}#{}#{}#{}{GROUP_SEPARATOR}{}",
            self.ip, self.port, self.cluster, service.group, service.name
        )
    }
}

/// One registered instance, as written through the consistency layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Cluster, ip and port: unique within the service.
    pub id: InstanceId,
    /// Relative share of traffic clients give the instance, in
    /// `MIN_WEIGHT..=MAX_WEIGHT`.
    pub weight: f64,
    /// Whether the instance passes its health check (beats for ephemeral
    /// instances, probes for persistent ones, or an operator's mark).
    pub healthy: bool,
    /// A disabled instance stays registered but is left out of `instance/list`.
    pub enabled: bool,
    /// Ephemeral instances live on beats (Distro); persistent ones are stored durably.
    pub ephemeral: bool,
    /// Health set by an operator: the beat checker never changes it.
    pub marked: bool,
    /// Free key/value pairs from the client; the `preserved.*` keys tune beat timings.
    pub metadata: Metadata,
    /// Wall-clock ms of the last beat (or registration). The registry keeps the
    /// newest value it has seen, so a write carrying an older time never rewinds it.
    pub last_beat: i64,
    /// Orders the writes of an ephemeral instance across a cluster: a replica
    /// keeps the higher version (see [`Version`]). Persistent instances are
    /// ordered by their log instead and keep [`Version::ZERO`].
    #[serde(default)]
    pub version: Version,
    /// What keeps an ephemeral instance alive.
    #[serde(default)]
    pub lease: Lease,
}

impl Instance {
    /// A healthy, enabled, unmarked, beat-leased ephemeral instance at
    /// `ip:port` in the `DEFAULT` cluster: weight 1, no metadata, version
    /// zero, last beat at `last_beat` (ms). Where unit tests start; each
    /// changes the fields it is about.
    #[cfg(test)]
    pub(crate) fn for_test(ip: &str, port: u16, last_beat: i64) -> Instance {
        Instance {
            id: InstanceId::new(DEFAULT_CLUSTER, ip, port),
            weight: 1.0,
            healthy: true,
            enabled: true,
            ephemeral: true,
            marked: false,
            metadata: Metadata::new(),
            last_beat,
            version: Version::ZERO,
            lease: Lease::Beat,
        }
    }
}

/// What keeps an ephemeral instance alive, and so who may expire it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lease {
    /// Nacos 1.x: the client beats; the node responsible for the service
    /// expires the instance when the beats stop.
    #[default]
    Beat,
    /// Nacos 2.x: a client connection to `node` (in that node's
    /// `incarnation`: its start time, ms); the instance lives as long as the
    /// connection, and is that node's to delete.
    Connection {
        /// The member holding the connection, as the cluster knows it.
        node: SocketAddr,
        /// That member's start time (ms since the Unix epoch): a restarted member
        /// is a new incarnation whose old connections are gone.
        incarnation: u64,
        /// The gRPC connection id the client was given.
        connection: String,
    },
}

/// The version of one write of an ephemeral instance: the writer's clock in
/// microseconds in the high bits, the writer's node index in the low
/// [`Version::NODE_BITS`] bits, so two members never make the same version
/// and every member orders two writes the same way. A new write is always
/// later than the version it replaces, even when the writer's clock is behind.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version(pub u64);

impl Version {
    /// The version of nothing: older than every write.
    pub const ZERO: Version = Version(0);
    /// Bits for the writer's node index (up to 1,024 members).
    pub const NODE_BITS: u32 = 10;

    /// The clock part, in microseconds since the Unix epoch.
    pub fn micros(self) -> u64 {
        self.0 >> Self::NODE_BITS
    }

    /// The version a write by `stamp`'s node takes over `current`: the
    /// writer's clock, or one microsecond past `current` if that is later.
    pub fn after(current: Version, stamp: Stamp) -> Version {
        let micros = stamp.micros.max(current.micros() + 1);
        let node = u64::from(stamp.node) & ((1 << Self::NODE_BITS) - 1);
        Version((micros << Self::NODE_BITS) | node)
    }
}

/// When and where a write happens: what the registry needs to date it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Wall clock, ms since the Unix epoch (beats, emptiness, tombstone age).
    pub millis: i64,
    /// Wall clock, µs since the Unix epoch (the clock part of versions).
    pub micros: u64,
    /// The writing member's index (0 on a standalone node).
    pub node: u16,
}

/// When a silent ephemeral instance turns unhealthy and when it is deleted
/// (ms after its last beat): the node's defaults (15 s and 30 s, as Nacos),
/// or the instance's own through `preserved.*` metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BeatTimeouts {
    /// Milliseconds of silence after which the instance turns unhealthy.
    pub unhealthy_after_ms: u64,
    /// Milliseconds of silence after which the instance is deleted.
    pub delete_after_ms: u64,
}

impl BeatTimeouts {
    /// The timeouts of an instance with `metadata`, these being the defaults.
    pub fn for_instance(self, metadata: &Metadata) -> BeatTimeouts {
        BeatTimeouts {
            unhealthy_after_ms: metadata_millis(metadata, META_BEAT_TIMEOUT)
                .unwrap_or(self.unhealthy_after_ms),
            delete_after_ms: metadata_millis(metadata, META_DELETE_TIMEOUT)
                .unwrap_or(self.delete_after_ms),
        }
    }
}

/// Reads a per-instance timing override (ms) from an instance's metadata.
pub fn metadata_millis(metadata: &Metadata, key: &str) -> Option<u64> {
    if metadata.is_empty() {
        return None;
    }
    metadata.get(key).and_then(|v| v.trim().parse().ok())
}

/// Service-level settings, created explicitly (`POST service`) or implicitly
/// by the first registration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceMeta {
    /// The service this definition belongs to.
    pub key: ServiceKey,
    /// When the healthy share of instances is at or below this, `instance/list`
    /// returns every instance as healthy (Nacos's protection against a flood).
    pub protect_threshold: f64,
    /// Free key/value pairs from `POST/PUT service`.
    pub metadata: Metadata,
    /// The selector JSON as given by the client (`{"type":"none"}` by default).
    pub selector: Option<serde_json::Value>,
    /// Per-cluster metadata, keyed by cluster name.
    pub clusters: BTreeMap<String, ClusterMeta>,
}

impl ServiceMeta {
    /// A definition with Nacos's defaults: threshold 0 (no protection), no
    /// metadata, no selector, no cluster settings.
    pub fn new(key: ServiceKey) -> Self {
        ServiceMeta {
            key,
            protect_threshold: 0.0,
            metadata: Metadata::new(),
            selector: None,
            clusters: BTreeMap::new(),
        }
    }
}

/// A namespace's own record (`POST /nacos/v1/console/namespaces`, Nacos's
/// `tenant_info` row): the name operators see and a description. A
/// namespace without a record still exists while services live in it, as
/// Nacos's naming side creates one with its first registration; the record
/// names it and keeps it listed when empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceMeta {
    /// The namespace id clients send as `namespaceId` (`public` is not a record).
    pub id: String,
    /// The name shown to operators (Nacos's `namespaceShowName`).
    pub show_name: String,
    /// Free text (Nacos's `namespaceDesc`); empty when not given.
    pub description: String,
}

/// Settings of one cluster of a service (`PUT cluster`), as Nacos's `Cluster`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMeta {
    /// Free key/value pairs of the cluster.
    pub metadata: Metadata,
    /// How the responsible node checks this cluster's persistent instances.
    #[serde(default)]
    pub health_checker: HealthChecker,
    /// Port to check instead of each instance's own (0: the instance's port).
    #[serde(default)]
    pub check_port: u16,
}

/// The active health check of persistent instances (Nacos's `healthChecker`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum HealthChecker {
    /// Healthy while a TCP connection to the instance succeeds (Nacos's default).
    #[default]
    Tcp,
    /// Healthy while `GET http://ip:port{path}` answers `expected_code`.
    Http {
        /// The request path (`/health` ...), starting with `/`.
        path: String,
        /// The status that means healthy (Nacos's default 200).
        expected_code: u16,
    },
    /// Not checked: health changes only by hand.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_matches_nacos_format() {
        let service = ServiceKey::new("public", "DEFAULT_GROUP", "orders");
        let id = InstanceId::new("DEFAULT", "10.0.0.1", 8080);
        assert_eq!(
            id.nacos_instance_id(&service),
            "10.0.0.1#8080#DEFAULT#DEFAULT_GROUP@@orders"
        );
        assert_eq!(service.grouped_name(), "DEFAULT_GROUP@@orders");
    }

    #[test]
    fn versions_order_writes_across_nodes_and_slow_clocks() {
        let at = |micros, node| Stamp {
            millis: 0,
            micros,
            node,
        };
        let first = Version::after(Version::ZERO, at(1_000, 3));
        assert_eq!((first.micros(), first.0 & 1023), (1_000, 3));
        // Another node at the same microsecond writes a different, later version.
        let second = Version::after(first, at(1_000, 1));
        assert!(second > first);
        // A writer whose clock is behind still writes a later version.
        let third = Version::after(second, at(10, 2));
        assert!(third > second && third.micros() == 1_002);
    }

    #[test]
    fn metadata_override_parses_millis() {
        let mut metadata = Metadata::new();
        metadata.insert(META_BEAT_TIMEOUT.into(), " 3000 ".into());
        metadata.insert(META_DELETE_TIMEOUT.into(), "soon".into());
        assert_eq!(metadata_millis(&metadata, META_BEAT_TIMEOUT), Some(3000));
        assert_eq!(metadata_millis(&metadata, META_DELETE_TIMEOUT), None);
        assert_eq!(metadata_millis(&Metadata::new(), META_BEAT_INTERVAL), None);
    }
}
