//! The two gRPC services (NACOS-V2.md §2, §4).
//!
//! `Request/request` (unary): `ServerCheckRequest` is served to anyone;
//! everything else needs a registered connection (else 301). Dispatch is on
//! `metadata.type`; an unknown type is answered 302, a body that does not
//! parse 502, a node that is not ready 300.
//!
//! `BiRequestStream/requestBiStream`: one per connection. The first message
//! must be `ConnectionSetupRequest` (no answer, as in Nacos); the connection
//! is then registered and told `SetupAckRequest` with the abilities the node
//! has (`supportPersistentInstanceByGrpc`). Afterwards the stream carries
//! the client's answers: push acks, probe answers. When it ends, the
//! transport is closed and the connection released.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::GrpcDoor;
use super::connection::{ClientInfo, Connection};
use super::handlers::{self, parse, parse_naming};
use super::messages::{Bare, Reply, SetupRequest};
use super::payload::{ErrorCode, body_of, client_ip_of, error_response, payload, type_of};
use super::proto::Payload;
use super::proto::bi_request_stream_server::BiRequestStream;
use super::proto::request_server::Request as RequestService;
use crate::registry::model::DEFAULT_NAMESPACE;

/// How long a setup already sent on the stream may keep a unary call waiting.
const SETUP_WAIT: Duration = Duration::from_secs(2);

/// What the node tells clients it can do (NACOS-V2.md §8): only what it
/// implements, since Java and Python gate features on these.
const ABILITIES: &str = r#"{"supportPersistentInstanceByGrpc":true}"#;

impl GrpcDoor {
    /// Answers one unary request.
    async fn dispatch(&self, conn: &Arc<Connection>, request: Payload) -> Payload {
        let kind = type_of(&request);
        let body = body_of(&request);
        if !self.is_ready() {
            return self.protocol_error(
                ErrorCode::Starting,
                "server is starting, please try again later",
            );
        }
        conn.touch();
        if kind == "ServerCheckRequest" {
            let rid = parse::<Bare>(kind, body)
                .ok()
                .and_then(|b| b.request_id)
                .unwrap_or_default();
            return Reply::ok("ServerCheckResponse", &rid)
                .with("connectionId", conn.id.as_ref())
                .with("supportAbilityNegotiation", true)
                .into_payload();
        }
        if !conn.registered_within(SETUP_WAIT).await {
            return self.protocol_error(ErrorCode::Unregistered, "Connection is unregistered.");
        }
        if let Err(refusal) = self.authorize(kind, body, &request).await {
            return refusal;
        }
        let answer = match kind {
            "HealthCheckRequest" => parse::<Bare>(kind, body).map(|b| {
                Reply::ok("HealthCheckResponse", &b.request_id.unwrap_or_default()).into_payload()
            }),
            "InstanceRequest" => match parse_naming(kind, body) {
                Ok(req) => Ok(handlers::instance(self, conn, req).await),
                Err(e) => Err(e),
            },
            "BatchInstanceRequest" => match parse_naming(kind, body) {
                Ok(req) => Ok(handlers::batch(self, conn, req).await),
                Err(e) => Err(e),
            },
            "PersistentInstanceRequest" => match parse_naming(kind, body) {
                Ok(req) => Ok(handlers::persistent(self, req).await),
                Err(e) => Err(e),
            },
            "SubscribeServiceRequest" => match parse_naming(kind, body) {
                Ok(req) => Ok(handlers::subscribe(self, conn, req).await),
                Err(e) => Err(e),
            },
            "ServiceQueryRequest" => match parse_naming(kind, body) {
                Ok(req) => Ok(handlers::query(self, conn, req).await),
                Err(e) => Err(e),
            },
            "ServiceListRequest" => {
                parse_naming(kind, body).map(|req| handlers::service_list(self, req))
            }
            _ => {
                let message = format!("RequestHandler Not Found: no handler for type {kind:?}");
                return self.protocol_error(ErrorCode::UnknownType, &message);
            }
        };
        answer.unwrap_or_else(|bad_body| {
            self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            *bad_body
        })
    }

    fn protocol_error(&self, code: ErrorCode, message: &str) -> Payload {
        self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
        error_response(code, message)
    }

    /// Reads a connection's stream: the setup first, then the client's
    /// answers, until it ends; then closes the transport and releases the
    /// connection.
    async fn read_stream(
        self: Arc<Self>,
        conn: Arc<Connection>,
        mut inbound: Streaming<Payload>,
        outbound: super::connection::Outbound,
    ) {
        let limit = Duration::from_millis(self.config.probe_timeout_ms + self.config.idle_probe_ms);
        let first = tokio::time::timeout(limit, inbound.message()).await;
        let setup_done = match first {
            Ok(Ok(Some(first))) if type_of(&first) == "ConnectionSetupRequest" => {
                self.set_up(&conn, &first, outbound)
            }
            Ok(Ok(Some(other))) => {
                tracing::debug!(connection = %conn.id, kind = type_of(&other),
                    "stream did not start with ConnectionSetupRequest");
                false
            }
            _ => false,
        };
        if setup_done {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => {
                        conn.touch();
                        self.on_client_answer(&conn, &message);
                    }
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(connection = %conn.id, %status, "stream ended with an error");
                        break;
                    }
                }
            }
        }
        self.release(&conn).await;
        conn.close();
    }

    /// Registers the connection from its `ConnectionSetupRequest`.
    fn set_up(
        &self,
        conn: &Connection,
        setup: &Payload,
        outbound: super::connection::Outbound,
    ) -> bool {
        let Ok(request) = parse::<SetupRequest>("ConnectionSetupRequest", body_of(setup)) else {
            self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let labels = request.labels.unwrap_or_default();
        let namespace = request
            .tenant
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let ip = match client_ip_of(setup) {
            "" => conn.remote.ip().to_string(),
            ip => ip.to_string(),
        };
        let client = ClientInfo {
            version: request.client_version.unwrap_or_default(),
            namespace,
            app: labels.get("AppName").cloned().unwrap_or_default(),
            labels,
            ip,
        };
        if !conn.register(outbound, client) {
            return false;
        }
        conn.touch();
        let rid = self.connections.next_request_id();
        let ack = format!(
            r#"{{"abilityTable":{ABILITIES},"requestId":"{rid}","module":"internal","headers":{{}}}}"#
        );
        let _ = conn.send(payload("SetupAckRequest", ack));
        true
    }

    /// A message on the stream: the client's answer to a server request.
    fn on_client_answer(&self, conn: &Connection, message: &Payload) {
        let kind = type_of(message);
        let Ok(bare) = parse::<Bare>(kind, body_of(message)) else {
            self.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Detection answers and the rest only prove the client alive (the
        // caller counted that); push acks also settle their push.
        if kind == "NotifySubscriberResponse" {
            let ok = bare.result_code.is_none_or(|c| c == 200);
            self.acknowledge(conn, bare.request_id.as_deref().unwrap_or(""), ok);
        }
    }
}

type OutboundStream = Pin<Box<dyn Stream<Item = Result<Payload, Status>> + Send>>;

/// The door as tonic serves it to one connection's transport.
#[derive(Clone)]
pub struct Services {
    /// The door.
    pub door: Arc<GrpcDoor>,
    /// The connection whose transport these services serve.
    pub conn: Arc<Connection>,
}

#[tonic::async_trait]
impl RequestService for Services {
    async fn request(&self, request: Request<Payload>) -> Result<Response<Payload>, Status> {
        Ok(Response::new(
            self.door.dispatch(&self.conn, request.into_inner()).await,
        ))
    }
}

#[tonic::async_trait]
impl BiRequestStream for Services {
    #[allow(non_camel_case_types)] // the name the generator derives from the proto
    type requestBiStreamStream = OutboundStream;

    async fn request_bi_stream(
        &self,
        request: Request<Streaming<Payload>>,
    ) -> Result<Response<Self::requestBiStreamStream>, Status> {
        let conn = Arc::clone(&self.conn);
        if !conn.open_stream() {
            return Err(Status::already_exists(
                "this connection already has its stream; open a new connection",
            ));
        }
        let (outbound, queue) = tokio::sync::mpsc::channel(self.door.config.send_queue);
        tokio::spawn(Arc::clone(&self.door).read_stream(conn, request.into_inner(), outbound));
        let outbound = ReceiverStream::new(queue).map(|message| Ok(*message));
        Ok(Response::new(Box::pin(outbound)))
    }
}
