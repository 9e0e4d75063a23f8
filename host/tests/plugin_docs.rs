//! docs/PLUGINS.md's "A new plugin, step by step", done as written: in a copy
//! of the repository's `plugins/` workspace (and `wit/`), its shell blocks
//! run in order in one shell and each file it shows is written where it
//! says, then the output must hold every `# log:` / `# result:` line the
//! docs promise. If the docs drift from what works, this fails.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

const SECTION: &str = "#### A new plugin, step by step";
/// A fresh build of the SDK and its dependencies for wasm32-wasip2 (when no
/// target directory is shared with scripts/build-plugins.sh) takes minutes.
const LIMIT: Duration = Duration::from_secs(900);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The section's steps as one bash script, and the output lines it promises.
fn script_from_docs(doc: &str) -> (String, Vec<String>) {
    let start = doc
        .find(SECTION)
        .expect("the section is in docs/PLUGINS.md");
    let body = &doc[start + SECTION.len()..];
    let body = &body[..body.find("\n#### ").unwrap_or(body.len())];
    let mut script = String::from("set -euo pipefail\n");
    let mut expected = Vec::new();
    let mut lines = body.lines();
    let mut before = "";
    while let Some(line) = lines.next() {
        let Some(lang) = line.strip_prefix("```") else {
            if !line.trim().is_empty() {
                before = line;
            }
            continue;
        };
        let block: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        if lang == "sh" {
            for l in &block {
                if let Some(out) = l
                    .strip_prefix("# ")
                    .filter(|o| o.starts_with("log: ") || o.starts_with("result: "))
                {
                    expected.push(out.to_string());
                }
            }
            script.push_str(&block.join("\n"));
            script.push('\n');
        } else {
            // A file: the last `path/with/a/slash` named in the line before it.
            let path = before
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|token| token.contains('/'))
                .last()
                .unwrap_or_else(|| panic!("no file named before the {lang} block: {before:?}"));
            script.push_str(&format!(
                "cat > '{path}' <<'NACRE_DOC_EOF'\n{}\nNACRE_DOC_EOF\n",
                block.join("\n")
            ));
        }
    }
    (script, expected)
}

/// Copies `from` into `to`, leaving out build output.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("folder created");
    for entry in std::fs::read_dir(from).expect("folder readable") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        if name == "target" || name == "node_modules" {
            continue;
        }
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(&name)).expect("file copied");
        }
    }
}

#[tokio::test]
async fn a_new_rust_plugin_built_by_following_the_docs_verbatim() {
    let doc = std::fs::read_to_string(repo().join("docs/PLUGINS.md")).expect("docs/PLUGINS.md");
    let (script, expected) = script_from_docs(&doc);
    assert!(script.contains("cargo new --lib audit"), "{script}");
    assert!(
        expected.iter().any(|l| l.starts_with("result: ")),
        "the docs promise a result: {expected:?}"
    );

    let checkout = tempfile::tempdir().expect("temp dir");
    copy_tree(&repo().join("plugins"), &checkout.path().join("plugins"));
    copy_tree(&repo().join("wit"), &checkout.path().join("wit"));
    let nacre_dir = Path::new(common::process::NACRE)
        .parent()
        .expect("bin folder");
    let path = format!(
        "{}:{}",
        nacre_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut bash = tokio::process::Command::new("bash");
    bash.arg("-c")
        .arg(&script)
        .current_dir(checkout.path())
        .env("PATH", path)
        .env("XDG_CACHE_HOME", checkout.path().join("cache"))
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    let out = tokio::time::timeout(LIMIT, bash.output())
        .await
        .expect("the steps finish within the limit")
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the documented steps failed:\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let printed: Vec<&str> = stdout.lines().collect();
    for line in &expected {
        assert!(
            printed.contains(&line.as_str()),
            "the docs promise {line:?}; the steps printed:\n{stdout}"
        );
    }
}
