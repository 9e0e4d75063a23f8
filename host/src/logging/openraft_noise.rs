//! openraft's own log lines about members that have not started yet, or that
//! lost an election race, at DEBUG instead of WARN and ERROR.
//!
//! openraft (0.9) logs every failed RPC at ERROR or WARN whatever the cause
//! (`while requesting vote`, `RPCError`, `timeout while confirming
//! leadership`, `error replication to target`, `update progress error`), and
//! each one again as it backs off. When a cluster starts, members come up one
//! by one, so a healthy start logged a dozen ERROR and WARN lines per node.
//! A peer that does not answer is reported to Raft as
//! [`Unreachable`](openraft::error::Unreachable) by our network client
//! (`consistency::raft::network`), and the cluster's own probes already say
//! at INFO when a member joins or leaves the view; the lines dropped here add
//! nothing to that. Storage errors and other faults of openraft keep their
//! level.
//!
//! `tracing` cannot lower an event's level, so [`OpenraftNoise`] disables the
//! event and writes its text again at DEBUG under the target
//! `nacre::raft::peers`, where `log_level = "nacre::raft::peers=debug"`
//! shows it.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The layer that turns openraft's lines about unreachable peers into DEBUG lines.
pub(super) struct OpenraftNoise;

/// What a line says when it is about a peer that did not answer, or about a
/// vote that an election already decided.
const ABOUT_PEERS: [&str; 4] = [
    "Unreachable node: ",
    "seen a higher vote",
    "A message will be ignored because vote changed",
    "backoff mode: drain events without processing them",
];

impl<S: Subscriber> Layer<S> for OpenraftNoise {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if !meta.target().starts_with("openraft") || *meta.level() > Level::WARN {
            return true;
        }
        let mut text = Text::default();
        event.record(&mut text);
        if !ABOUT_PEERS.iter().any(|needle| text.0.contains(needle)) {
            return true;
        }
        let line = text.0.trim_start();
        tracing::debug!(target: "nacre::raft::peers", openraft_level = %meta.level(), "{line}");
        false
    }
}

/// An event's message and field values, as one line.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = match field.name() {
            "message" => write!(self.0, " {value:?}"),
            name => write!(self.0, " {name}={value:?}"),
        };
    }
}
