//! Nacre: a service registry that speaks the Nacos naming API.
//!
//! # Layout
//!
//! A request flows down this list, and a change flows on to the listeners:
//!
//! - [`http`]: the front door of Nacos 1.x clients, the v1 open API
//!   (`/nacos/v1/ns/...`): parameters in, JSON out; and the cluster-internal
//!   routes.
//! - [`console`]: the front door of operators: the web console at
//!   `/nacos/`, its change feed and live stream.
//! - [`grpc`]: the front door of Nacos 2.x clients: gRPC on the HTTP port +
//!   1000, the connection as the lease of its instances, pushes on the
//!   stream.
//! - [`auth`]: who a request comes from (token, or username and password)
//!   and whether its route lets them, for both doors; over the auth tables
//!   of [`accounts`] (a leaf), which change through Raft or a local log.
//! - [`naming`]: the rules clients meet — register, deregister, beat, list,
//!   service definitions — the same whatever door a request came in by.
//! - [`consistency`]: the `put / remove / get / listen` facade; ephemeral
//!   data (in memory, replicated across a cluster by Distro) and persistent
//!   data (a write-ahead log on disk, or Raft in a cluster).
//! - [`registry`]: the in-memory registry and its model (service → cluster →
//!   instance, versions, tombstones). A leaf: it imports nothing of the node.
//! - [`notifier`]: coalesced change events, delivered off the write path.
//! - [`push`]: UDP push of changes to subscribed clients.
//! - [`plugins`]: WebAssembly listeners, health policies and push filters.
//! - [`health`]: the beat checker that turns silent instances unhealthy, then
//!   removes them; the prober that checks persistent instances by TCP or HTTP.
//!
//! Around them: [`cluster`] (members, their health, readiness, who is
//! responsible for which service, the internal API's client and credential),
//! [`wire`] (every message members send each other), [`config`] (every knob), [`metrics`] (the Prometheus page),
//! [`switches`] (runtime switches), [`clock`], [`node`] (wires one node
//! together), [`shutdown`], [`system_stats`], [`huge_pages`] (off for the
//! process: less resident memory, no page-zeroing stalls); for the `nacre` binary,
//! [`logging`] (formats, colour, the access log), [`banner`] (what a
//! starting node says it will do) and [`startup`] (start-up errors with
//! their fix).

// Every public item says what it is (shapes, units, errors); clippy's
// `-D warnings` turns a missing one into a failure.
#![warn(missing_docs)]

pub mod accounts;
pub mod auth;
pub mod banner;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod consistency;
pub mod console;
pub mod grpc;
pub mod health;
pub mod http;
pub mod huge_pages;
pub mod logging;
pub mod metrics;
pub mod naming;
pub mod node;
pub mod notifier;
pub mod plugins;
pub mod push;
pub mod registry;
pub mod shutdown;
pub mod startup;
pub mod switches;
pub mod system_stats;
pub mod wire;

pub use config::Config;
pub use node::Node;
