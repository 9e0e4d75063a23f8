//! Latency statistics over recorded request times.
//!
//! Each worker records into its own [`Recorder`] (a plain `Vec` of
//! microseconds, so recording is a push and never contends); the runner
//! merges them and sorts once. Exact percentiles over a few million `u32`s
//! cost less than a histogram's bucketing error is worth here.

use std::time::Duration;

/// Latencies of one operation, in microseconds, plus failures.
#[derive(Default)]
pub struct Recorder {
    pub micros: Vec<u32>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Recorder {
    pub fn record(&mut self, took: Duration) {
        self.micros
            .push(took.as_micros().min(u32::MAX as u128) as u32);
    }

    /// Counts a failure; the first one is kept so a report can say why.
    pub fn fail(&mut self, error: anyhow::Error) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("{error:#}"));
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Throughput counts successes only: a server that fails fast must not
    /// look faster than one that answers.
    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.micros.sort_unstable();
        Summary {
            ok: self.micros.len() as u64,
            errors: self.errors,
            per_second: self.micros.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            mean_us: mean(&self.micros),
            p50_us: percentile(&self.micros, 50.0),
            p99_us: percentile(&self.micros, 99.0),
            max_us: self.micros.last().copied().unwrap_or(0),
            first_error: self.first_error,
            server_cpu_us: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub ok: u64,
    pub errors: u64,
    pub per_second: f64,
    pub mean_us: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub first_error: Option<String>,
    /// The server's CPU per successful request, µs (with `--server-pid`).
    pub server_cpu_us: Option<f64>,
}

/// Nearest-rank percentile of sorted values (0 for none): the smallest value
/// with at least `p`% of the values at or below it, so p99 of 100 values is
/// the 99th and p100 is the maximum.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps float error from bumping an exact rank up by one
    // (99.9% of 1000 computes as 999.0000000000001).
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn mean(values: &[u32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&values, 100.0), 100);
        assert_eq!(percentile(&values, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        // Odd sizes round the rank up.
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        let thousand: Vec<u32> = (1..=1000).collect();
        assert_eq!(percentile(&thousand, 99.0), 990);
        assert_eq!(percentile(&thousand, 99.9), 999);
    }

    #[test]
    fn mean_of_values() {
        assert_eq!(mean(&[1, 2, 3]), 2.0);
        assert_eq!(mean(&[]), 0.0);
    }

    #[test]
    fn summary_merges_workers_and_sorts() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for us in [30, 10, 20] {
            a.record(Duration::from_micros(us));
        }
        for us in [50, 40] {
            b.record(Duration::from_micros(us));
        }
        b.fail(anyhow::anyhow!("HTTP 500"));
        b.fail(anyhow::anyhow!("second"));
        a.merge(b);
        let s = a.summary(Duration::from_secs(2));
        assert_eq!((s.ok, s.errors), (5, 2));
        assert_eq!(s.per_second, 2.5);
        assert_eq!(s.mean_us, 30.0);
        assert_eq!((s.p50_us, s.p99_us, s.max_us), (30, 50, 50));
        assert_eq!(s.first_error.as_deref(), Some("HTTP 500"));
    }

    #[test]
    fn huge_latencies_saturate() {
        let mut r = Recorder::default();
        r.record(Duration::from_secs(1 << 40));
        assert_eq!(r.micros, [u32::MAX]);
    }
}
