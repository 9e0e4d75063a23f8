//! The parameter forms real clients send (issue 14, kind 3), over real
//! HTTP: every form Nacos 1.4 accepts and clients send is accepted, what it
//! refuses stays refused. Each expectation is Nacos 1.4's, with the source
//! it comes from.

mod common;

use common::TestNode;

/// Address forms real clients send, stored and listed as given: IPv6 in
/// brackets (Spring Cloud Alibaba with IPv6 preferred), with a zone, host
/// names. Nacos 1.4 refuses only digits-and-dots that are no IPv4 address
/// (`Instance#validate`), which Nacre keeps refusing.
#[tokio::test]
async fn every_address_form_clients_send_is_stored_as_given() {
    let node = TestNode::start().await;
    let forms = [
        "[2408:400a:8c:5400::1a]",
        "fe80::1%eth0",
        "[fe80::1%2]",
        "2408:400a:8c:5400::1b",
        "db-1.internal",
    ];
    for ip in forms {
        node.register("v6", ip, 8080, &[]).await.assert_ok();
        let detail = node.detail("v6", ip, 8080).await;
        detail.assert_ok();
        assert_eq!(detail.json()["ip"], ip);
    }
    let list = node.list("v6", &[]).await;
    let mut listed: Vec<&str> = list["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    listed.sort_unstable();
    let mut expected = forms.to_vec();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(
        list["hosts"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["ip"] == "[fe80::1%2]"))
            .map(|h| h["instanceId"].clone()),
        Some("[fe80::1%2]#8080#DEFAULT#DEFAULT_GROUP@@v6".into())
    );
    // Beats find them too.
    let beat = node
        .send(
            "PUT",
            "/instance/beat",
            &[
                ("serviceName", "v6"),
                ("ip", "fe80::1%eth0"),
                ("port", "8080"),
            ],
        )
        .await;
    assert_eq!(beat.json()["code"], 10200);
    for bad in ["300.1.1.1", "[10.0.0.1]", "fe80::1%", "a b"] {
        node.register("v6", bad, 8080, &[])
            .await
            .assert_error(400, "Param 'ip' is illegal");
    }
}

/// The prober probes every address form it stores (before, a bracketed
/// address or a host name was skipped, and kept whatever health it had):
/// a host name whose address listens turns healthy, forms where nothing
/// listens turn unhealthy.
#[tokio::test]
async fn the_prober_probes_every_address_form() {
    let node = TestNode::start_with(|c| {
        c.health.probe_enabled = true;
        c.health.probe_interval_ms = 100;
        c.health.probe_timeout_ms = 500;
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let live = listener.local_addr().expect("addr").port();
    let dead = {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        closed.local_addr().expect("addr").port()
    };
    node.register(
        "probed",
        "localhost",
        live,
        &[("ephemeral", "false"), ("healthy", "false")],
    )
    .await
    .assert_ok();
    for ip in ["[::1]", "localhost"] {
        node.register("probed", ip, dead, &[("ephemeral", "false")])
            .await
            .assert_ok();
    }
    let health = |ip: &'static str, port: u16| {
        let node = &node;
        async move { node.detail("probed", ip, port).await.json()["healthy"] == true }
    };
    common::wait_for(
        "every form probed",
        std::time::Duration::from_secs(10),
        || async {
            health("localhost", live).await
                && !health("localhost", dead).await
                && !health("[::1]", dead).await
        },
    )
    .await;
    drop(listener);
}

/// Parameter aliases Nacos reads: `cluster` when `clusterName` is blank
/// (`InstanceController#getBasicIpAddress`), `dom` when `serviceName` is
/// absent (`DistroFilter`, "for client under 0.8.0").
#[tokio::test]
async fn older_parameter_names_are_read() {
    let node = TestNode::start().await;
    let in_zone_a = [("cluster", "zone-a")];
    node.register("svc", "10.0.0.1", 1, &in_zone_a)
        .await
        .assert_ok();
    let list = node.list("svc", &[]).await;
    assert_eq!(list["hosts"][0]["clusterName"], "zone-a");
    node.deregister("svc", "10.0.0.1", 1, &in_zone_a)
        .await
        .assert_ok();
    assert!(node.listed("svc", &[]).await.is_empty());

    node.send(
        "POST",
        "/instance",
        &[("dom", "legacy"), ("ip", "10.0.0.1"), ("port", "1")],
    )
    .await
    .assert_ok();
    assert_eq!(node.listed("legacy", &[]).await, vec!["10.0.0.1:1"]);
}

/// `#` separates the parts of an instance id (`ip#port#cluster#group@@name`):
/// a name holding one makes the id ambiguous, and Nacos 1.4 refuses it too
/// (`Service#validate`, "dom name can only have these characters"). A group
/// holding `@@` would make the grouped name ambiguous.
#[tokio::test]
async fn names_that_would_make_ids_ambiguous_are_refused() {
    let node = TestNode::start().await;
    for (params, param) in [
        (vec![("serviceName", "a#b")], "serviceName"),
        (vec![("serviceName", "g#1@@b")], "groupName"),
        (
            vec![("serviceName", "b"), ("groupName", "g#1")],
            "groupName",
        ),
        (
            vec![("serviceName", "b"), ("groupName", "x@@y")],
            "groupName",
        ),
    ] {
        let mut params = params;
        params.extend([("ip", "10.0.0.1"), ("port", "1")]);
        node.send("POST", "/instance", &params)
            .await
            .assert_error(400, &format!("Param '{param}' is illegal"));
    }
    let all = node
        .get(
            "/service/list",
            &[("pageNo", "1"), ("pageSize", "10"), ("groupName", "*")],
        )
        .await
        .json();
    assert_eq!(all["count"], 0, "a refused name was registered: {all}");
}

/// An IPv6 `clientIP` in brackets (as Java's `InetSocketAddress`, which
/// Nacos pushes to, takes it: `InstanceController#doSrvIpxt`) is where
/// pushes go, not the address the request came from.
#[tokio::test]
async fn a_bracketed_client_ip_is_the_push_address() {
    let node = TestNode::start().await;
    node.send_as(
        "Nacos-Java-Client:v1.4.1",
        "GET",
        "/instance/list",
        &[
            ("serviceName", "svc"),
            ("udpPort", "40000"),
            ("clientIP", "[::1]"),
        ],
    )
    .await
    .assert_ok();
    let subscribers = node
        .get("/service/subscribers", &[("serviceName", "svc")])
        .await
        .json();
    assert_eq!(subscribers["subscribers"][0]["ip"], "::1", "{subscribers}");
    assert_eq!(subscribers["subscribers"][0]["port"], 40000);
}
