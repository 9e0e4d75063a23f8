//! A client's UDP push socket: subscribes by listing with `udpPort`,
//! receives pushes (gzipped or not), acks them.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::UdpSocket;

use super::TestNode;

pub const LIMIT: Duration = Duration::from_secs(10);
pub const JAVA: &str = "Nacos-Java-Client:v1.4.1";

/// A client's push socket.
pub struct Subscriber {
    pub socket: UdpSocket,
}

/// One received push.
pub struct Push {
    pub from: SocketAddr,
    pub gzipped: bool,
    pub last_ref_time: u64,
    /// The instance list it carries.
    pub data: Value,
}

impl Push {
    /// `ip:port` of each host the push lists, sorted.
    pub fn hosts(&self) -> Vec<String> {
        super::hosts(&self.data)
    }
}

impl Subscriber {
    pub async fn new() -> Subscriber {
        Subscriber {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
        }
    }

    pub fn port(&self) -> String {
        self.socket.local_addr().expect("addr").port().to_string()
    }

    /// Lists `service` as a push-capable client; returns the reply.
    pub async fn subscribe(&self, node: &TestNode, service: &str, agent: &str) -> Value {
        node.http
            .get(format!("{}/nacos/v1/ns/instance/list", node.base))
            .query(&[
                ("serviceName", service),
                ("udpPort", &self.port()),
                ("clientIP", "127.0.0.1"),
            ])
            .header("User-Agent", agent)
            .send()
            .await
            .expect("list sent")
            .json()
            .await
            .expect("list JSON")
    }

    /// The next push within `limit`, if any.
    pub async fn recv_within(&self, limit: Duration) -> Option<Push> {
        let mut buf = vec![0u8; 65_536];
        let (len, from) = tokio::time::timeout(limit, self.socket.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let raw = &buf[..len];
        let gzipped = raw.starts_with(&[0x1f, 0x8b]);
        let text = if gzipped {
            let mut text = String::new();
            flate2::read::GzDecoder::new(raw)
                .read_to_string(&mut text)
                .expect("valid gzip");
            text
        } else {
            String::from_utf8(raw.to_vec()).expect("utf-8 push")
        };
        let packet: Value = serde_json::from_str(&text).expect("push JSON");
        assert_eq!(packet["type"], "dom");
        let data = serde_json::from_str(packet["data"].as_str().expect("data is a JSON string"))
            .expect("list JSON");
        Some(Push {
            from,
            gzipped,
            last_ref_time: packet["lastRefTime"].as_u64().expect("lastRefTime"),
            data,
        })
    }

    pub async fn recv(&self) -> Push {
        self.recv_within(LIMIT)
            .await
            .expect("a push within the limit")
    }

    pub async fn ack(&self, push: &Push) {
        let ack = format!(
            r#"{{"type":"push-ack","lastRefTime":"{}","data":""}}"#,
            push.last_ref_time
        );
        self.socket
            .send_to(ack.as_bytes(), push.from)
            .await
            .expect("ack sent");
    }

    /// Receives pushes, acking each, until one satisfies `done`; returns it and how many came.
    pub async fn recv_until(&self, mut done: impl FnMut(&Push) -> bool) -> (Push, usize) {
        let start = Instant::now();
        let mut count = 0;
        loop {
            let left = LIMIT.saturating_sub(start.elapsed());
            let push = self
                .recv_within(left)
                .await
                .expect("the awaited push within the limit");
            count += 1;
            self.ack(&push).await;
            if done(&push) {
                return (push, count);
            }
        }
    }
}
