//! Finding connections whose client is gone or stuck (NACOS-V2.md §4, §6).
//!
//! A closed or killed client's transport ends and is released at once (see
//! `server`). What is left are the ones the transport cannot tell about:
//!
//! - a half-open connection (the peer vanished without a FIN): silent for
//!   `grpc.idle_probe_ms`, it gets a `ClientDetectionRequest`; no answer
//!   (nor anything else) within `grpc.probe_timeout_ms` closes it, as
//!   Nacos does after 20 s + 5 s;
//! - a client that does not read: its send queue stays full for
//!   `grpc.stalled_close_ms` and it is closed (Nacos: 5 minutes);
//! - a transport that never set up: closed after the same idle time plus
//!   the probe timeout, so idle sockets cannot pile up.
//!
//! Closing a connection releases it: its instances leave the registry.
//!
//! And one about the node itself: a cluster member that has not been ready
//! (it lost its majority) for `grpc::Parts::close_when_not_ready_after`
//! tells every client to reconnect (`ConnectResetRequest`) and closes its
//! connection, so the clients redo their registrations through a member
//! that is ready before the others forget this member's connections.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::GrpcDoor;
use super::connection::Connection;
use super::payload::payload;
use crate::clock::now_millis;
use crate::shutdown::Shutdown;

/// Why the node closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Probe,
    NeverSetUp,
    Unresponsive,
    Stalled,
}

impl GrpcDoor {
    /// Checks every connection periodically, until shutdown.
    pub async fn run_liveness(self: Arc<Self>, mut shutdown: Shutdown) {
        let every = Duration::from_millis(self.config.idle_probe_ms / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(3));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut not_ready_since: Option<i64> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.recv() => return,
            }
            let now = now_millis();
            if self.is_ready() {
                not_ready_since = None;
            } else {
                let since = *not_ready_since.get_or_insert(now);
                if now - since >= self.close_when_not_ready_after.as_millis() as i64 {
                    self.close_all_not_ready();
                }
            }
            for conn in self.connections.all() {
                if conn.is_closing() {
                    continue;
                }
                match self.judge(&conn, now) {
                    Verdict::Keep => {}
                    Verdict::Probe => self.probe(&conn, now),
                    verdict => {
                        tracing::info!(connection = %conn.id, ?verdict, "closing gRPC connection");
                        let counter = match verdict {
                            Verdict::Stalled => &self.stats.closed_stalled,
                            _ => &self.stats.closed_unresponsive,
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        conn.close();
                    }
                }
            }
        }
    }

    /// Sends every client elsewhere: this member is not ready.
    fn close_all_not_ready(&self) {
        let mut closed = 0;
        for conn in self.connections.all() {
            if conn.is_closing() {
                continue;
            }
            self.reset(&conn);
            closed += 1;
        }
        if closed > 0 {
            self.stats
                .closed_not_ready
                .fetch_add(closed, Ordering::Relaxed);
            tracing::warn!(
                connections = closed,
                "this member is not ready (it does not reach a majority): \
                 told its gRPC clients to reconnect to another member"
            );
        }
    }

    fn judge(&self, conn: &Connection, now: i64) -> Verdict {
        let idle_limit = self.config.idle_probe_ms as i64;
        let answer_limit = self.config.probe_timeout_ms as i64;
        let idle = now - conn.last_active();
        if !conn.is_registered() {
            return if idle >= idle_limit + answer_limit {
                Verdict::NeverSetUp
            } else {
                Verdict::Keep
            };
        }
        if conn
            .stalled_since()
            .is_some_and(|since| now - since >= self.config.stalled_close_ms as i64)
        {
            return Verdict::Stalled;
        }
        let mut holdings = conn.holdings();
        match holdings.probe {
            // Anything heard since the probe went out answers it.
            Some((_, sent)) if conn.last_active() >= sent => {
                holdings.probe = None;
                Verdict::Keep
            }
            Some((_, sent)) if now - sent >= answer_limit => Verdict::Unresponsive,
            Some(_) => Verdict::Keep,
            None if idle >= idle_limit => Verdict::Probe,
            None => Verdict::Keep,
        }
    }

    fn probe(&self, conn: &Connection, now: i64) {
        let request_id = self.connections.next_request_id();
        let body = format!(r#"{{"requestId":"{request_id}","module":"internal","headers":{{}}}}"#);
        // A full queue is an unanswered probe too: the timeout decides.
        let _ = conn.send(payload("ClientDetectionRequest", body));
        conn.holdings().probe = Some((request_id, now));
        self.stats.probes_sent.fetch_add(1, Ordering::Relaxed);
    }
}
