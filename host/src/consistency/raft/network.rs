//! Raft's messages between members: openraft's RPCs sent with the cluster's
//! typed call ([`crate::wire`] names their routes), within openraft's own
//! deadline for each.

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

use super::RaftMembers;
use crate::cluster::{Member, PeerClient, PeerError};
use crate::wire::{RaftTypes, Rpc};

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

/// openraft's connection to one member: its RPCs as typed peer calls.
pub struct PeerLink {
    target: NodeId,
    member: Option<Member>,
    client: PeerClient,
}

impl PeerLink {
    /// Sends one RPC; a peer that does not answer is `Unreachable` (openraft
    /// backs off), one that answers with an error is that error.
    async fn call<R, Resp, E>(
        &self,
        request: &R,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        R: Rpc<Reply = Result<Resp, E>>,
        E: std::error::Error,
    {
        let unreachable = |e: &dyn std::fmt::Display| {
            RPCError::Unreachable(Unreachable::new(&AnyError::error(e.to_string())))
        };
        let Some(member) = &self.member else {
            return Err(unreachable(&format!(
                "node {} is not a member",
                self.target
            )));
        };
        match self
            .client
            .call_within(member, request, option.hard_ttl())
            .await
        {
            Ok(answer) => {
                answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Err(PeerError::Unreachable(e)) => Err(unreachable(&e)),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<RaftTypes> for PeerLink {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<RaftTypes>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<RaftTypes>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(&rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(&rpc, &option).await
    }
}
