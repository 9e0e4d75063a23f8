//! Requests the CLI's commands (`nacre auth`, `nacre plugin list`) send to a
//! running node over its HTTP API.

use anyhow::{Context, bail};

/// Sends a request to the node at `url` (parameters as the query of a GET,
/// else as a form), with `token` as the `accessToken` header. Answers the
/// JSON body of a 2xx; fails with the node's message otherwise, or when the
/// node cannot be reached or answers something that is not JSON.
pub async fn call(
    url: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<serde_json::Value> {
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let mut request = if method == reqwest::Method::GET {
        client.request(method, &endpoint).query(params)
    } else {
        client.request(method, &endpoint).form(params)
    };
    if let Some(token) = token {
        request = request.header("accessToken", token);
    }
    let reply = request
        .send()
        .await
        .with_context(|| format!("asking {endpoint} (is a node running there? see --url)"))?;
    let status = reply.status();
    let text = reply.text().await.context("reading the answer")?;
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or(text);
        bail!("{endpoint} answered {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{endpoint} answered something not JSON"))
}
