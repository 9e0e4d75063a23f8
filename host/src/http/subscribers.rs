//! `GET /nacos/v1/ns/service/subscribers`: the clients subscribed to a
//! service's changes (v1 clients' UDP push subscriptions and Nacos 2.x
//! clients' gRPC subscriptions, as Nacos 2.x lists both), as the Nacos console's
//! subscriber page reads them (`ServiceController#subscribers`,
//! `SubscribeManager` and `PushService#getClientsFuzzy`, 1.4).
//!
//! Parameters: `serviceName` (required), `groupName`, `namespaceId`,
//! `pageNo` (1), `pageSize` (1000), `aggregation` (true: every member's
//! subscribers, not only this node's). As in Nacos 1.4 the match is fuzzy:
//! every service of the namespace whose name contains the given name and
//! whose group contains the given group. Nacos matches the namespace by
//! prefix too (`public2` would match `public`); Nacre matches it exactly.
//!
//! Answer: `{"subscribers":[{"addrStr","agent","app","ip","port",
//! "namespaceId","serviceName","cluster","push"}],"count":N}` (1.4's fields,
//! the two 2.x added, and Nacre's `push`: the subscriber's own push figures
//! on the member holding it, `{"lastPushAt","lastAckAt","pushes","acks",
//! "retransmits","failures"}`, times in ms or null), ordered by service and
//! address.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, illegal};
use crate::naming::catalog::page;
use crate::wire::{SubscriberEntry, SubscriberList, SubscribersQuery};

/// How long a listing waits for each other member's subscribers.
const PEER_WAIT: Duration = Duration::from_secs(2);

/// `GET service/subscribers` (see the module's documentation).
pub async fn list(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.service_key()?;
    let page_no = positive(&params, "pageNo", 1)?;
    let page_size = positive(&params, "pageSize", 1000)?;
    let aggregation = params.flag("aggregation")?.unwrap_or(true);
    let query = SubscribersQuery {
        namespace: key.namespace,
        group: key.group,
        name: key.name,
    };
    let mut all = local(&state, &query).subscribers;
    if aggregation {
        all.extend(from_peers(&state, &query).await);
    }
    let mut seen = HashSet::new();
    all.retain(|s| seen.insert((s.service.clone(), s.addr)));
    all.sort_by_key(|s| (s.service.grouped_name(), s.addr));
    let shown: Vec<Value> = page(&all, page_no, page_size)
        .iter()
        .map(entry_json)
        .collect();
    Ok(Json(json!({ "subscribers": shown, "count": all.len() })).into_response())
}

fn positive(params: &Params, name: &str, default: usize) -> Result<usize, ApiError> {
    match params.parse::<i64>(name, "a number")? {
        None => Ok(default),
        Some(n) if n >= 1 => Ok(n as usize),
        Some(_) => Err(illegal(name, "must be at least 1")),
    }
}

/// This node's subscribers that `query` matches (also what a peer answers).
pub(crate) fn local(state: &ApiState, query: &SubscribersQuery) -> SubscriberList {
    let matches = |key: &crate::registry::model::ServiceKey| {
        key.namespace == query.namespace
            && key.group.contains(&query.group)
            && key.name.contains(&query.name)
    };
    let streams = state
        .grpc
        .as_ref()
        .map(|door| door.push.subscribers_matching(matches))
        .unwrap_or_default();
    let subscribers = state
        .push
        .subscribers_matching(matches)
        .into_iter()
        .map(|(service, s)| SubscriberEntry {
            service,
            addr: s.addr,
            agent: s.user_agent,
            app: s.app,
            clusters: s.clusters,
            push: s.figures.snapshot(),
        })
        .chain(streams)
        .collect();
    SubscriberList { subscribers }
}

/// Every other member's matching subscribers, asked all at once; a member
/// that does not answer in time is left out (Nacos logs and skips it too).
async fn from_peers(state: &ApiState, query: &SubscribersQuery) -> Vec<SubscriberEntry> {
    let Some(cluster) = &state.cluster else {
        return Vec::new();
    };
    cluster
        .client()
        .ask_each(cluster.peers(), query, PEER_WAIT, "subscribers")
        .await
        .into_iter()
        .flat_map(|list| list.subscribers)
        .collect()
}

fn entry_json(entry: &SubscriberEntry) -> Value {
    let ip = entry.addr.ip().to_string();
    json!({
        // Nacos writes `host:port` without brackets, IPv6 too.
        "addrStr": format!("{ip}:{}", entry.addr.port()),
        "agent": entry.agent,
        "app": entry.app,
        "ip": ip,
        "port": entry.addr.port(),
        "namespaceId": entry.service.namespace,
        "serviceName": entry.service.grouped_name(),
        "cluster": entry.clusters,
        // Nacre's: what this subscriber has been pushed (`PushFigures`).
        "push": entry.push,
    })
}
