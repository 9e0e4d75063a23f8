//! Raft's messages between members: openraft's RPCs as MessagePack over the
//! cluster-internal API (`/nacre/v1/raft/*`), with the cluster credential
//! like every internal route.

use std::sync::Arc;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{RaftMembers, RaftTypes};
use crate::cluster::{Member, PeerClient, PeerError};

pub const APPEND_PATH: &str = "/nacre/v1/raft/append";
pub const VOTE_PATH: &str = "/nacre/v1/raft/vote";
pub const SNAPSHOT_PATH: &str = "/nacre/v1/raft/snapshot";

type NodeId = u64;

/// Makes a connection-less client per peer (the HTTP client pools connections).
pub struct Network {
    pub(super) members: Arc<RaftMembers>,
    pub(super) client: PeerClient,
}

impl RaftNetworkFactory<RaftTypes> for Network {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerLink {
        PeerLink {
            target,
            member: self.members.member(target).cloned(),
            client: self.client.clone(),
        }
    }
}

pub struct PeerLink {
    target: NodeId,
    member: Option<Member>,
    client: PeerClient,
}

impl PeerLink {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let Some(member) = &self.member else {
            return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(
                format!("node {} is not a member", self.target),
            ))));
        };
        let body =
            rmp_serde::to_vec(request).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let sent =
            tokio::time::timeout(option.hard_ttl(), self.client.post(member, path, body)).await;
        let reply = match sent {
            Err(_) => {
                return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(
                    "timed out",
                ))));
            }
            Ok(Err(PeerError::Unreachable(e))) => {
                return Err(RPCError::Unreachable(Unreachable::new(&AnyError::error(e))));
            }
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Ok(Ok(reply)) => reply,
        };
        let answer: Result<Resp, E> =
            rmp_serde::from_slice(&reply).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<RaftTypes> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<RaftTypes>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(APPEND_PATH, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<RaftTypes>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(SNAPSHOT_PATH, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(VOTE_PATH, &rpc, &option).await
    }
}
