//! The push socket's receive side: acks in, everything else counted and
//! dropped. Nothing a packet contains can stop the loop.

use std::sync::atomic::Ordering;

use super::{PushService, packet};
use crate::shutdown::Shutdown;

impl PushService {
    /// Reads packets until shutdown.
    pub(crate) async fn receive_acks(self, mut shutdown: Shutdown) {
        // Larger than any ack, so an oversized packet is seen whole and refused.
        let mut buf = vec![0u8; packet::MAX_DATAGRAM + 1];
        loop {
            let received = tokio::select! {
                r = self.inner.socket.recv_from(&mut buf) => r,
                _ = shutdown.recv() => return,
            };
            let (len, from) = match received {
                Ok(r) => r,
                Err(e) => {
                    // ICMP "port unreachable" from a gone subscriber surfaces here on Linux.
                    tracing::debug!(error = %e, "push socket receive error");
                    continue;
                }
            };
            match packet::decode_ack(&buf[..len]) {
                Ok(last_ref_time) => {
                    if !self.acknowledge(from, last_ref_time) {
                        tracing::debug!(%from, last_ref_time, "ack matches no pending push");
                    }
                }
                Err(reason) => {
                    self.inner
                        .counters
                        .bad_packets
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%from, %reason, "ignored packet on the push socket");
                }
            }
        }
    }
}
