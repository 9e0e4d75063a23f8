//! The banner `nacre start` prints on stdout once it is bound: the URL
//! clients use (never 0.0.0.0), standalone or the cluster's members, the UDP
//! push socket, the gRPC address, the plugin folder (and whether it existed), the config file,
//! the data dir and the log settings, each as the node really has them.

mod common;

use common::process::{nacre, start, terminate};

#[tokio::test]
async fn a_standalone_banner_says_what_the_node_will_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nacre.toml");
    std::fs::write(&config, "[http]\naccess_log = true\n").expect("config written");
    let data = dir.path().join("data");
    let plugins = dir.path().join("no-such-plugins");
    let mut cmd = nacre(&[
        "start",
        "--port",
        "0",
        "--config",
        &config.to_string_lossy(),
        "--data-dir",
        &data.to_string_lossy(),
        "--plugins-dir",
        &plugins.to_string_lossy(),
    ]);
    cmd.env("NACRE_LOG_FORMAT", "json");
    let mut node = start(cmd).await;
    let banner = node.banner.join("\n");

    // Bound to 0.0.0.0 (the default), reached at loopback.
    assert!(node.url.starts_with("http://127.0.0.1:"), "{banner}");
    let port = node.url.rsplit(':').next().expect("a port");
    assert_eq!(
        node.banner_value("listening"),
        format!("0.0.0.0:{port} (HTTP, all interfaces)")
    );
    // gRPC where Nacos 2.x clients look: the HTTP port + 1000.
    let grpc_port = port.parse::<u16>().expect("a port number") + 1000;
    assert_eq!(
        node.banner_value("gRPC"),
        format!("0.0.0.0:{grpc_port} (Nacos 2.x clients)")
    );
    assert_eq!(node.banner_value("mode"), "standalone (no cluster.members)");
    let push: serde_json::Value =
        reqwest::get(format!("{}/nacos/v1/ns/operator/push/state", node.url))
            .await
            .expect("push state")
            .json()
            .await
            .expect("JSON");
    let udp = node.banner_value("UDP push");
    assert!(udp.starts_with("from 0.0.0.0:"), "{banner}");
    let push_port = push["udpPort"].as_u64().expect("udpPort in push/state");
    assert!(udp.ends_with(&format!(":{push_port}")), "{udp} vs {push}");
    assert!(
        node.banner_value("plugins")
            .starts_with(&format!("{} (did not exist", plugins.display())),
        "{banner}"
    );
    assert!(plugins.is_dir(), "the node created the folder");
    assert_eq!(
        node.banner_value("config file"),
        config.display().to_string()
    );
    assert_eq!(node.banner_value("data dir"), data.display().to_string());
    assert_eq!(
        node.banner_value("log"),
        "json to stderr, filter info,openraft=warn, access log on"
    );
    node.log_line("warning about the missing plugin folder", |l| {
        l.contains("WARN") && l.contains("plugin folder does not exist")
    })
    .await;
    assert!(terminate(&mut node.child).await.success());
}

#[tokio::test]
async fn a_cluster_banner_lists_the_members_and_marks_this_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let free = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let ports: Vec<u16> = (0..3).map(free).collect();
    let members: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut node = start(nacre(&[
        "start",
        "--bind",
        "127.0.0.1",
        "--port",
        &ports[1].to_string(),
        "--data-dir",
        &dir.path().join("d").to_string_lossy(),
        "--members",
        &members.join(","),
        "--insecure-cluster",
    ]))
    .await;
    assert_eq!(node.url, format!("http://{}", members[1]));
    assert_eq!(
        node.banner_value("listening"),
        format!("{} (HTTP, this address only)", members[1])
    );
    assert_eq!(
        node.banner_value("mode"),
        format!(
            "cluster of 3: {}, {} (this node), {}; INSECURE: no cluster.secret",
            members[0], members[1], members[2]
        )
    );
    assert_eq!(
        node.banner_value("plugins"),
        "none (set --plugins-dir to load some)"
    );
    assert!(
        node.banner_value("config file").starts_with("none"),
        "{:?}",
        node.banner
    );
    assert!(terminate(&mut node.child).await.success());
}
