//! Auth across a cluster (issue 18): users, roles, permissions and the
//! signing key go through Raft, so a user made on one member logs in on
//! another, a token issued by one member is accepted by every other, and a
//! revocation or a key rotation on one member holds everywhere at once.

use super::*;

const ADMIN_PASSWORD: &str = "cluster-admin-pw";

async fn form(url: String, params: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let reply = http().post(url).form(params).send().await?;
    let status = reply.status().as_u16();
    let text = reply.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

async fn login(
    cluster: &TestCluster,
    i: usize,
    user: &str,
    password: &str,
) -> anyhow::Result<String> {
    let (status, body) = form(
        cluster.url(i, "/nacos/v1/auth/login"),
        &[("username", user), ("password", password)],
    )
    .await?;
    ensure!(
        status == 200,
        "login as {user} on node {i}: {status} {body}"
    );
    body["accessToken"]
        .as_str()
        .map(String::from)
        .context("no accessToken")
}

async fn list_status(cluster: &TestCluster, i: usize, token: &str) -> anyhow::Result<u16> {
    Ok(http()
        .get(cluster.url(i, "/nacos/v1/ns/instance/list"))
        .query(&[("serviceName", "orders"), ("accessToken", token)])
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn users_tokens_and_keys_hold_on_every_member() -> anyhow::Result<()> {
    let _serial = ONE_AT_A_TIME.lock().await;
    let cluster = TestCluster::start(ClusterOptions::default().with_env(&[
        ("NACRE_AUTH_ENABLED", "true"),
        ("NACRE_AUTH_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]))
    .await?;
    // The leader makes the key and the admin; every member learns them.
    let admin = wait_for_value(
        "the admin can log in on every member",
        Duration::from_secs(15),
        || {
            let cluster = &cluster;
            async move {
                let mut token = None;
                for i in 0..3 {
                    token = Some(login(cluster, i, "nacos", ADMIN_PASSWORD).await?);
                }
                Ok(token)
            }
        },
    )
    .await?;
    // A user made on node 0 logs in on node 2; its token from node 2 works on node 1.
    let (status, body) = form(
        cluster.url(0, "/nacos/v1/auth/users"),
        &[
            ("username", "ann"),
            ("password", "ann-password"),
            ("accessToken", &admin),
        ],
    )
    .await?;
    ensure!(status == 200, "create user: {status} {body}");
    // Each next step goes to another member at once: its check (the user
    // exists, the role is held) reads what the cluster committed, not what
    // that member has applied so far.
    let (status, body) = form(
        cluster.url(1, "/nacos/v1/auth/roles"),
        &[
            ("role", "dev"),
            ("username", "ann"),
            ("accessToken", &admin),
        ],
    )
    .await?;
    ensure!(
        status == 200,
        "bind a role on another member: {status} {body}"
    );
    let (status, body) = form(
        cluster.url(2, "/nacos/v1/auth/permissions"),
        &[
            ("role", "dev"),
            ("resource", ":*:*"),
            ("action", "r"),
            ("accessToken", &admin),
        ],
    )
    .await?;
    ensure!(
        status == 200,
        "grant a permission on a third member: {status} {body}"
    );
    let ann = login(&cluster, 2, "ann", "ann-password").await?;
    // A change is committed on a majority when it is acknowledged, and
    // applied on the other members within Raft's replication (a heartbeat).
    let everywhere = |token: String, what: &'static str| {
        let cluster = &cluster;
        async move {
            wait_for(what, Duration::from_secs(5), || {
                let token = token.clone();
                async move {
                    for i in 0..3 {
                        if list_status(cluster, i, &token).await? != 200 {
                            return Ok(false);
                        }
                    }
                    Ok(true)
                }
            })
            .await
        }
    };
    everywhere(ann.clone(), "ann's token accepted on every member").await?;
    // Rotation on node 1: the old token still verifies everywhere, a new one too.
    let (status, body) = form(
        cluster.url(1, "/nacre/v1/auth/keys/rotate"),
        &[("accessToken", &admin)],
    )
    .await?;
    ensure!(status == 200, "rotate: {status} {body}");
    let ann_new = login(&cluster, 0, "ann", "ann-password").await?;
    for i in 0..3 {
        ensure!(
            list_status(&cluster, i, &ann).await? == 200,
            "old token on node {i} after a rotation"
        );
    }
    everywhere(
        ann_new.clone(),
        "a token signed after the rotation accepted on every member",
    )
    .await?;
    // A password change on node 2 revokes her tokens on every member (on
    // the others as soon as they apply it).
    let reply = http()
        .put(cluster.url(2, "/nacos/v1/auth/users"))
        .form(&[
            ("username", "ann"),
            ("newPassword", "ann-password-2"),
            ("accessToken", &admin),
        ])
        .send()
        .await?;
    ensure!(reply.status() == 200, "password change: {}", reply.status());
    wait_for(
        "the old tokens to be refused on every member",
        Duration::from_secs(5),
        || async {
            for i in 0..3 {
                for token in [&ann, &ann_new] {
                    if list_status(&cluster, i, token).await? != 403 {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        },
    )
    .await?;
    login(&cluster, 1, "ann", "ann-password-2").await?;

    // Without a majority a change cannot be stored: the survivor answers
    // 503 (try again) and keeps its tables as they were.
    let mut cluster = cluster;
    cluster.kill(1).await?;
    cluster.kill(2).await?;
    let (status, body) = form(
        cluster.url(0, "/nacos/v1/auth/users"),
        &[
            ("username", "bob"),
            ("password", "bob-password"),
            ("accessToken", &admin),
        ],
    )
    .await?;
    ensure!(
        status == 503,
        "a user created without a majority: {status} {body}"
    );
    let users = http()
        .get(cluster.url(0, "/nacos/v1/auth/users"))
        .query(&[
            ("pageNo", "1"),
            ("pageSize", "100"),
            ("accessToken", admin.as_str()),
        ])
        .send()
        .await?
        .text()
        .await?;
    ensure!(
        users.contains("\"ann\"") && !users.contains("\"bob\""),
        "the users after a refused change: {users}"
    );
    Ok(())
}
