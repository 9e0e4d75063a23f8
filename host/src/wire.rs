//! Every message members send each other, in one place.
//!
//! Each request type implements [`Rpc`]: the route it goes to and the type of
//! its answer. [`crate::cluster::PeerClient::call`] sends one and decodes the
//! answer; the internal routes (`http::cluster`) decode it and encode the
//! answer. Bodies are MessagePack (`rmp-serde`); every request carries the
//! cluster credential and [`PROTOCOL_HEADER`], and a member refuses a
//! request of another protocol version with 409 instead of misreading it.
//!
//! This module depends only on the registry's data types and openraft's, so
//! what travels between members is visible at a glance. Any change to a
//! message bumps [`PROTOCOL_VERSION`] (members of one cluster run one
//! version); the types that are also stored on disk ([`RaftCommand`] and the
//! registry's `Write`) change only by fields added at the end with
//! `#[serde(default)]` and enum variants added at the end.

use std::io::Cursor;
use std::net::SocketAddr;

use bytes::Bytes;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::accounts::AccountChange;
use crate::registry::model::ServiceKey;
use crate::registry::{ServiceRecords, Write};

/// The version of this protocol; members of different versions refuse each
/// other. 5: a `Write` may carry a namespace record.
pub const PROTOCOL_VERSION: u32 = 5;
/// The header carrying [`PROTOCOL_VERSION`] on every internal request.
pub const PROTOCOL_HEADER: &str = "x-nacre-protocol";
/// The header carrying the cluster secret on every internal request.
pub const SECRET_HEADER: &str = "x-nacre-cluster-secret";
/// MessagePack bodies on the internal API.
pub const MSGPACK: &str = "application/msgpack";

/// A request one member sends another.
pub trait Rpc: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The internal route it is posted to.
    const PATH: &'static str;
    /// What the receiving member answers.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

macro_rules! rpc {
    ($request:ty => $reply:ty, $path:literal) => {
        impl Rpc for $request {
            const PATH: &'static str = $path;
            type Reply = $reply;
        }
    };
}

// ---- membership --------------------------------------------------------

/// A probe: how is the member?
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusRequest {}

/// A member's answer to a probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member's address as the cluster's member list names it.
    pub address: SocketAddr,
    /// When that member's process started (ms): a new incarnation has none
    /// of its predecessor's client connections.
    pub incarnation: u64,
    /// Whether it has loaded its data and sees a majority of the members:
    /// only ready members are responsible for anything.
    pub ready: bool,
    /// The ready members as that node sees them (its view), sorted.
    pub view: Vec<SocketAddr>,
}
rpc!(StatusRequest => MemberStatus, "/nacre/v1/cluster/status");

// ---- Distro ------------------------------------------------------------

/// Changed ephemeral records, pushed to every peer by the member that wrote
/// them. The receiver merges them instance by instance (newer versions win).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncBatch {
    /// Per service: the instances and tombstones that changed, with their versions.
    pub services: Vec<ServiceRecords>,
}

/// The receiver's answer to a [`SyncBatch`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncReply {
    /// Services in which something a client can see changed.
    pub applied: usize,
}
rpc!(SyncBatch => SyncReply, "/nacre/v1/distro/sync");

/// A member's checksums of the services it is responsible for, so peers can
/// repair what sync missed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checksums {
    /// The sending member, as the member list names it.
    pub from: SocketAddr,
    /// The sender's view digest when it took the checksums.
    pub view_digest: u64,
    /// Services with live ephemeral instances and their checksums
    /// (`Registry::ephemeral_checksum`).
    pub services: Vec<(ServiceKey, u64)>,
}
rpc!(Checksums => bool, "/nacre/v1/distro/checksums");

/// Asks a member for all its records (tombstones included) of some services.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FetchRecords {
    /// The services wanted, each answered with all its ephemeral records.
    pub services: Vec<ServiceKey>,
}

/// Records of several services.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Records {
    /// Per service: every live instance and tombstone the member holds.
    pub services: Vec<ServiceRecords>,
}
rpc!(FetchRecords => Records, "/nacre/v1/distro/data");

/// Asks a ready member for every ephemeral record it holds (a starting or
/// rejoining member loads these before it is ready).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SnapshotRequest {}
rpc!(SnapshotRequest => Records, "/nacre/v1/distro/snapshot");

/// A client's request as a member passes it on to the responsible member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedRequest {
    /// The client's HTTP method (`POST`, `PUT`, `DELETE`).
    pub method: String,
    /// Path (under the naming API) and query, as the client sent them.
    pub path_and_query: String,
    /// The client's `Content-Type`, if it sent one.
    pub content_type: Option<String>,
    /// The client's body as sent (a form, at most the HTTP body limit).
    pub body: Bytes,
    /// The forwarding member's copy of the instance the request addresses,
    /// if it holds one: the responsible member merges it first, so a member
    /// that has just become responsible knows what its predecessor took.
    #[serde(default)]
    pub records: Option<ServiceRecords>,
}

/// The responsible member's full answer to a forwarded client request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Forwarded {
    /// The HTTP status, as a number.
    pub status: u16,
    /// The answer's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The answer's body, passed on to the client unchanged.
    pub body: Bytes,
    /// The written instance's record as the responsible member now holds it
    /// (a copy or a tombstone): the forwarding member merges it before it
    /// answers the client, so an acknowledged write is on two members even
    /// if the responsible one dies before its sync leaves.
    #[serde(default)]
    pub records: Option<ServiceRecords>,
}

/// Client writes for services the receiver is responsible for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ForwardBatch {
    /// The requests, answered in this order.
    pub requests: Vec<ForwardedRequest>,
}

/// One answer per forwarded request, in order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ForwardReplies {
    /// The answers, one per request of the batch, in its order.
    pub replies: Vec<Forwarded>,
}
rpc!(ForwardBatch => ForwardReplies, "/nacre/v1/distro/forward");

// ---- Raft --------------------------------------------------------------

/// One entry of the replicated log: writes to persistent data, committed
/// together and applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RaftCommand {
    /// The writes, applied in this order at one log index.
    pub writes: Vec<Write>,
    /// Changes to the auth tables, applied after `writes`.
    #[serde(default)]
    pub accounts: Vec<AccountChange>,
}

/// What applying an entry answers (nothing: the write either applied or not).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RaftApplied {}

openraft::declare_raft_types!(
    /// Nacre's Raft: log entries are [`RaftCommand`]s, nodes are `ip:port`.
    pub RaftTypes:
        D = RaftCommand,
        R = RaftApplied,
);

rpc!(AppendEntriesRequest<RaftTypes> => Result<AppendEntriesResponse<u64>, RaftError<u64>>,
    "/nacre/v1/raft/append");
rpc!(VoteRequest<u64> => Result<VoteResponse<u64>, RaftError<u64>>, "/nacre/v1/raft/vote");
rpc!(InstallSnapshotRequest<RaftTypes>
    => Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>,
    "/nacre/v1/raft/snapshot");

/// A member's Raft state: for `operator/servers`, metrics, and the console,
/// which asks every member for its own ([`RaftStatusQuery`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RaftStatus {
    /// This member's Raft id.
    pub node_id: u64,
    /// `LEADER`, `FOLLOWER`, `CANDIDATE`, `LEARNER` or `SHUTDOWN`.
    pub state: String,
    /// The current term.
    pub term: u64,
    /// The leader's address, if one is known.
    pub leader: Option<String>,
    /// The last index this member knows committed.
    pub commit_index: Option<u64>,
    /// The last index applied to the registry.
    pub last_applied: Option<u64>,
    /// The last index in this member's log.
    pub last_log_index: Option<u64>,
    /// The index the latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// The voters' addresses.
    pub members: Vec<String>,
}

/// Asks a member for its Raft state (the console's cluster page shows every
/// member's term and indexes, not only its own node's view).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RaftStatusQuery {}
rpc!(RaftStatusQuery => RaftStatus, "/nacre/v1/raft/status");

/// A follower's write for the leader to propose, with what is left of the
/// client's deadline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposeWrite {
    /// The write a follower's client asked for.
    pub write: Write,
    /// Milliseconds the client still waits; the leader gives up after them.
    pub deadline_ms: u64,
}

/// The leader's answer to a forwarded write.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ForwardedWrite {
    /// Committed at this log index.
    Committed(u64),
    /// Not the leader (any more); the leader's id if known.
    NotLeader(Option<u64>),
    /// Not committed within the client's deadline; it may still commit.
    TimedOut,
    /// The leader could not propose it (its queue full, Raft shutting down, a
    /// storage error); the reason.
    Failed(String),
}
rpc!(ProposeWrite => ForwardedWrite, "/nacre/v1/raft/write");

/// A follower's change to the auth tables for the leader to propose.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProposeAccountChange {
    /// The change an admin asked for (or a start-up step: the first key or admin).
    pub change: AccountChange,
    /// Milliseconds the caller still waits.
    pub deadline_ms: u64,
}
rpc!(ProposeAccountChange => ForwardedWrite, "/nacre/v1/raft/accounts");

/// A follower asks the leader for a read index.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReadIndexRequest {
    /// Milliseconds the client still waits.
    pub deadline_ms: u64,
}

/// The leader's answer to a read-index request: the log index a
/// linearizable read must have applied.
#[derive(Debug, Serialize, Deserialize)]
pub enum ReadIndex {
    /// Apply up to this log index, then read.
    Index(u64),
    /// Not the leader (any more); the leader's id if known.
    NotLeader(Option<u64>),
    /// The leader could not confirm its leadership within the deadline.
    TimedOut,
    /// Any other failure; the reason.
    Failed(String),
}
rpc!(ReadIndexRequest => ReadIndex, "/nacre/v1/raft/read-index");

// ---- console -----------------------------------------------------------

/// Asks a member for the UDP push subscribers it holds of the services whose
/// names contain `name` and groups contain `group` in `namespace`
/// (`service/subscribers` gathers every member's, as Nacos's
/// `SubscribeManager` does with `aggregation=true`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SubscribersQuery {
    /// The namespace id (exact).
    pub namespace: String,
    /// A substring of the group (empty: every group).
    pub group: String,
    /// A substring of the service's name (empty: every service).
    pub name: String,
}

/// One push subscriber as a member reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SubscriberEntry {
    /// The service subscribed to.
    pub service: ServiceKey,
    /// Where its pushes go.
    pub addr: SocketAddr,
    /// Its User-Agent as it sent it.
    pub agent: String,
    /// The `app` parameter it sent (empty when none).
    pub app: String,
    /// The `clusters` it listed, as given.
    pub clusters: String,
    /// What it has been pushed since it subscribed.
    #[serde(default)]
    pub push: PushFigures,
}

/// One subscriber's push figures since it subscribed (times in ms since the
/// epoch, `None` before the first).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushFigures {
    /// When its latest push was first sent.
    pub last_push_at: Option<i64>,
    /// When its latest ack arrived.
    pub last_ack_at: Option<i64>,
    /// Pushes sent to it (first sends).
    pub pushes: u64,
    /// Pushes it acknowledged.
    pub acks: u64,
    /// Pushes sent again for lack of an ack.
    pub retransmits: u64,
    /// Pushes not sent, refused, or unacknowledged after every retry.
    pub failures: u64,
}

/// A member's answer to a [`SubscribersQuery`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SubscriberList {
    /// The member's subscribers that match the query.
    pub subscribers: Vec<SubscriberEntry>,
}
rpc!(SubscribersQuery => SubscriberList, "/nacre/v1/push/subscribers");

// ---- the console ---------------------------------------------------------

/// Asks a member for its change feed and console overrides: each member
/// records what it decides ([`crate::registry::feed`]), so the console
/// gathers every member's.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FeedQuery {
    /// The namespace id (exact).
    pub namespace: String,
    /// The group (exact; empty: every group).
    pub group: String,
    /// The service's name (exact; empty: every service).
    pub name: String,
    /// A substring of the instance's `ip:port` (empty: every instance).
    pub address: String,
    /// The most entries wanted, newest first.
    pub limit: usize,
}

/// A member's answer to a [`FeedQuery`]: its entries and overrides, as the
/// console's JSON (`[Change]` and `[[ServiceKey, InstanceId, Override]]`).
/// JSON because their shape is the console's (tagged causes), which
/// MessagePack's compact form does not carry.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FeedList {
    /// The newest matching entries, newest first.
    pub changes: String,
    /// The matching overrides in force.
    pub overrides: String,
}
rpc!(FeedQuery => FeedList, "/nacre/v1/feed/member");

/// Encodes a message: MessagePack with fields in order (compact; a field
/// added at the end with `#[serde(default)]` still reads older messages).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec(message)
}

/// Decodes a message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}
