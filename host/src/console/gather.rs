//! What the console gathers from every member over the cluster's internal
//! API:
//!
//! - the change feed and the overrides: each member records what it decides
//!   (the responsible member judges beats, applies forwarded writes and
//!   edits), so the console asks each one ([`FeedQuery`]) and merges the
//!   answers, newest first. A member that does not answer within
//!   [`PEER_WAIT`] is left out, as `service/subscribers` leaves it out;
//! - each member's Raft state ([`RaftStatusQuery`]): term, leader and indexes
//!   as that member sees them. A member that does not answer within
//!   [`PEER_WAIT`] is reported with why.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::Console;
use crate::registry::feed::{Change, Override};
use crate::registry::model::{InstanceId, ServiceKey};
use crate::wire::{FeedList, FeedQuery, RaftStatus, RaftStatusQuery};

/// How long the console waits for each other member.
const PEER_WAIT: Duration = Duration::from_secs(2);

/// Whether `query` keeps this instance.
fn keeps(query: &FeedQuery, key: &ServiceKey, id: &InstanceId) -> bool {
    key.namespace == query.namespace
        && (query.group.is_empty() || key.group == query.group)
        && (query.name.is_empty() || key.name == query.name)
        && (query.address.is_empty() || format!("{}:{}", id.ip, id.port).contains(&query.address))
}

/// This member's answer to `query`.
pub(crate) fn member_feed(console: &Console, query: &FeedQuery) -> FeedList {
    let feed = console.naming.registry().feed();
    let changes = feed.latest(query.limit, |c| keeps(query, &c.service, &c.instance));
    let overrides = feed.overrides(|key, id| keeps(query, key, id));
    FeedList {
        changes: serde_json::to_string(&changes).unwrap_or_else(|_| "[]".into()),
        overrides: serde_json::to_string(&overrides).unwrap_or_else(|_| "[]".into()),
    }
}

/// Every member's entries and overrides that `query` keeps.
#[derive(Default)]
pub(super) struct Gathered {
    /// Newest first, at most `query.limit`.
    pub(super) changes: Vec<Change>,
    overrides: HashMap<(ServiceKey, InstanceId), Override>,
}

impl Gathered {
    /// The newest entry about one instance.
    pub(super) fn latest(&self, key: &ServiceKey, id: &InstanceId) -> Option<&Change> {
        self.changes
            .iter()
            .find(|c| &c.service == key && &c.instance == id)
    }

    /// The override in force on one instance (the newest, if two members hold one).
    pub(super) fn override_of(&self, key: &ServiceKey, id: &InstanceId) -> Option<&Override> {
        self.overrides.get(&(key.clone(), id.clone()))
    }

    fn add(&mut self, list: FeedList) {
        let changes: Vec<Change> = serde_json::from_str(&list.changes).unwrap_or_default();
        let overrides: Vec<(ServiceKey, InstanceId, Override)> =
            serde_json::from_str(&list.overrides).unwrap_or_default();
        self.changes.extend(changes);
        for (key, id, found) in overrides {
            let slot = self
                .overrides
                .entry((key, id))
                .or_insert_with(|| found.clone());
            if found.at > slot.at {
                *slot = found;
            }
        }
    }
}

/// This member's and every other member's answer to `query`, merged.
pub(super) async fn gather(console: &Console, query: &FeedQuery) -> Gathered {
    let mut gathered = Gathered::default();
    gathered.add(member_feed(console, query));
    if let Some(cluster) = &console.cluster {
        let answers = cluster
            .client()
            .ask_each(cluster.peers(), query, PEER_WAIT, "change feed")
            .await;
        for list in answers {
            gathered.add(list);
        }
    }
    gathered
        .changes
        .sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.seq.cmp(&a.seq)));
    gathered.changes.truncate(query.limit);
    gathered
}

/// Each member's Raft state, or why it has none to show (it did not answer
/// within [`PEER_WAIT`], or refused); empty when the node is not part of a
/// cluster.
pub(super) async fn raft_of_members(
    console: &Console,
) -> HashMap<SocketAddr, Result<RaftStatus, String>> {
    let mut found = HashMap::new();
    let (Some(cluster), Some(raft)) = (&console.cluster, &console.raft) else {
        return found;
    };
    let answers = cluster
        .client()
        .ask_all(
            cluster.peers(),
            &RaftStatusQuery {},
            PEER_WAIT,
            "Raft state",
        )
        .await;
    found.insert(console.advertised, Ok(raft.status().await));
    for (member, answer) in answers {
        let answer = answer.map_err(|e| format!("no answer within {} s: {e}", PEER_WAIT.as_secs()));
        found.insert(member, answer);
    }
    found
}
