//! The generated side: `wit-bindgen` bindings of the three worlds of
//! `nacre:plugin@0.1.0`. The shared `types` and `host` interfaces are
//! generated once (with the listener world) and reused by the other two, so a
//! `ServiceKey` is the same Rust type whichever world a plugin exports.
//!
//! Each world's export macro is public but hidden: plugins use
//! [`export_listener!`](crate::export_listener) and its siblings, which adapt
//! the SDK's traits to the generated `Guest` traits. With `pub_export_macro`,
//! wit-bindgen declares a world's exports only where its export macro is
//! invoked, so the unused worlds add nothing to a plugin's component.

#![allow(missing_docs, clippy::too_many_arguments)] // generated code

pub mod listener {
    wit_bindgen::generate!({
        world: "listener",
        path: "../../wit/nacre-plugin-0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_listener_world",
        default_bindings_module: "nacre_plugin_sdk::bindings::listener",
    });
}

pub mod health_policy {
    wit_bindgen::generate!({
        world: "health-policy",
        path: "../../wit/nacre-plugin-0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_health_policy_world",
        default_bindings_module: "nacre_plugin_sdk::bindings::health_policy",
        with: {
            "nacre:plugin/types@0.1.0": crate::bindings::listener::nacre::plugin::types,
            "nacre:plugin/host@0.1.0": crate::bindings::listener::nacre::plugin::host,
        },
    });
}

pub mod push_filter {
    wit_bindgen::generate!({
        world: "push-filter",
        path: "../../wit/nacre-plugin-0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_push_filter_world",
        default_bindings_module: "nacre_plugin_sdk::bindings::push_filter",
        with: {
            "nacre:plugin/types@0.1.0": crate::bindings::listener::nacre::plugin::types,
            "nacre:plugin/host@0.1.0": crate::bindings::listener::nacre::plugin::host,
        },
    });
}

pub use listener::nacre::plugin::host as wit_host;
pub use listener::nacre::plugin::types as wit_types;
