//! A hostile test guest, not a plugin to ship: a push filter that blocks in
//! WASI on every call — `std::thread::sleep` (`mode = "sleep"`, the default)
//! or `println!` (`mode = "print"`). The host's tests check that the node cuts
//! it off and keeps serving (host/tests/shipped_plugins.rs).

use nacre_plugin_sdk::{FilterResult, Instance, PushFilter, ServiceKey, Subscriber, config};

pub struct Blocker;

impl PushFilter for Blocker {
    fn filter(_: Subscriber, _: ServiceKey, instances: Vec<Instance>) -> FilterResult {
        if config::get_or("mode", "sleep") == "print" {
            println!("{} instances", instances.len());
        } else {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        FilterResult::Send(instances)
    }
}

nacre_plugin_sdk::export_push_filter!(Blocker);
