//! Health checking of instances.
//!
//! - [`beat_checker`]: ephemeral instances live on client beats.

pub mod beat_checker;

pub use beat_checker::BeatChecker;
