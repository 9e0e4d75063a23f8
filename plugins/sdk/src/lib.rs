//! Write Nacre plugins in Rust.
//!
//! A Nacre plugin is a WebAssembly component that exports one of three worlds
//! of `nacre:plugin@0.1.0` (`wit/nacre-plugin-0.1.0/plugin.wit`). With this
//! crate a plugin is a type, one trait implementation and one macro call:
//!
//! ```ignore
//! use nacre_plugin_sdk::{ChangeEvent, Listener, host};
//!
//! struct Audit;
//!
//! impl Listener for Audit {
//!     fn on_change(event: ChangeEvent) -> Result<(), String> {
//!         host::info(&format!("{} changed", event.service), &[]);
//!         Ok(())
//!     }
//! }
//!
//! nacre_plugin_sdk::export_listener!(Audit);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`); the `.wasm` in `target/wasm32-wasip2/release/` is the component.
//!
//! # Layout
//!
//! - [`Listener`], [`HealthPolicy`], [`PushFilter`]: one trait per world, and
//!   [`export_listener!`], [`export_health_policy!`], [`export_push_filter!`]
//!   to export an implementation.
//! - [`types`]: the values plugins see (re-exported at the crate root), with
//!   small helpers such as [`Instance::meta`].
//! - [`host`]: what the node offers every plugin: logging, the clock, the
//!   plugin's own config ([`config`] parses it) and read-only registry queries.
//! - `http` (feature `http`): outbound HTTP through `wasi:http`, for plugins
//!   whose manifest grants the `http` capability.
//! - [`bindings`]: the raw `wit-bindgen` output, should you need it.

#[doc(hidden)]
pub mod bindings;
pub mod config;
pub mod host;
#[cfg(feature = "http")]
pub mod http;
pub mod types;

pub use types::{
    BeatContext, ChangeEvent, ChangeKinds, FilterResult, HealthVerdict, Instance, LogLevel,
    ServiceKey, Subscriber,
};

/// A plugin of the `listener` world: hears about every coalesced change of the
/// services its manifest applies to, on a thread of the node's own, off the
/// write path.
pub trait Listener {
    /// Called once per coalesced change; the event carries the state after
    /// all the changes it stands for. An `Err` is logged and counted by the
    /// node as a failure of the plugin.
    fn on_change(event: ChangeEvent) -> Result<(), String>;
}

/// A plugin of the `health-policy` world: decides whether an instance is
/// healthy, by the beat checker's clock and on each beat.
pub trait HealthPolicy {
    /// [`HealthVerdict::NoOpinion`] leaves the decision to the node's default
    /// beat rules.
    fn judge(context: BeatContext) -> HealthVerdict;
}

/// A plugin of the `push-filter` world: decides what one subscriber is sent.
pub trait PushFilter {
    /// Returns the instances to send (a subset of `instances`, possibly
    /// reordered and re-weighted; the node refuses anything else) or
    /// [`FilterResult::Skip`].
    fn filter(
        subscriber: Subscriber,
        service: ServiceKey,
        instances: Vec<Instance>,
    ) -> FilterResult;
}

/// Exports a [`Listener`] implementation as the plugin's `listener` world.
/// Call it once, at the root of the plugin crate.
#[macro_export]
macro_rules! export_listener {
    ($plugin:ident) => {
        impl $crate::bindings::listener::Guest for $plugin {
            fn on_change(event: $crate::ChangeEvent) -> ::core::result::Result<(), ::std::string::String> {
                <$plugin as $crate::Listener>::on_change(event)
            }
        }
        $crate::bindings::listener::__export_listener_world!($plugin with_types_in $crate::bindings::listener);
    };
}

/// Exports a [`HealthPolicy`] implementation as the plugin's `health-policy`
/// world. Call it once, at the root of the plugin crate.
#[macro_export]
macro_rules! export_health_policy {
    ($plugin:ident) => {
        impl $crate::bindings::health_policy::Guest for $plugin {
            fn judge(context: $crate::BeatContext) -> $crate::HealthVerdict {
                <$plugin as $crate::HealthPolicy>::judge(context)
            }
        }
        $crate::bindings::health_policy::__export_health_policy_world!($plugin with_types_in $crate::bindings::health_policy);
    };
}

/// Exports a [`PushFilter`] implementation as the plugin's `push-filter`
/// world. Call it once, at the root of the plugin crate.
#[macro_export]
macro_rules! export_push_filter {
    ($plugin:ident) => {
        impl $crate::bindings::push_filter::Guest for $plugin {
            fn filter(
                subscriber: $crate::Subscriber,
                service: $crate::ServiceKey,
                instances: ::std::vec::Vec<$crate::Instance>,
            ) -> $crate::FilterResult {
                <$plugin as $crate::PushFilter>::filter(subscriber, service, instances)
            }
        }
        $crate::bindings::push_filter::__export_push_filter_world!($plugin with_types_in $crate::bindings::push_filter);
    };
}
