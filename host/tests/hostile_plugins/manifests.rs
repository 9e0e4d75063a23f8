//! Kind 4: manifests and components come from the plugin folder only.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::common::plugins::{start_with_plugins, steady_traffic};
use super::common::wait_for;
use super::plugins_wat as wat;
use super::{LIMIT, SERIAL, status_text};

/// 4. Manifests and components come from the plugin folder only: regular
/// files inside it, capped, never a FIFO or device; errors never quote a
/// file; two manifests may not load plugins of one name.
#[tokio::test]
async fn manifests_are_confined_to_the_plugin_folder() {
    let _alone = SERIAL.lock().await;
    const MARKER: &str = "SECRET-MARKER-4b1d";
    let dir = tempfile::tempdir().expect("dir");
    let outside = tempfile::tempdir().expect("dir");
    let folder = dir.path();
    let quiet = wat::listener("");
    wat::install(folder, "good", "listener", &quiet, "");
    wat::install(outside.path(), "x", "listener", &quiet, "");
    let secret = outside.path().join("secret");
    std::fs::write(&secret, format!("root:x:0:0:{MARKER}:/root:/bin/bash\n")).expect("secret");
    let manifest = |name: &str, wasm: &str| {
        let text = format!("name = \"{name}\"\nworld = \"listener\"\nwasm = \"{wasm}\"\n");
        std::fs::write(folder.join(format!("{name}.toml")), text).expect("manifest");
    };
    manifest("dotdot", "../outside/x.wasm");
    manifest(
        "absolute",
        &outside.path().join("x.wasm").display().to_string(),
    );
    std::os::unix::fs::symlink(&secret, folder.join("passwd.toml")).expect("link");
    std::os::unix::fs::symlink(&secret, folder.join("secret.wasm")).expect("link");
    manifest("leak", "secret.wasm");
    std::fs::write(folder.join("notes.txt"), MARKER).expect("notes");
    manifest("text", "notes.txt");
    std::os::unix::fs::symlink("/dev/zero", folder.join("zero.wasm")).expect("link");
    manifest("zero", "zero.wasm");
    mkfifo(&folder.join("fifo.toml"));
    mkfifo(&folder.join("pipe.wasm"));
    manifest("pipe", "pipe.wasm");
    let big = std::fs::File::create(folder.join("big.toml")).expect("big");
    big.set_len(1 << 20).expect("sparse");
    let twin =
        |name: &str| format!("name = \"{name}\"\nworld = \"listener\"\nwasm = \"good.wasm\"\n");
    std::fs::write(folder.join("twin-b.toml"), twin("twin")).expect("twin");
    std::fs::write(folder.join("twin-a.toml"), twin("twin")).expect("twin");

    let node = tokio::time::timeout(LIMIT, start_with_plugins(folder))
        .await
        .expect("the node starts: nothing in the folder blocks loading");
    let traffic = steady_traffic(&node, "bystander", Duration::from_secs(2));
    let checks = async {
        let text = status_text(&node).await;
        assert!(!text.contains(MARKER), "file content in the status: {text}");
        let expect = [
            ("dotdot", "relative path without `..`"),
            ("absolute", "relative path without `..`"),
            ("passwd", "must be a file inside the plugin folder"),
            ("leak", "must be a file inside the plugin folder"),
            ("text", "is not a WebAssembly file"),
            ("zero", "must be a file inside the plugin folder"),
            ("fifo", "is a FIFO, not a regular file"),
            ("pipe", "is a FIFO, not a regular file"),
            ("big", "more than the 65536 bytes"),
        ];
        for (name, reason) in expect {
            let status = node.plugin(name).await;
            assert_eq!(status["state"], "failed", "{name}: {status}");
            let error = status["error"].as_str().unwrap_or("");
            assert!(error.contains(reason), "{name}: {error}");
        }
        assert_eq!(node.plugin("good").await["state"], "active");
        let twins: Vec<Value> = node
            .plugins()
            .await
            .into_iter()
            .filter(|p| p["name"] == "twin")
            .collect();
        assert_eq!(twins.len(), 2);
        assert_eq!(
            twins[0]["state"], "active",
            "the first by file name: {twins:?}"
        );
        assert!(
            twins[0]["manifest"]
                .as_str()
                .unwrap_or("")
                .ends_with("twin-a.toml")
        );
        assert_eq!(twins[1]["state"], "failed");
        assert!(
            twins[1]["error"]
                .as_str()
                .unwrap_or("")
                .contains("already used by")
        );
        // Reloads are not wedged: a plugin added now loads, a name freed is
        // taken up, and a refused manifest that changes its name loads.
        wat::install(folder, "late", "listener", &quiet, "");
        std::fs::remove_file(folder.join("twin-a.toml")).expect("removed");
        wait_for(
            "the late plugin and the second twin load",
            LIMIT,
            || async {
                node.plugin("late").await["state"] == "active"
                    && node.plugin("twin").await["state"] == "active"
            },
        )
        .await;
        std::fs::write(folder.join("twin-c.toml"), twin("twin")).expect("third twin");
        wait_for("the third twin is refused", LIMIT, || async {
            node.plugins().await.iter().any(|p| {
                p["manifest"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("twin-c.toml")
                    && p["state"] == "failed"
            })
        })
        .await;
        std::fs::write(folder.join("twin-c.toml"), twin("triplet")).expect("renamed");
        wait_for("the renamed third twin loads", LIMIT, || async {
            node.plugin("triplet").await["state"] == "active"
        })
        .await;
    };
    let (rounds, ()) = tokio::join!(traffic, checks);
    assert!(rounds >= 10, "only {rounds} rounds");
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}
