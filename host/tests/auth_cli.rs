//! `nacre auth …` against a running node process with auth on and no admin
//! yet: the first admin from this machine, a login, a user, a role and a
//! permission, without a browser — and no password in the node's log.

mod common;

use std::process::Stdio;

use common::process::{self, nacre, node_in};
use tokio::io::AsyncWriteExt;

/// Runs `nacre <args>` with `stdin` on its standard input (and `NACRE_TOKEN`
/// if given); answers (success, stdout, stderr).
async fn run(args: &[&str], stdin: &str, token: Option<&str>) -> (bool, String, String) {
    let mut cmd = nacre(args);
    cmd.stdin(Stdio::piped());
    if let Some(token) = token {
        cmd.env("NACRE_TOKEN", token);
    }
    let mut child = cmd.spawn().expect("nacre runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).await.expect("stdin");
    }
    let out = tokio::time::timeout(process::LIMIT, child.wait_with_output())
        .await
        .expect("nacre ends in time")
        .expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test]
async fn an_operator_sets_up_auth_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = node_in(dir.path(), &[]);
    cmd.env("NACRE_AUTH_ENABLED", "true");
    let node = process::start(cmd).await;
    let url = node.url.clone();
    let admin_password = "first-admin-pw";

    let (ok, out, err) = run(
        &["auth", "init", "--url", &url],
        &format!("{admin_password}\n"),
        None,
    )
    .await;
    assert!(ok, "init: {out} {err}");
    assert!(out.contains("created admin nacos"), "{out}");
    let (ok, _, err) = run(&["auth", "init", "--url", &url], "another-password\n", None).await;
    assert!(!ok, "a second init is refused");
    assert!(err.contains("an admin exists already"), "{err}");

    let (ok, token, err) = run(
        &["auth", "login", "--url", &url, "--username", "nacos"],
        &format!("{admin_password}\n"),
        None,
    )
    .await;
    assert!(ok, "login: {err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("nacre1."), "{token}");
    let admin = Some(token.as_str());

    let steps: [&[&str]; 3] = [
        &["auth", "role-add", "--url", &url, "ops", "ann"],
        &["auth", "grant", "--url", &url, "ops", "dev:*:*", "rw"],
        &["auth", "user", "list", "--url", &url],
    ];
    let (ok, out, err) = run(
        &["auth", "user", "add", "--url", &url, "ann"],
        "ann-password\n",
        admin,
    )
    .await;
    assert!(ok, "user add: {out} {err}");
    for step in steps {
        let (ok, out, err) = run(step, "", admin).await;
        assert!(ok, "{step:?}: {out} {err}");
        if step.contains(&"list") {
            assert!(out.contains("ann\tops"), "{out}");
            assert!(out.contains("nacos\tROLE_ADMIN"), "{out}");
        }
    }
    // Without the admin's token the same commands are refused.
    let (ok, _, err) = run(
        &["auth", "grant", "--url", &url, "ops", ":*:*", "rw"],
        "",
        None,
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("403") && err.contains("unknown user!"),
        "{err}"
    );

    // Ann can write namespace dev, and nothing else.
    let http = reqwest::Client::new();
    let register = |namespace: &'static str| {
        http.post(format!("{url}/nacos/v1/ns/instance"))
            .form(&[
                ("serviceName", "orders"),
                ("ip", "10.0.0.1"),
                ("port", "80"),
                ("namespaceId", namespace),
                ("username", "ann"),
                ("password", "ann-password"),
            ])
            .send()
    };
    assert_eq!(register("dev").await.expect("sent").status(), 200);
    assert_eq!(register("public").await.expect("sent").status(), 403);

    // Passwords and tokens never reach the log.
    let log = node.log_lines().join("\n");
    for secret in [admin_password, "ann-password", token.as_str()] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
    assert!(log.contains("first admin created"), "{log}");
}
