//! The Nacos 2.x gRPC mode: N client connections (server check, stream,
//! setup, as the SDKs make them) against any server that speaks the
//! protocol on the HTTP port + 1000 (Nacre, rnacos, Nacos).
//!
//! - [`throughput`]: register / query / subscribe requests per second over
//!   the connections, each worker on its own connection.
//! - [`push_latency`]: subscribers on one service, a writer changing it at a
//!   fixed pace; the time from the change's request to each subscriber's
//!   push carrying it.
//! - [`idle_connections`]: how many connections the server holds, and its
//!   resident memory per idle connection.
//!
//! Every run is bounded in time and count; failures are counted, not fatal.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper::http::{HeaderMap, Method, Request, Uri};
use nacre::grpc::payload::{body_of, payload, type_of};
use nacre::grpc::proto::Payload;
use prost::Message;
use serde::Deserialize;

use crate::stats::{Recorder, Summary, percentile};

/// A push as the bench sees it: which connection got it, when, and the
/// change (`seq` in the instance's metadata) it carries.
pub struct Push {
    pub conn: usize,
    pub at: Instant,
    pub seq: u64,
}

/// Where the subscribers' readers note their pushes, for the bench to read
/// at the end of each change's window. (A channel to the bench's main task
/// woke that thread once per push: a futex call and a context switch per
/// push on the client side, which shares the machine with the server.)
pub type PushLog = Arc<Mutex<Vec<Push>>>;

/// The highest `seq` among a push's hosts (a server that adds instances
/// rather than replacing them pushes every earlier one too).
fn newest_seq(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    text.split("\"seq\":\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .max()
}

/// The string value that follows `prefix` in `body` (up to the next quote).
fn field<'a>(body: &'a [u8], prefix: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(prefix)? + prefix.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// The largest message the bench accepts from a server, bytes.
const MAX_MESSAGE: usize = 64 << 20;

/// `message` in gRPC's length-prefixed framing: a zero byte (not
/// compressed), the length as a big-endian `u32`, the protobuf.
fn framed(message: &Payload) -> Bytes {
    let len = message.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(len as u32);
    // Encoding into a buffer reserved for it cannot run out of room.
    let _ = message.encode(&mut out);
    out.freeze()
}

/// Takes the first whole gRPC message off the front of `buf`, if one has
/// arrived; an error for a compressed or oversized one.
fn next_message(buf: &mut BytesMut) -> anyhow::Result<Option<Payload>> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let compressed = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if compressed != 0 {
        bail!("the server sent a compressed message");
    }
    if len > MAX_MESSAGE {
        bail!("the server sent a message of {len} bytes");
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    buf.advance(5);
    let message = buf.split_to(len);
    Ok(Some(Payload::decode(message.freeze())?))
}

/// An error unless `headers` (an answer's trailers, or the headers of a
/// trailers-only answer) say `grpc-status: 0`; `None` when they carry no
/// status at all.
fn grpc_status(headers: &HeaderMap) -> Option<anyhow::Result<()>> {
    let status = headers.get("grpc-status")?;
    if status == "0" {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    Some(Err(anyhow!(
        "gRPC status {}: {message}",
        status.to_str().unwrap_or("?")
    )))
}

/// An error unless an answer's headers say HTTP 200 and, when they carry
/// a gRPC status already (a trailers-only answer), status 0.
fn answered(answer: &hyper::http::Response<h2::RecvStream>) -> anyhow::Result<()> {
    if answer.status() != hyper::http::StatusCode::OK {
        bail!("the server answered HTTP {}", answer.status());
    }
    grpc_status(answer.headers()).unwrap_or(Ok(()))
}

/// One HTTP/2 connection driven by the `h2` crate, the bench's gRPC
/// transport. A request's headers and its message leave in one write
/// (hyper's client sends the body from a task of its own: two writes, two
/// TCP segments and a task per request, which made the bench the costlier
/// side of every exchange on two shared cores).
struct Transport {
    send: h2::client::SendRequest<Bytes>,
    unary: Uri,
    stream: Uri,
}

impl Transport {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Transport> {
        let tcp =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await
                .with_context(|| format!("connecting to {addr}: timed out"))?
                .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (send, connection) = h2::client::Builder::new()
            // hyper's client windows (what the bench used before, and near
            // grpc-java's 1 MiB): no flow-control stalls on larger answers.
            .initial_window_size(2 << 20)
            .initial_connection_window_size(5 << 20)
            .enable_push(false)
            .handshake(tcp)
            .await
            .with_context(|| format!("HTTP/2 handshake with {addr}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Transport {
            send,
            unary: format!("http://{addr}/Request/request").parse()?,
            stream: format!("http://{addr}/BiRequestStream/requestBiStream").parse()?,
        })
    }

    /// Opens a gRPC call to `uri`, its first message sent with the headers
    /// (and the request side closed after it when `last`).
    async fn open(
        &mut self,
        uri: Uri,
        first: &Payload,
        last: bool,
    ) -> anyhow::Result<(h2::client::ResponseFuture, h2::SendStream<Bytes>)> {
        // Encoded before the headers are queued, so that both are there
        // when the connection task next writes.
        let first = framed(first);
        poll_fn(|cx| self.send.poll_ready(cx)).await?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (answer, mut to_server) = self.send.send_request(request, false)?;
        to_server.send_data(first, last)?;
        Ok((answer, to_server))
    }

    /// One unary call of `Request/request`.
    async fn call(&mut self, request: &Payload) -> anyhow::Result<Payload> {
        let (answer, _) = self.open(self.unary.clone(), request, true).await?;
        let answer = answer.await?;
        answered(&answer)?;
        let mut body = answer.into_body();
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
            buf.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await?.unwrap_or_default();
        grpc_status(&trailers).unwrap_or_else(|| Err(anyhow!("the answer had no grpc-status")))?;
        next_message(&mut buf)?.context("the answer carried no message")
    }
}

/// One client connection: unary calls, and a stream whose reader answers
/// probes and acks pushes (noting them when asked to).
pub struct GrpcConn {
    transport: Transport,
    /// The stream's reader, stopped (and the stream reset) with the
    /// connection.
    reader: tokio::task::AbortHandle,
}

impl Drop for GrpcConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A connection stream's reader: answers each probe, acks each push on the
/// stream itself and notes the push in `pushes` as connection `.0`. Ends
/// with the stream, or at a message it cannot read (rather than let the
/// rest pile up behind it).
async fn answer_stream(
    mut inbound: h2::RecvStream,
    mut to_server: h2::SendStream<Bytes>,
    pushes: Option<(usize, PushLog)>,
) {
    let mut buf = BytesMut::new();
    while let Some(Ok(chunk)) = inbound.data().await {
        let at = Instant::now();
        let _ = inbound.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        loop {
            let message = match next_message(&mut buf) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(_) => return,
            };
            let answer = match type_of(&message) {
                "NotifySubscriberRequest" => "NotifySubscriberResponse",
                "ClientDetectionRequest" => "ClientDetectionResponse",
                _ => continue,
            };
            // Read only what is needed, by search: a JSON tree per push
            // would make the bench, not the server, the slow side.
            let body = body_of(&message);
            let request_id = field(body, "\"requestId\":\"").unwrap_or("");
            let reply = format!(r#"{{"resultCode":200,"errorCode":0,"requestId":"{request_id}"}}"#);
            if to_server
                .send_data(framed(&payload(answer, reply)), false)
                .is_err()
            {
                return;
            }
            if let (Some((conn, log)), Some(seq)) = (&pushes, newest_seq(body)) {
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                log.push(Push {
                    conn: *conn,
                    at,
                    seq,
                });
            }
        }
    }
}

impl GrpcConn {
    /// Connects and sets up like the SDKs; every push is noted in `pushes`
    /// as connection number `.0`.
    pub async fn connect(
        addr: SocketAddr,
        pushes: Option<(usize, PushLog)>,
    ) -> anyhow::Result<GrpcConn> {
        let mut transport = Transport::connect(addr).await?;
        let check = transport.call(&payload("ServerCheckRequest", BARE)).await?;
        if type_of(&check) != "ServerCheckResponse" {
            bail!("server check answered {}", type_of(&check));
        }
        let setup = r#"{"clientVersion":"nacre-bench","tenant":"","labels":{"module":"naming","source":"sdk"}}"#;
        let (answer, to_server) = transport
            .open(
                transport.stream.clone(),
                &payload("ConnectionSetupRequest", setup),
                false,
            )
            .await?;
        let answer = answer.await?;
        answered(&answer)?;
        let reader =
            tokio::spawn(answer_stream(answer.into_body(), to_server, pushes)).abort_handle();
        // Servers register the connection as the setup arrives; wait until
        // a unary call is accepted (no server-specific SetupAck needed).
        let mut conn = GrpcConn { transport, reader };
        for _ in 0..250 {
            let health = conn.call("HealthCheckRequest", BARE.into()).await?;
            if type_of(&health) == "HealthCheckResponse" {
                return Ok(conn);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!("the connection was not registered within 5 s")
    }

    /// One request (`body` is its JSON).
    pub async fn call(&mut self, kind: &str, body: String) -> anyhow::Result<Payload> {
        self.transport.call(&payload(kind, body)).await
    }

    /// One request; an `ErrorResponse` or a failed typed answer is an error.
    pub async fn expect_ok(&mut self, kind: &str, body: String) -> anyhow::Result<()> {
        let answer = self.call(kind, body).await?;
        let outcome: Outcome = serde_json::from_slice(body_of(&answer))?;
        if outcome.result_code != Some(200) {
            bail!(
                "{kind} answered {}: {}",
                type_of(&answer),
                String::from_utf8_lossy(body_of(&answer))
            );
        }
        Ok(())
    }
}

/// The body of a request that carries nothing but an (empty) request id.
pub const BARE: &str = r#"{"requestId":""}"#;

/// What the bench reads of an answer: its result, the rest skipped (the
/// same small cost whichever server answers, and no JSON tree per answer).
#[derive(Deserialize)]
struct Outcome {
    #[serde(rename = "resultCode")]
    result_code: Option<i64>,
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// An `InstanceRequest` registering 127.0.0.1:`port` with `seq` in its
/// metadata in the service named `service` (a JSON string, see [`quoted`]).
fn register_body(service: &str, port: u16, seq: u64) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":{service},"groupName":"DEFAULT_GROUP","type":"registerInstance","module":"naming","instance":{{"ip":"127.0.0.1","port":{port},"weight":1.0,"healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT","metadata":{{"seq":"{seq}"}}}}}}"#
    )
}

/// A `ServiceQueryRequest` (all clusters, all hosts) of `service` (a JSON string).
fn query_body(service: &str) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":{service},"groupName":"DEFAULT_GROUP","cluster":"","healthyOnly":false}}"#
    )
}

/// A `SubscribeServiceRequest` (all clusters) of `service` (a JSON string).
fn subscribe_body(service: &str) -> String {
    format!(
        r#"{{"namespace":"public","serviceName":{service},"groupName":"DEFAULT_GROUP","clusters":"","subscribe":true}}"#
    )
}

/// Opens `n` connections, `parallel` at a time.
pub async fn open_many(addr: SocketAddr, n: usize, parallel: usize) -> (Vec<GrpcConn>, Recorder) {
    let mut conns = Vec::with_capacity(n);
    let mut failures = Recorder::default();
    let mut started = 0;
    while started < n {
        let batch = parallel.min(n - started);
        let opened = futures_join(batch, addr).await;
        for result in opened {
            match result {
                Ok(c) => conns.push(c),
                Err(e) => failures.fail(e),
            }
        }
        started += batch;
    }
    (conns, failures)
}

async fn futures_join(count: usize, addr: SocketAddr) -> Vec<anyhow::Result<GrpcConn>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..count {
        set.spawn(GrpcConn::connect(addr, None));
    }
    let mut out = Vec::with_capacity(count);
    while let Some(joined) = set.join_next().await {
        out.push(joined.unwrap_or_else(|e| Err(anyhow::anyhow!("connect task failed: {e}"))));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    Register,
    Query,
    Subscribe,
}

/// Requests per second of `op` over `conns.len()` connections for `duration`.
pub async fn throughput(
    conns: Vec<GrpcConn>,
    op: Op,
    services: u64,
    prefix: &str,
    duration: Duration,
) -> Summary {
    let stop = Arc::new(AtomicBool::new(false));
    // Service names rendered once, not per request.
    let names: Arc<Vec<String>> = Arc::new(
        (0..services)
            .map(|s| quoted(&format!("{prefix}-{s}")))
            .collect(),
    );
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let stop = Arc::clone(&stop);
        let names = Arc::clone(&names);
        let all = names.len() as u64;
        let service = names[(i as u64 % all) as usize].clone();
        workers.spawn(async move {
            let mut recorder = Recorder::default();
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (kind, body) = match op {
                    // Same address, new metadata: a real change every time.
                    Op::Register => (
                        "InstanceRequest",
                        register_body(&service, 20_000 + i as u16 % 40_000, n),
                    ),
                    Op::Query => (
                        "ServiceQueryRequest",
                        query_body(&names[((i as u64 + n) % all) as usize]),
                    ),
                    Op::Subscribe => (
                        "SubscribeServiceRequest",
                        subscribe_body(&names[((i as u64 + n) % all) as usize]),
                    ),
                };
                let t = Instant::now();
                match conn.expect_ok(kind, body).await {
                    Ok(()) => recorder.record(t.elapsed()),
                    Err(e) => recorder.fail(e),
                }
            }
            (conn, recorder)
        });
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut total = Recorder::default();
    while let Some(joined) = workers.join_next().await {
        if let Ok((_, recorder)) = joined {
            total.merge(recorder);
        }
    }
    total.summary(elapsed)
}

/// Registers one instance in each of `services` services (for queries).
pub async fn preload(conns: &mut [GrpcConn], services: u64, prefix: &str) -> anyhow::Result<()> {
    for s in 0..services {
        let conn = &mut conns[(s as usize) % conns.len()];
        conn.expect_ok(
            "InstanceRequest",
            register_body(&quoted(&format!("{prefix}-{s}")), 9, 0),
        )
        .await?;
    }
    Ok(())
}

pub struct PushLatency {
    pub subscribers: usize,
    /// Subscribers that could not connect or subscribe.
    pub refused: u64,
    /// Why the first of them could not.
    pub refused_because: Option<String>,
    pub changes: u64,
    pub received: usize,
    pub missed: usize,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    /// The median of the changes' own p99s (each over its subscribers):
    /// with `change_p99_max_us`, whether the run's 1% tail is every
    /// change's, or a few slow changes'.
    pub change_p99_median_us: u32,
    /// The largest of the changes' own p99s.
    pub change_p99_max_us: u32,
}

/// `subscribers` connections subscribe to one service; a writer changes it
/// `changes` times, one every `interval` (longer than any server's merge
/// window, so each change is its own push), registering a new address each
/// time; each subscriber's first push carrying a change is timed from the
/// change's request.
pub async fn push_latency(
    addr: SocketAddr,
    subscribers: usize,
    changes: u64,
    interval: Duration,
    service: &str,
) -> anyhow::Result<PushLatency> {
    let pushes = PushLog::default();
    let mut subs = Vec::with_capacity(subscribers);
    let mut opening = tokio::task::JoinSet::new();
    for id in 0..subscribers {
        let log = Arc::clone(&pushes);
        opening.spawn(async move { GrpcConn::connect(addr, Some((id, log))).await });
    }
    // A server that refuses some subscribers is measured on the rest; the
    // refusals are reported.
    let mut refused = Recorder::default();
    while let Some(joined) = opening.join_next().await {
        match joined.context("connect task").and_then(|c| c) {
            Ok(conn) => subs.push(conn),
            Err(e) => refused.fail(e),
        }
    }
    if subs.is_empty() {
        bail!(
            "no subscriber could connect: {}",
            refused.first_error.unwrap_or_default()
        );
    }
    let service = &quoted(service);
    let mut writer = GrpcConn::connect(addr, None).await?;
    writer
        .expect_ok("InstanceRequest", register_body(service, 7, 0))
        .await?;
    let mut subscribed = Vec::with_capacity(subs.len());
    for mut sub in subs {
        let answer = sub
            .expect_ok("SubscribeServiceRequest", subscribe_body(service))
            .await;
        match answer {
            Ok(()) => subscribed.push(sub),
            Err(e) => refused.fail(e),
        }
    }
    // Let the subscriptions' first pushes (if a server sends any) pass.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let taken =
        |log: &PushLog| std::mem::take(&mut *log.lock().unwrap_or_else(PoisonError::into_inner));
    taken(&pushes);
    let mut sent_at = Vec::with_capacity(changes as usize + 1);
    sent_at.push(Instant::now());
    let mut latencies: Vec<u32> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut by_change: Vec<Vec<u32>> = vec![Vec::new(); changes as usize + 1];
    for seq in 1..=changes {
        sent_at.push(Instant::now());
        writer
            // A new address each time: every server sees a change of the
            // instance set, not only of metadata.
            .expect_ok(
                "InstanceRequest",
                register_body(service, 10_000 + (seq % 50_000) as u16, seq),
            )
            .await?;
        // The window is the interval: what arrived by its end is read then
        // (a late push is still timed from its change, at a later window).
        tokio::time::sleep(interval).await;
        for push in taken(&pushes) {
            let n = push.seq;
            if n >= 1 && (n as usize) < sent_at.len() && seen.insert((push.conn, n)) {
                let took = push.at.saturating_duration_since(sent_at[n as usize]);
                let took = took.as_micros().min(u32::MAX as u128) as u32;
                latencies.push(took);
                by_change[n as usize].push(took);
            }
        }
    }
    latencies.sort_unstable();
    let mut change_p99s: Vec<u32> = by_change
        .iter_mut()
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.sort_unstable();
            percentile(c, 99.0)
        })
        .collect();
    change_p99s.sort_unstable();
    let expected = subscribed.len() * changes as usize;
    drop(subscribed);
    Ok(PushLatency {
        subscribers,
        refused: refused.errors,
        refused_because: refused.first_error,
        changes,
        received: latencies.len(),
        missed: expected.saturating_sub(latencies.len()),
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        max_us: latencies.last().copied().unwrap_or(0),
        change_p99_median_us: percentile(&change_p99s, 50.0),
        change_p99_max_us: change_p99s.last().copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_taken_whole_however_they_arrive() -> anyhow::Result<()> {
        let one = framed(&payload("NotifySubscriberRequest", r#"{"requestId":"1"}"#));
        let two = framed(&payload("ClientDetectionRequest", r#"{"requestId":"2"}"#));
        // Split inside the first message, the second in the same chunk.
        let mut buf = BytesMut::from(&one[..7]);
        assert!(next_message(&mut buf)?.is_none(), "not whole yet");
        buf.extend_from_slice(&one[7..]);
        buf.extend_from_slice(&two);
        let first = next_message(&mut buf)?.context("the first")?;
        assert_eq!(type_of(&first), "NotifySubscriberRequest");
        let second = next_message(&mut buf)?.context("the second")?;
        assert_eq!(body_of(&second), br#"{"requestId":"2"}"#);
        assert!(next_message(&mut buf)?.is_none() && buf.is_empty());
        Ok(())
    }

    #[test]
    fn compressed_or_oversized_messages_are_refused() {
        let mut compressed = BytesMut::from(&[1u8, 0, 0, 0, 0][..]);
        assert!(next_message(&mut compressed).is_err());
        let mut huge = BytesMut::from(&[0u8, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(next_message(&mut huge).is_err());
    }

    #[test]
    fn a_failed_grpc_status_is_an_error_with_its_message() {
        let mut trailers = HeaderMap::new();
        assert!(grpc_status(&trailers).is_none());
        trailers.insert("grpc-status", "0".parse().expect("header"));
        assert!(matches!(grpc_status(&trailers), Some(Ok(()))));
        trailers.insert("grpc-status", "12".parse().expect("header"));
        trailers.insert("grpc-message", "no such method".parse().expect("header"));
        let error = grpc_status(&trailers)
            .and_then(Result::err)
            .expect("an error");
        assert!(error.to_string().contains("12: no such method"), "{error}");
    }
}
