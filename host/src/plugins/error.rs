//! What can go wrong with a plugin, typed: [`LoadError`] when a manifest or
//! component is refused, [`PluginError`] when a call yields no usable answer,
//! [`AnswerError`] when the host refuses what a plugin answered.
//!
//! Every message is bounded and printable (see `printable`): these strings
//! end up in the log and in `GET /nacre/v1/plugins`, which needs no
//! credential, so they never carry more than a short excerpt of what a plugin
//! sent and never any content of a file the node read.

use std::path::PathBuf;

use super::folder::FileError;
use super::manifest::World;

/// Longest text a plugin or a library contributes to one error message, in bytes.
pub const MAX_REASON_BYTES: usize = 512;

/// Why a manifest or its component was not loaded (shown as the plugin's
/// `error` in the status, with the manifest left out of the running set).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifest or component could not be read under the folder's rules.
    #[error(transparent)]
    File(#[from] FileError),
    /// The manifest is not valid TOML or breaks a rule; `reason` never quotes
    /// the file beyond names the manifest format itself defines.
    #[error("manifest {path}: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, without the file's text.
        reason: String,
    },
    /// Another manifest already loads a plugin of this name.
    #[error("plugin name {name:?} is already used by {other}")]
    DuplicateName {
        /// The name both manifests give.
        name: String,
        /// The manifest that loaded it first.
        other: PathBuf,
    },
    /// The file does not start like WebAssembly (checked before wasmtime sees it,
    /// whose message would quote the first bytes).
    #[error("{path} is not a WebAssembly file (it does not start with \\0asm)")]
    NotWasm {
        /// The component file.
        path: PathBuf,
    },
    /// wasmtime refused the component; `reason` is its message, cut to [`MAX_REASON_BYTES`].
    #[error("{path} is not a valid WebAssembly component: {reason}")]
    InvalidComponent {
        /// The component file.
        path: PathBuf,
        /// wasmtime's message, bounded.
        reason: String,
    },
    /// The component imports `wasi:http` but the manifest grants no `http` capability.
    #[error(
        "plugin {name} imports wasi:http but its manifest grants no `http` capability: {reason}"
    )]
    UngrantedHttp {
        /// The plugin's name.
        name: String,
        /// wasmtime's link error, bounded.
        reason: String,
    },
    /// The component imports an interface the host does not link (it offers
    /// WASI p2, `nacre:plugin/host`, and `wasi:http` when granted).
    #[error("plugin {name} imports something the host does not offer: {reason}")]
    UnknownImport {
        /// The plugin's name.
        name: String,
        /// wasmtime's link error (it names the import), bounded.
        reason: String,
    },
    /// The component lacks the exports of the world its manifest names.
    #[error(
        "plugin {name}: the component does not export the `{world}` world its manifest names: {reason}"
    )]
    MissingExport {
        /// The plugin's name.
        name: String,
        /// The world the manifest names.
        world: World,
        /// wasmtime's message, bounded.
        reason: String,
    },
    /// The component compiled and linked but could not start.
    #[error("instantiating plugin {name}: {error}")]
    Instantiate {
        /// The plugin's name.
        name: String,
        /// Why instantiation failed (a trap, a limit, ...).
        error: PluginError,
    },
    /// The engine itself could not be set up (not the plugin's fault).
    #[error("{0}")]
    Engine(String),
}

/// Why a plugin call gave no answer the host could use. The first three are
/// not the plugin's doing and do not count as failures (see [`Self::is_failure`]);
/// every other variant counts toward quarantine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The plugin sits out its backoff after repeated failures.
    #[error("quarantined")]
    Quarantined,
    /// Its queue of request-path calls was full: the request went on without it.
    #[error("its queue of calls was full")]
    Busy,
    /// The request stopped waiting (it waits at most the request-path budget).
    #[error("did not answer within the {waited_ms} ms a request waits for plugins")]
    Late {
        /// How long the request waited, ms.
        waited_ms: u64,
    },
    /// Epoch interruption cut the call at its deadline.
    #[error("ran past its {timeout_ms} ms deadline")]
    Timeout {
        /// The plugin's deadline per call, ms.
        timeout_ms: u64,
    },
    /// The guest asked for more memory than its cap.
    #[error("ran out of memory: its cap is {cap_mb} MiB")]
    OutOfMemory {
        /// The plugin's memory cap, MiB.
        cap_mb: u64,
    },
    /// The guest passed the host more data in one host call or answer than
    /// the host copies for it (wasmtime's hostcall fuel).
    #[error("passed the host more than {cap_bytes} bytes in one host call or answer")]
    TooMuchData {
        /// What the host copies at most, bytes.
        cap_bytes: usize,
    },
    /// Any other trap (a Rust panic is `unreachable`).
    #[error("trapped: {0}")]
    Trap(String),
    /// A WASI call that would block a thread of the node beyond the deadline.
    #[error(
        "made a blocking WASI call (sleep, poll, stdout/stderr), which plugins may not: \
         log with the host interface instead"
    )]
    BlockingWasi,
    /// A host function the plugin called panicked; the call fails, the node stays up.
    #[error("a host function panicked: {0}")]
    HostPanic(String),
    /// A listener's `error` answer.
    #[error("returned an error: {0}")]
    Returned(String),
    /// An answer that breaks the world's rules.
    #[error("answer refused: {0}")]
    Refused(#[from] AnswerError),
    /// Anything else wasmtime reported (an instantiation failure, a lifting error).
    #[error("{0}")]
    Other(String),
}

impl PluginError {
    /// Whether the plugin itself failed (so the quarantine rule counts it).
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            PluginError::Quarantined | PluginError::Busy | PluginError::Late { .. }
        )
    }
}

/// Why the host refused a push filter's answer (docs/PLUGINS.md, "What the
/// host checks on the way out"). Instances are named `ip:port` (cluster),
/// cut to a printable excerpt.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    /// More instances came back than the filter was offered.
    #[error("returned {returned} instances, offered {offered}")]
    TooMany {
        /// Instances in the answer.
        returned: usize,
        /// Instances the filter was offered.
        offered: usize,
    },
    /// An instance (`ip:port (cluster)`) that was not among those offered.
    #[error("returned {0}, which it was not offered")]
    NotOffered(String),
    /// The same instance twice.
    #[error("returned {0} more than once")]
    Duplicate(String),
    /// A weight outside `0..=max` (Nacos's weight range).
    #[error("returned weight {weight} for {instance} (allowed: 0 to {max})")]
    BadWeight {
        /// The weight returned.
        weight: f64,
        /// The instance, `ip:port (cluster)`.
        instance: String,
        /// The largest weight allowed.
        max: f64,
    },
}

/// `text` cut to at most `max` bytes (at a character boundary, marked with
/// `…`) with control characters escaped, so that a plugin's text can neither
/// grow a log line or status without bound nor forge a line of its own.
pub(crate) fn printable(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 3);
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
        if out.len() > max {
            out.truncate(before);
            out.push('…');
            break;
        }
    }
    out
}

/// `message` with every quoted (in backticks or double quotes) text replaced
/// by `…`, except the words in `keep` and short punctuation (`=`, `]`): for
/// a library's message about a file, which quotes the file.
pub(crate) fn redact_quotes(message: &str, keep: &[&str]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().unwrap_or('`');
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(quote) else {
            out.push(quote);
            out.push('…');
            return printable(&out, MAX_REASON_BYTES);
        };
        let quoted = &after[..close];
        let harmless = keep.contains(&quoted)
            || (quoted.len() <= 3 && quoted.chars().all(|c| c.is_ascii_punctuation()));
        out.push(quote);
        out.push_str(if harmless { quoted } else { "…" });
        out.push(quote);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    printable(&out, MAX_REASON_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_bounded_and_one_line() {
        assert_eq!(printable("plain", 10), "plain");
        assert_eq!(printable("a\nb\r\u{1b}[31m", 64), "a\\nb\\r\\u{1b}[31m");
        let long = "é".repeat(1000);
        let cut = printable(&long, 101);
        assert!(cut.len() <= 101 + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn quoted_text_is_redacted_but_known_words_and_punctuation_stay() {
        assert_eq!(
            redact_quotes(
                "unknown field `secret`, expected `name` or \"=\"",
                &["name"]
            ),
            "unknown field `…`, expected `name` or \"=\""
        );
        assert_eq!(redact_quotes("dangling `secret", &[]), "dangling `…");
    }

    #[test]
    fn only_the_plugins_own_failures_count() {
        assert!(!PluginError::Quarantined.is_failure());
        assert!(!PluginError::Busy.is_failure());
        assert!(!PluginError::Late { waited_ms: 1 }.is_failure());
        assert!(PluginError::Timeout { timeout_ms: 1 }.is_failure());
        assert!(PluginError::Refused(AnswerError::Duplicate("x".into())).is_failure());
        assert!(PluginError::Returned("no".into()).is_failure());
    }
}
