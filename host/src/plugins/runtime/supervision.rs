//! Failure accounting: every failed call — a trap, a timeout, exhausted
//! memory, an error answer, an answer the host refused — counts toward the
//! quarantine rule; [`QUARANTINE_AFTER`] in a row put the plugin aside for a
//! backoff that doubles with each quarantine. Warnings about failures are
//! rate-limited per plugin ([`WARN_EVERY`]), so a plugin failing on every
//! call of a busy node costs one log line a second, not one per call.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::super::error::PluginError;
use super::limits::{FIRST_BACKOFF, MAX_BACKOFF, QUARANTINE_AFTER, WARN_EVERY};

/// How many recent call times are kept for the percentiles.
const TIMING_WINDOW: usize = 1024;

/// A plugin's failure record and quarantine.
#[derive(Default)]
pub struct Supervision(Mutex<Record>);

#[derive(Default)]
struct Record {
    last_failure: Option<PluginError>,
    consecutive_failures: u32,
    quarantined_until: Option<Instant>,
    quarantines: u32,
    last_warning: Option<Instant>,
    unlogged: u64,
}

impl Supervision {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a quarantine is in force at `now`.
    pub(crate) fn is_quarantined(&self, now: Instant) -> bool {
        self.record().quarantined_until.is_some_and(|t| t > now)
    }

    /// A call answered usably: the run of failures ends.
    pub(crate) fn succeeded(&self) {
        self.record().consecutive_failures = 0;
    }

    /// Counts a failure of `plugin`; returns the backoff if it quarantined the plugin.
    pub(crate) fn failed(
        &self,
        plugin: &str,
        error: PluginError,
        now: Instant,
    ) -> Option<Duration> {
        let mut record = self.record();
        record.consecutive_failures += 1;
        let quarantine = (record.consecutive_failures >= QUARANTINE_AFTER).then(|| {
            let backoff = FIRST_BACKOFF
                .saturating_mul(1 << record.quarantines.min(6))
                .min(MAX_BACKOFF);
            record.quarantined_until = Some(now + backoff);
            record.quarantines += 1;
            record.consecutive_failures = 0;
            backoff
        });
        let due = record
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if quarantine.is_some() || due {
            let unlogged = std::mem::take(&mut record.unlogged);
            record.last_warning = Some(now);
            match quarantine {
                Some(backoff) => {
                    tracing::warn!(plugin, reason = %error, ?backoff, unlogged, "plugin quarantined after repeated failures")
                }
                None => {
                    tracing::warn!(plugin, reason = %error, unlogged, "plugin call failed; its store will be rebuilt")
                }
            }
        } else {
            record.unlogged += 1;
        }
        record.last_failure = Some(error);
        quarantine
    }

    /// Why the last failed call failed, if one did.
    pub(crate) fn last_failure(&self) -> Option<PluginError> {
        self.record().last_failure.clone()
    }
}

/// Counters and recent timings of a plugin's calls.
#[derive(Default)]
pub struct CallStats {
    /// Calls made into the plugin.
    pub calls: AtomicU64,
    /// Calls that failed (see [`PluginError::is_failure`]).
    pub failures: AtomicU64,
    /// Failed calls cut at the plugin's deadline (`Timeout`).
    pub timeouts: AtomicU64,
    /// Failed calls that asked for more memory than the plugin's cap
    /// (`OutOfMemory`).
    pub memory_cap_trips: AtomicU64,
    /// Calls not made because the plugin was quarantined.
    pub skipped: AtomicU64,
    /// Request-path calls the request went on without: the plugin's queue was
    /// full, or it had not answered when the request stopped waiting.
    pub late: AtomicU64,
    recent_micros: Mutex<VecDeque<u32>>,
}

impl CallStats {
    /// Records one call's wall time (µs kept, the last 1,024 calls).
    pub fn record(&self, took: Duration) {
        let mut recent = self.recent_micros.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == TIMING_WINDOW {
            recent.pop_front();
        }
        recent.push_back(took.as_micros().min(u32::MAX as u128) as u32);
    }

    /// (p50, p99) of the recent calls, in microseconds.
    pub(crate) fn percentiles(&self) -> (u32, u32) {
        let mut recent: Vec<u32> = self
            .recent_micros
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if recent.is_empty() {
            return (0, 0);
        }
        recent.sort_unstable();
        let at =
            |p: f64| recent[((p * recent.len() as f64).ceil() as usize).clamp(1, recent.len()) - 1];
        (at(0.50), at(0.99))
    }

    /// Reads one of the counters above.
    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::plugin::{Bound, PluginState};
    use super::super::testing::{components, event, on_change, plugin};
    use super::*;
    use crate::plugins::error::AnswerError;

    #[test]
    fn a_plugin_failing_every_call_is_quarantined_and_then_skipped() {
        let trapper = plugin("listener", &components::listener(components::TRAP), "");
        for _ in 0..QUARANTINE_AFTER {
            assert!(matches!(on_change(&trapper), Err(PluginError::Trap(_))));
        }
        assert_eq!(trapper.state(), PluginState::Quarantined);
        assert_eq!(on_change(&trapper), Err(PluginError::Quarantined));
        assert_eq!(CallStats::count(&trapper.stats.skipped), 1);
        assert_eq!(CallStats::count(&trapper.stats.failures), 3);
    }

    #[test]
    fn a_refused_answer_counts_like_a_trap() {
        let fine = plugin("listener", &components::listener(""), "");
        for _ in 0..QUARANTINE_AFTER {
            let refused = fine.call_checked(
                |store, bound| match bound {
                    Bound::Listener(l) => l.call_on_change(store, &event()),
                    _ => Err(wasmtime::Error::msg("not a listener")),
                },
                |_| Err::<(), _>(PluginError::Returned("refused".into())),
            );
            assert_eq!(refused, Err(PluginError::Returned("refused".into())));
        }
        assert_eq!(fine.state(), PluginState::Quarantined);
    }

    #[test]
    fn failures_of_every_kind_in_a_row_quarantine_with_a_growing_backoff() {
        let supervision = Supervision::default();
        let start = Instant::now();
        let refused = PluginError::Refused(AnswerError::Duplicate("10.0.0.1:80".into()));
        assert_eq!(supervision.failed("p", refused.clone(), start), None);
        assert_eq!(
            supervision.failed("p", PluginError::Returned("no".into()), start),
            None
        );
        assert_eq!(
            supervision.failed("p", refused.clone(), start),
            Some(FIRST_BACKOFF)
        );
        assert!(supervision.is_quarantined(start));
        assert!(!supervision.is_quarantined(start + FIRST_BACKOFF));
        assert_eq!(supervision.last_failure(), Some(refused.clone()));
        for _ in 0..2 {
            supervision.failed("p", refused.clone(), start);
        }
        assert_eq!(
            supervision.failed("p", refused, start),
            Some(FIRST_BACKOFF * 2),
            "the second quarantine is twice as long"
        );
    }

    #[test]
    fn a_success_ends_the_run() {
        let supervision = Supervision::default();
        let now = Instant::now();
        for _ in 0..10 {
            supervision.failed("p", PluginError::Trap("x".into()), now);
            supervision.failed("p", PluginError::Trap("x".into()), now);
            supervision.succeeded();
        }
        assert!(!supervision.is_quarantined(now));
    }

    #[test]
    fn percentiles_of_recent_calls() {
        let stats = CallStats::default();
        assert_eq!(stats.percentiles(), (0, 0));
        for micros in 1..=100 {
            stats.record(Duration::from_micros(micros));
        }
        assert_eq!(stats.percentiles(), (50, 99));
    }
}
