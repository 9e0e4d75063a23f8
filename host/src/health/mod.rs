//! Health checking of instances.
//!
//! - [`beat_checker`]: ephemeral instances live on client beats.
//! - [`prober`]: persistent instances are probed (TCP or HTTP) by the node
//!   responsible for their service.

pub mod beat_checker;
pub mod prober;

pub use beat_checker::BeatChecker;
pub use prober::HealthProber;
