//! WebAssembly plugins: users change the registry's behaviour with components
//! written in any language, loaded while the node runs, unable to harm it.
//!
//! The node's handle is [`Plugins`]: the set of loaded plugins, replaced
//! whole when the plugin folder changes (so a call in flight keeps the plugin
//! it started with), and the three ways the node consults them.
//!
//! - Loading: [`folder`] (the only place plugin files come from: confined,
//!   regular files, size-capped), [`manifest`] (a plugin's TOML manifest) with
//!   [`scope`] (its `applies_to` globs, compiled once), `set` (the loaded set
//!   and loading one plugin), `reload` (following the folder, at the cost of
//!   what changed), [`artifact_cache`] (compiled components kept on disk
//!   between loads).
//! - Calling, one file per world: `listener` (every coalesced change, on a
//!   thread of its own), `health_policy` (instance health, on beats and
//!   periodic checks), `push_filter` (what a subscriber is sent) with `answer`
//!   (what a filter may answer).
//! - Underneath: [`runtime`] (engine, stores, limits, quarantine, the
//!   request-path workers), `bindings` (the host side of the `nacre:plugin`
//!   WIT worlds), [`outbound_http`] (`wasi:http` for plugins granted it).
//! - Reporting: `status` (`GET /nacre/v1/plugins`), [`error`] (what can go
//!   wrong, typed).
//!
//! docs/PLUGINS.md is the author's view of the same: each limit and what a
//! plugin sees when it hits it.

mod answer;
pub mod artifact_cache;
pub(crate) mod bindings;
pub mod error;
pub mod folder;
mod health_policy;
mod listener;
pub mod manifest;
pub mod outbound_http;
mod push_filter;
mod reload;
pub mod runtime;
pub mod scope;
mod set;
mod status;
pub mod tester;

pub use error::{AnswerError, LoadError, PluginError};
pub use health_policy::HealthVerdict;
pub use listener::PluginListener;
pub use push_filter::{FilterOutcome, SubscriberInfo};
pub use set::Plugins;
pub use status::PluginStatus;
