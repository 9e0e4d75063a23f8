//! A raw Nacos 2.x client on the node's own generated stubs: it speaks the
//! protocol step by step, so tests can send what real clients never do
//! (garbage, unknown types, calls before setup) and watch the stream.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::time::Duration;

use nacre::grpc::payload::{body_of, payload, type_of};
use nacre::grpc::proto::Payload;
use nacre::grpc::proto::bi_request_stream_client::BiRequestStreamClient;
use nacre::grpc::proto::request_client::RequestClient;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// The gRPC address of a test node.
pub fn grpc_addr(node: &crate::common::TestNode) -> SocketAddr {
    node.node().grpc_addr().expect("gRPC enabled")
}

/// One message, decoded: its type and its JSON.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: String,
    pub body: Value,
}

pub fn decode(p: &Payload) -> Message {
    Message {
        kind: type_of(p).to_string(),
        body: serde_json::from_slice(body_of(p)).unwrap_or(Value::Null),
    }
}

/// A connection to the node's gRPC door (one HTTP/2 transport).
pub struct RawClient {
    pub channel: Channel,
    pub unary: RequestClient<Channel>,
    /// What the client sends on its stream, once opened.
    pub to_server: Option<mpsc::Sender<Payload>>,
    /// What the server sends on the stream.
    pub from_server: Option<tonic::Streaming<Payload>>,
    pub connection_id: String,
}

impl RawClient {
    /// A transport, nothing sent yet.
    pub async fn open(addr: SocketAddr) -> RawClient {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("gRPC connect");
        RawClient {
            unary: RequestClient::new(channel.clone()).max_decoding_message_size(64 << 20),
            channel,
            to_server: None,
            from_server: None,
            connection_id: String::new(),
        }
    }

    /// A registered connection, as the Python client makes one: server
    /// check, stream, setup, then the SetupAck.
    pub async fn connect(addr: SocketAddr, version: &str, namespace: &str) -> RawClient {
        Self::connect_as(addr, version, namespace, "").await
    }

    /// Like [`RawClient::connect`], the client claiming `client_ip` as its
    /// own address (`metadata.clientIp`), as clients behind NAT do.
    pub async fn connect_as(
        addr: SocketAddr,
        version: &str,
        namespace: &str,
        client_ip: &str,
    ) -> RawClient {
        let mut client = Self::open(addr).await;
        let check = client
            .call("ServerCheckRequest", json!({"requestId": "1"}))
            .await;
        assert_eq!(check.kind, "ServerCheckResponse", "{check:?}");
        client.connection_id = check.body["connectionId"].as_str().unwrap_or("").into();
        client.open_stream().await;
        let setup = json!({"clientVersion": version, "tenant": namespace,
               "labels": {"source": "sdk", "module": "naming", "AppName": "tests"},
               "abilityTable": {"mcp": true}});
        let mut setup = payload("ConnectionSetupRequest", setup.to_string());
        if let Some(metadata) = setup.metadata.as_mut() {
            metadata.client_ip = client_ip.to_string();
        }
        let tx = client.to_server.as_ref().expect("stream open");
        tx.send(setup).await.expect("stream accepts");
        let ack = client
            .next_from_server(Duration::from_secs(5))
            .await
            .expect("SetupAckRequest within 5 s");
        assert_eq!(ack.kind, "SetupAckRequest", "{ack:?}");
        client
    }

    pub async fn open_stream(&mut self) {
        let (tx, rx) = mpsc::channel(64);
        let mut stream_client = BiRequestStreamClient::new(self.channel.clone());
        let inbound = stream_client
            .request_bi_stream(ReceiverStream::new(rx))
            .await
            .expect("stream opened")
            .into_inner();
        self.to_server = Some(tx);
        self.from_server = Some(inbound);
    }

    pub async fn send_on_stream(&self, kind: &str, body: Value) {
        let tx = self.to_server.as_ref().expect("stream open");
        tx.send(payload(kind, body.to_string()))
            .await
            .expect("stream accepts");
    }

    /// The next server message on the stream, if one comes within `limit`.
    pub async fn next_from_server(&mut self, limit: Duration) -> Option<Message> {
        let inbound = self.from_server.as_mut()?;
        match tokio::time::timeout(limit, inbound.message()).await {
            Ok(Ok(Some(p))) => Some(decode(&p)),
            _ => None,
        }
    }

    /// The next server message of `kind`, answering probes on the way.
    pub async fn next_of(&mut self, kind: &str, limit: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_from_server(left).await?;
            if message.kind == kind {
                return Some(message);
            }
            if message.kind == "ClientDetectionRequest" {
                let rid = message.body["requestId"].clone();
                self.send_on_stream(
                    "ClientDetectionResponse",
                    json!({"resultCode": 200, "requestId": rid}),
                )
                .await;
            }
        }
    }

    /// Acknowledges a push.
    pub async fn ack(&self, push: &Message) {
        self.send_on_stream(
            "NotifySubscriberResponse",
            json!({"resultCode": 200, "errorCode": 0, "requestId": push.body["requestId"]}),
        )
        .await;
    }

    /// One unary call; panics on a transport failure.
    pub async fn call(&mut self, kind: &str, body: Value) -> Message {
        self.try_call_raw(payload(kind, body.to_string()))
            .await
            .expect("unary call")
    }

    pub async fn try_call_raw(&mut self, request: Payload) -> Result<Message, tonic::Status> {
        let reply = self.unary.request(request).await?;
        Ok(decode(&reply.into_inner()))
    }

    /// Registers one ephemeral instance in `service` (default group).
    pub async fn register(&mut self, service: &str, ip: &str, port: u16) -> Message {
        self.call(
            "InstanceRequest",
            json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
                   "type": "registerInstance",
                   "instance": {"ip": ip, "port": port, "weight": 1.0, "healthy": true,
                                "enabled": true, "ephemeral": true, "clusterName": "DEFAULT",
                                "metadata": {}}}),
        )
        .await
    }

    pub async fn subscribe(&mut self, service: &str, subscribe: bool) -> Message {
        self.call(
            "SubscribeServiceRequest",
            json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
                   "subscribe": subscribe, "clusters": ""}),
        )
        .await
    }
}

/// Asserts a typed success.
pub fn assert_ok(m: &Message, kind: &str) {
    assert_eq!(m.kind, kind, "{m:?}");
    assert_eq!(m.body["resultCode"], 200, "{m:?}");
    assert_eq!(m.body["errorCode"], 0, "{m:?}");
}
