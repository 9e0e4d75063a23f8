//! The web console with auth on (issues 16 and 18): the bundle (with its
//! login page) is open, every console read needs a signed-in user or a
//! read of the namespace it shows, and an edit is recorded with who made it.

mod common;

use common::TestNode;
use common::auth::{ADMIN, ADMIN_PASSWORD, login, start_with_auth};
use serde_json::Value;

/// `GET path` with the access token as the console sends it (a header).
async fn get_as(node: &TestNode, token: Option<&str>, path: &str) -> (u16, String) {
    let mut request = node.http.get(format!("{}{path}", node.base));
    if let Some(token) = token {
        request = request.header("accessToken", token);
    }
    let response = request.send().await.expect("sent");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn console_reads_need_a_signed_in_user_and_the_bundle_does_not() {
    let node = start_with_auth(|_| {}).await;
    assert_eq!(get_as(&node, None, "/nacos/").await.0, 200);
    assert_eq!(get_as(&node, None, "/nacos/console/app.js").await.0, 200);
    for path in [
        "/nacos/v1/console/namespaces",
        "/nacos/v1/core/cluster/nodes",
        "/nacre/v1/console/cluster",
        "/nacre/v1/console/metrics",
        "/nacre/v1/console/feed",
        "/nacre/v1/console/instances",
        "/nacre/v1/console/events",
        "/nacre/v1/console/access",
    ] {
        let (status, body) = get_as(&node, None, path).await;
        assert_eq!(status, 403, "{path} without a token: {body}");
        assert!(body.contains("unknown user!"), "{path}: {body}");
    }
    let token = login(&node, ADMIN, ADMIN_PASSWORD).await;
    for path in [
        "/nacos/v1/console/namespaces",
        "/nacre/v1/console/feed",
        "/nacre/v1/console/cluster",
    ] {
        let (status, body) = get_as(&node, Some(&token), path).await;
        assert_eq!(status, 200, "{path} signed in: {body}");
    }
    // The live stream takes the token as a parameter (browsers cannot give
    // an EventSource headers).
    let stream = node
        .http
        .get(format!(
            "{}/nacre/v1/console/events?accessToken={token}",
            node.base
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(stream.status().as_u16(), 200);
}

/// The feed and the override name the user who edited.
#[tokio::test]
async fn an_edit_is_recorded_with_its_user() {
    let node = start_with_auth(|_| {}).await;
    let token = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let send = |method: &str, params: Vec<(&'static str, &'static str)>| {
        let request = node
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}/nacos/v1/ns/instance", node.base),
            )
            .header("accessToken", token.as_str())
            .form(&params);
        async move {
            let response = request.send().await.expect("sent");
            assert_eq!(response.status().as_u16(), 200);
        }
    };
    let instance = vec![
        ("serviceName", "orders"),
        ("ip", "10.0.0.1"),
        ("port", "80"),
    ];
    send("POST", instance.clone()).await;
    let mut edit = instance;
    edit.push(("enabled", "false"));
    send("PATCH", edit).await;
    let (_, feed) = get_as(
        &node,
        Some(&token),
        "/nacre/v1/console/feed?serviceName=orders",
    )
    .await;
    let feed: Value = serde_json::from_str(&feed).expect("JSON");
    assert_eq!(feed["changes"][0]["cause"]["by"], ADMIN, "{feed}");
    let (_, found) = get_as(
        &node,
        Some(&token),
        "/nacre/v1/console/instances?serviceName=orders",
    )
    .await;
    let found: Value = serde_json::from_str(&found).expect("JSON");
    assert_eq!(found["list"][0]["override"]["by"], ADMIN, "{found}");
}

/// A user who may read only `dev` sees only `dev` in the namespace list
/// (alibaba/nacos#8107), reads its feed, and cannot edit there.
#[tokio::test]
async fn a_reader_sees_only_their_namespaces_and_cannot_edit() {
    let node = start_with_auth(|_| {}).await;
    let admin = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let post = |path: &str, params: &[(&str, &str)], token: &str| {
        node.http
            .post(format!("{}{path}", node.base))
            .header("accessToken", token)
            .form(params)
            .send()
    };
    for params in [
        vec![
            ("serviceName", "a"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("namespaceId", "dev"),
        ],
        vec![("serviceName", "b"), ("ip", "10.0.0.1"), ("port", "1")],
    ] {
        let response = post("/nacos/v1/ns/instance", &params, &admin)
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{params:?}");
    }
    let viewer = user_granted(&node, &admin, "viewer", ("dev:*:*", "r")).await;
    let (status, list) = get_as(&node, Some(&viewer), "/nacos/v1/console/namespaces").await;
    assert_eq!(status, 200, "{list}");
    let list: Value = serde_json::from_str(&list).expect("JSON");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["namespace"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["dev"], "{list}");
    let (status, _) = get_as(
        &node,
        Some(&viewer),
        "/nacre/v1/console/feed?namespaceId=dev",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = get_as(&node, Some(&viewer), "/nacre/v1/console/feed").await;
    assert_eq!(status, 403, "public is not the viewer's");
    assert_eq!(
        take_offline_as(&node, &viewer).await,
        403,
        "a reader cannot edit"
    );

    // The console asks what the user may do where it is, and hides the edit
    // controls the node would refuse: the answer agrees with the refusal.
    let access = |token: String, query: &'static str| {
        let node = &node;
        async move {
            let (status, body) = get_as(
                node,
                Some(&token),
                &format!("/nacre/v1/console/access?{query}"),
            )
            .await;
            assert_eq!(status, 200, "{query}: {body}");
            serde_json::from_str::<Value>(&body).expect("JSON")
        }
    };
    let dev_service = access(viewer.clone(), "namespaceId=dev&serviceName=a").await;
    assert_eq!(
        (
            &dev_service["read"],
            &dev_service["write"],
            &dev_service["admin"]
        ),
        (&Value::Bool(true), &Value::Bool(false), &Value::Bool(false)),
        "{dev_service}"
    );
    assert_eq!(dev_service["user"], "viewer");
    assert_eq!(dev_service["resource"], "dev:*:naming/a");
    let public = access(viewer.clone(), "serviceName=b").await;
    assert_eq!(
        (&public["read"], &public["write"]),
        (&Value::Bool(false), &Value::Bool(false)),
        "{public}"
    );
    let admin_view = access(admin.clone(), "namespaceId=dev&serviceName=a").await;
    assert_eq!(
        (
            &admin_view["read"],
            &admin_view["write"],
            &admin_view["admin"]
        ),
        (&Value::Bool(true), &Value::Bool(true), &Value::Bool(true)),
        "{admin_view}"
    );
    // The same answer as the API's: the admin's edit there is accepted.
    assert_eq!(
        take_offline_as(&node, &admin).await,
        200,
        "the admin may edit"
    );
    let bad = get_as(
        &node,
        Some(&viewer),
        &format!("/nacre/v1/console/access?serviceName={}", "x".repeat(600)),
    )
    .await;
    assert_eq!(bad.0, 400, "an over-long name is refused: {}", bad.1);

    // Namespaces are the global admin's to create, rename and delete; a
    // reader's attempt changes nothing.
    let name_dev = [("namespace", "dev"), ("namespaceShowName", "Development")];
    // A user who may write everything in every namespace is still no admin.
    let writer = user_granted(&node, &admin, "writer", ("*:*:*", "rw")).await;
    for (method, params) in [
        (
            "POST",
            vec![("customNamespaceId", "qa"), ("namespaceName", "QA")],
        ),
        ("PUT", name_dev.to_vec()),
        ("DELETE", vec![("namespaceId", "dev")]),
    ] {
        for (who, token) in [("a reader", &viewer), ("a writer of everything", &writer)] {
            let status = namespace_write_as(&node, token, method, &params).await;
            assert_eq!(status, 403, "{method} by {who}");
        }
    }
    let (_, list) = get_as(&node, Some(&admin), "/nacos/v1/console/namespaces").await;
    assert!(
        !list.contains("QA") && !list.contains("Development"),
        "{list}"
    );
    assert_eq!(
        namespace_write_as(&node, &admin, "PUT", &name_dev).await,
        200,
        "the admin names a namespace"
    );
    let (_, list) = get_as(&node, Some(&viewer), "/nacos/v1/console/namespaces").await;
    assert!(list.contains("Development"), "{list}");
}

/// Makes `user` (password `<user>-pass-1`) with a role of its own that
/// grants `action` on `resource`, through the admin's `token`; the user's
/// own token.
async fn user_granted(
    node: &TestNode,
    token: &str,
    user: &str,
    (resource, action): (&str, &str),
) -> String {
    let password = format!("{user}-pass-1");
    let role = format!("{user}-role");
    for (path, params) in [
        (
            "/nacos/v1/auth/users",
            vec![("username", user), ("password", password.as_str())],
        ),
        (
            "/nacos/v1/auth/roles",
            vec![("role", role.as_str()), ("username", user)],
        ),
        (
            "/nacos/v1/auth/permissions",
            vec![
                ("role", role.as_str()),
                ("resource", resource),
                ("action", action),
            ],
        ),
    ] {
        let response = node
            .http
            .post(format!("{}{path}", node.base))
            .header("accessToken", token)
            .form(&params)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    login(node, user, &password).await
}

/// `method /nacos/v1/console/namespaces` with a form and `token`; the status.
async fn namespace_write_as(
    node: &TestNode,
    token: &str,
    method: &str,
    params: &[(&str, &str)],
) -> u16 {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    node.http
        .request(method, format!("{}/nacos/v1/console/namespaces", node.base))
        .header("accessToken", token)
        .form(params)
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}

/// Takes instance 10.0.0.1:1 of `dev`'s service `a` offline through the open
/// API with `token`; answers the status.
async fn take_offline_as(node: &TestNode, token: &str) -> u16 {
    node.http
        .patch(format!("{}/nacos/v1/ns/instance", node.base))
        .header("accessToken", token)
        .form(&[
            ("serviceName", "a"),
            ("ip", "10.0.0.1"),
            ("port", "1"),
            ("namespaceId", "dev"),
            ("enabled", "false"),
        ])
        .send()
        .await
        .expect("sent")
        .status()
        .as_u16()
}
