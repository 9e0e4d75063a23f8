//! The cluster as this node sees it:
//!
//! - `GET /nacos/v1/core/cluster/nodes?keyword=` in Nacos's shape
//!   (`core/.../controller/NacosClusterController.java`, 2.4):
//!   `{"code":200,"message":null,"data":[<member>]}`, sorted by address,
//!   `keyword` a prefix of `ip:port`. A member: `ip`, `port`, `address`,
//!   `state` (`UP`, `STARTING`, `SUSPICIOUS`, `DOWN`), `failAccessCnt`,
//!   `abilities`, `grpcReportEnabled`, `extendInfo` (`lastRefreshTime`,
//!   `version`, `raftMetaData` with the persistent group's leader, term and
//!   members as this node knows them). Nacos's answer has no `count`, so
//!   neither has this one.
//! - `GET /nacre/v1/console/cluster`: what the console's cluster page shows,
//!   readable rather than Nacos's raw `extendInfo`: each member's state, how
//!   many services it is responsible for (Distro), this node's view, sync
//!   backlog and Raft state (leader, term, commit and applied index).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::params::{Bad, text};
use super::{Console, Query};
use crate::clock::now_millis;
use crate::cluster::MemberState;
use crate::consistency::raft::RaftStatus;

/// One member as this node sees it.
struct Row {
    address: SocketAddr,
    state: MemberState,
    is_self: bool,
    failures: u32,
    last_seen: Option<i64>,
    last_error: Option<String>,
}

/// Every member, sorted by address; this node alone when standalone.
fn rows(console: &Console) -> Vec<Row> {
    let mut rows: Vec<Row> = match &console.cluster {
        None => vec![Row {
            address: console.advertised,
            state: MemberState::Up,
            is_self: true,
            failures: 0,
            last_seen: Some(now_millis()),
            last_error: None,
        }],
        Some(cluster) => cluster
            .report()
            .into_iter()
            .map(|m| Row {
                address: m.address,
                state: m.state,
                is_self: m.is_self,
                failures: m.failures,
                last_seen: m.last_seen,
                last_error: m.last_error,
            })
            .collect(),
    };
    rows.sort_by_key(|r| r.address);
    rows
}

async fn raft_status(console: &Console) -> Option<RaftStatus> {
    match &console.raft {
        Some(raft) => Some(raft.status().await),
        None => None,
    }
}

/// `GET /nacos/v1/core/cluster/nodes` (see the module's documentation).
pub(super) async fn nodes(State(console): State<Console>, query: Query) -> Result<Response, Bad> {
    let keyword = text(&query, "keyword")?;
    let raft = raft_status(&console).await.map(|r| {
        json!({ "metaDataMap": { "naming_persistent_service": {
            "leader": r.leader, "term": r.term, "raftGroupMember": r.members,
        }}})
    });
    let data: Vec<Value> = rows(&console)
        .into_iter()
        .filter(|r| r.address.to_string().starts_with(keyword))
        .map(|r| {
            json!({
                "ip": r.address.ip().to_string(),
                "port": r.address.port(),
                "address": r.address.to_string(),
                "state": r.state,
                "failAccessCnt": r.failures,
                "abilities": {},
                "grpcReportEnabled": false,
                "extendInfo": {
                    "lastRefreshTime": r.last_seen,
                    "version": env!("CARGO_PKG_VERSION"),
                    "raftMetaData": raft,
                },
            })
        })
        .collect();
    Ok(Json(json!({ "code": 200, "message": null, "data": data })).into_response())
}

/// `GET /nacre/v1/console/cluster`: `{"node","standalone","ready","view",
/// "syncBacklog","raft","members":[{"address","state","self","inView",
/// "failures","lastSeen","lastError","responsibleServices","raft",
/// "raftError"}]}`. The top `raft` is this node's Raft state; a member's is
/// its own, asked of it over the internal API (`null` with `raftError`
/// saying why when it did not answer within 2 s; both `null` when
/// standalone).
pub(super) async fn cluster(State(console): State<Console>) -> Response {
    let mut rafts = super::gather::raft_of_members(&console).await;
    let own_raft = rafts
        .get(&console.advertised)
        .and_then(|r| r.as_ref().ok())
        .cloned();
    let view = console.cluster.as_ref().map(|c| c.view());
    let mut owned: HashMap<SocketAddr, usize> = HashMap::new();
    for service in console.naming.registry().services() {
        let owner = match &view {
            Some(view) => view.responsible(service.key()),
            None => Some(console.advertised),
        };
        if let (Some(owner), true) = (owner, service.is_listed()) {
            *owned.entry(owner).or_default() += 1;
        }
    }
    let members: Vec<Value> = rows(&console)
        .into_iter()
        .map(|r| {
            let raft = rafts.remove(&r.address);
            json!({
                "address": r.address.to_string(),
                "state": r.state,
                "self": r.is_self,
                "inView": view.as_ref().is_none_or(|v| v.healthy.contains(&r.address)),
                "failures": r.failures,
                "lastSeen": r.last_seen,
                "lastError": r.last_error,
                "responsibleServices": owned.get(&r.address).copied().unwrap_or(0),
                "raft": raft.as_ref().and_then(|r| r.as_ref().ok()),
                "raftError": raft.as_ref().and_then(|r| r.as_ref().err()),
            })
        })
        .collect();
    Json(json!({
        "node": console.advertised.to_string(),
        "standalone": console.cluster.is_none(),
        "ready": console.cluster.as_ref().is_none_or(|c| c.is_ready()),
        "view": view.as_ref().map(|v| v.healthy.iter().map(|a| a.to_string()).collect::<Vec<_>>()),
        "syncBacklog": console.distro.as_ref().map(|d| d.syncer().backlog()),
        "raft": own_raft,
        "members": members,
    }))
    .into_response()
}
