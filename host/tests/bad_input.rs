//! Bad input gets a Nacos-style error naming the problem, and changes nothing.

mod common;

use common::TestNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Request parameters as name/value pairs.
type Pairs<'a> = &'a [(&'a str, &'a str)];

/// Asserts `reply` is a 400 whose body names `param`.
fn assert_refused(reply: &common::Reply, param: &str, case: &str) {
    assert_eq!(reply.status, 400, "{case}: {}", reply.text);
    assert!(reply.text.starts_with("caused: "), "{case}: {}", reply.text);
    assert!(
        reply.text.contains(&format!("'{param}'")),
        "{case}: expected '{param}' in {}",
        reply.text
    );
}

async fn assert_nothing_registered(node: &TestNode) {
    let metrics = node.get("/operator/metrics", &[]).await.json();
    assert_eq!(
        metrics["instanceCount"], 0,
        "a refused request changed the registry"
    );
    assert_eq!(
        metrics["serviceCount"], 0,
        "a refused request created a service"
    );
}

#[tokio::test]
async fn malformed_registrations_are_refused() {
    let node = TestNode::start().await;
    let base = [("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "8080")];
    let cases: &[(&str, Pairs, &str)] = &[
        (
            "missing serviceName",
            &[("ip", "10.0.0.1"), ("port", "1")],
            "serviceName",
        ),
        (
            "empty serviceName",
            &[("serviceName", ""), ("ip", "10.0.0.1"), ("port", "1")],
            "serviceName",
        ),
        (
            "blank serviceName",
            &[("serviceName", "   "), ("ip", "10.0.0.1"), ("port", "1")],
            "serviceName",
        ),
        (
            "group without service",
            &[("serviceName", "g@@"), ("ip", "10.0.0.1"), ("port", "1")],
            "serviceName",
        ),
        ("missing ip", &[("serviceName", "svc"), ("port", "1")], "ip"),
        (
            "bad ip",
            &[("serviceName", "svc"), ("ip", "300.0.0.1"), ("port", "1")],
            "ip",
        ),
        (
            "missing port",
            &[("serviceName", "svc"), ("ip", "10.0.0.1")],
            "port",
        ),
        (
            "port zero",
            &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "0")],
            "port",
        ),
        (
            "port too big",
            &[
                ("serviceName", "svc"),
                ("ip", "10.0.0.1"),
                ("port", "65536"),
            ],
            "port",
        ),
        (
            "negative port",
            &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "-80")],
            "port",
        ),
        (
            "port not a number",
            &[("serviceName", "svc"), ("ip", "10.0.0.1"), ("port", "http")],
            "port",
        ),
        (
            "bad cluster",
            &[
                ("serviceName", "svc"),
                ("ip", "10.0.0.1"),
                ("port", "1"),
                ("clusterName", "a_b"),
            ],
            "clusterName",
        ),
    ];
    for (case, params, param) in cases {
        assert_refused(&node.send("POST", "/instance", params).await, param, case);
    }
    let extras: &[(&str, (&str, &str), &str)] = &[
        ("negative weight", ("weight", "-1"), "weight"),
        ("weight above 10000", ("weight", "10000.1"), "weight"),
        ("weight not a number", ("weight", "heavy"), "weight"),
        ("weight NaN", ("weight", "NaN"), "weight"),
        (
            "metadata bad JSON",
            ("metadata", r#"{"zone": "a""#),
            "metadata",
        ),
        (
            "metadata nested",
            ("metadata", r#"{"zone": {"a": 1}}"#),
            "metadata",
        ),
        ("metadata no pairs", ("metadata", "zone"), "metadata"),
        ("healthy not a bool", ("healthy", "maybe"), "healthy"),
        ("enabled not a bool", ("enabled", "yes please"), "enabled"),
        (
            "ephemeral not a bool",
            ("ephemeral", "sometimes"),
            "ephemeral",
        ),
    ];
    for (case, extra, param) in extras {
        let mut params = base.to_vec();
        params.push(*extra);
        assert_refused(&node.send("POST", "/instance", &params).await, param, case);
        assert_refused(&node.send("PUT", "/instance", &params).await, param, case);
    }
    assert_nothing_registered(&node).await;
}

#[tokio::test]
async fn malformed_beats_lists_and_services_are_refused() {
    let node = TestNode::start().await;
    let svc = ("serviceName", "svc");
    let cases: &[(&str, &str, Pairs, &str)] = &[
        (
            "PUT",
            "/instance/beat",
            &[("ip", "10.0.0.1"), ("port", "1")],
            "serviceName",
        ),
        (
            "PUT",
            "/instance/beat",
            &[svc, ("beat", "{not json")],
            "beat",
        ),
        (
            "PUT",
            "/instance/beat",
            &[svc, ("beat", r#"{"ip":"10.0.0.1"}"#)],
            "beat",
        ),
        (
            "PUT",
            "/instance/beat",
            &[svc, ("beat", r#"{"ip":"10.0.0.1","port":"eighty"}"#)],
            "beat",
        ),
        (
            "PUT",
            "/instance/beat",
            &[svc, ("beat", r#"{"ip":"10.0.0.1","port":70000}"#)],
            "beat",
        ),
        (
            "PUT",
            "/instance/beat",
            &[svc, ("ip", "10.0.0.1"), ("port", "x")],
            "port",
        ),
        ("GET", "/instance/list", &[], "serviceName"),
        ("GET", "/instance/list", &[svc, ("udpPort", "x")], "udpPort"),
        (
            "GET",
            "/instance/list",
            &[svc, ("udpPort", "70000")],
            "udpPort",
        ),
        (
            "GET",
            "/instance/list",
            &[svc, ("healthyOnly", "perhaps")],
            "healthyOnly",
        ),
        (
            "GET",
            "/instance/list",
            &[svc, ("clientIP", "not an ip")],
            "clientIP",
        ),
        ("GET", "/instance", &[svc, ("ip", "10.0.0.1")], "port"),
        (
            "POST",
            "/service",
            &[svc, ("protectThreshold", "2")],
            "protectThreshold",
        ),
        (
            "POST",
            "/service",
            &[svc, ("protectThreshold", "half")],
            "protectThreshold",
        ),
        ("POST", "/service", &[svc, ("selector", "{")], "selector"),
        ("POST", "/service", &[svc, ("metadata", "{]")], "metadata"),
        ("POST", "/service", &[], "serviceName"),
        (
            "GET",
            "/service/list",
            &[("pageNo", "x"), ("pageSize", "10")],
            "pageNo",
        ),
        ("GET", "/service/list", &[("pageNo", "1")], "pageSize"),
        (
            "GET",
            "/service/list",
            &[("pageNo", "0"), ("pageSize", "10")],
            "pageNo",
        ),
        ("PUT", "/operator/switches", &[("value", "1")], "entry"),
        (
            "PUT",
            "/health/instance",
            &[svc, ("ip", "10.0.0.1"), ("port", "1")],
            "healthy",
        ),
        ("GET", "/instance/statuses", &[], "key"),
    ];
    for (method, path, params, param) in cases {
        let case = format!("{method} {path} {params:?}");
        assert_refused(&node.send(method, path, params).await, param, &case);
    }
    assert_nothing_registered(&node).await;
}

#[tokio::test]
async fn oversized_bodies_and_queries_are_refused() {
    let node = TestNode::start_with(|c| {
        c.http.max_body_bytes = 4096;
        c.http.max_query_bytes = 1024;
    })
    .await;
    let big = "x".repeat(5000);
    let reply = node
        .send(
            "POST",
            "/instance",
            &[
                ("serviceName", "svc"),
                ("ip", "10.0.0.1"),
                ("port", "1"),
                ("metadata", &format!("k={big}")),
            ],
        )
        .await;
    assert_eq!(reply.status, 413, "{}", reply.text);

    let long = "y".repeat(2000);
    let reply = node.get("/instance/list", &[("serviceName", &long)]).await;
    assert_eq!(reply.status, 414, "{}", reply.text);

    // A chunked body declares no length: the limit must still hold.
    let mut stream = tokio::net::TcpStream::connect(node.node().addr())
        .await
        .expect("connect");
    let chunk = format!(
        "serviceName=svc&ip=10.0.0.1&port=1&metadata=k%3D{}",
        "z".repeat(6000)
    );
    let request = format!(
        "POST /nacos/v1/ns/instance HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        chunk.len(),
        chunk
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_nothing_registered(&node).await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let node = TestNode::start().await;
    let reply = node.get("/no/such/route", &[]).await;
    assert_eq!(reply.status, 404);
    assert!(reply.text.starts_with("caused: "));
    assert_eq!(
        node.send("POST", "/instance/list", &[("serviceName", "svc")])
            .await
            .status,
        405
    );
    assert_eq!(
        node.send("DELETE", "/operator/metrics", &[]).await.status,
        405
    );
    assert_nothing_registered(&node).await;
}

#[tokio::test]
async fn garbage_bytes_do_not_wedge_the_node() {
    let node = TestNode::start().await;
    for garbage in [
        &b"\x00\x01\x02 not http\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"POST /nacos/v1/ns/instance HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ] {
        let mut stream = tokio::net::TcpStream::connect(node.node().addr())
            .await
            .expect("connect");
        let _ = stream.write_all(garbage).await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut sink),
        )
        .await;
    }
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    assert_eq!(node.listed("svc", &[]).await, vec!["10.0.0.1:1"]);
}
