//! The gRPC door at the protocol level, with a raw client: what real
//! clients do (server check, setup, SetupAck) and what they never do
//! (calls before setup, unknown types, garbage, oversized messages, many
//! streams and connections).

mod common;
mod grpc_client;

use std::time::Duration;

use common::{TestNode, wait_for};
use grpc_client::{RawClient, assert_ok, grpc_addr};
use nacre::grpc::payload::payload;
use serde_json::json;

#[tokio::test]
async fn grpc_port_is_http_port_plus_1000_by_default() {
    let node = TestNode::start().await;
    let http = node.node().addr().port();
    assert_eq!(grpc_addr(&node).port(), http + 1000);
}

#[tokio::test]
async fn server_check_setup_and_ack_advertise_persistent_over_grpc() {
    let node = TestNode::start().await;
    let mut client = RawClient::open(grpc_addr(&node)).await;
    let check = client
        .call("ServerCheckRequest", json!({"requestId": "42"}))
        .await;
    assert_ok(&check, "ServerCheckResponse");
    assert_eq!(check.body["requestId"], "42");
    assert_eq!(check.body["supportAbilityNegotiation"], true);
    let id = check.body["connectionId"].as_str().unwrap_or("");
    assert!(id.contains("_127.0.0.1_"), "{id}");

    client.open_stream().await;
    client
        .send_on_stream(
            "ConnectionSetupRequest",
            // The Go/Rust shape: legacy `abilities`, no table.
            json!({"clientVersion": "Nacos-Rust-Client:0.8.0", "tenant": "",
                   "labels": {"module": "naming"},
                   "abilities": {"namingAbility": {"supportDeltaPush": false}}}),
        )
        .await;
    let ack = client.next_from_server(Duration::from_secs(5)).await;
    let ack = ack.expect("SetupAckRequest arrives even without an abilityTable");
    assert_eq!(ack.kind, "SetupAckRequest");
    assert_eq!(
        ack.body["abilityTable"]["supportPersistentInstanceByGrpc"],
        true
    );
    let health = client
        .call("HealthCheckRequest", json!({"requestId": "h"}))
        .await;
    assert_ok(&health, "HealthCheckResponse");
}

#[tokio::test]
async fn before_setup_only_server_check_is_served() {
    let node = TestNode::start().await;
    let mut client = RawClient::open(grpc_addr(&node)).await;
    for kind in [
        "HealthCheckRequest",
        "ServiceListRequest",
        "InstanceRequest",
    ] {
        let answer = client.call(kind, json!({})).await;
        assert_eq!(answer.kind, "ErrorResponse", "{kind}: {answer:?}");
        assert_eq!(answer.body["errorCode"], 301, "{kind}");
        assert_eq!(answer.body["resultCode"], 301, "{kind}");
    }
    let check = client.call("ServerCheckRequest", json!({})).await;
    assert_ok(&check, "ServerCheckResponse");
}

#[tokio::test]
async fn unknown_type_is_302_and_garbage_is_502_and_nothing_changes() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let unknown = client.call("NamingFuzzyWatchRequest", json!({})).await;
    assert_eq!(unknown.kind, "ErrorResponse");
    assert_eq!(unknown.body["errorCode"], 302);

    let garbage = client
        .try_call_raw(payload(
            "InstanceRequest",
            b"{\"serviceName\": \"svc\", \"ty".to_vec(),
        ))
        .await
        .expect("answered");
    assert_eq!(garbage.kind, "ErrorResponse");
    assert_eq!(garbage.body["errorCode"], 502);
    let wrong_shape = client
        .call(
            "InstanceRequest",
            json!({"serviceName": ["a"], "instance": 5}),
        )
        .await;
    assert_eq!(wrong_shape.body["errorCode"], 502, "{wrong_shape:?}");
    let no_body = client
        .try_call_raw(nacre::grpc::proto::Payload::default())
        .await
        .expect("answered");
    assert_eq!(no_body.kind, "ErrorResponse");
    assert_eq!(no_body.body["errorCode"], 302);

    assert!(node.listed("svc", &[]).await.is_empty());
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert!(
        metrics["grpc"]["protocolErrors"].as_u64() >= Some(4),
        "{metrics}"
    );
    // The connection still works.
    assert_ok(
        &client.register("svc", "127.0.0.1", 80).await,
        "InstanceResponse",
    );
}

/// Bytes sent as they are: what no protobuf encoder would write.
struct RawBytes;

impl tonic::codec::Encoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawBytes {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let len = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, len).to_vec()))
    }
}

impl tonic::codec::Codec for RawBytes {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawBytes;
    type Decoder = RawBytes;

    fn encoder(&mut self) -> RawBytes {
        RawBytes
    }

    fn decoder(&mut self) -> RawBytes {
        RawBytes
    }
}

/// A unary call whose message is not protobuf is refused with `INTERNAL`
/// (grpc-java, under Nacos, answers such bytes the same way); nothing
/// changes and the connection goes on serving.
#[tokio::test]
async fn malformed_protobuf_is_refused_and_the_connection_kept() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let mut raw = tonic::client::Grpc::new(client.channel.clone());
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/Request/request");
    for garbage in [
        // Field 1 (metadata) said to be 255 bytes long, one given.
        vec![0x0a, 0xff, 0x01, 0x00],
        // Field 1 with wire type 7, which does not exist.
        vec![0x0f, 0x01],
        // A tag longer than any varint.
        vec![0xff; 16],
    ] {
        raw.ready().await.expect("the channel is ready");
        let answer = raw
            .unary(tonic::Request::new(garbage.clone()), path.clone(), RawBytes)
            .await;
        let status = answer.expect_err("garbage is refused");
        assert_eq!(
            status.code(),
            tonic::Code::Internal,
            "{garbage:?}: {status:?}"
        );
    }
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert_eq!(metrics["grpc"]["connections"], 1, "{metrics}");
    assert_ok(
        &client.register("after-garbage", "127.0.0.1", 80).await,
        "InstanceResponse",
    );
    assert_eq!(node.listed("after-garbage", &[]).await.len(), 1);
}

#[tokio::test]
async fn oversized_message_is_refused_and_changes_nothing() {
    let node = TestNode::start_with(|c| c.grpc.max_message_bytes = 64 * 1024).await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let big = "x".repeat(100 * 1024);
    let request = json!({"serviceName": "big", "type": "registerInstance",
        "instance": {"ip": "127.0.0.1", "port": 80, "metadata": {"blob": big}}});
    let refused = client
        .try_call_raw(payload("InstanceRequest", request.to_string()))
        .await;
    let status = refused.expect_err("an oversized message is refused");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    assert!(node.listed("big", &[]).await.is_empty());
    // Smaller requests on the same node are served.
    let mut other = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &other.register("big", "127.0.0.1", 81).await,
        "InstanceResponse",
    );
}

#[tokio::test]
async fn one_stream_per_connection_and_many_streams_change_nothing() {
    let node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    let mut refused = 0;
    for _ in 0..200 {
        let mut stream_client =
            nacre::grpc::proto::bi_request_stream_client::BiRequestStreamClient::new(
                client.channel.clone(),
            );
        let (_tx, rx) = tokio::sync::mpsc::channel(1);
        let opened = stream_client
            .request_bi_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await;
        if let Err(status) = opened {
            assert_eq!(status.code(), tonic::Code::AlreadyExists);
            refused += 1;
        }
    }
    assert_eq!(refused, 200);
    assert_ok(
        &client.register("streams", "127.0.0.1", 80).await,
        "InstanceResponse",
    );
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert_eq!(metrics["grpc"]["connections"], 1, "{metrics}");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_others_served() {
    let node = TestNode::start_with(|c| c.grpc.max_connections = 8).await;
    let addr = grpc_addr(&node);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(RawClient::connect(addr, "raw", "").await);
    }
    // The ninth transport is closed as soon as it is accepted.
    let mut extra = RawClient::open(addr).await;
    let refused = extra
        .try_call_raw(payload("ServerCheckRequest", "{}"))
        .await;
    assert!(
        refused.is_err(),
        "a ninth connection is served: {refused:?}"
    );
    assert_ok(
        &held[0].register("limits", "127.0.0.1", 80).await,
        "InstanceResponse",
    );
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert!(
        metrics["grpc"]["refusedOverLimit"].as_u64() >= Some(1),
        "{metrics}"
    );
    // Closing one makes room for another.
    held.pop();
    wait_for("a slot frees up", Duration::from_secs(5), || async {
        let m = node.get("/operator/metrics", &[]).await.json();
        m["grpc"]["transports"].as_u64() < Some(8)
    })
    .await;
    let mut again = RawClient::open(addr).await;
    assert_ok(
        &again.call("ServerCheckRequest", json!({})).await,
        "ServerCheckResponse",
    );
}

#[tokio::test]
async fn a_stream_that_does_not_start_with_setup_is_closed() {
    let node = TestNode::start().await;
    let mut client = RawClient::open(grpc_addr(&node)).await;
    client.open_stream().await;
    client
        .send_on_stream("NotifySubscriberResponse", json!({"requestId": "1"}))
        .await;
    // The node closes the transport: calls fail from then on.
    wait_for("the transport closes", Duration::from_secs(5), || async {
        let m = node.get("/operator/metrics", &[]).await.json();
        m["grpc"]["transports"] == 0
    })
    .await;
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect() {
    let mut node = TestNode::start().await;
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    node.stop().await;
    let reset = client
        .next_of("ConnectResetRequest", Duration::from_secs(5))
        .await;
    assert!(reset.is_some(), "no ConnectResetRequest before the close");
}

/// `grpc.port` moves the gRPC server off HTTP + 1000 (clients then have to
/// be told the port: Nacos's `nacos.server.grpc.port.offset` has the same
/// effect on its side).
#[tokio::test]
async fn grpc_port_moves_the_grpc_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let node = TestNode::start_with(|c| c.grpc.port = port).await;
    assert_eq!(grpc_addr(&node).port(), port);
    assert_ne!(node.node().addr().port() + 1000, port);
    let mut client = RawClient::open(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    let check = client.call("ServerCheckRequest", json!({})).await;
    assert_ok(&check, "ServerCheckResponse");
}

#[tokio::test]
async fn grpc_can_be_disabled() {
    let node = TestNode::start_with(|c| c.grpc.enabled = false).await;
    assert!(node.node().grpc_addr().is_none());
    let listing = node.fetch("/nacos/v2/core/loader/current").await.text;
    assert_eq!(listing, "{}");
}

/// The names of this process's threads that serve the gRPC transports of
/// the door on `port` (`grpc-<port>-<i>`).
fn transport_threads(port: u16) -> Vec<String> {
    let prefix = format!("grpc-{port}-");
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

#[tokio::test]
async fn transports_are_served_on_threads_that_end_with_the_node() {
    let mut node = TestNode::start().await;
    let addr = grpc_addr(&node);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    // Started with the door; each thread names itself as it begins to run.
    wait_for(
        "one transport thread per core",
        Duration::from_secs(5),
        || async { transport_threads(addr.port()).len() == cores },
    )
    .await;
    // More clients than threads (dealt out in turn): every one is served.
    let mut clients = Vec::new();
    for i in 0..cores * 2 {
        clients.push(RawClient::connect(addr, &format!("c{i}"), "").await);
    }
    for client in &mut clients {
        let health = client
            .call("HealthCheckRequest", json!({"requestId": "h"}))
            .await;
        assert_ok(&health, "HealthCheckResponse");
    }
    node.stop().await;
    assert_eq!(
        transport_threads(addr.port()),
        Vec::<String>::new(),
        "a stopped node's transport threads are joined"
    );
}
