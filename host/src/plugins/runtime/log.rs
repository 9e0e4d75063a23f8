//! A plugin's log lines through the host interface: each one bounded in size
//! and kept to one line, and each plugin limited in how many it writes per
//! second, so that a plugin cannot fill the node's log or disk, forge lines,
//! or make the host format megabytes per call.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::super::error::printable;
use super::limits::{
    MAX_LOG_FIELD_BYTES, MAX_LOG_FIELDS, MAX_LOG_LINES_PER_SECOND, MAX_LOG_MESSAGE_BYTES,
};

/// One log line as the node writes it: message and fields, each bounded and printable.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// The message, at most [`MAX_LOG_MESSAGE_BYTES`], control characters escaped.
    pub message: String,
    /// The fields as pairs, then `("(more)", N)` if fields were dropped; the
    /// node's log writes them as fields of the line (`crate::logging::FieldSet`).
    pub pairs: Vec<(String, String)>,
    /// `key=value` pairs separated by spaces, then `(+N more)` if fields were dropped.
    pub fields: String,
}

impl LogLine {
    /// The line for what a plugin passed to `host.log`, cut to the limits in
    /// [`super::limits`]: at most [`MAX_LOG_MESSAGE_BYTES`] of message and
    /// [`MAX_LOG_FIELDS`] fields of [`MAX_LOG_FIELD_BYTES`] each.
    pub(crate) fn bounded(message: &str, fields: &[(String, String)]) -> LogLine {
        let mut pairs: Vec<(String, String)> = fields
            .iter()
            .take(MAX_LOG_FIELDS)
            .map(|(k, v)| {
                let key = printable(k, MAX_LOG_FIELD_BYTES / 4);
                let value = printable(v, MAX_LOG_FIELD_BYTES - key.len());
                (key, value)
            })
            .collect();
        let mut shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if fields.len() > MAX_LOG_FIELDS {
            let more = fields.len() - MAX_LOG_FIELDS;
            shown.push(format!("(+{more} more)"));
            pairs.push(("(more)".to_string(), more.to_string()));
        }
        LogLine {
            message: printable(message, MAX_LOG_MESSAGE_BYTES),
            pairs,
            fields: shown.join(" "),
        }
    }
}

/// Whether a line may be written now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it; `dropped_before` lines were dropped in the previous second.
    Write {
        /// Lines dropped over the budget in the window before this one.
        dropped_before: u64,
    },
    /// Over this second's budget: drop it (it is counted).
    Drop,
}

/// One plugin's allowance of log lines: [`MAX_LOG_LINES_PER_SECOND`] per
/// one-second window; lines beyond it are dropped and counted.
#[derive(Default)]
pub struct LogBudget {
    window: Mutex<Option<Window>>,
    dropped: AtomicU64,
}

struct Window {
    started: Instant,
    written: u32,
    dropped: u64,
}

impl LogBudget {
    /// Counts a line at `now` against the current one-second window.
    pub(crate) fn admit(&self, now: Instant) -> Admit {
        let mut slot = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped_before = 0;
        if slot
            .as_ref()
            .is_some_and(|w| now.duration_since(w.started) >= Duration::from_secs(1))
        {
            dropped_before = slot.take().map_or(0, |w| w.dropped);
        }
        let window = slot.get_or_insert_with(|| Window {
            started: now,
            written: 0,
            dropped: 0,
        });
        if window.written >= MAX_LOG_LINES_PER_SECOND {
            window.dropped += 1;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Admit::Drop;
        }
        window.written += 1;
        Admit::Write { dropped_before }
    }

    /// Lines dropped since the plugin was loaded.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_kept_on_one_line() {
        let fields: Vec<(String, String)> = (0..40)
            .map(|i| (format!("k{i}"), "v\n".repeat(1 << 20)))
            .collect();
        let line = LogLine::bounded(&format!("forged\n{}", "m".repeat(1 << 20)), &fields);
        assert!(line.message.len() <= MAX_LOG_MESSAGE_BYTES + 3);
        assert!(!line.message.contains('\n'));
        assert!(line.message.starts_with("forged\\n"));
        assert!(line.fields.len() <= (MAX_LOG_FIELDS + 1) * (MAX_LOG_FIELD_BYTES + 8));
        assert!(
            line.fields.ends_with("(+24 more)"),
            "{}",
            &line.fields[line.fields.len() - 20..]
        );
        assert!(!line.fields.contains('\n'));
        assert_eq!(line.pairs.len(), MAX_LOG_FIELDS + 1);
        assert_eq!(line.pairs[MAX_LOG_FIELDS], ("(more)".into(), "24".into()));
        assert!(
            line.pairs
                .iter()
                .all(|(k, v)| k.len() + v.len() <= MAX_LOG_FIELD_BYTES + 3)
        );
    }

    #[test]
    fn a_plugin_writes_at_most_its_lines_per_second_and_drops_are_reported() {
        let budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..MAX_LOG_LINES_PER_SECOND {
            assert!(matches!(budget.admit(start), Admit::Write { .. }));
        }
        for _ in 0..7 {
            assert_eq!(
                budget.admit(start + Duration::from_millis(900)),
                Admit::Drop
            );
        }
        assert_eq!(budget.dropped(), 7);
        assert_eq!(
            budget.admit(start + Duration::from_secs(1)),
            Admit::Write { dropped_before: 7 }
        );
        assert_eq!(
            budget.admit(start + Duration::from_millis(1001)),
            Admit::Write { dropped_before: 0 }
        );
    }
}
