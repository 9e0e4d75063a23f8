//! What the tests measure about this process: the node's log lines (a
//! capturing `tracing` subscriber), peak resident memory, CPU time.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::Duration;

/// Everything the node logs (at `info` and above), for counting bytes.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| Capture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
    });
}

/// Bytes of the log lines that mention `plugin`, and how many lines.
pub fn logged_about(plugin: &str) -> (usize, usize) {
    let logs = LOGS.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|l| l.contains(plugin))
        .fold((0, 0), |(bytes, lines), l| (bytes + l.len() + 1, lines + 1))
}

/// Resets the process's peak resident set size (Linux `clear_refs`).
pub fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").expect("peak RSS reset");
}

/// `(peak, current)` resident set size of this process, in bytes.
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .expect("field present")
            * 1024
    };
    (kib("VmHWM:"), kib("VmRSS:"))
}

/// CPU time this process has used (user and system), at 10 ms resolution.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("ticks"))
        .collect();
    Duration::from_millis((fields[0] + fields[1]) * 10)
}
