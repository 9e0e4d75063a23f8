//! The node's log: where it goes, in which format, and what it leaves out.
//!
//! Lines go to stderr (stdout carries the start banner), filtered by
//! `log_level` or `RUST_LOG`, in one of two formats (`log_format`):
//!
//! - `text`: `2026-05-01T12:30:05.120Z  INFO nacre::node: message key=value …`,
//!   coloured only when stderr is a terminal and `NO_COLOR` is unset or
//!   empty (<https://no-color.org>), so files and pipes get plain text;
//! - `json`: one JSON object per line (`json.rs`).
//!
//! Also here: the access log ([`access`]), fields named at run time such as a
//! plugin's ([`FieldSet`]), instants written as dates ([`UtcMillis`]), and
//! openraft's lines about members that are not up yet, moved to DEBUG
//! (`openraft_noise`).

pub mod access;
mod field_set;
mod json;
mod openraft_noise;
mod text;
pub mod time;

use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use field_set::{FIELD_SET, FieldSet};
pub use time::UtcMillis;

/// How log lines are written (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Why a log filter was refused: the source, the directives, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error(
    "{source_name} = {directives:?} is not a valid log filter: {reason} (e.g. \"info\", \"nacre=debug,info\"; see docs/CONFIG.md)"
)]
pub struct FilterError {
    /// `log_level` or `RUST_LOG`.
    pub source_name: &'static str,
    /// The filter as given.
    pub directives: String,
    /// What `tracing-subscriber` found wrong with it.
    pub reason: String,
}

/// Parses `directives` (`tracing` filter syntax) strictly: a directive that
/// does not parse is an error, not silently ignored.
pub(crate) fn parse_filter(
    source_name: &'static str,
    directives: &str,
) -> Result<EnvFilter, FilterError> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| FilterError {
            source_name,
            directives: directives.to_string(),
            reason: e.to_string(),
        })
}

/// The filter in force: `RUST_LOG` when set and not empty, else `log_level`.
pub fn filter(log_level: &str) -> Result<EnvFilter, FilterError> {
    match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => parse_filter("RUST_LOG", &env),
        _ => parse_filter("log_level", log_level),
    }
}

/// Whether text lines get ANSI colours: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&str>) -> bool {
    stderr_is_terminal && no_color.is_none_or(str::is_empty)
}

/// Installs the node's log as the global `tracing` subscriber.
pub fn init(filter: EnvFilter, format: LogFormat) -> anyhow::Result<()> {
    let no_color = std::env::var("NO_COLOR").ok();
    let ansi = colour(std::io::stderr().is_terminal(), no_color.as_deref());
    let base = tracing_subscriber::registry()
        .with(filter)
        .with(openraft_noise::OpenraftNoise);
    let installed = match format {
        LogFormat::Text => base
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .fmt_fields(text::fields()),
            )
            .try_init(),
        LogFormat::Json => base
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(false)
                    .event_format(json::JsonLines),
            )
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("installing the log: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("")), "an empty NO_COLOR does not count");
        assert!(!colour(true, Some("1")));
        assert!(!colour(false, None));
    }

    #[test]
    fn a_malformed_filter_is_refused_with_its_source() {
        assert!(parse_filter("log_level", "info,openraft=warn").is_ok());
        assert!(parse_filter("log_level", "nacre::raft::peers=debug,info").is_ok());
        for bad in ["nacre=loud", "info,=,", "[{"] {
            let err = parse_filter("log_level", bad).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("log_level") && e.contains(bad)),
                "{bad}: {err:?}"
            );
        }
    }
}
