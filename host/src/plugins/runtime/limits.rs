//! What one plugin may cost the node, in one place: the numbers, and the
//! [`MemoryCap`] that enforces a plugin's memory cap.
//!
//! A plugin's own limits (deadline, memory) come from its manifest. The
//! host-side caps here bound what the *host* spends on a plugin's behalf,
//! which a guest's memory cap alone does not: a guest under a 16 MiB cap can
//! hand the host an answer that points at the same 8 MiB string a hundred
//! times, and the host would copy every one. Data a guest passes to the host
//! is bounded before it is copied, by wasmtime's hostcall fuel (bytes the host
//! lifts out of guest memory for one host call or one answer).

use std::time::Duration;

use super::super::bindings::wit;

/// How often the engine's epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Consecutive failures before a plugin is quarantined.
pub const QUARANTINE_AFTER: u32 = 3;
/// The first quarantine; each next one doubles, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest quarantine, however many came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At most one warning per plugin per this period about failed calls; the
/// next one says how many went unlogged.
pub const WARN_EVERY: Duration = Duration::from_secs(1);

/// Most a request (a list reply, a beat, a push) waits for all the plugins it
/// consults together; then it goes on with the default answer. Equal to the
/// longest deadline of a request-path world, so one plugin that uses all of
/// its time is waited for.
pub const REQUEST_PATH_WAIT: Duration =
    Duration::from_millis(super::super::manifest::MAX_REQUEST_PATH_TIMEOUT_MS);
/// Request-path calls queued for one plugin; more go on without it.
pub const WORKER_QUEUE: usize = 64;

/// Bytes a plugin may pass the host in one host call, or in its answer, when
/// nothing larger is due (listener errors, health verdicts, log lines).
pub const HOST_DATA_PER_CALL: usize = 64 << 10;

/// Longest log message kept, in bytes (longer ones are cut, marked `…`).
pub const MAX_LOG_MESSAGE_BYTES: usize = 2048;
/// Most fields of one log line; the rest are dropped.
pub const MAX_LOG_FIELDS: usize = 16;
/// Longest field (key and value) kept, in bytes.
pub const MAX_LOG_FIELD_BYTES: usize = 256;
/// Log lines one plugin may write per second; the rest are dropped and counted.
pub const MAX_LOG_LINES_PER_SECOND: u32 = 50;

/// Most bytes of `wasi:random` one call may ask for (wasmtime's default is 64 MiB).
pub const MAX_RANDOM_BYTES: u64 = 64 << 10;
/// Table elements one instance may grow to.
pub const MAX_TABLE_ELEMENTS: usize = 200_000;

/// Epoch ticks of a deadline of `timeout_ms`.
pub(crate) fn deadline_ticks(timeout_ms: u64) -> u64 {
    (timeout_ms * 1000 / EPOCH_TICK.as_micros() as u64).max(1)
}

/// The hostcall fuel of a push filter's call: what the host would spend
/// lifting the offered list back (what an honest filter can answer at most),
/// twice over, plus [`HOST_DATA_PER_CALL`]. Counted the way wasmtime counts:
/// each list as its length times the host size of an element, each string
/// as its bytes.
pub(crate) fn answer_fuel(offered: &[wit::Instance]) -> usize {
    let lifted: usize = offered
        .iter()
        .map(|i| {
            size_of::<wit::Instance>()
                + i.ip.len()
                + i.cluster.len()
                + i.metadata.len() * size_of::<(String, String)>()
                + i.metadata
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    lifted.saturating_mul(2).saturating_add(HOST_DATA_PER_CALL)
}

/// Enforces a plugin's memory cap. Growing memory past it traps with
/// [`OverMemoryCap`] (the call fails as out of memory, rather than the guest
/// seeing `memory.grow` return -1 and limping on).
pub struct MemoryCap {
    /// The cap, in bytes of linear memory.
    pub bytes: usize,
}

/// The error a guest gets when it grows memory past its cap.
#[derive(Debug, thiserror::Error)]
#[error("memory would grow to {desired} bytes, over the plugin's cap of {cap}")]
pub struct OverMemoryCap {
    /// The size the guest asked to grow to, bytes.
    pub desired: usize,
    /// The plugin's cap, bytes.
    pub cap: usize,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.bytes {
            return Err(wasmtime::Error::new(OverMemoryCap {
                desired,
                cap: self.bytes,
            }));
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::super::error::PluginError;
    use super::super::testing::{components, instance, on_change, plugin};
    use super::*;

    /// A listener body that answers `error(<len zero bytes>)`.
    fn error_of(len: u32) -> String {
        format!(
            "(drop (memory.grow (i32.const {pages})))
             (i32.store8 (i32.const 0) (i32.const 1))
             (i32.store (i32.const 4) (i32.const 65536))
             (i32.store (i32.const 8) (i32.const {len}))
             (return (i32.const 0))",
            pages = len / 65536 + 1
        )
    }

    #[test]
    fn a_call_past_its_deadline_is_cut_off() {
        let spinner = plugin(
            "listener",
            &components::listener(components::INFINITE_LOOP),
            "timeout_ms = 20",
        );
        let started = Instant::now();
        assert_eq!(
            on_change(&spinner),
            Err(PluginError::Timeout { timeout_ms: 20 })
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "cut at the deadline, not later"
        );
        // The instance is rebuilt and the next call gets the same treatment.
        assert_eq!(
            on_change(&spinner),
            Err(PluginError::Timeout { timeout_ms: 20 })
        );
    }

    #[test]
    fn growing_memory_past_the_cap_fails_as_out_of_memory() {
        let bomb = plugin(
            "listener",
            &components::listener(components::MEMORY_BOMB),
            "memory_mb = 2",
        );
        assert_eq!(
            on_change(&bomb),
            Err(PluginError::OutOfMemory { cap_mb: 2 })
        );
        let fits = plugin(
            "listener",
            &components::listener("(drop (memory.grow (i32.const 16)))"),
            "memory_mb = 2",
        );
        assert_eq!(on_change(&fits), Ok(Ok(())), "1 MiB more fits under 2 MiB");
    }

    #[test]
    fn an_oversized_answer_fails_before_the_host_copies_it() {
        let small = plugin("listener", &components::listener(&error_of(16)), "");
        assert_eq!(on_change(&small), Ok(Err("\0".repeat(16))));
        let large = plugin("listener", &components::listener(&error_of(1 << 20)), "");
        assert_eq!(
            on_change(&large),
            Err(PluginError::TooMuchData {
                cap_bytes: HOST_DATA_PER_CALL
            })
        );
    }

    #[test]
    fn answer_fuel_grows_with_what_was_offered() {
        let none = answer_fuel(&[]);
        assert_eq!(none, HOST_DATA_PER_CALL);
        let one = answer_fuel(&[instance("10.0.0.1", &[])]);
        let big = answer_fuel(&[instance("10.0.0.1", &[("zone", &"x".repeat(10_000))])]);
        assert!(one > none);
        assert!(big >= one + 2 * 10_000, "{big} {one}");
    }

    #[test]
    fn deadlines_are_whole_ticks() {
        assert_eq!(deadline_ticks(100), 100);
        assert_eq!(deadline_ticks(0), 1);
    }
}
