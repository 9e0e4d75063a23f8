//! Stopping a node under load: every task drains (none has to be aborted),
//! the plugin thread is joined, and the data directory holds every
//! persistent write that was acknowledged — nothing half-written.

mod common;
#[path = "plugins_wat/mod.rs"]
mod wat;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{TestNode, test_config};
use nacre::Node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_under_load_drains_and_keeps_what_it_acknowledged() {
    let plugins = tempfile::tempdir().expect("plugin folder");
    wat::install(plugins.path(), "quiet", "listener", &wat::listener(""), "");
    let mut node = TestNode::start_with(|c| {
        c.plugins.dir = plugins.path().to_path_buf();
        c.persistent.sync_writes = true;
    })
    .await;

    // Writers of ephemeral and persistent instances, and a push subscriber,
    // until the node stops answering (each loop is bounded).
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut load = tokio::task::JoinSet::new();
    for writer in 0..4u16 {
        let (http, base) = (node.http.clone(), node.base.clone());
        let acknowledged = Arc::clone(&acknowledged);
        load.spawn(async move {
            for n in 0..2_000u16 {
                let port = (writer * 2_000 + n + 1).to_string();
                let persistent = n % 2 == 0;
                let params = [
                    ("serviceName", if persistent { "stored" } else { "busy" }),
                    ("ip", "10.1.0.1"),
                    ("port", port.as_str()),
                    ("ephemeral", if persistent { "false" } else { "true" }),
                ];
                let sent = http
                    .post(format!("{base}/nacos/v1/ns/instance"))
                    .form(&params)
                    .send()
                    .await;
                match sent {
                    Ok(reply) if reply.status() == 200 => {
                        if persistent {
                            acknowledged.lock().expect("lock").insert(port);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return, // the node is gone
                }
            }
        });
    }
    {
        let (http, base) = (node.http.clone(), node.base.clone());
        load.spawn(async move {
            for _ in 0..2_000 {
                let listed = http
                    .get(format!("{base}/nacos/v1/ns/instance/list"))
                    .query(&[("serviceName", "busy"), ("udpPort", "9")])
                    .header("User-Agent", "Nacos-Java-Client:v1.4.1")
                    .send()
                    .await;
                if listed.is_err() {
                    return;
                }
            }
        });
    }
    // Stop once real load is on.
    common::wait_for("some acknowledged writes", Duration::from_secs(10), || {
        let acknowledged = Arc::clone(&acknowledged);
        async move { acknowledged.lock().expect("lock").len() >= 50 }
    })
    .await;
    let Some(running) = node.node.take() else {
        panic!("node not running");
    };
    let report = running.shutdown().await;
    assert_eq!(report.aborted, 0, "tasks had to be aborted: {report:?}");
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        while load.join_next().await.is_some() {}
    });
    assert!(
        finished.await.is_ok(),
        "clients still waiting on a stopped node"
    );

    // The data directory reopens cleanly with every acknowledged write.
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let mut config = test_config(node.dir.path());
    config.plugins.dir = plugins.path().to_path_buf();
    let reopened = Node::start(config).await.expect("the data reopens");
    let stored: BTreeSet<String> = reopened
        .naming()
        .registry()
        .service(&nacre::registry::model::ServiceKey::new(
            "public",
            "DEFAULT_GROUP",
            "stored",
        ))
        .map(|s| {
            s.instances()
                .into_iter()
                .map(|i| i.id.port.to_string())
                .collect()
        })
        .unwrap_or_default();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    reopened.shutdown().await;
}
