//! Naming: the registry's model and the operations clients perform on it.
//!
//! - [`model`]: services, clusters, instances and their keys.
//! - [`registry`]: the live, in-memory state, written only by the consistency stores.
//! - [`manager`]: Nacos's rules for register, update, beat, list, service CRUD.
//! - [`list`]: rendering (and caching) `instance/list` replies.
//! - [`client_agent`]: which Nacos client is calling.

pub mod client_agent;
pub mod list;
pub mod manager;
pub mod model;
pub mod registry;
