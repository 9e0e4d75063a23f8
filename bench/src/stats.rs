//! Latency statistics over recorded request times.

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

    pub fn summary(mut self, elapsed: Duration) -> Summary {
        self.micros.sort_unstable();
        Summary {
            ok: self.micros.len() as u64,
            errors: self.errors,
            per_second: self.micros.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_us: percentile(&self.micros, 50.0),
            p99_us: percentile(&self.micros, 99.0),
            max_us: self.micros.last().copied().unwrap_or(0),
            first_error: self.first_error,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub ok: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    pub first_error: Option<String>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
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
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(mean(&[1, 2, 3]), 2.0);
    }
}
