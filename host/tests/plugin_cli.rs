//! `nacre plugin test` and `nacre plugin list`: a plugin author's loop
//! without a node (strict samples, compiled components cached like the
//! node's) and the table of a running node's plugins.

mod common;
mod plugins_wat;

use std::path::{Path, PathBuf};

use common::process::{LIMIT, nacre, terminate, with_plugins};

/// Installs the push filter `first` (keeps the first instance offered) in
/// `dir` and returns its manifest.
fn keep_first(dir: &Path) -> PathBuf {
    plugins_wat::install(
        dir,
        "first",
        "push-filter",
        &plugins_wat::push_filter(plugins_wat::KEEP_FIRST),
        "",
    );
    dir.join("first.toml")
}

/// `nacre plugin test <manifest> --event <event> [extra...]`: exit success,
/// stdout, stderr.
async fn plugin_test(manifest: &Path, event: &Path, extra: &[&str]) -> (bool, String, String) {
    let (manifest, event) = (manifest.to_string_lossy(), event.to_string_lossy());
    let mut args = vec!["plugin", "test", &manifest, "--event", &event];
    args.extend_from_slice(extra);
    let out = tokio::time::timeout(LIMIT, nacre(&args).output())
        .await
        .expect("ends within the limit")
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

const TWO_INSTANCES: &str = r#"{"service": {"name": "orders"}, "subscriber": {"address": "10.0.0.9:5000"},
    "instances": [{"ip": "10.0.0.1", "port": 80}, {"ip": "10.0.0.2", "port": 80, "weight": 3}]}"#;

#[tokio::test]
async fn plugin_test_runs_one_call_without_a_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = keep_first(dir.path());
    let event = dir.path().join("event.json");
    std::fs::write(&event, TWO_INSTANCES).expect("event written");
    let no_cache = ["--no-cache"];
    let (ok, stdout, stderr) = plugin_test(&manifest, &event, &no_cache).await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#""ip":"10.0.0.1""#) && !stdout.contains("10.0.0.2"),
        "{stdout}"
    );

    plugins_wat::install(
        dir.path(),
        "broken",
        "listener",
        &plugins_wat::listener(plugins_wat::TRAP),
        "",
    );
    let listener_event = dir.path().join("listener.json");
    std::fs::write(&listener_event, r#"{"service": {"name": "orders"}}"#).expect("written");
    let (ok, _, stderr) =
        plugin_test(&dir.path().join("broken.toml"), &listener_event, &no_cache).await;
    assert!(!ok);
    assert!(stderr.contains("trapped"), "{stderr}");
}

#[tokio::test]
async fn a_sample_with_a_field_the_tester_does_not_know_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = keep_first(dir.path());
    let event = dir.path().join("event.json");
    let cases = [
        // A typo at the top, in an instance, in the subscriber.
        (
            r#"{"service": {"name": "o"}, "instanecs": []}"#,
            "`instanecs`",
        ),
        (
            r#"{"service": {"name": "o"}, "instances": [{"ip": "10.0.0.1", "port": 80, "instanceId": "x"}]}"#,
            "`instanceId`",
        ),
        (
            r#"{"service": {"name": "o"}, "subscriber": {"adress": "10.0.0.9:1"}}"#,
            "`adress`",
        ),
        // A field of another world.
        (
            r#"{"service": {"name": "o"}, "onBeat": true}"#,
            "`onBeat` is a field of a health-policy sample, and this plugin is a push-filter",
        ),
        // The subscriber's namespace is the service's, as in a node.
        (
            r#"{"service": {"namespace": "dev", "name": "o"}, "subscriber": {"namespace": "public"}}"#,
            "subscriber.namespace \"public\" is not the service's namespace \"dev\"",
        ),
    ];
    for (sample, expected) in cases {
        std::fs::write(&event, sample).expect("event written");
        let (ok, stdout, stderr) = plugin_test(&manifest, &event, &["--no-cache"]).await;
        assert!(!ok, "{sample} was accepted: {stdout}");
        assert!(stderr.contains(expected), "{sample}: {stderr}");
        assert!(stderr.contains("event.json"), "the file is named: {stderr}");
    }
    std::fs::write(
        &event,
        r#"{"service": {"namespace": "dev", "name": "o"}, "subscriber": {"namespace": "dev"}}"#,
    )
    .expect("event written");
    let (ok, stdout, stderr) = plugin_test(&manifest, &event, &["--no-cache"]).await;
    assert!(ok, "the service's own namespace is fine: {stdout}{stderr}");
}

#[tokio::test]
async fn plugin_test_caches_the_compiled_component_as_a_node_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let manifest = keep_first(dir.path());
    let event = dir.path().join("event.json");
    std::fs::write(&event, TWO_INSTANCES).expect("event written");
    let cache_arg = cache.to_string_lossy().to_string();
    let args = ["--cache-dir", cache_arg.as_str()];
    let (ok, first, stderr) = plugin_test(&manifest, &event, &args).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("component: compiled (now cached)"),
        "{stderr}"
    );
    let (ok, second, stderr) = plugin_test(&manifest, &event, &args).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains("component: cached"), "{stderr}");
    assert_eq!(
        first
            .lines()
            .filter(|l| l.starts_with("result:"))
            .collect::<Vec<_>>(),
        second
            .lines()
            .filter(|l| l.starts_with("result:"))
            .collect::<Vec<_>>()
    );
    // The default cache follows XDG_CACHE_HOME.
    let xdg = dir.path().join("xdg");
    let mut cmd = nacre(&[
        "plugin",
        "test",
        &manifest.to_string_lossy(),
        "--event",
        &event.to_string_lossy(),
    ]);
    cmd.env("XDG_CACHE_HOME", &xdg);
    let out = cmd.output().await.expect("runs");
    assert!(out.status.success());
    let cached: Vec<_> = std::fs::read_dir(xdg.join("nacre/plugin-cache"))
        .expect("the default cache folder")
        .collect();
    assert_eq!(cached.len(), 1);
}

#[tokio::test]
async fn plugin_list_columns_align_whatever_the_widths() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin folder");
    let long = "a-plugin-name-longer-than-twenty-four-characters";
    plugins_wat::install(&plugins, "x", "listener", &plugins_wat::listener(""), "");
    plugins_wat::install(
        &plugins,
        long,
        "push-filter",
        &plugins_wat::push_filter(plugins_wat::KEEP_FIRST),
        "",
    );
    let mut node = with_plugins(dir.path(), &plugins, &["x", long]).await;
    let out = nacre(&["plugin", "list", "--url", &node.url])
        .output()
        .await
        .expect("runs");
    assert!(terminate(&mut node.child).await.success());
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{table}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    // Each column starts where its header starts, in every row.
    let header = lines[0];
    for column in ["world", "state"] {
        let at = header.find(column).expect("column in header");
        for row in &lines[1..] {
            assert!(
                row.chars().nth(at.saturating_sub(1)) == Some(' ')
                    && row.chars().nth(at).is_some_and(|c| c != ' '),
                "column {column} misaligned:\n{table}"
            );
        }
    }
    // Figures are right-aligned: every row ends where the header does.
    let width = header.chars().count();
    for row in &lines[1..] {
        assert_eq!(row.chars().count(), width, "row width:\n{table}");
    }
}
