//! Distro clusters of three `nacre` processes on loopback, one module per
//! scenario. (The seeded fault-injection suite is `tests/fault/`.)

mod auth;
mod credential;
mod forward;
mod kill;
mod namespaces;
mod node_client;
mod partition;
mod quiet_start;
mod repair;
mod writes;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use nacre_e2e::cluster::{ClusterOptions, TestCluster, nacre_binary};
use nacre_e2e::naming::{beat, hosts, http, instance_write, register};
use nacre_e2e::wait::{wait_for, wait_for_value};
use serde_json::Value;

/// Cluster tests start several processes each; one at a time keeps their
/// timing honest on a two-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A healthy ephemeral instance in cluster DEFAULT, as peers send them.
fn ephemeral_instance(ip: &str, port: u16) -> nacre::registry::model::Instance {
    nacre::registry::model::Instance {
        id: nacre::registry::model::InstanceId::new("DEFAULT", ip, port),
        weight: 1.0,
        healthy: true,
        enabled: true,
        ephemeral: true,
        marked: false,
        metadata: Default::default(),
        last_beat: 0,
        version: Default::default(),
        lease: Default::default(),
    }
}

/// Posts an internal message to node `i` with the cluster's credential.
async fn post_internal<R: nacre::wire::Rpc>(
    cluster: &TestCluster,
    i: usize,
    message: &R,
) -> anyhow::Result<reqwest::Response> {
    Ok(http()
        .post(cluster.url(i, R::PATH))
        .header(nacre::wire::SECRET_HEADER, &cluster.secret)
        .header(nacre::wire::PROTOCOL_HEADER, nacre::wire::PROTOCOL_VERSION)
        .body(nacre::wire::encode(message)?)
        .send()
        .await?)
}
