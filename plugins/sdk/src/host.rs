//! What the node offers every plugin (the WIT `host` interface), as plain
//! functions. Calls are cheap: they run in the node, not over a network.

use crate::bindings::wit_host;
use crate::types::{Instance, LogLevel, ServiceKey};

/// Writes a structured log line, attributed to the plugin, into the node's
/// log (or, under `nacre plugin test`, onto the command's output). The node
/// cuts messages longer than 4 KiB and keeps at most 32 fields.
pub fn log(level: LogLevel, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    wit_host::log(level, message, &fields);
}

/// [`log`] at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Debug, message, fields);
}

/// [`log`] at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Info, message, fields);
}

/// [`log`] at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Warn, message, fields);
}

/// [`log`] at error level.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(LogLevel::Error, message, fields);
}

/// Wall-clock milliseconds since the Unix epoch, by the node's clock.
pub fn now_millis() -> i64 {
    wit_host::now_millis()
}

/// The instances of a service as the registry holds them now (empty if unknown).
pub fn list_instances(service: &ServiceKey) -> Vec<Instance> {
    wit_host::list_instances(service)
}

/// The service names of a namespace and group.
pub fn list_services(namespace: &str, group: &str) -> Vec<String> {
    wit_host::list_services(namespace, group)
}
