//! The WebAssembly runtime under the plugins.
//!
//! - [`engine`]: the engine and linkers; loading a component into a [`Plugin`].
//! - [`plugin`]: a loaded plugin and how every call into it is made.
//! - [`store`]: the data behind one plugin store; [`host_api`]: the `host`
//!   interface served from it; [`log`]: bounded, rate-limited plugin logs.
//! - [`limits`]: what one plugin may cost the node (deadline ticks, memory
//!   cap, hostcall fuel, log and queue sizes, quarantine timing).
//! - [`supervision`]: failure accounting and quarantine; call statistics.
//! - [`failure`]: what a failed call means, as a [`PluginError`](super::PluginError).
//! - [`worker`]: the thread a request-path plugin's calls run on.
//!
//! Every call gets a deadline (epoch ticks), a memory cap and hostcall fuel;
//! a trap, timeout, exhausted memory or oversized answer drops the store,
//! counts a failure, and repeated failures quarantine the plugin with a
//! growing backoff.

pub mod engine;
pub mod failure;
pub mod host_api;
pub mod limits;
pub mod log;
pub mod plugin;
pub mod store;
pub mod supervision;
pub mod worker;

pub use engine::PluginEngine;
pub use plugin::{Bound, Plugin, PluginState};
pub use store::{LogSink, PluginContext, StoreState};
pub use supervision::CallStats;

/// The WAT components of the host's integration tests, for the unit tests of
/// the limits here (one copy of the component text format).
#[cfg(test)]
#[path = "../../../tests/plugins_wat/mod.rs"]
pub(super) mod test_components;
#[cfg(test)]
mod testing;
