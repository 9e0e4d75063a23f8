//! `push`: change-to-receive latency of UDP pushes.
//!
//! Subscribers (UDP sockets on 127.0.0.1) list their service with a `udpPort`
//! as a push-capable client; a writer then changes one instance of a service
//! at a time, stamping its metadata with a sequence number. A subscriber that
//! receives a push carrying sequence `n` has seen every change up to `n`; the
//! latency of each is receive time minus the time its write was sent.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::Method;
use tokio::net::UdpSocket;

use crate::client::{Connection, encode};
use crate::stats::Recorder;
use crate::workload::API;

pub struct PushResult {
    pub subscribers: usize,
    pub changes: u64,
    pub pushes: u64,
    pub pushes_per_second: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    /// Changes some subscriber never saw within the grace period.
    pub missed: u64,
}

/// When each (service, sequence) write was sent.
type WriteTimes = Arc<Mutex<HashMap<(u64, u64), Instant>>>;

fn service(prefix: &str, s: u64) -> String {
    format!("{prefix}-{s}")
}

fn change(prefix: &str, s: u64, seq: u64) -> (Method, String, Option<String>) {
    let form = format!(
        "serviceName={}&ip=10.200.0.1&port=80&metadata={}",
        encode(&service(prefix, s)),
        encode(&format!(r#"{{"seq":"{seq}"}}"#))
    );
    (Method::POST, format!("{API}/instance"), Some(form))
}

fn subscribe_path(prefix: &str, s: u64, port: u16) -> String {
    format!(
        "{API}/instance/list?serviceName={}&udpPort={port}&clientIP=127.0.0.1",
        encode(&service(prefix, s))
    )
}

/// Reads the sequence number out of a push datagram, acking it.
async fn handle_push(socket: &UdpSocket, raw: &[u8], from: SocketAddr) -> Option<u64> {
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_string(&mut text)
            .ok()?;
        text
    } else {
        String::from_utf8(raw.to_vec()).ok()?
    };
    let packet: serde_json::Value = serde_json::from_str(&text).ok()?;
    let ack =
        serde_json::json!({"type": "push-ack", "lastRefTime": packet["lastRefTime"], "data": ""})
            .to_string();
    let _ = socket.send_to(ack.as_bytes(), from).await;
    let data: serde_json::Value = serde_json::from_str(packet["data"].as_str()?).ok()?;
    data["hosts"]
        .as_array()?
        .iter()
        .filter_map(|h| h["metadata"]["seq"].as_str()?.parse().ok())
        .max()
}

pub async fn run(
    addr: SocketAddr,
    subscribers: usize,
    services: u64,
    rate: u64,
    duration: Duration,
    prefix: &str,
) -> anyhow::Result<PushResult> {
    if services == 0 || subscribers == 0 || rate == 0 {
        bail!("--subscribers, --services and --rate must be positive");
    }
    let agent_conn = || Connection::new(addr).with_agent("Nacos-Java-Client:v1.4.1");
    // Seed each service so subscribers have something to list.
    let mut writer = agent_conn();
    for s in 0..services {
        let (m, p, f) = change(prefix, s, 0);
        writer.send(m, &p, f).await.context("seeding services")?;
    }
    let mut sockets = Vec::with_capacity(subscribers);
    let mut refresher = agent_conn();
    for i in 0..subscribers {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let port = socket.local_addr()?.port();
        let s = i as u64 % services;
        refresher
            .send(Method::GET, &subscribe_path(prefix, s, port), None)
            .await?;
        sockets.push((Arc::new(socket), s, port));
    }

    let writes: WriteTimes = Arc::new(Mutex::new(HashMap::new()));
    let stop_at = Instant::now() + duration;
    // Changes sent in the last moments get this long to arrive.
    let grace = Duration::from_secs(2);
    let mut receivers = tokio::task::JoinSet::new();
    for (socket, s, _) in &sockets {
        let (socket, s, writes) = (Arc::clone(socket), *s, Arc::clone(&writes));
        receivers.spawn(async move {
            let mut recorder = Recorder::default();
            let mut seen = 0u64;
            let mut pushes = 0u64;
            let mut buf = vec![0u8; 65_536];
            let end = stop_at + grace;
            while let Ok(Ok((len, from))) = tokio::time::timeout(
                end.saturating_duration_since(Instant::now()),
                socket.recv_from(&mut buf),
            )
            .await
            {
                let now = Instant::now();
                pushes += 1;
                let Some(seq) = handle_push(&socket, &buf[..len], from).await else {
                    continue;
                };
                if seq > seen {
                    let writes = writes.lock().unwrap_or_else(|e| e.into_inner());
                    for n in seen + 1..=seq {
                        if let Some(sent) = writes.get(&(s, n)) {
                            recorder.record(now.duration_since(*sent));
                        }
                    }
                    seen = seq;
                }
            }
            (recorder, pushes, seen)
        });
    }

    // Keep subscriptions fresh (they expire after the push cache time).
    let refresh_prefix = prefix.to_string();
    let refresh_targets: Vec<(u64, u16)> = sockets.iter().map(|(_, s, p)| (*s, *p)).collect();
    let refresh = tokio::spawn(async move {
        while Instant::now() < stop_at {
            tokio::time::sleep(Duration::from_secs(3)).await;
            for (s, port) in &refresh_targets {
                let _ = refresher
                    .send(
                        Method::GET,
                        &subscribe_path(&refresh_prefix, *s, *port),
                        None,
                    )
                    .await;
            }
        }
    });

    // The writer: `rate` changes per second, round-robin over services.
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(interval);
    let mut seqs = vec![0u64; services as usize];
    let mut changes = 0u64;
    while Instant::now() < stop_at {
        tick.tick().await;
        let s = changes % services;
        let seq = seqs[s as usize] + 1;
        seqs[s as usize] = seq;
        writes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((s, seq), Instant::now());
        let (m, p, f) = change(prefix, s, seq);
        writer.send(m, &p, f).await.context("writing a change")?;
        changes += 1;
    }
    refresh.abort();

    let mut recorder = Recorder::default();
    let (mut pushes, mut missed) = (0u64, 0u64);
    while let Some(done) = receivers.join_next().await {
        let (r, p, _) = done.context("receiver task")?;
        recorder.merge(r);
        pushes += p;
    }
    // Every subscriber should have seen every change to its service.
    let expected: u64 = sockets.iter().map(|(_, s, _)| seqs[*s as usize]).sum();
    let measured = recorder.micros.len() as u64;
    if measured < expected {
        missed = expected - measured;
    }
    let summary = recorder.summary(duration);
    Ok(PushResult {
        subscribers,
        changes,
        pushes,
        pushes_per_second: pushes as f64 / duration.as_secs_f64(),
        p50_us: summary.p50_us,
        p99_us: summary.p99_us,
        max_us: summary.max_us,
        missed,
    })
}
