//! What one subscriber has been pushed: the node's counters
//! ([`super::PushCounters`], `grpc::stats`) say how pushing goes overall, these
//! say which client is slow, lossy or gone (the console's subscribers page,
//! `service/subscribers`).
//!
//! Both kinds of subscriber (UDP push addresses and gRPC subscriptions) hold
//! one [`SubscriberFigures`] each, shared with their pushes waiting for an
//! ack: the figures live exactly as long as the subscriber (and its last
//! unacked push), so their memory is bounded by the subscribers held.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::clock::now_millis;
use crate::wire::PushFigures;

/// The counters of one subscriber since it subscribed.
#[derive(Debug, Default)]
pub struct SubscriberFigures {
    /// When its latest push was first sent (ms since the epoch; 0: never).
    last_push_at: AtomicI64,
    /// When its latest ack arrived (ms since the epoch; 0: never).
    last_ack_at: AtomicI64,
    /// Pushes sent to it (first sends; a resend is a retransmit).
    pushes: AtomicU64,
    /// Pushes it acknowledged.
    acks: AtomicU64,
    /// Pushes sent again for lack of an ack.
    retransmits: AtomicU64,
    /// Pushes that could not be sent, were answered with an error or went
    /// unacknowledged after every retry.
    failures: AtomicU64,
}

impl SubscriberFigures {
    /// A push was sent for the first time.
    pub fn pushed(&self) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
        self.last_push_at.store(now_millis(), Ordering::Relaxed);
    }

    /// A push was acknowledged.
    pub fn acked(&self) {
        self.acks.fetch_add(1, Ordering::Relaxed);
        self.last_ack_at.store(now_millis(), Ordering::Relaxed);
    }

    /// A push was sent again.
    pub fn retransmitted(&self) {
        self.retransmits.fetch_add(1, Ordering::Relaxed);
    }

    /// A push failed.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The figures now, as members report them.
    pub fn snapshot(&self) -> PushFigures {
        let at = |t: &AtomicI64| Some(t.load(Ordering::Relaxed)).filter(|t| *t > 0);
        PushFigures {
            last_push_at: at(&self.last_push_at),
            last_ack_at: at(&self.last_ack_at),
            pushes: self.pushes.load(Ordering::Relaxed),
            acks: self.acks.load(Ordering::Relaxed),
            retransmits: self.retransmits.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_subscriber_has_no_times_and_counts_up() {
        let figures = SubscriberFigures::default();
        assert_eq!(figures.snapshot(), PushFigures::default());
        figures.pushed();
        figures.retransmitted();
        figures.acked();
        figures.pushed();
        figures.failed();
        let now = figures.snapshot();
        assert_eq!(
            (now.pushes, now.acks, now.retransmits, now.failures),
            (2, 1, 1, 1)
        );
        assert!(now.last_push_at.is_some() && now.last_ack_at.is_some());
    }
}
