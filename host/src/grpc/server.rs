//! The gRPC server: its port, the accept loop and one HTTP/2 connection per
//! accepted transport, served by hyper with tonic's generated services.
//!
//! The node runs the accept loop itself, rather than tonic's `Server`, to
//! own each transport: the [`Connection`] is created at accept and the
//! transport's services are made for it (every request on it knows its
//! connection), a connection the node decides to close (an
//! unresponsive or stuck client, shutdown) is really closed — the Python
//! client notices nothing less than a closed socket (NACOS-V2.md §9) — and
//! when the transport ends, whoever ended it, the connection is released at
//! once. Accepted transports are served on the transport threads
//! (`transports`), one runtime per core unless `grpc.transport_threads`
//! says otherwise.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tonic::codegen::BoxFuture;
use tower::Service;

use super::GrpcDoor;
use super::coalesce::Coalesced;
use super::connection::Connection;
use super::payload::payload;
use super::proto::bi_request_stream_server::BiRequestStreamServer;
use super::proto::request_server::RequestServer;
use super::service::Services;
use super::transports::TransportThreads;
use crate::shutdown::Shutdown;

/// How clients derive the gRPC port from the HTTP port (NACOS-V2.md §1).
pub const PORT_OFFSET: u16 = 1000;

/// How long a closing connection gets to flush what was queued (a
/// `ConnectResetRequest`) before its socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// How long shutdown waits for connections to finish closing.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// Largest header block accepted from a client.
const MAX_HEADER_BYTES: u32 = 64 * 1024;

/// The paths of the stream service (`/BiRequestStream/requestBiStream`).
const STREAM_PATH: &str = "/BiRequestStream/";

/// Connections the kernel may queue on a listener before the node accepts
/// them (the kernel caps it at `net.core.somaxconn`, 4096 on current
/// Linux). Tokio's listeners ask for 128, the standard library's number:
/// when a thousand clients connect at once, as they do when a node restarts,
/// that queue overflowed and some of them were reset. Netty, under Nacos,
/// asks for `somaxconn` too.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `(ip, port)` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`,
/// as tokio's own listeners have).
fn listen(ip: IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(ip, port))?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds the HTTP listener and the gRPC one. With `grpc_port` 0 the gRPC
/// port is the HTTP port + 1000; when the HTTP port is 0 too (any free
/// port), pairs are tried until both halves are free.
pub fn bind(
    ip: IpAddr,
    http_port: u16,
    grpc_port: Option<u16>,
) -> std::io::Result<(TcpListener, Option<TcpListener>)> {
    let Some(grpc_port) = grpc_port else {
        return Ok((listen(ip, http_port)?, None));
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let http = listen(ip, http_port)?;
        let port = match grpc_port {
            0 => http.local_addr()?.port().checked_add(PORT_OFFSET),
            p => Some(p),
        };
        let grpc = match port {
            Some(port) => listen(ip, port),
            None => Err(std::io::Error::other(format!(
                "HTTP port + {PORT_OFFSET} is above 65535: set grpc.port"
            ))),
        };
        match grpc {
            Ok(grpc) => return Ok((http, Some(grpc))),
            Err(_) if http_port == 0 && grpc_port == 0 && attempts < 50 => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!(
                        "binding the gRPC port {}: {e}",
                        port.map_or_else(|| "(none)".to_string(), |p| p.to_string())
                    ),
                ));
            }
        }
    }
}

impl GrpcDoor {
    /// Accepts transports and hands each to one of `threads` until
    /// shutdown, then closes every connection (each registered client is
    /// first told `ConnectResetRequest`) and stops the threads.
    pub(super) async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        threads: TransportThreads,
        mut shutdown: Shutdown,
    ) {
        let local_port = self.addr.port();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.recv() => break,
            };
            match accepted {
                Ok((tcp, remote)) => {
                    if self.connections.len() >= self.config.max_connections {
                        self.stats
                            .refused_over_limit
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(%remote, "gRPC connection refused: at grpc.max_connections");
                        continue; // dropping it closes it
                    }
                    let conn = self.connections.open(remote, local_port);
                    threads.hand_over(&self, tcp, conn);
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause, keep serving.
                    tracing::warn!(error = %e, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        self.close_all().await;
        threads.stop().await;
    }

    /// Serves HTTP/2 on one transport until it ends or the node closes it,
    /// then releases its connection.
    pub(super) async fn serve_transport(self: Arc<Self>, tcp: TcpStream, conn: Arc<Connection>) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = self.routes(&conn);
        let mut builder = http2::Builder::new(TokioExecutor::new());
        // No `date` header on answers: gRPC servers (grpc-java, Nacos) send
        // none and no client reads it; it cost an HPACK encode per answer.
        builder
            .max_concurrent_streams(self.config.max_streams_per_connection)
            .max_header_list_size(MAX_HEADER_BYTES)
            .auto_date_header(false);
        let io = TokioIo::new(Coalesced::new(tcp));
        let serving = builder.serve_connection(io, TowerToHyperService::new(service));
        tokio::pin!(serving);
        tokio::select! {
            result = serving.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(connection = %conn.id, error = %e, "gRPC transport ended");
                }
            }
            _ = conn.closed() => {
                serving.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(CLOSE_GRACE, serving.as_mut()).await;
            }
        }
        self.release(&conn).await;
        self.connections.remove(&conn);
    }

    /// The two services as one connection's transport serves them: each
    /// request goes to the service its path names (the unary one answers
    /// any unknown path `Unimplemented`), and the services know the
    /// connection. (A router and a tag on every request cost more than the
    /// naming work of a small request.)
    fn routes(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
    ) -> impl tower::Service<
        hyper::Request<hyper::body::Incoming>,
        Response = hyper::Response<tonic::body::Body>,
        Error = std::convert::Infallible,
        Future = BoxFuture<hyper::Response<tonic::body::Body>, std::convert::Infallible>,
    > + Clone
    + use<> {
        let limit = self.config.max_message_bytes;
        let services = Services {
            door: Arc::clone(self),
            conn: Arc::clone(conn),
        };
        let unary = RequestServer::new(services.clone())
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX);
        let stream = BiRequestStreamServer::new(services)
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX);
        tower::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            if request.uri().path().starts_with(STREAM_PATH) {
                stream.clone().call(request)
            } else {
                unary.clone().call(request)
            }
        })
    }

    /// Tells each registered client to reconnect (Java and Go honour
    /// `ConnectResetRequest`; Python and Rust see the socket close), closes
    /// every transport and waits, bounded, for them to be released.
    async fn close_all(&self) {
        for conn in self.connections.all() {
            self.reset(&conn);
        }
        let deadline = tokio::time::Instant::now() + SHUTDOWN_WAIT;
        while !self.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl GrpcDoor {
    /// Tells a registered client to reconnect (`ConnectResetRequest`; Java
    /// and Go then pick another server of their list) and closes its
    /// connection.
    pub(super) fn reset(&self, conn: &Connection) {
        if conn.is_registered() {
            let request_id = self.connections.next_request_id();
            let body =
                format!(r#"{{"requestId":"{request_id}","module":"internal","headers":{{}}}}"#);
            let _ = conn.send(payload("ConnectResetRequest", body));
        }
        conn.close();
    }
}

/// The address a client should dial for a node whose gRPC door is `addr`
/// (loopback when bound to every interface).
pub fn dial_addr(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// More clients than tokio's default queue of 128 connect at once to a
    /// node that has not accepted any yet: every handshake completes.
    #[tokio::test]
    async fn a_connection_storm_is_queued_not_dropped() {
        const CLIENTS: usize = 600;
        let (http, grpc) = bind(IpAddr::from([127, 0, 0, 1]), 0, Some(0)).expect("binds");
        let grpc = grpc.expect("a gRPC listener");
        for listener in [&http, &grpc] {
            let addr = listener.local_addr().expect("bound");
            let mut connecting = tokio::task::JoinSet::new();
            for _ in 0..CLIENTS {
                connecting.spawn(tokio::time::timeout(
                    Duration::from_secs(5),
                    TcpStream::connect(addr),
                ));
            }
            // Held until the end: the queue stays full of them.
            let mut connected = Vec::with_capacity(CLIENTS);
            while let Some(joined) = connecting.join_next().await {
                let stream = joined
                    .expect("connect task")
                    .expect(
                        "connected within 5 s (is net.core.somaxconn below 600 on this machine?)",
                    )
                    .expect("connected");
                connected.push(stream);
            }
        }
    }

    /// A taken gRPC port is refused with its kind kept (the start-up
    /// message is chosen by it) and the port named.
    #[tokio::test]
    async fn a_taken_grpc_port_is_named() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let taken = std::net::TcpListener::bind((ip, 0)).expect("binds");
        let port = taken.local_addr().expect("bound").port();
        let err = bind(ip, 0, Some(port)).expect_err("the gRPC port is taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(
            err.to_string()
                .contains(&format!("binding the gRPC port {port}")),
            "{err}"
        );
        let err = bind(ip, port, None).expect_err("the HTTP port is taken");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
