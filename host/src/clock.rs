//! The node's clock: wall-clock readings in the units the protocols use.
//!
//! Beats, `lastRefTime` and expiry work in milliseconds since the Unix epoch
//! (as Nacos does); Distro versions in microseconds (see
//! [`crate::consistency::distro`]). A clock before the epoch reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch: the unit of beats and `lastRefTime`.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Microseconds since the Unix epoch: the clock part of Distro versions.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
