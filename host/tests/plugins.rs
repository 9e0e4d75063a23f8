//! WebAssembly plugins loaded into a running node: their effect through the
//! HTTP API, hot reload, and hostile plugins that must not cost a single
//! failed client request.

mod common;
mod grpc_client;
mod plugins_wat;

use std::time::Duration;

use common::plugins::{start_with_plugins, steady_traffic};
use common::udp::{JAVA, Subscriber};
use common::{TestNode, wait_for};
use grpc_client::{RawClient, assert_ok, grpc_addr};
use plugins_wat as wat;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_push_filter_changes_what_instance_list_returns() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "keep-first",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        "[applies_to]\nservices = [\"filtered*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        node.register("filtered-a", ip, 80, &[]).await.assert_ok();
        node.register("plain", ip, 80, &[]).await.assert_ok();
    }
    assert_eq!(node.listed("filtered-a", &[]).await, vec!["10.0.0.1:80"]);
    assert_eq!(
        node.listed("plain", &[]).await.len(),
        3,
        "a filter applies only to its services"
    );
    let status = node.plugin("keep-first").await;
    assert_eq!(status["state"], "active");
    assert_eq!(status["world"], "push-filter");
    assert!(status["calls"].as_u64().unwrap_or(0) >= 1, "{status}");
}

#[tokio::test]
async fn a_health_policy_decides_health_and_no_opinion_leaves_the_defaults() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "always-sick",
        "health-policy",
        &wat::health_policy("", 1),
        "[applies_to]\nservices = [\"sick*\"]",
    );
    wat::install(
        dir.path(),
        "no-opinion",
        "health-policy",
        &wat::health_policy("", 3),
        "[applies_to]\nservices = [\"fine*\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    node.register("sick-a", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    node.register("fine-a", "10.0.0.1", 1, &[])
        .await
        .assert_ok();
    // Beating does not help: the policy says unhealthy.
    wait_for("policy marks the instance unhealthy", LIMIT, || async {
        node.send(
            "PUT",
            "/instance/beat",
            &[("serviceName", "sick-a"), ("ip", "10.0.0.1"), ("port", "1")],
        )
        .await
        .assert_ok();
        node.detail("sick-a", "10.0.0.1", 1).await.json()["healthy"] == false
    })
    .await;
    wait_for("the no-opinion policy was consulted", LIMIT, || async {
        node.plugin("no-opinion").await["calls"]
            .as_u64()
            .unwrap_or(0)
            >= 3
    })
    .await;
    assert_eq!(
        node.detail("fine-a", "10.0.0.1", 1).await.json()["healthy"],
        true
    );
}

#[tokio::test]
async fn listeners_hear_changes() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(dir.path(), "quiet", "listener", &wat::listener(""), "");
    let node = start_with_plugins(dir.path()).await;
    node.register("svc", "10.0.0.1", 1, &[]).await.assert_ok();
    wait_for("listener called", LIMIT, || async {
        let status = node.plugin("quiet").await;
        status["calls"].as_u64().unwrap_or(0) >= 1 && status["failures"] == 0
    })
    .await;
}

/// Changes made over gRPC reach listeners as v1 ones do (one registry, one
/// notifier): a client's registration, then its instance leaving with its
/// connection.
#[tokio::test]
async fn listeners_hear_grpc_changes() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(dir.path(), "quiet", "listener", &wat::listener(""), "");
    let node = start_with_plugins(dir.path()).await;
    let calls = || async {
        let status = node.plugin("quiet").await;
        assert_eq!(status["failures"], 0, "{status}");
        status["calls"].as_u64().unwrap_or(0)
    };
    let mut client = RawClient::connect(grpc_addr(&node), "raw", "").await;
    assert_ok(
        &client.register("grpc-heard", "127.0.0.1", 1).await,
        "InstanceResponse",
    );
    wait_for("the listener heard the registration", LIMIT, || async {
        calls().await >= 1
    })
    .await;
    let before = calls().await;
    drop(client);
    wait_for("the listener heard the instance leave", LIMIT, || async {
        calls().await > before
    })
    .await;
    assert!(node.listed("grpc-heard", &[]).await.is_empty());
}

#[tokio::test]
async fn plugins_are_added_replaced_and_removed_while_serving() {
    let dir = tempfile::tempdir().expect("dir");
    let node = start_with_plugins(dir.path()).await;
    for ip in ["10.0.0.1", "10.0.0.2"] {
        node.register("hot", ip, 80, &[]).await.assert_ok();
    }
    let traffic = async {
        let rounds = steady_traffic(&node, "hot-traffic", Duration::from_secs(4)).await;
        assert!(rounds > 10);
    };
    let reloads = async {
        wat::install(
            dir.path(),
            "hot-filter",
            "push-filter",
            &wat::push_filter(wat::KEEP_FIRST),
            "[applies_to]\nservices = [\"hot\"]",
        );
        wait_for("added plugin takes effect", LIMIT, || async {
            node.listed("hot", &[]).await.len() == 1
        })
        .await;
        // Replace: same manifest, a component that passes everything through (skip → unfiltered reply).
        wat::install(
            dir.path(),
            "hot-filter",
            "push-filter",
            &wat::push_filter(wat::SKIP),
            "[applies_to]\nservices = [\"hot\"]",
        );
        wait_for("replaced plugin takes effect", LIMIT, || async {
            node.listed("hot", &[]).await.len() == 2
        })
        .await;
        std::fs::remove_file(dir.path().join("hot-filter.toml")).expect("removed");
        wait_for("removed plugin is gone", LIMIT, || async {
            node.plugin("hot-filter").await.is_null()
        })
        .await;
    };
    tokio::join!(traffic, reloads);
}

/// Installs a hostile plugin, drives traffic that triggers it, and checks that
/// no request failed and the plugin was cut off (failures counted, quarantined).
/// Answers the plugin's last status.
async fn survives(name: &str, world: &str, wat_text: String, applies: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(dir.path(), name, world, &wat_text, applies);
    let node = start_with_plugins(dir.path()).await;
    let rounds = steady_traffic(&node, "victim", Duration::from_secs(3)).await;
    assert!(rounds >= 10, "only {rounds} rounds");
    wait_for(
        "failures counted and the plugin quarantined",
        LIMIT,
        || async {
            let status = node.plugin(name).await;
            status["failures"].as_u64().unwrap_or(0) >= 3 && status["state"] == "quarantined"
        },
    )
    .await;
    // Still serving, with the default behaviour.
    node.register("victim", "10.9.9.9", 9, &[])
        .await
        .assert_ok();
    assert!(
        node.listed("victim", &[])
            .await
            .contains(&"10.9.9.9:9".to_string())
    );
    node.plugin(name).await
}

/// `status[key]` as a count.
fn count(status: &serde_json::Value, key: &str) -> u64 {
    status[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {key} in {status}"))
}

#[tokio::test]
async fn an_infinite_loop_is_cut_off_at_its_deadline() {
    let status = survives("spinner", "listener", wat::listener(wat::INFINITE_LOOP), "").await;
    // Each failure was a deadline, none a memory cap.
    assert!(count(&status, "timeouts") >= 3, "{status}");
    assert_eq!(count(&status, "timeouts"), count(&status, "failures"));
    assert_eq!(count(&status, "memoryCapTrips"), 0, "{status}");
}

#[tokio::test]
async fn a_memory_bomb_hits_its_cap() {
    let status = survives(
        "bomb",
        "listener",
        wat::listener(wat::MEMORY_BOMB),
        "[limits]\nmemory_mb = 8",
    )
    .await;
    assert!(count(&status, "memoryCapTrips") >= 3, "{status}");
    assert_eq!(count(&status, "timeouts"), 0, "{status}");
}

#[tokio::test]
async fn a_trapping_listener_is_rebuilt_then_quarantined() {
    let status = survives("trapper", "listener", wat::listener(wat::TRAP), "").await;
    assert_eq!(count(&status, "timeouts"), 0, "{status}");
    assert_eq!(count(&status, "memoryCapTrips"), 0, "{status}");
}

/// `POST /nacre/v1/plugins/reload`: the folder is read now, not at the next
/// scan (an hour away here); a second reload finds nothing changed.
#[tokio::test]
async fn a_reload_asked_for_reads_the_folder_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let folder = dir.path().to_path_buf();
    let node = TestNode::start_with(move |c| {
        c.plugins.dir = folder;
        c.plugins.reload_interval_ms = 3_600_000;
    })
    .await;
    let reload = || async {
        let reply = node
            .http
            .post(format!("{}/nacre/v1/plugins/reload", node.base))
            .send()
            .await
            .expect("reload sent");
        assert_eq!(reply.status(), 200);
        reply.json::<serde_json::Value>().await.expect("JSON")
    };
    assert!(node.plugin("late-filter").await.is_null());
    wat::install(
        dir.path(),
        "late-filter",
        "push-filter",
        &wat::push_filter(wat::SKIP),
        "",
    );
    let answer = reload().await;
    assert_eq!(answer["changed"], true, "{answer}");
    let listed = answer["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "late-filter"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed["state"], "active", "{answer}");
    assert_eq!(node.plugin("late-filter").await["state"], "active");
    assert_eq!(reload().await["changed"], false);
    std::fs::remove_file(dir.path().join("late-filter.toml")).expect("removed");
    let answer = reload().await;
    assert_eq!(answer["changed"], true, "{answer}");
    assert!(node.plugin("late-filter").await.is_null());
}

#[tokio::test]
async fn a_panicking_health_policy_falls_back_to_the_default_rules() {
    // A Rust panic compiles to exactly this: an `unreachable` trap.
    survives(
        "panicker",
        "health-policy",
        wat::health_policy(wat::TRAP, 1),
        "",
    )
    .await;
}

#[tokio::test]
async fn a_huge_answer_is_refused_and_the_list_is_sent_unfiltered() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "liar",
        "push-filter",
        &wat::push_filter(wat::HUGE_ANSWER),
        "",
    );
    let node = start_with_plugins(dir.path()).await;
    for ip in ["10.0.0.1", "10.0.0.2"] {
        node.register("svc", ip, 80, &[]).await.assert_ok();
    }
    for _ in 0..5 {
        assert_eq!(
            node.listed("svc", &[]).await.len(),
            2,
            "fail open: the unfiltered list"
        );
    }
    let status = node.plugin("liar").await;
    assert!(status["failures"].as_u64().unwrap_or(0) >= 3, "{status}");
}

async fn refused_at_load(name: &str, world: &str, wasm: &[u8], expect: &str) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join(format!("{name}.wasm")), wasm).expect("written");
    wat::write_manifest(dir.path(), name, world, "");
    let node = start_with_plugins(dir.path()).await;
    let status = node.plugin(name).await;
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["error"].as_str().unwrap_or("");
    assert!(
        error.contains(expect),
        "error should mention {expect:?}: {error}"
    );
    steady_traffic(&node, "unaffected", Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_ungranted_capability_is_refused_at_load() {
    let component = wat::listener("").replacen(
        "(component",
        "(component\n  (import \"wasi:http/outgoing-handler@0.2.0\" (instance (export \"handle\" (func))))",
        1,
    );
    let wasm = ::wat::parse_str(&component).expect("valid WAT");
    refused_at_load(
        "phone-home",
        "listener",
        &wasm,
        "grants no `http` capability",
    )
    .await;
}

#[tokio::test]
async fn a_malformed_component_is_refused_at_load() {
    refused_at_load(
        "garbage",
        "listener",
        b"\0asm\x0d\0\x01\0 definitely not a component",
        "not a valid WebAssembly component",
    )
    .await;
}

#[tokio::test]
async fn a_manifest_naming_the_wrong_world_is_refused_at_load() {
    let wasm = ::wat::parse_str(wat::listener("")).expect("valid WAT");
    refused_at_load(
        "confused",
        "push-filter",
        &wasm,
        "does not export the `push-filter` world",
    )
    .await;
}

#[tokio::test]
async fn a_push_filter_shapes_udp_pushes_too() {
    let dir = tempfile::tempdir().expect("dir");
    wat::install(
        dir.path(),
        "keep-first",
        "push-filter",
        &wat::push_filter(wat::KEEP_FIRST),
        "[applies_to]\nservices = [\"pushed\"]",
    );
    let node = start_with_plugins(dir.path()).await;
    let sub = Subscriber::new().await;
    sub.subscribe(&node, "pushed", JAVA).await;
    node.register("pushed", "10.0.0.2", 80, &[])
        .await
        .assert_ok();
    node.register("pushed", "10.0.0.1", 80, &[])
        .await
        .assert_ok();
    // Every push carries one instance; once both are registered it is the first of the two.
    sub.recv_until(|push| {
        assert_eq!(
            push.hosts().len(),
            1,
            "the filter keeps one instance: {}",
            push.data
        );
        push.hosts() == ["10.0.0.1:80"]
    })
    .await;
}

#[tokio::test]
async fn the_wat_example_listener_loads_and_answers() {
    let dir = tempfile::tempdir().expect("dir");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wat");
    let text = std::fs::read_to_string(example.join("listener.wat")).expect("example present");
    wat::install(dir.path(), "wat-listener", "listener", &text, "");
    let node = start_with_plugins(dir.path()).await;
    node.register("orders", "10.0.0.1", 8080, &[])
        .await
        .assert_ok();
    wait_for("the example listener is called", LIMIT, || async {
        let status = node.plugin("wat-listener").await;
        status["calls"].as_u64().unwrap_or(0) >= 1 && status["failures"] == 0
    })
    .await;
}
