//! The connection registry: one [`Connection`] per client transport (TCP +
//! HTTP/2), from accept to close, and what the client did through it — who
//! it said it is, what it published and subscribed to, the pushes it has not
//! acknowledged, the probe it has not answered.
//!
//! As in Nacos, the transport is the connection (NACOS-V2.md §4): the unary
//! calls and the one bi-directional stream of a transport share its id, and
//! when the transport ends the connection's instances and subscriptions go
//! with it. A connection is *registered* once its stream delivered a
//! `ConnectionSetupRequest`; before that only `ServerCheckRequest` is served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc};

use super::proto::Payload;
use crate::clock::now_millis;
use crate::push::figures::SubscriberFigures;
use crate::registry::model::{InstanceId, ServiceKey};

/// What the server sends down a connection's stream. Boxed, because the
/// channel allocates its slots up front and idle connections are many.
pub type Outbound = mpsc::Sender<Box<Payload>>;

/// Who the client said it is (`ConnectionSetupRequest`).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// `Nacos-Python-Client:v3.2.0` and the like.
    pub version: String,
    /// The namespace it named (`tenant`), `public` when empty.
    pub namespace: String,
    /// The labels it sent (`module`, `source`, `AppName`, ...), as given.
    pub labels: HashMap<String, String>,
    /// Its own idea of its IP (`metadata.clientIp`), else the peer address's.
    pub ip: String,
    /// Its application name (label `AppName`), for push filters.
    pub app: String,
}

/// A push waiting for its ack.
#[derive(Debug)]
pub struct UnackedPush {
    /// The push's request id, which the ack names.
    pub request_id: u64,
    /// When it was sent (ms since the epoch).
    pub sent_at: i64,
    /// The subscription's figures, counted when the ack (or its absence) comes.
    pub figures: Arc<SubscriberFigures>,
}

/// What a connection holds in the registry and expects of the node.
#[derive(Debug, Default)]
pub struct Holdings {
    /// One publication per service: the instances this connection registered
    /// there last (a register or a batch replaces it).
    pub publications: HashMap<ServiceKey, Vec<InstanceId>>,
    /// Services it subscribed to, each with the `lastRefTime` of the last
    /// push queued to it (0 before the first): a push rendered earlier than
    /// one already queued is not sent after it.
    pub subscriptions: HashMap<ServiceKey, i64>,
    /// The last push of each service not acknowledged yet. A newer push of
    /// the service replaces it.
    pub unacked: HashMap<ServiceKey, UnackedPush>,
    /// The `ClientDetectionRequest` awaiting an answer: request id, sent at (ms).
    pub probe: Option<(u64, i64)>,
}

/// Why a send did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The client is not reading fast enough: the send queue is full.
    Full,
    /// The connection has no stream, or it is gone.
    Closed,
}

/// One client transport.
pub struct Connection {
    /// `<ms>_<ip>_<port>`, as Nacos forms it.
    pub id: Arc<str>,
    /// The client's address as the socket sees it.
    pub remote: SocketAddr,
    /// The node's gRPC port the client dialled.
    pub local_port: u16,
    /// When the transport was accepted (ms).
    pub created: i64,
    /// Last message from the client (ms): any unary call or stream message.
    last_active: AtomicI64,
    client: OnceLock<ClientInfo>,
    outbound: OnceLock<Outbound>,
    /// A stream was opened: its setup may still be on its way.
    stream_opened: AtomicBool,
    setup_done: Notify,
    /// Released: its holdings were removed and it serves nothing more.
    released: AtomicBool,
    /// Since when (ms) the send queue has been full; 0 when it is not.
    stalled_since: AtomicI64,
    /// Wakes the one task waiting in [`Connection::closed`] (the transport's:
    /// it polls that on every turn, and an `AtomicWaker` costs it a compare
    /// where a `Notify` took a lock).
    close: AtomicWaker,
    closing: AtomicBool,
    holdings: Mutex<Holdings>,
    /// The index of the transport thread serving it, once handed over.
    transport_thread: OnceLock<usize>,
}

impl Connection {
    fn new(remote: SocketAddr, local_port: u16) -> Connection {
        let now = now_millis();
        Connection {
            id: format!("{now}_{}_{}", remote.ip(), remote.port()).into(),
            remote,
            local_port,
            created: now,
            last_active: AtomicI64::new(now),
            client: OnceLock::new(),
            outbound: OnceLock::new(),
            stream_opened: AtomicBool::new(false),
            setup_done: Notify::new(),
            released: AtomicBool::new(false),
            stalled_since: AtomicI64::new(0),
            close: AtomicWaker::new(),
            closing: AtomicBool::new(false),
            holdings: Mutex::new(Holdings::default()),
            transport_thread: OnceLock::new(),
        }
    }

    /// Records the index of the transport thread serving the connection
    /// (set once, as it is handed over).
    pub(crate) fn set_transport_thread(&self, index: usize) {
        let _ = self.transport_thread.set(index);
    }

    /// The index of the transport thread serving the connection; `None`
    /// before it is handed over.
    pub(crate) fn transport_thread(&self) -> Option<usize> {
        self.transport_thread.get().copied()
    }

    /// Records activity from the client.
    pub fn touch(&self) {
        self.last_active.store(now_millis(), Ordering::Relaxed);
    }

    /// When the client was last heard from (any request or stream message),
    /// in ms since the epoch.
    pub fn last_active(&self) -> i64 {
        self.last_active.load(Ordering::Relaxed)
    }

    /// Whether the client may make unary calls: set up and not released.
    pub fn is_registered(&self) -> bool {
        self.client.get().is_some() && !self.is_released()
    }

    /// Waits up to `limit` for a setup already on its way (Go and Rust
    /// clients call right after sending it, on another HTTP/2 stream);
    /// returns whether the connection is registered.
    pub async fn registered_within(&self, limit: Duration) -> bool {
        if self.is_registered() || !self.stream_opened.load(Ordering::Acquire) {
            return self.is_registered();
        }
        let notified = self.setup_done.notified();
        if self.is_registered() {
            return true;
        }
        let _ = tokio::time::timeout(limit, notified).await;
        self.is_registered()
    }

    /// Who the client said it is; `None` before its `ConnectionSetupRequest`.
    pub fn client(&self) -> Option<&ClientInfo> {
        self.client.get()
    }

    /// Marks that a stream was opened; false if one already was (a
    /// connection has one stream for its whole life).
    pub fn open_stream(&self) -> bool {
        !self.stream_opened.swap(true, Ordering::AcqRel)
    }

    /// Registers the connection with its stream's sender and the client's
    /// setup. False if it was already set up or is released.
    pub fn register(&self, outbound: Outbound, client: ClientInfo) -> bool {
        if self.is_released() || self.outbound.set(outbound).is_err() {
            return false;
        }
        let registered = self.client.set(client).is_ok();
        self.setup_done.notify_waiters();
        registered
    }

    /// Queues a message for the client without waiting.
    pub fn send(&self, message: Payload) -> Result<(), SendError> {
        let outbound = self.outbound.get().ok_or(SendError::Closed)?;
        if self.is_released() {
            return Err(SendError::Closed);
        }
        match outbound.try_send(Box::new(message)) {
            Ok(()) => {
                self.stalled_since.store(0, Ordering::Relaxed);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let _ = self.stalled_since.compare_exchange(
                    0,
                    now_millis(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                Err(SendError::Full)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Closed),
        }
    }

    /// Since when (ms) the client has not been reading: the send queue has
    /// been full since then and still is. `None` while it keeps up.
    pub fn stalled_since(&self) -> Option<i64> {
        let since = self.stalled_since.load(Ordering::Relaxed);
        if since == 0 {
            return None;
        }
        let full = self.outbound.get().is_some_and(|o| o.capacity() == 0);
        if !full {
            self.stalled_since.store(0, Ordering::Relaxed);
            return None;
        }
        Some(since)
    }

    /// Marks the connection released; true for the one caller that does it.
    pub fn mark_released(&self) -> bool {
        !self.released.swap(true, Ordering::AcqRel)
    }

    /// Whether the connection was released (its effects on the registry undone).
    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// Asks the transport to close (the server task drops it).
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.close.wake();
    }

    /// Whether the node or the client has started closing the transport.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Completes once [`Connection::close`] was called. One task at a time
    /// may wait (the transport's).
    pub async fn closed(&self) {
        std::future::poll_fn(|cx| {
            if self.is_closing() {
                return std::task::Poll::Ready(());
            }
            self.close.register(cx.waker());
            // A close between the check and the registration woke nobody.
            if self.is_closing() {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
        .await;
    }

    /// The connection's holdings, under their lock (never held across an await).
    pub fn holdings(&self) -> MutexGuard<'_, Holdings> {
        self.holdings.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every open transport of the node.
#[derive(Default)]
pub struct Connections {
    by_id: DashMap<Arc<str>, Arc<Connection>>,
    /// Source of request ids for server-initiated messages.
    next_request_id: AtomicU64,
}

impl Connections {
    /// Records a newly accepted transport.
    pub fn open(&self, remote: SocketAddr, local_port: u16) -> Arc<Connection> {
        let conn = Arc::new(Connection::new(remote, local_port));
        self.by_id.insert(Arc::clone(&conn.id), Arc::clone(&conn));
        conn
    }

    /// Forgets a transport that ended.
    pub fn remove(&self, conn: &Connection) {
        self.by_id.remove(&conn.id);
    }

    /// Transports open now, set up or not.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether no transport is open.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// A snapshot of every transport.
    pub fn all(&self) -> Vec<Arc<Connection>> {
        self.by_id.iter().map(|c| Arc::clone(c.value())).collect()
    }

    /// A fresh id for a server-initiated request.
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    #[tokio::test]
    async fn closed_completes_on_a_close_before_or_while_waiting() {
        let conns = Connections::default();
        let early = conns.open(addr(), 9848);
        early.close();
        tokio::time::timeout(Duration::from_secs(5), early.closed())
            .await
            .expect("a close before the wait completes it");
        let late = conns.open(addr(), 9848);
        let waiting = tokio::spawn({
            let late = Arc::clone(&late);
            async move { late.closed().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "nothing closed it yet");
        late.close();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a close while waiting completes it")
            .expect("the waiting task");
    }

    #[tokio::test]
    async fn registration_once_and_sends_bounded_by_the_queue() {
        let conns = Connections::default();
        let conn = conns.open(addr(), 9848);
        assert!(conn.id.ends_with("_127.0.0.1_40000"));
        assert!(!conn.is_registered());
        assert_eq!(
            conn.send(super::super::payload::payload("X", "{}")),
            Err(SendError::Closed)
        );
        assert!(conn.open_stream());
        assert!(!conn.open_stream(), "a second stream is refused");
        let (tx, _rx) = mpsc::channel(1);
        assert!(conn.register(tx.clone(), ClientInfo::default()));
        assert!(!conn.register(tx, ClientInfo::default()));
        assert!(conn.registered_within(Duration::ZERO).await);
        let message = || super::super::payload::payload("X", "{}");
        assert_eq!(conn.send(message()), Ok(()));
        assert_eq!(conn.send(message()), Err(SendError::Full));
        assert!(conn.stalled_since().is_some());
        assert!(conn.mark_released());
        assert!(!conn.mark_released());
        assert!(!conn.is_registered());
        conns.remove(&conn);
        assert!(conns.is_empty());
    }
}
