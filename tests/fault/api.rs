//! The naming API as the suite's clients call it (the v1 HTTP API, as a
//! Nacos 1.x client sends it), every call recorded in the history with its
//! start, end, member and answer.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::history::{Answer, History, InstanceKey, Op, Record};
use crate::settings::CLIENT_TIMEOUT_MS;

/// Every instance the suite registers is at this address.
pub const IP: &str = "127.0.0.1";

/// What an instance write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Register,
    Deregister,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    urls: Arc<Vec<String>>,
    pub history: History,
}

impl Api {
    pub fn new(urls: Vec<String>, history: History) -> anyhow::Result<Api> {
        // A fresh connection per request: a pooled connection to a member
        // that was killed would fail a request that never reached anyone,
        // and the history would call it unknown.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_millis(CLIENT_TIMEOUT_MS))
            .build()?;
        Ok(Api {
            http,
            urls: Arc::new(urls),
            history,
        })
    }

    pub fn members(&self) -> usize {
        self.urls.len()
    }

    /// `POST instance` (register) or `DELETE instance` (deregister).
    pub async fn write(
        &self,
        client: &Arc<str>,
        member: usize,
        key: &InstanceKey,
        ephemeral: bool,
        change: Change,
    ) -> Answer {
        let port = key.port.to_string();
        let form = [
            ("serviceName", &*key.service),
            ("ip", IP),
            ("port", &port),
            ("ephemeral", if ephemeral { "true" } else { "false" }),
        ];
        let key = key.clone();
        let (op, method) = match change {
            Change::Register => (Op::Register { key, ephemeral }, Method::POST),
            Change::Deregister => (Op::Deregister { key, ephemeral }, Method::DELETE),
        };
        self.call(client, member, op, method, "/nacos/v1/ns/instance", &form)
            .await
    }

    /// A beat: light (ip and port only) or with the instance in its body, as
    /// the Java client's `BeatInfo`.
    pub async fn beat(
        &self,
        client: &Arc<str>,
        member: usize,
        key: &InstanceKey,
        body: bool,
    ) -> Answer {
        let port = key.port.to_string();
        let info = json!({
            "ip": IP,
            "port": key.port,
            "serviceName": format!("DEFAULT_GROUP@@{}", key.service),
            "cluster": "DEFAULT",
            "weight": 1.0,
            "metadata": {},
            "scheduled": false,
            "period": crate::settings::BEAT_PERIOD_MS,
            "stopped": false,
        })
        .to_string();
        let mut form = vec![("serviceName", &*key.service), ("ip", IP), ("port", &port)];
        if body {
            form.push(("beat", &info));
        }
        let op = Op::Beat {
            key: key.clone(),
            body,
        };
        self.call(
            client,
            member,
            op,
            Method::PUT,
            "/nacos/v1/ns/instance/beat",
            &form,
        )
        .await
    }

    pub async fn list(
        &self,
        client: &Arc<str>,
        member: usize,
        service: &Arc<str>,
        final_round: bool,
    ) -> Answer {
        let op = Op::List {
            service: Arc::clone(service),
            final_round,
        };
        let query = [("serviceName", &**service)];
        self.call(
            client,
            member,
            op,
            Method::GET,
            "/nacos/v1/ns/instance/list",
            &query,
        )
        .await
    }

    /// Sends one request (form-encoded, or as the query of a GET), records it.
    async fn call(
        &self,
        client: &Arc<str>,
        member: usize,
        op: Op,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.urls[member]);
        let request = if method == Method::GET {
            self.http.get(url).query(params)
        } else {
            self.http.request(method, url).form(params)
        };
        let start = self.history.now();
        let answer = match request.send().await {
            Ok(reply) => {
                let status = reply.status().as_u16();
                match reply.text().await {
                    Ok(body) => interpret(&op, status, body),
                    Err(e) => failure(&e),
                }
            }
            Err(e) => failure(&e),
        };
        let end = self.history.now();
        self.history.record(Record {
            client: Arc::clone(client),
            member,
            op,
            start,
            end,
            answer: answer.clone(),
        });
        answer
    }
}

fn failure(e: &reqwest::Error) -> Answer {
    if e.is_timeout() {
        Answer::TimedOut
    } else if e.is_connect() {
        Answer::Refused
    } else {
        Answer::Broken(format!("{e:#}"))
    }
}

/// Reads a 200 the way the operation expects it; anything else is kept as is.
fn interpret(op: &Op, status: u16, body: String) -> Answer {
    if status != 200 {
        return Answer::Status(status, body);
    }
    match op {
        Op::Register { .. } | Op::Deregister { .. } if body == "ok" => Answer::Done,
        Op::Beat { .. } => match serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_i64())
        {
            Some(code) => Answer::Beat(code),
            None => Answer::Status(status, body),
        },
        Op::List { .. } => match serde_json::from_str::<Value>(&body) {
            Ok(reply) => listed(&reply).unwrap_or(Answer::Status(status, body)),
            Err(_) => Answer::Status(status, body),
        },
        _ => Answer::Status(status, body),
    }
}

fn listed(reply: &Value) -> Option<Answer> {
    let mut ports = Vec::new();
    let mut strangers = Vec::new();
    for host in reply["hosts"].as_array()? {
        let ip = host["ip"].as_str()?;
        let port = host["port"].as_u64()?;
        match u16::try_from(port) {
            Ok(port) if ip == IP => ports.push(port),
            _ => strangers.push(format!("{ip}:{port}")),
        }
    }
    ports.sort_unstable();
    Some(Answer::Listed { ports, strangers })
}
