//! `one-service`: register many instances into ONE service and compare the
//! cost of the first registrations with the last. A registry that rewrites the
//! whole instance list on every change (Nacos 1.x copies it per registration)
//! gets slower as the service grows, so the last/first ratio climbs with the
//! total; a registry whose registration cost is independent of the service's
//! size keeps it near 1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::stats;
use crate::workload::{self, MakeRequest, Plan, Sample};

/// Figures of a window of consecutive registrations (by request index).
#[derive(Debug, PartialEq)]
pub struct Window {
    /// Successful registrations in the window.
    pub ok: u64,
    pub mean_us: f64,
    pub p50_us: u32,
    /// Successes over the time from the window's first send to its last answer.
    pub per_second: f64,
}

pub struct OneServiceResult {
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_second: f64,
    pub first: Window,
    pub last: Window,
}

impl OneServiceResult {
    /// Last/first mean registration cost: ~1 means linear total cost.
    pub fn ratio(&self) -> f64 {
        self.last.mean_us / self.first.mean_us.max(1e-9)
    }

    pub fn p50_ratio(&self) -> f64 {
        self.last.p50_us as f64 / f64::from(self.first.p50_us.max(1))
    }
}

/// The figures of the samples whose index lies in `range`.
pub fn window(samples: &[Sample], range: std::ops::Range<u64>) -> Window {
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| range.contains(&s.index))
        .collect();
    let mut micros: Vec<u32> = inside.iter().map(|s| s.took_us).collect();
    micros.sort_unstable();
    let begin = inside.iter().map(|s| s.sent_us).min().unwrap_or(0);
    let end = inside
        .iter()
        .map(|s| s.sent_us + u64::from(s.took_us))
        .max()
        .unwrap_or(0);
    let span = Duration::from_micros(end.saturating_sub(begin)).as_secs_f64();
    Window {
        ok: micros.len() as u64,
        mean_us: stats::mean(&micros),
        p50_us: stats::percentile(&micros, 50.0),
        per_second: micros.len() as f64 / span.max(1e-6),
    }
}

pub async fn run(
    addr: SocketAddr,
    connections: usize,
    total: u64,
    window_size: u64,
    service: &str,
    timeout: Duration,
) -> anyhow::Result<OneServiceResult> {
    if window_size == 0 || window_size * 2 > total {
        bail!("--window must be positive and at most half of --total");
    }
    let service = service.to_string();
    let make: MakeRequest = Arc::new(move |i, _| workload::register(&service, i));
    let plan = Plan {
        connections,
        duration: timeout,
        max: total,
        keep_samples: true,
    };
    let run = workload::run(&[addr], &plan, make).await;
    let first = window(&run.samples, 0..window_size);
    let last = window(&run.samples, total - window_size..total);
    if first.ok == 0 || last.ok == 0 {
        let reason = run
            .recorder
            .first_error
            .as_deref()
            .unwrap_or("timed out before the last window (raise --timeout or lower --total)");
        bail!("no successful registration in the first or last window: {reason}");
    }
    Ok(OneServiceResult {
        total,
        ok: run.samples.len() as u64,
        errors: run.recorder.errors,
        first_error: run.recorder.first_error,
        per_second: run.samples.len() as f64 / run.elapsed.as_secs_f64().max(1e-9),
        first,
        last,
    })
}

pub fn print(r: &OneServiceResult, window_size: u64, url: &str, json: bool) {
    println!(
        "{} of {} registrations into one service succeeded at {:.0} req/s ({} errors)",
        r.ok, r.total, r.per_second, r.errors
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10}",
        "window", "mean µs", "p50 µs", "req/s"
    );
    for (name, w) in [("first", &r.first), ("last", &r.last)] {
        println!(
            "{:<16} {:>10.0} {:>10} {:>10.0}",
            format!("{name} {window_size}"),
            w.mean_us,
            w.p50_us,
            w.per_second
        );
    }
    println!(
        "last/first mean cost {:.2} (p50 {:.2}); near 1 = registration cost independent of service size",
        r.ratio(),
        r.p50_ratio()
    );
    if let Some(e) = &r.first_error {
        eprintln!("first error: {e}");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "total": r.total, "ok": r.ok, "errors": r.errors, "per_second": r.per_second,
                "window": window_size,
                "first_mean_us": r.first.mean_us, "first_p50_us": r.first.p50_us,
                "first_per_second": r.first.per_second,
                "last_mean_us": r.last.mean_us, "last_p50_us": r.last.p50_us,
                "last_per_second": r.last.per_second,
                "ratio": r.ratio(), "p50_ratio": r.p50_ratio(), "url": url,
            })
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_figures() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                index: i,
                sent_us: i * 100,
                took_us: 100 + i as u32,
            })
            .collect();
        let w = window(&samples, 0..4);
        assert_eq!(w.ok, 4);
        assert_eq!(w.mean_us, 101.5);
        assert_eq!(w.p50_us, 101);
        // Sent from 0 µs, last answer at 300 + 103 µs.
        assert!((w.per_second - 4.0 / 403e-6).abs() < 1e-6);
        assert_eq!(window(&samples, 20..30).ok, 0);
    }
}
