//! The npm `nacos-naming` client on one member, writes through another.

use super::*;

/// The Nacos Node.js client (npm nacos-naming) connected to one node: it
/// works against a cluster member as against a standalone node, and sees —
/// by UDP push from its node — instances registered through another node.
#[tokio::test]
async fn the_node_client_on_one_node_sees_writes_made_through_another() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster =
        TestCluster::start(ClusterOptions::default().with_env(&[("NACRE_PUSH_ENABLED", "true")]))
            .await?;
    let run = |mode: &str, client_node: usize, write_node: usize| {
        let mut cmd = nacre_e2e::node_client("compat.js", &cluster.addrs[client_node].to_string())?;
        cmd.env("WRITE_ADDR", cluster.addrs[write_node].to_string())
            .env("MODE", mode);
        anyhow::Ok(cmd)
    };
    let out = nacre_e2e::run_program(run("basic", 2, 2)?, Duration::from_secs(60)).await?;
    ensure!(
        out.stdout.contains("\"step\":\"deregister\""),
        "{}",
        out.stdout
    );
    let out = nacre_e2e::run_program(run("subscribe", 0, 1)?, Duration::from_secs(60)).await?;
    for step in ["push-received", "push-received-again", "push-removed"] {
        ensure!(
            out.stdout
                .contains(&format!("\"step\":\"{step}\",\"ok\":true")),
            "{step} missing: {}",
            out.stdout
        );
    }
    Ok(())
}
