//! The threads that serve gRPC transports: one single-threaded runtime per
//! core (or `grpc.transport_threads`), each serving the connections handed
//! to it for their whole life.
//!
//! A transport's work is a chain of small tasks that wake each other: the
//! HTTP/2 connection task, hyper's task per stream, the stream's reader. On
//! the node's work-stealing runtime every wake may hand a task to the other
//! worker and unpark it (a futex call), and the tasks' state is shared
//! between threads. On a runtime of its own, a connection's tasks wake each
//! other on one thread. Measured (docs/BENCHMARKS.md, "Transport
//! threads"): 13–19% less server CPU per unary request.
//!
//! The accept loop stays on the node's runtime and deals accepted sockets
//! out in turn; everything a transport's handlers call (the registry,
//! Distro, Raft, the notifier) is shared with the rest of the node as
//! before, through its locks and channels. Pushes are sent from the thread
//! serving each subscriber (`push`): one wake-up of each thread per push,
//! rather than one per subscriber.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::GrpcDoor;
use super::connection::Connection;

/// An accepted transport on its way to its thread.
type HandOver = (std::net::TcpStream, Arc<Connection>);

/// The running transport threads of one door.
pub(super) struct TransportThreads {
    queues: Vec<mpsc::UnboundedSender<HandOver>>,
    runtimes: Vec<Handle>,
    threads: Vec<JoinHandle<()>>,
    next: AtomicUsize,
}

impl TransportThreads {
    /// Starts `count` threads (at least one), named `grpc-<port>-<i>` after
    /// the door's gRPC port.
    ///
    /// # Errors
    /// A runtime or a thread could not be created (out of memory or
    /// threads): the node does not start its gRPC door. The threads already
    /// started end.
    pub(super) fn start(
        door: &Arc<GrpcDoor>,
        port: u16,
        count: usize,
    ) -> std::io::Result<TransportThreads> {
        let mut queues = Vec::new();
        let mut runtimes = Vec::new();
        let mut threads = Vec::new();
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtimes.push(runtime.handle().clone());
            let (queue, arrivals) = mpsc::unbounded_channel();
            let door = Arc::clone(door);
            let thread = std::thread::Builder::new()
                .name(format!("grpc-{port}-{i}"))
                .spawn(move || runtime.block_on(serve_arrivals(door, arrivals)))?;
            queues.push(queue);
            threads.push(thread);
        }
        Ok(TransportThreads {
            queues,
            runtimes,
            threads,
            next: AtomicUsize::new(0),
        })
    }

    /// The threads' runtimes, in thread order, handed to their one user (the
    /// door's push writers): a task spawned on one runs on that thread
    /// (until it stops, when what runs there is dropped).
    pub(super) fn take_runtimes(&mut self) -> Vec<Handle> {
        std::mem::take(&mut self.runtimes)
    }

    /// Hands an accepted transport to the next thread in turn, which serves
    /// it from then on. The connection is removed again if that fails.
    pub(super) fn hand_over(&self, door: &GrpcDoor, tcp: TcpStream, conn: Arc<Connection>) {
        // The socket leaves this runtime's reactor for the thread's own.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(connection = %conn.id, error = %e, "could not hand over a gRPC transport");
                door.connections.remove(&conn);
                return;
            }
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.queues.len();
        conn.set_transport_thread(i);
        if let Err(mpsc::error::SendError((_, conn))) = self.queues[i].send((tcp, conn)) {
            // The thread has ended: only when it failed, since it ends only
            // after this struct is gone.
            tracing::warn!(thread = i, "a gRPC transport thread is gone");
            door.connections.remove(&conn);
        }
    }

    /// Stops taking transports and waits for the threads to end; what they
    /// still serve is dropped with their runtimes (the door closed every
    /// connection before).
    pub(super) async fn stop(self) {
        drop(self.queues);
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for thread in threads {
                if thread.join().is_err() {
                    tracing::warn!("a gRPC transport thread panicked");
                }
            }
        });
        if let Err(e) = joined.await {
            tracing::warn!(error = %e, "waiting for the gRPC transport threads failed");
        }
    }
}

/// A thread's loop: serves each transport it is handed until the door stops
/// handing them over.
async fn serve_arrivals(door: Arc<GrpcDoor>, mut arrivals: mpsc::UnboundedReceiver<HandOver>) {
    while let Some((tcp, conn)) = arrivals.recv().await {
        match TcpStream::from_std(tcp) {
            Ok(tcp) => {
                tokio::spawn(Arc::clone(&door).serve_transport(tcp, conn));
            }
            Err(e) => {
                tracing::debug!(connection = %conn.id, error = %e, "could not take over a gRPC transport");
                door.connections.remove(&conn);
            }
        }
    }
}
