//! Auth for the real-client tests (issue 18): a node with auth on and its
//! first admin from `auth.admin_password`, and that admin's HTTP API —
//! users, roles, permissions, password changes — as an operator drives it.
//! The clients under test only ever get a username and password.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::TestNode;
use crate::naming::http;
use crate::wait::wait_for;

/// The first admin's name (`auth.admin_username`'s default, as Nacos).
pub const ADMIN: &str = "nacos";
/// The first admin's password (`auth.admin_password`).
pub const ADMIN_PASSWORD: &str = "s3cret-admin-pw";

/// A user the tests create: `name` with `password`.
#[derive(Clone, Copy, Debug)]
pub struct User {
    pub name: &'static str,
    pub password: &'static str,
}

/// Granted `rw` on every service of the public namespace (`:*:*`).
pub const WRITER: User = User {
    name: "writer",
    password: "writer-password",
};
/// Granted `r` only on the public namespace.
pub const READER: User = User {
    name: "reader",
    password: "reader-password",
};

/// A node with auth on, once its first admin exists. Polled through the
/// console's state page, not by logging in (failed logins are throttled).
pub async fn start_with_auth(tweak: impl FnOnce(&mut nacre::Config)) -> anyhow::Result<TestNode> {
    let node = TestNode::start(|c| {
        c.auth.enabled = true;
        c.auth.admin_password = ADMIN_PASSWORD.into();
        tweak(c);
    })
    .await?;
    let state = node.url("/nacos/v1/console/server/state");
    wait_for("the first admin", Duration::from_secs(10), || async {
        let state: Value = http().get(&state).send().await?.json().await?;
        Ok(state["auth_admin_request"] == "false")
    })
    .await?;
    Ok(node)
}

/// A node with auth on where [`WRITER`] and [`READER`] exist with their grants.
pub async fn start_with_users(
    tweak: impl FnOnce(&mut nacre::Config),
) -> anyhow::Result<(TestNode, Admin)> {
    let node = start_with_auth(tweak).await?;
    let admin = Admin::login(&node).await?;
    admin.grant(WRITER, "writers", ":*:*", "rw").await?;
    admin.grant(READER, "readers", ":*:*", "r").await?;
    Ok((node, admin))
}

/// Logs in over HTTP; the token.
pub async fn login(node: &TestNode, user: &str, password: &str) -> anyhow::Result<String> {
    let reply = http()
        .post(node.url("/nacos/v1/auth/login"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await?;
    let status = reply.status();
    let body = reply.text().await?;
    ensure!(status == 200, "login as {user}: {status} {body}");
    let body: Value = serde_json::from_str(&body).context("login answer")?;
    body["accessToken"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no accessToken in {body}"))
}

/// What the node answers a read (`instance/list`) carrying `token`: the
/// status and, for a refusal, Nacos's `message` ("token invalid!", …).
pub async fn token_answer(node: &TestNode, token: &str) -> anyhow::Result<(u16, String)> {
    let reply = http()
        .get(node.url("/nacos/v1/ns/instance/list"))
        .query(&[("serviceName", "any"), ("accessToken", token)])
        .send()
        .await?;
    let status = reply.status().as_u16();
    let body: Value = reply.json().await.context("list answer")?;
    let message = body["message"].as_str().unwrap_or_default().to_string();
    Ok((status, message))
}

/// The first admin, signed in.
pub struct Admin {
    base: String,
    token: String,
}

impl Admin {
    pub async fn login(node: &TestNode) -> anyhow::Result<Admin> {
        Ok(Admin {
            base: node.url(""),
            token: login(node, ADMIN, ADMIN_PASSWORD).await?,
        })
    }

    /// `method path` with form `params` as the admin; fails unless 200.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let reply = http()
            .request(method.clone(), format!("{}{path}", self.base))
            .query(&[("accessToken", self.token.as_str())])
            .form(params)
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await?;
        ensure!(status == 200, "{method} {path} {params:?}: {status} {body}");
        Ok(())
    }

    /// Creates `user`, gives it `role`, and grants the role `action`
    /// (`r`, `w`, `rw`) on `resource` (`namespace:group:service`).
    pub async fn grant(
        &self,
        user: User,
        role: &str,
        resource: &str,
        action: &str,
    ) -> anyhow::Result<()> {
        let post = reqwest::Method::POST;
        self.call(
            post.clone(),
            "/nacos/v1/auth/users",
            &[("username", user.name), ("password", user.password)],
        )
        .await?;
        self.call(
            post.clone(),
            "/nacos/v1/auth/roles",
            &[("role", role), ("username", user.name)],
        )
        .await?;
        self.call(
            post,
            "/nacos/v1/auth/permissions",
            &[("role", role), ("resource", resource), ("action", action)],
        )
        .await
    }

    /// `GET path?params` as the admin; the JSON answer (fails unless 200).
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let reply = http()
            .get(format!("{}{path}", self.base))
            .query(&[("accessToken", self.token.as_str())])
            .query(params)
            .send()
            .await?;
        let status = reply.status();
        let body = reply.text().await?;
        ensure!(status == 200, "GET {path} {params:?}: {status} {body}");
        serde_json::from_str(&body).with_context(|| format!("GET {path}: {body}"))
    }

    /// Sets `user`'s password to `new` (which revokes its tokens).
    pub async fn change_password(&self, user: &str, new: &str) -> anyhow::Result<()> {
        self.call(
            reqwest::Method::PUT,
            "/nacos/v1/auth/users",
            &[("username", user), ("newPassword", new)],
        )
        .await
    }
}
