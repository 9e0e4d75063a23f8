//! Figures about this process and machine for `operator/metrics`, read from
//! `/proc` (Linux). Unreadable figures are reported as 0 rather than failing
//! the request.

use std::sync::Mutex;
use std::time::Instant;

/// Linux reports process CPU time in clock ticks of 1/100 s on every
/// mainstream architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// Samples the process's CPU, memory and the machine's load; keeps the
/// previous CPU reading to turn CPU time into a share.
pub struct SystemStats {
    /// (when, process CPU ticks) at the previous sample, to turn ticks into a rate.
    last_cpu: Mutex<Option<(Instant, u64)>>,
}

/// One reading; each figure is 0 when `/proc` does not have it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// One-minute load average of the machine.
    pub load: f64,
    /// Resident memory of this process as a share of the machine's memory.
    pub mem: f64,
    /// CPU used by this process since the previous sample, as a share of one core.
    pub cpu: f64,
    /// Resident memory of this process, in bytes.
    pub rss_bytes: u64,
}

impl Default for SystemStats {
    fn default() -> Self {
        Self::new()
    }
}

impl SystemStats {
    /// Takes a first CPU reading, so the first sample has a rate.
    pub fn new() -> Self {
        SystemStats {
            last_cpu: Mutex::new(read_cpu_ticks().map(|t| (Instant::now(), t))),
        }
    }

    /// Reads `/proc` now; the CPU share covers the time since the last sample.
    pub fn sample(&self) -> Sample {
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0.0);
        let rss_bytes = rss_bytes().unwrap_or(0);
        let total = mem_total_bytes().unwrap_or(0);
        let mem = if total > 0 {
            rss_bytes as f64 / total as f64
        } else {
            0.0
        };
        let cpu = self.cpu_share();
        Sample {
            load,
            mem,
            cpu,
            rss_bytes,
        }
    }

    fn cpu_share(&self) -> f64 {
        let Some(ticks) = read_cpu_ticks() else {
            return 0.0;
        };
        let now = Instant::now();
        let mut last = self.last_cpu.lock().unwrap_or_else(|e| e.into_inner());
        let share = match *last {
            Some((then, before)) => {
                let wall = now.duration_since(then).as_secs_f64();
                if wall > 0.0 {
                    (ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND) / wall
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        *last = Some((now, ticks));
        share
    }
}

/// utime + stime of this process, in ticks (fields 14 and 15 of /proc/self/stat).
fn read_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields are counted after its ')'.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of this process.
pub fn rss_bytes() -> Option<u64> {
    kib_field("/proc/self/status", "VmRSS:")
}

fn mem_total_bytes() -> Option<u64> {
    kib_field("/proc/meminfo", "MemTotal:")
}

fn kib_field(path: &str, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

impl crate::metrics::RenderMetrics for Sample {
    fn render_metrics(&self, out: &mut crate::metrics::Exposition) {
        out.gauge(
            "nacre_process_resident_bytes",
            "Resident memory of this process.",
            self.rss_bytes as f64,
        );
        out.gauge(
            "nacre_system_load1",
            "One-minute load average of the machine.",
            self.load,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_figures_on_linux() {
        let stats = SystemStats::new();
        let sample = stats.sample();
        assert!(sample.rss_bytes > 0);
        assert!(sample.mem > 0.0 && sample.mem < 1.0);
        assert!(sample.cpu >= 0.0);
    }
}
