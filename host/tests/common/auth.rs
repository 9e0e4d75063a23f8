//! A node with auth on and its first admin, and signing in.

use std::time::Duration;

use super::{TestNode, wait_for};

pub const ADMIN: &str = "nacos";
pub const ADMIN_PASSWORD: &str = "s3cret-admin-pw";

/// A node with auth on and the admin `nacos` created (after `tweak`).
pub async fn start_with_auth(tweak: impl FnOnce(&mut nacre::Config)) -> TestNode {
    let node = TestNode::start_with(|c| {
        c.auth.enabled = true;
        c.auth.admin_password = ADMIN_PASSWORD.into();
        tweak(c);
    })
    .await;
    // Polled through the state page, not by logging in: failed logins count.
    wait_for(
        "the first admin exists",
        Duration::from_secs(10),
        || async {
            node.fetch("/nacos/v1/console/server/state").await.json()["auth_admin_request"]
                == "false"
        },
    )
    .await;
    node
}

/// Signs in; the access token.
pub async fn login(node: &TestNode, username: &str, password: &str) -> String {
    let response = node
        .http
        .post(format!("{}/nacos/v1/auth/login", node.base))
        .form(&[("username", username), ("password", password)])
        .send()
        .await
        .expect("login sent");
    assert_eq!(response.status().as_u16(), 200, "login as {username}");
    let body: serde_json::Value = response.json().await.expect("login answer");
    body["accessToken"].as_str().expect("a token").to_string()
}
