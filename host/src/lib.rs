//! Nacre: a service registry that speaks the Nacos 1.x naming API.
//!
//! # Layout
//!
//! A request flows down this list, and a change flows on to the listeners:
//!
//! - [`http`]: the Nacos v1 open API (`/nacos/v1/ns/...`): parameters in, JSON out.
//! - [`naming`]: the model (service → cluster → instance), Nacos's rules for
//!   each operation, and the in-memory registry.
//! - [`consistency`]: the `put / remove / get / listen` facade; ephemeral data
//!   (in memory, replicated across a cluster by Distro) and persistent data
//!   (a write-ahead log on disk, or Raft in a cluster).
//! - [`notifier`]: coalesced change events, delivered off the write path.
//! - [`push`]: UDP push of changes to subscribed clients.
//! - [`plugins`]: WebAssembly listeners, health policies and push filters.
//! - [`health`]: the beat checker that turns silent instances unhealthy, then
//!   removes them; the prober that checks persistent instances by TCP or HTTP.
//!
//! Around them: [`cluster`] (members, their health, who is responsible for
//! which service, the internal API's credential), [`config`] (every knob), [`switches`] (runtime switches),
//! [`node`] (wires one node together), [`shutdown`], [`system_stats`].

pub mod cluster;
pub mod config;
pub mod consistency;
pub mod health;
pub mod http;
pub mod naming;
pub mod node;
pub mod notifier;
pub mod plugins;
pub mod push;
pub mod shutdown;
pub mod switches;
pub mod system_stats;

pub use config::Config;
pub use node::Node;
