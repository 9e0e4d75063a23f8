//! One keep-alive HTTP/1.1 connection per worker, reconnected after a failure.
//!
//! Each worker owns its connection (no pool), so N workers mean exactly N
//! connections and the server sees the concurrency the command line asked
//! for. A failed or timed-out request drops the connection, because its
//! state is unknown (a half-read answer would poison the next request).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Requests that take longer than this count as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The credential every request carries in its query string, as Nacos
/// clients send it (`accessToken=…`, or `username=…&password=…` like npm
/// `nacos-naming`); set once from the command line.
static CREDENTIAL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every request of this process carry `query` (already encoded).
pub fn set_credential(query: String) {
    let _ = CREDENTIAL.set(query);
}

pub struct Connection {
    addr: SocketAddr,
    host: String,
    user_agent: Option<&'static str>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(addr: SocketAddr) -> Self {
        Connection {
            addr,
            host: addr.to_string(),
            user_agent: None,
            sender: None,
        }
    }

    /// Sends this User-Agent with every request (to look like a Nacos client).
    pub fn with_agent(mut self, agent: &'static str) -> Self {
        self.user_agent = Some(agent);
        self
    }

    async fn connect(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connecting to {}", self.addr))?;
            // Small request/answer pairs: don't let Nagle hold them back.
            stream.set_nodelay(true).context("setting TCP_NODELAY")?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .context("HTTP/1.1 handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("no connection")
    }

    /// Sends one request; `Ok` only for a 2xx answer. The body is returned.
    pub async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        form: Option<String>,
    ) -> anyhow::Result<Bytes> {
        let result = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.send_inner(method, path_and_query, form),
        )
        .await;
        match result {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                bail!("request timed out after {REQUEST_TIMEOUT:?}")
            }
        }
    }

    async fn send_inner(
        &mut self,
        method: Method,
        path_and_query: &str,
        form: Option<String>,
    ) -> anyhow::Result<Bytes> {
        let host = self.host.clone();
        let agent = self.user_agent;
        let sender = self.connect().await?;
        sender.ready().await.context("connection closed")?;
        let uri = match CREDENTIAL.get() {
            Some(credential) if path_and_query.contains('?') => {
                format!("{path_and_query}&{credential}")
            }
            Some(credential) => format!("{path_and_query}?{credential}"),
            None => path_and_query.to_string(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header("Host", host);
        if let Some(agent) = agent {
            request = request.header("User-Agent", agent);
        }
        let body = match form {
            Some(form) => {
                request = request.header("Content-Type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let response = sender
            .send_request(request.body(body)?)
            .await
            .context("sending the request")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the answer")?
            .to_bytes();
        if !status.is_success() {
            bail!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        Ok(body)
    }
}

/// Percent-encodes a query or form value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_reserved_bytes() {
        assert_eq!(
            super::encode(r#"a@@b {"x":1}"#),
            "a%40%40b%20%7B%22x%22%3A1%7D"
        );
    }
}
