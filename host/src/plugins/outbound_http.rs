//! Outbound HTTP for plugins whose manifest grants it (`[capabilities] http`).
//!
//! `wasi:http` is linked only into such plugins (see `runtime`). Every request
//! they make comes through [`OutboundHttp::send_request`], which
//! - refuses any authority (`host:port`) not in the plugin's allow-list: the
//!   guest sees `error-code.HTTP-request-denied`, the node logs a warning;
//! - speaks plain HTTP/1.1 only (no TLS stack in the node for now);
//! - allows at most [`MAX_REQUESTS_PER_CALL`] requests per plugin call;
//! - ends the whole exchange — connect, request, response head and every read
//!   of the response body — at the deadline of the plugin call it belongs to.
//!
//! Why the deadline is enforced here and not by epoch interruption alone: the
//! runtime uses a synchronous store. Epoch interruption only fires while guest
//! code runs; while the guest waits in a host call (`pollable.block` on a
//! response, a blocking body write or read) the thread is inside
//! wasmtime-wasi's `in_tokio`, and no epoch tick can reach it. An async store
//! (`call_async` + `epoch_deadline_async_yield_and_update`) would let the
//! caller drop the call future instead, but would turn every plugin call in the
//! node into an async one. Bounding each host-side wait by the call's
//! deadline gives the same guarantee for the one capability that waits: once
//! the deadline passes, the pending I/O fails, the guest gets control back,
//! and the next epoch check traps it. A slow server therefore holds a listener
//! thread no longer than the call's deadline (plus one epoch tick).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::http::{self, uri::Scheme};
use tokio::net::TcpStream;
use tokio::time::{Sleep, sleep_until, timeout_at};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Requests one plugin call may send; more fail with `HTTP-request-denied`.
pub const MAX_REQUESTS_PER_CALL: u32 = 8;

/// The future `send_request` hands back to wasmtime-wasi-http.
type Sending = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The `wasi:http` hooks of one plugin store: its allow-list and the deadline
/// of the call in progress.
pub struct OutboundHttp {
    plugin: String,
    /// `host:port` entries from the manifest.
    allowed: Arc<[String]>,
    /// When the current call's deadline passes.
    deadline: Instant,
    /// Requests sent in the current call.
    requests: u32,
}

impl OutboundHttp {
    /// The outbound HTTP of `plugin`, which may reach only the `host:port`s in `allowed`.
    pub fn new(plugin: &str, allowed: Arc<[String]>) -> OutboundHttp {
        OutboundHttp {
            plugin: plugin.to_string(),
            allowed,
            deadline: Instant::now(),
            requests: 0,
        }
    }

    /// Called before every plugin call: its deadline, and a fresh request count.
    pub(crate) fn start_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.requests = 0;
    }

    /// Whether `authority` (always with a port) is in the allow-list.
    /// Host names compare case-insensitively, as DNS does.
    fn allows(&self, authority: &str) -> bool {
        self.allowed
            .iter()
            .any(|entry| entry.eq_ignore_ascii_case(authority))
    }
}

/// `host:port` of a request URI, with the scheme's default port filled in.
fn authority_of(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let port = authority.port_u16().unwrap_or(80);
    Some(format!("{}:{port}", authority.host()))
}

impl WasiHttpHooks for OutboundHttp {
    fn is_supported_scheme(&mut self, scheme: &Scheme) -> bool {
        if *scheme != Scheme::HTTP {
            tracing::warn!(plugin = %self.plugin, %scheme, "outbound HTTP refused: only http:// is supported");
            return false;
        }
        true
    }

    fn default_scheme(&mut self) -> Option<Scheme> {
        Some(Scheme::HTTP)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sending {
        let Some(authority) = authority_of(request.uri()).filter(|a| self.allows(a)) else {
            tracing::warn!(
                plugin = %self.plugin,
                uri = %request.uri(),
                allowed = ?self.allowed,
                "outbound HTTP refused: not in the plugin's allow-list"
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        };
        self.requests += 1;
        if self.requests > MAX_REQUESTS_PER_CALL {
            tracing::warn!(plugin = %self.plugin, uri = %request.uri(), "outbound HTTP refused: more than {MAX_REQUESTS_PER_CALL} requests in one call");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Guest-supplied timeouts are ignored: the call's deadline bounds everything.
        let deadline = tokio::time::Instant::from_std(self.deadline);
        Box::new(send_before(request, authority, deadline))
    }
}

/// Sends one request over a fresh HTTP/1.1 connection; nothing outlives `deadline`.
async fn send_before(
    mut request: http::Request<WasiBody>,
    authority: String,
    deadline: tokio::time::Instant,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let stream = timeout_at(deadline, TcpStream::connect(&authority))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let (mut sender, connection) = timeout_at(
        deadline,
        hyper::client::conn::http1::handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The request line carries the path only; the authority went into `Host`.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    // The connection's I/O runs as its own task until the deadline; dropping
    // the handle (when the guest drops the response) aborts it.
    let io = wasmtime_wasi::runtime::spawn(async move {
        match timeout_at(deadline, connection).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::ConnectionReadTimeout),
        }
    });
    let response = match timeout_at(deadline, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        // The connection task ends at the deadline too and may get there
        // first: then the send fails as "connection closed", a timeout really.
        Ok(Err(_)) if tokio::time::Instant::now() >= deadline => {
            return Err(Error::ConnectionReadTimeout);
        }
        Ok(Err(e)) => return Err(Error::from(e)),
        Err(_) => return Err(Error::ConnectionReadTimeout),
    };
    let response = response.map(|body| {
        BodyBefore {
            body,
            deadline: Box::pin(sleep_until(deadline)),
        }
        .boxed_unsync()
    });
    Ok((response, Box::new(io)))
}

/// A response body whose reads fail once the deadline has passed.
struct BodyBefore {
    body: hyper::body::Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl Body for BodyBefore {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Error::from)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_host_and_port_exactly() {
        let hooks = OutboundHttp::new("p", Arc::from(vec!["127.0.0.1:9000".to_string()]));
        let allowed = |uri: &str| {
            let uri: http::Uri = uri.parse().expect("uri");
            authority_of(&uri).is_some_and(|a| hooks.allows(&a))
        };
        assert!(allowed("http://127.0.0.1:9000/x"));
        assert!(!allowed("http://127.0.0.1:9001/x"));
        assert!(!allowed("http://127.0.0.1/x"), "port 80 is not 9000");
        assert!(!allowed("http://localhost:9000/x"));
        assert!(!allowed("/no-authority"));
    }

    fn request(uri: &str) -> http::Request<WasiBody> {
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        http::Request::post(uri).body(body).expect("request")
    }

    #[tokio::test]
    async fn refusals_reach_the_guest_as_request_denied() {
        let mut hooks = OutboundHttp::new("p", Arc::from(vec!["127.0.0.1:9".to_string()]));
        hooks.start_call(Instant::now() + std::time::Duration::from_secs(1));
        let refused = hooks.send_request(
            request("http://10.0.0.1:9/"),
            None,
            Box::new(async { Ok(()) }),
        );
        assert!(matches!(
            Pin::from(refused).await,
            Err(Error::HttpRequestDenied)
        ));
        // The allowed destination, up to the per-call cap (the futures are never polled: no I/O).
        for _ in 0..MAX_REQUESTS_PER_CALL {
            let _unsent = hooks.send_request(
                request("http://127.0.0.1:9/"),
                None,
                Box::new(async { Ok(()) }),
            );
        }
        let over = hooks.send_request(
            request("http://127.0.0.1:9/"),
            None,
            Box::new(async { Ok(()) }),
        );
        assert!(matches!(
            Pin::from(over).await,
            Err(Error::HttpRequestDenied)
        ));
        // The next call starts a fresh count.
        hooks.start_call(Instant::now());
        assert_eq!(hooks.requests, 0);
    }
}
