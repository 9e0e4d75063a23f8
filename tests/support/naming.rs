//! Small clients of the naming API for end-to-end tests.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::wait::wait_for;

pub fn http() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn register(url: &str, service: &str, ip: &str, port: u16) -> anyhow::Result<()> {
    let reply = http()
        .post(format!("{url}/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", service),
            ("ip", ip),
            ("port", &port.to_string()),
        ])
        .send()
        .await?;
    let status = reply.status();
    let body = reply.text().await?;
    ensure!(
        status == 200 && body == "ok",
        "register {service} {ip}:{port} via {url}: {status} {body}"
    );
    Ok(())
}

/// A beat (light, as Nacos clients send after the first); returns the reply's code.
pub async fn beat(url: &str, service: &str, ip: &str, port: u16) -> anyhow::Result<i64> {
    let reply = http()
        .put(format!("{url}/nacos/v1/ns/instance/beat"))
        .form(&[
            ("serviceName", service),
            ("ip", ip),
            ("port", &port.to_string()),
        ])
        .send()
        .await?;
    let status = reply.status();
    let body: Value = reply.json().await.context("beat reply")?;
    ensure!(status == 200, "beat {service} via {url}: {status} {body}");
    body["code"].as_i64().context("beat reply without code")
}

/// The `ip:port`s an `instance/list` shows.
pub async fn hosts(url: &str, service: &str) -> anyhow::Result<BTreeSet<String>> {
    let reply: Value = http()
        .get(format!("{url}/nacos/v1/ns/instance/list"))
        .query(&[("serviceName", service)])
        .send()
        .await?
        .json()
        .await?;
    Ok(reply["hosts"]
        .as_array()
        .map(|hosts| {
            hosts
                .iter()
                .map(|h| format!("{}:{}", h["ip"].as_str().unwrap_or(""), h["port"]))
                .collect()
        })
        .unwrap_or_default())
}

/// Waits until `instance/list` shows exactly `expected` (`ip:port`s).
pub async fn wait_hosts(
    url: &str,
    service: &str,
    expected: &[&str],
    limit: Duration,
) -> anyhow::Result<()> {
    let want: BTreeSet<String> = expected.iter().map(|h| h.to_string()).collect();
    let what = format!("{service} to list {expected:?}");
    wait_for(&what, limit, || async {
        Ok(hosts(url, service).await? == want)
    })
    .await
}

/// Sends an instance write (`method` POST, PUT or DELETE) with these form
/// parameters; returns the status and body, whatever they are.
pub async fn instance_write(
    url: &str,
    method: reqwest::Method,
    params: &[(&str, &str)],
) -> anyhow::Result<(u16, String)> {
    let reply = http()
        .request(method, format!("{url}/nacos/v1/ns/instance"))
        .form(params)
        .send()
        .await?;
    let status = reply.status().as_u16();
    Ok((status, reply.text().await?))
}

/// The hosts of an `instance/list` reply, as JSON.
pub async fn instances(url: &str, service: &str) -> anyhow::Result<Vec<Value>> {
    let reply: Value = http()
        .get(format!("{url}/nacos/v1/ns/instance/list"))
        .query(&[("serviceName", service)])
        .send()
        .await?
        .json()
        .await?;
    Ok(reply["hosts"].as_array().cloned().unwrap_or_default())
}
