//! The web console in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven by selenium from `tests/console/browser.py`;
//! `scripts/test.sh` installs both): an operator's walk on one node, signing
//! in with auth on (and a read-only user's page without edit controls), and
//! the cluster page (each member's Raft state) following a member that is
//! killed.

use std::time::Duration;

use nacre_e2e::auth::{ADMIN, ADMIN_PASSWORD, READER, start_with_users};
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::program::Running;
use nacre_e2e::{TestNode, installed, repo_root, target_dir};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(60);

/// `python tests/console/browser.py <args>` in the console's venv.
fn browser(args: &[&str]) -> anyhow::Result<Command> {
    let python = installed(
        target_dir()?.join("console-venv/bin/python"),
        "the venv with selenium",
    )?;
    installed("/usr/bin/chromedriver".into(), "Debian's chromium-driver")?;
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/console/browser.py"))
        .args(args);
    Ok(cmd)
}

async fn register(node: &TestNode, service: &str, ip: &str, port: u16) -> anyhow::Result<()> {
    let port = port.to_string();
    let reply = nacre_e2e::naming::http()
        .post(node.url("/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", service),
            ("ip", ip),
            ("port", port.as_str()),
        ])
        .send()
        .await?;
    anyhow::ensure!(reply.status().is_success(), "register: {}", reply.status());
    Ok(())
}

/// Load the service list, search, open a service, take an instance offline
/// (and see `instance/list` drop it), and see a registration appear without
/// a reload; then create a service with a protect threshold and metadata,
/// edit both, add a persistent instance, delete it, and delete the service;
/// create a namespace, rename it and delete it. The steps
/// are checked by the script; here, that each ran.
#[tokio::test]
async fn an_operator_walks_the_console() -> anyhow::Result<()> {
    let node = TestNode::start(|config| {
        // Instances registered here do not beat: keep them for the walk.
        config.health.beat_timeout_ms = 600_000;
        config.health.delete_timeout_ms = 600_000;
    })
    .await?;
    for (service, port) in [
        ("orders", 80),
        ("payments", 81),
        ("payments", 82),
        ("users", 83),
    ] {
        register(&node, service, "10.0.0.2", port).await?;
    }
    let url = node.url("");
    let mut walk = Running::spawn(browser(&["node", &url])?)?;
    for step in [
        "service-list",
        "search",
        "open-service",
        "take-offline",
        "live-registration",
        "create-service",
        "edit-service",
        "add-persistent-instance",
        "delete-persistent-instance",
        "delete-service",
        "create-namespace",
        "edit-namespace",
        "delete-namespace",
    ] {
        walk.expect(step, LIMIT, |v| v["step"] == step).await?;
    }
    walk.finish(LIMIT).await
}

/// With auth on: the login page (and no auth-off banner), signing in, and
/// the service list; then a user who may only read the namespace sees a
/// service without the edit controls (the node would refuse the edits).
#[tokio::test]
async fn with_auth_on_the_console_asks_to_sign_in() -> anyhow::Result<()> {
    let (node, _admin) = start_with_users(|_| {}).await?;
    let reply = nacre_e2e::naming::http()
        .post(node.url("/nacos/v1/ns/instance"))
        .form(&[
            ("serviceName", "orders"),
            ("ip", "10.0.0.2"),
            ("port", "80"),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(reply.status().is_success(), "register: {}", reply.status());
    let url = node.url("");
    let mut walk = Running::spawn(browser(&["login", &url, ADMIN, ADMIN_PASSWORD])?)?;
    for step in ["login-page", "signed-in"] {
        walk.expect(step, LIMIT, |v| v["step"] == step).await?;
    }
    walk.finish(LIMIT).await?;
    let mut walk = Running::spawn(browser(&[
        "readonly",
        &url,
        READER.name,
        READER.password,
        "orders",
    ])?)?;
    for step in ["login-page", "signed-in", "read-only"] {
        walk.expect(step, LIMIT, |v| v["step"] == step).await?;
    }
    walk.finish(LIMIT).await
}

/// The cluster page shows three members up, each with its own Raft term;
/// once one is killed, it shows that member down, and not answering for its
/// Raft state, without a reload.
#[tokio::test]
async fn the_cluster_page_shows_a_killed_member() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(ClusterOptions::default()).await?;
    let url = cluster.url(0, "");
    let mut page = Running::spawn(browser(&["cluster", &url, "3"])?)?;
    page.expect("every member up", LIMIT, |v| v["step"] == "cluster-all-up")
        .await?;
    page.expect("each member's Raft term", LIMIT, |v| {
        v["step"] == "cluster-raft"
    })
    .await?;
    cluster.kill(2).await?;
    let down = page
        .expect("the killed member down", LIMIT, |v| {
            v["step"] == "cluster-member-down"
        })
        .await?;
    let killed = cluster.addrs[2].to_string();
    anyhow::ensure!(
        down["members"][&killed] == "DOWN" && down["raft"][&killed] == "no answer",
        "{killed} not shown down and not answering: {down}"
    );
    page.finish(LIMIT).await
}
