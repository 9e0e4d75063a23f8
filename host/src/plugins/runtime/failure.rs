//! Turning what wasmtime reports about a failed call into a [`PluginError`].

use super::super::error::{MAX_REASON_BYTES, PluginError, printable};
use super::super::manifest::Limits;
use super::limits::OverMemoryCap;

/// Runs one plugin call, turning a panic inside a host function into a failed
/// call and any error into a [`PluginError`]. wasmtime unwinds a host panic
/// through the guest's frames and resumes it at the call site; the store is
/// dropped afterwards like after a trap.
///
/// The panic that does happen: plugin calls run on threads inside a Tokio
/// runtime (the listener thread, a plugin's worker), and a WASI call that
/// blocks (sleeping, `poll`, writing to or dropping a stdout/stderr stream —
/// which Rust's `println!` and panic messages do) reaches wasmtime-wasi's
/// `in_tokio`, which panics inside a runtime. Letting such calls block would
/// hold the thread beyond the deadline (epoch interruption cannot reach a
/// host call), so refusing them is the intended outcome; this turns the
/// refusal into a plugin failure.
pub fn guarded<R>(
    limits: Limits,
    fuel: usize,
    call: impl FnOnce() -> wasmtime::Result<R>,
) -> Result<R, PluginError> {
    settle(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)),
        limits,
        fuel,
    )
}

/// The outcome of a call made under `catch_unwind`, as [`guarded`] describes it.
pub fn settle<R>(
    outcome: std::thread::Result<wasmtime::Result<R>>,
    limits: Limits,
    fuel: usize,
) -> Result<R, PluginError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(classify(&error, limits, fuel)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(
                if message.contains("Cannot start a runtime from within a runtime") {
                    PluginError::BlockingWasi
                } else {
                    PluginError::HostPanic(printable(&message, MAX_REASON_BYTES))
                },
            )
        }
    }
}

/// What a wasmtime error means for the plugin: `limits` and `fuel` (the
/// store's hostcall fuel during the call) name the limit that was hit.
pub(crate) fn classify(error: &wasmtime::Error, limits: Limits, fuel: usize) -> PluginError {
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => PluginError::Timeout {
                timeout_ms: limits.timeout_ms,
            },
            other => PluginError::Trap(printable(&other.to_string(), MAX_REASON_BYTES)),
        };
    }
    if error.downcast_ref::<OverMemoryCap>().is_some() {
        return PluginError::OutOfMemory {
            cap_mb: (limits.memory_bytes >> 20) as u64,
        };
    }
    let text = format!("{error:#}");
    // wasmtime's error for this is private; its message is checked by
    // `plugin::tests::an_oversized_answer_fails_before_the_host_copies_it`.
    if text.contains("fuel allocated for hostcalls has been exhausted") {
        return PluginError::TooMuchData { cap_bytes: fuel };
    }
    PluginError::Other(printable(&text, MAX_REASON_BYTES))
}
