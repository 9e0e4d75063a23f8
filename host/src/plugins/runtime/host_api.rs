//! The `host` interface of `nacre:plugin` as the node serves it: logging
//! (bounded, see [`super::log`]), the clock, the plugin's configuration and
//! read-only registry queries.
//!
//! What a plugin passes in (a log message, a service key) has been lifted
//! out of its memory under the store's hostcall fuel, so a call carrying more
//! than that fails before the host copies it.

use std::time::Instant;

use super::super::bindings::{self, wit, wit_host};
use super::log::{Admit, LogLine};
use super::store::{LogSink, StoreState};
use crate::clock::now_millis;
use crate::logging::FieldSet;

impl wit::Host for StoreState {}

impl wit_host::Host for StoreState {
    fn log(&mut self, level: wit::LogLevel, message: String, fields: Vec<(String, String)>) {
        let line = LogLine::bounded(&message, &fields);
        drop((message, fields));
        match &self.ctx.log {
            LogSink::Capture(lines) => {
                let text = format!("{} {} {}", level_name(level), line.message, line.fields);
                lines
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.trim_end().to_string());
            }
            LogSink::Tracing => {
                let dropped_before = match self.ctx.log_budget.admit(Instant::now()) {
                    Admit::Drop => return,
                    Admit::Write { dropped_before } => dropped_before,
                };
                let plugin = self.ctx.name.as_str();
                if dropped_before > 0 {
                    tracing::warn!(
                        plugin,
                        dropped = dropped_before,
                        "plugin log lines dropped: over {} a second",
                        super::limits::MAX_LOG_LINES_PER_SECOND
                    );
                }
                write(level, plugin, &line);
            }
        }
    }

    fn now_millis(&mut self) -> i64 {
        now_millis()
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.ctx.config.clone()
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.ctx
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn list_instances(&mut self, service: wit::ServiceKey) -> Vec<wit::Instance> {
        let key = bindings::service_from_wit(service);
        self.ctx
            .registry
            .service(&key)
            .map(|s| {
                s.instances()
                    .iter()
                    .map(bindings::instance_to_wit)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn list_services(&mut self, namespace: String, group: String) -> Vec<String> {
        self.ctx.registry.service_names(&namespace, &group)
    }
}

fn level_name(level: wit::LogLevel) -> &'static str {
    match level {
        wit::LogLevel::Trace => "TRACE",
        wit::LogLevel::Debug => "DEBUG",
        wit::LogLevel::Info => "INFO",
        wit::LogLevel::Warn => "WARN",
        wit::LogLevel::Error => "ERROR",
    }
}

/// Writes a plugin's line to the node's log, its fields as fields of the line.
fn write(level: wit::LogLevel, plugin: &str, line: &LogLine) {
    let (message, fields) = (&line.message, FieldSet(&line.pairs));
    match level {
        wit::LogLevel::Trace => tracing::trace!(plugin, fields = %fields, "{message}"),
        wit::LogLevel::Debug => tracing::debug!(plugin, fields = %fields, "{message}"),
        wit::LogLevel::Info => tracing::info!(plugin, fields = %fields, "{message}"),
        wit::LogLevel::Warn => tracing::warn!(plugin, fields = %fields, "{message}"),
        wit::LogLevel::Error => tracing::error!(plugin, fields = %fields, "{message}"),
    }
}
