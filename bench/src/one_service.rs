//! `one-service`: register many instances into ONE service and compare the
//! cost of the first registrations with the last. A registry that rewrites the
//! whole instance list on every change (Nacos 1.x) gets slower as the service
//! grows; the ratio shows it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use crate::stats;
use crate::workload::{self, MakeRequest};

pub struct Window {
    pub mean_us: f64,
    pub p50_us: u32,
}

pub struct OneServiceResult {
    pub total: u64,
    pub per_second: f64,
    pub first: Window,
    pub last: Window,
}

pub async fn run(
    addr: SocketAddr,
    connections: usize,
    total: u64,
    window: u64,
    service: &str,
) -> anyhow::Result<OneServiceResult> {
    if window == 0 || window * 2 > total {
        bail!("--window must be positive and at most half of --total");
    }
    let service = service.to_string();
    let make: MakeRequest = Arc::new(move |i| workload::register(&service, i));
    let run = workload::run(addr, connections, Duration::from_secs(3600), total, make).await;
    if run.recorder.errors > 0 {
        bail!(
            "{} registrations failed (first: {:?})",
            run.recorder.errors,
            run.recorder.first_error
        );
    }
    let window_of = |range: std::ops::Range<u64>| {
        let mut micros: Vec<u32> = run
            .samples
            .iter()
            .filter(|(i, _)| range.contains(i))
            .map(|(_, us)| *us)
            .collect();
        micros.sort_unstable();
        Window {
            mean_us: stats::mean(&micros),
            p50_us: stats::percentile(&micros, 50.0),
        }
    };
    Ok(OneServiceResult {
        total,
        per_second: run.samples.len() as f64 / run.elapsed.as_secs_f64(),
        first: window_of(0..window),
        last: window_of(total - window..total),
    })
}
