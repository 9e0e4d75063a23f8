//! Auth over real HTTP against a running node (issue 18): login and every
//! place a client puts its credential, Nacos's denials, users, roles and
//! permissions, revocation, expiry, key rotation, throttling, the first
//! admin, and each bypass of NACOS-AUTH.md §11 refused.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{NS, TestNode, wait_for};
use hmac::{Hmac, Mac};
use serde_json::Value;

use common::auth::{ADMIN, ADMIN_PASSWORD, login, start_with_auth};

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A Nacos denial: this status and the Spring error document with `message`.
    fn assert_denied(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "body: {}", self.text);
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["message"], message, "{body}");
        assert!(
            body["path"].as_str().is_some_and(|p| p.starts_with('/')),
            "{body}"
        );
        assert!(body["timestamp"].is_string(), "{body}");
    }
}

/// Sends `method base+path` with `params` (query for GET, form otherwise)
/// and extra headers.
async fn call(
    node: &TestNode,
    method: &str,
    path: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let url = format!("{}{path}", node.base);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = if method == reqwest::Method::GET {
        node.http.request(method, &url).query(params)
    } else {
        node.http.request(method, &url).form(params)
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("body"),
    }
}

async fn register_with(
    node: &TestNode,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Answer {
    let mut params: Vec<(&str, &str)> = vec![
        ("serviceName", "orders"),
        ("ip", "10.0.0.1"),
        ("port", "8080"),
    ];
    params.extend_from_slice(extra);
    call(node, "POST", &format!("{NS}/instance"), &params, headers).await
}

#[tokio::test]
async fn with_auth_off_everything_passes_and_login_still_answers() {
    let node = TestNode::start().await;
    register_with(&node, &[], &[]).await;
    let answer = call(
        &node,
        "POST",
        "/nacos/v1/auth/login",
        &[("username", "any"), ("password", "thing")],
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["accessToken"], "AUTH_DISABLED");
    assert!(body["tokenTtl"].is_u64(), "tokenTtl is a number: {body}");
    let state = call(&node, "GET", "/nacos/v1/console/server/state", &[], &[])
        .await
        .json();
    assert_eq!(state["auth_enabled"], "false");
    assert!(
        state.get("version").is_none(),
        "no version for scanners: {state}"
    );
}

#[tokio::test]
async fn login_answers_nacos_shape_and_every_credential_place_works() {
    let node = start_with_auth(|_| {}).await;
    let answer = call(
        &node,
        "POST",
        "/nacos/v1/auth/users/login",
        &[("username", ADMIN), ("password", ADMIN_PASSWORD)],
        &[],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    let token = body["accessToken"].as_str().expect("token").to_string();
    assert_eq!(body["tokenTtl"], 18000);
    assert_eq!(body["globalAdmin"], true);
    assert_eq!(body["username"], ADMIN);
    assert_eq!(
        answer
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {token}").as_str())
    );
    let bearer = format!("Bearer {token}");
    // Query or form parameter, header, Bearer, and username+password (npm).
    register_with(&node, &[("accessToken", &token)], &[]).await;
    for (extra, headers) in [
        (vec![("accessToken", token.as_str())], vec![]),
        (vec![], vec![("accessToken", token.as_str())]),
        (vec![], vec![("Authorization", bearer.as_str())]),
        (
            vec![("username", ADMIN), ("password", ADMIN_PASSWORD)],
            vec![],
        ),
    ] {
        let answer = register_with(&node, &extra, &headers).await;
        assert_eq!(answer.status, 200, "{extra:?} {headers:?}: {}", answer.text);
    }
    let query = format!("{NS}/instance/list?serviceName=orders&accessToken={token}");
    let list = call(&node, "GET", &query, &[], &[]).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json()["hosts"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn denials_are_nacos_shaped() {
    let node = start_with_auth(|_| {}).await;
    register_with(&node, &[], &[])
        .await
        .assert_denied(403, "unknown user!");
    register_with(
        &node,
        &[("username", ADMIN), ("password", "wrong-password")],
        &[],
    )
    .await
    .assert_denied(403, "unknown user!");
    register_with(&node, &[("accessToken", "garbage")], &[])
        .await
        .assert_denied(403, "token invalid!");
    let list = call(
        &node,
        "GET",
        &format!("{NS}/instance/list"),
        &[("serviceName", "orders")],
        &[],
    )
    .await;
    list.assert_denied(403, "unknown user!");
    assert_eq!(list.json()["path"], "/nacos/v1/ns/instance/list");
    let login = call(
        &node,
        "POST",
        "/nacos/v1/auth/login",
        &[("username", ADMIN), ("password", "nope-nope")],
        &[],
    )
    .await;
    login.assert_denied(403, "unknown user!");
    let missing = call(
        &node,
        "POST",
        "/nacos/v1/auth/login",
        &[("username", ADMIN)],
        &[],
    )
    .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    // Open on purpose: health probes and what a Java client reads to tell a live server.
    assert_eq!(
        call(&node, "GET", "/nacos/v1/console/health/liveness", &[], &[])
            .await
            .status,
        200
    );
    assert_eq!(
        call(&node, "GET", &format!("{NS}/operator/metrics"), &[], &[])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn permissions_go_by_role_resource_and_action() {
    let node = start_with_auth(|_| {}).await;
    let admin = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let as_admin = [("accessToken", admin.as_str())];
    let ok = |a: Answer| {
        assert_eq!(a.status, 200, "{}", a.text);
        a
    };
    let created = ok(call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "ann"), ("password", "ann-password")],
        &as_admin,
    )
    .await);
    assert_eq!(created.json()["data"], "create user ok!");
    let taken = call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "ann"), ("password", "ann-password")],
        &as_admin,
    )
    .await;
    assert_eq!(taken.status, 400, "{}", taken.text);
    assert!(taken.text.contains("already exist"), "{}", taken.text);
    let short = call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "bob"), ("password", "short")],
        &as_admin,
    )
    .await;
    assert_eq!(short.status, 400, "{}", short.text);
    ok(call(
        &node,
        "POST",
        "/nacos/v1/auth/roles",
        &[("role", "reader"), ("username", "ann")],
        &as_admin,
    )
    .await);
    let admin_role = call(
        &node,
        "POST",
        "/nacos/v1/auth/roles",
        &[("role", "ROLE_ADMIN"), ("username", "ann")],
        &as_admin,
    )
    .await;
    assert_eq!(admin_role.status, 400, "{}", admin_role.text);
    ok(call(
        &node,
        "POST",
        "/nacos/v1/auth/permissions",
        &[("role", "reader"), ("resource", ":*:*"), ("action", "r")],
        &as_admin,
    )
    .await);
    ok(call(
        &node,
        "POST",
        "/nacos/v1/auth/permissions",
        &[
            ("role", "reader"),
            ("resource", "dev:*:*"),
            ("action", "rw"),
        ],
        &as_admin,
    )
    .await);
    let no_role = call(
        &node,
        "POST",
        "/nacos/v1/auth/permissions",
        &[("role", "nobody"), ("resource", ":*:*"), ("action", "r")],
        &as_admin,
    )
    .await;
    assert_eq!(no_role.status, 400, "{}", no_role.text);

    let ann = login(&node, "ann", "ann-password").await;
    let as_ann = [("accessToken", ann.as_str())];
    // Reads of public are allowed, writes not; namespace dev allows both.
    ok(call(
        &node,
        "GET",
        &format!("{NS}/instance/list"),
        &[("serviceName", "orders")],
        &as_ann,
    )
    .await);
    register_with(&node, &[], &as_ann)
        .await
        .assert_denied(403, "authorization failed!");
    let dev = register_with(&node, &[("namespaceId", "dev")], &as_ann).await;
    assert_eq!(dev.status, 200, "{}", dev.text);
    // Admin routes are the admin's.
    call(&node, "GET", "/nacos/v1/auth/users", &[], &as_ann)
        .await
        .assert_denied(403, "authorization failed!");
    call(
        &node,
        "PUT",
        &format!("{NS}/operator/switches"),
        &[("entry", "pushEnabled"), ("value", "true")],
        &as_ann,
    )
    .await
    .assert_denied(403, "authorization failed!");
    call(&node, "GET", "/nacre/v1/plugins", &[], &as_ann)
        .await
        .assert_denied(403, "authorization failed!");
    call(&node, "POST", "/nacre/v1/plugins/reload", &[], &as_ann)
        .await
        .assert_denied(403, "authorization failed!");

    // Listings: pages, never a password hash.
    let users = ok(call(
        &node,
        "GET",
        "/nacos/v1/auth/users",
        &[("pageNo", "1"), ("pageSize", "10")],
        &as_admin,
    )
    .await);
    assert_eq!(users.json()["totalCount"], 2);
    assert!(
        !users.text.contains("argon2") && !users.text.contains("password"),
        "{}",
        users.text
    );
    let roles = ok(call(
        &node,
        "GET",
        "/nacos/v1/auth/roles",
        &[("username", "ann")],
        &as_admin,
    )
    .await)
    .json();
    assert_eq!(roles["pageItems"][0]["role"], "reader");
    let permissions = ok(call(
        &node,
        "GET",
        "/nacos/v1/auth/permissions",
        &[("role", "reader")],
        &as_admin,
    )
    .await)
    .json();
    assert_eq!(permissions["totalCount"], 2);

    // Revoking the permission takes effect at once.
    ok(call(
        &node,
        "DELETE",
        "/nacos/v1/auth/permissions",
        &[
            ("role", "reader"),
            ("resource", "dev:*:*"),
            ("action", "rw"),
        ],
        &as_admin,
    )
    .await);
    register_with(&node, &[("namespaceId", "dev")], &as_ann)
        .await
        .assert_denied(403, "authorization failed!");
    let admin_delete = call(
        &node,
        "DELETE",
        "/nacos/v1/auth/users",
        &[("username", ADMIN)],
        &as_admin,
    )
    .await;
    assert_eq!(admin_delete.status, 400, "{}", admin_delete.text);
}

#[tokio::test]
async fn a_password_change_or_deletion_revokes_tokens_at_once() {
    let node = start_with_auth(|_| {}).await;
    let admin = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let as_admin = [("accessToken", admin.as_str())];
    call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "ann"), ("password", "ann-password")],
        &as_admin,
    )
    .await;
    let ann = login(&node, "ann", "ann-password").await;
    let whoami = |token: String| {
        let node = &node;
        async move {
            call(
                node,
                "PUT",
                "/nacos/v1/auth/users",
                &[("username", "ann"), ("newPassword", "ann-password-2")],
                &[("accessToken", &token)],
            )
            .await
        }
    };
    // Ann changes her own password (allowed for herself)...
    let changed = whoami(ann.clone()).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    // ...and the token she used is dead from then on.
    whoami(ann).await.assert_denied(403, "token invalid!");
    // The old password too; the new one works.
    register_with(
        &node,
        &[("username", "ann"), ("password", "ann-password")],
        &[],
    )
    .await
    .assert_denied(403, "unknown user!");
    let ann = login(&node, "ann", "ann-password-2").await;
    // Someone else's password is not hers to change.
    let other = call(
        &node,
        "PUT",
        "/nacos/v1/auth/users",
        &[("username", ADMIN), ("newPassword", "whatever-123")],
        &[("accessToken", &ann)],
    )
    .await;
    other.assert_denied(403, "authorization failed!");
    // Deleting the user kills its token.
    call(
        &node,
        "DELETE",
        "/nacos/v1/auth/users",
        &[("username", "ann")],
        &as_admin,
    )
    .await;
    let list = call(
        &node,
        "GET",
        &format!("{NS}/instance/list"),
        &[("serviceName", "orders")],
        &[("accessToken", &ann)],
    )
    .await;
    list.assert_denied(403, "token invalid!");
    // Re-creating the name does not bring the old token back.
    call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "ann"), ("password", "ann-password-3")],
        &as_admin,
    )
    .await;
    let list = call(
        &node,
        "GET",
        &format!("{NS}/instance/list"),
        &[("serviceName", "orders")],
        &[("accessToken", &ann)],
    )
    .await;
    list.assert_denied(403, "token invalid!");
}

#[tokio::test]
async fn tokens_expire() {
    let node = start_with_auth(|c| c.auth.token_ttl_seconds = 1).await;
    let token = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let list = || {
        let token = token.clone();
        let node = &node;
        async move {
            call(
                node,
                "GET",
                &format!("{NS}/instance/list"),
                &[("serviceName", "orders")],
                &[("accessToken", &token)],
            )
            .await
        }
    };
    assert_eq!(list().await.status, 200);
    wait_for("the token to expire", Duration::from_secs(5), || async {
        list().await.status == 403
    })
    .await;
    list().await.assert_denied(403, "token expired!");
}

#[tokio::test]
async fn rotation_keeps_the_previous_key_and_drops_the_one_before() {
    let node = start_with_auth(|_| {}).await;
    let first = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let works = |token: String| {
        let node = &node;
        async move {
            call(
                node,
                "GET",
                "/nacos/v1/auth/users",
                &[],
                &[("accessToken", &token)],
            )
            .await
            .status
        }
    };
    let rotated = call(
        &node,
        "POST",
        "/nacre/v1/auth/keys/rotate",
        &[],
        &[("accessToken", &first)],
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(
        works(first.clone()).await,
        200,
        "the previous key still verifies"
    );
    let second = login(&node, ADMIN, ADMIN_PASSWORD).await;
    assert_ne!(first, second);
    call(
        &node,
        "POST",
        "/nacre/v1/auth/keys/rotate",
        &[],
        &[("accessToken", &second)],
    )
    .await;
    assert_eq!(works(second).await, 200);
    assert_eq!(works(first).await, 403, "two rotations ago");
}

#[tokio::test]
async fn users_and_keys_survive_a_restart() {
    let mut node = start_with_auth(|_| {}).await;
    let token = login(&node, ADMIN, ADMIN_PASSWORD).await;
    call(
        &node,
        "POST",
        "/nacos/v1/auth/users",
        &[("username", "ann"), ("password", "ann-password")],
        &[("accessToken", &token)],
    )
    .await;
    node.stop().await;
    let mut config = common::test_config(node.dir.path());
    config.auth.enabled = true;
    let dir = std::mem::replace(&mut node.dir, tempfile::tempdir().expect("dir"));
    let node = TestNode::start_in(dir, config).await;
    let users = call(
        &node,
        "GET",
        "/nacos/v1/auth/users",
        &[],
        &[("accessToken", &token)],
    )
    .await;
    assert_eq!(
        users.status, 200,
        "the token outlives the restart: {}",
        users.text
    );
    login(&node, "ann", "ann-password").await;
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user() {
    let node = start_with_auth(|c| c.auth.failures_per_user_per_minute = 3).await;
    // One stale password sent over and over (a client after a password
    // change) counts once: the user is not locked out by it.
    for _ in 0..6 {
        register_with(
            &node,
            &[("username", ADMIN), ("password", "old-password")],
            &[],
        )
        .await
        .assert_denied(403, "unknown user!");
    }
    login(&node, ADMIN, ADMIN_PASSWORD).await;
    // Guessing (new passwords each time) fills the allowance.
    for guess in ["guess-1", "guess-2"] {
        let answer = call(
            &node,
            "POST",
            "/nacos/v1/auth/login",
            &[("username", ADMIN), ("password", guess)],
            &[],
        )
        .await;
        answer.assert_denied(403, "unknown user!");
    }
    // Now even the right password waits, and says how long.
    let answer = call(
        &node,
        "POST",
        "/nacos/v1/auth/login",
        &[("username", ADMIN), ("password", ADMIN_PASSWORD)],
        &[],
    )
    .await;
    assert_eq!(answer.status, 429, "{}", answer.text);
    let wait: u64 = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait), "{wait}");
    // Per-request passwords (the npm client) count too.
    register_with(
        &node,
        &[("username", ADMIN), ("password", ADMIN_PASSWORD)],
        &[],
    )
    .await
    .assert_denied(
        429,
        &format!(
            "too many failed logins for this user or from this address; try again in {wait} s"
        ),
    );
}

/// The per-source allowance, over real sockets from two loopback addresses:
/// failures from 127.0.0.2 under several names block that address, even
/// for a right password, while 127.0.0.1 logs in as before.
#[tokio::test]
async fn failed_logins_are_throttled_per_source() {
    let node = start_with_auth(|c| {
        c.auth.failures_per_user_per_minute = 100;
        c.auth.failures_per_source_per_minute = 3;
    })
    .await;
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("a client on 127.0.0.2");
    let login_from = |client: &reqwest::Client, user: &str, password: &str| {
        let request = client
            .post(format!("{}/nacos/v1/auth/login", node.base))
            .form(&[("username", user), ("password", password)]);
        async move {
            let response = request.send().await.expect("login sent");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    };
    for user in ["guess-1", "guess-2", "guess-3"] {
        let (status, body) = login_from(&elsewhere, user, "guess").await;
        assert_eq!(status, 403, "{user}: {body}");
    }
    let (status, body) = login_from(&elsewhere, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        status, 429,
        "the address is blocked, whoever logs in: {body}"
    );
    assert!(body.contains("too many failed logins"), "{body}");
    let (status, body) = login_from(&node.http, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "another address is not: {body}");
}

#[tokio::test]
async fn the_first_admin_comes_from_this_machine_once() {
    let node = TestNode::start_with(|c| c.auth.enabled = true).await;
    let state = call(&node, "GET", "/nacos/v1/console/server/state", &[], &[])
        .await
        .json();
    assert_eq!(state["auth_enabled"], "true");
    assert_eq!(state["auth_admin_request"], "true");
    // No default user: nacos/nacos does not exist.
    call(
        &node,
        "POST",
        "/nacos/v1/auth/login",
        &[("username", "nacos"), ("password", "nacos")],
        &[],
    )
    .await
    .assert_denied(403, "unknown user!");
    let created = call(&node, "POST", "/nacos/v1/auth/users/admin", &[], &[]).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let body = created.json();
    let password = body["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    assert!(password.len() >= 16, "{password}");
    login(&node, ADMIN, &password).await;
    let again = call(
        &node,
        "POST",
        "/nacos/v1/auth/users/admin",
        &[("password", "another-pass")],
        &[],
    )
    .await
    .json();
    assert_eq!(again["code"], 409);
    assert_eq!(again["data"], "have admin user cannot use it");
    let state = call(&node, "GET", "/nacos/v1/console/server/state", &[], &[])
        .await
        .json();
    assert_eq!(state["auth_admin_request"], "false");
}

/// Nacos's published key (1.2.0–2.2.0's `token.secret.key`), as base64.
const NACOS_PUBLIC_KEY: &str =
    "SecretKey012345678901234567890123456789012345678901234567890123456789";

fn nacos_jwt(sub: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#);
    let payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":4102444800}}"#));
    // 69 characters: Nacos's lenient decoder drops the last, partial one (51 bytes).
    let key = STANDARD
        .decode(&NACOS_PUBLIC_KEY[..68])
        .expect("base64 key");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

#[tokio::test]
async fn none_of_nacos_bypasses_work() {
    let node = start_with_auth(|_| {}).await;
    let list_path = format!("{NS}/instance/list");
    let list = [("serviceName", "orders")];
    // CVE-2021-29441: the User-Agent of a Nacos server.
    call(
        &node,
        "GET",
        &list_path,
        &list,
        &[("User-Agent", "Nacos-Server")],
    )
    .await
    .assert_denied(403, "unknown user!");
    register_with(&node, &[], &[("User-Agent", "Nacos-Server 2.0.3")])
        .await
        .assert_denied(403, "unknown user!");
    // The shipped identity pair of 2.0.1–2.2.0.1, and cluster-looking headers.
    for (name, value) in [
        ("serverIdentity", "security"),
        ("x-nacre-secret", "guess"),
        ("x-nacre-forwarded", "1"),
    ] {
        register_with(&node, &[], &[(name, value)])
            .await
            .assert_denied(403, "unknown user!");
    }
    // A JWT signed with Nacos's public default key, as header, parameter and Bearer.
    let forged = nacos_jwt(ADMIN);
    let bearer = format!("Bearer {forged}");
    register_with(&node, &[("accessToken", &forged)], &[])
        .await
        .assert_denied(403, "token invalid!");
    register_with(&node, &[], &[("Authorization", &bearer)])
        .await
        .assert_denied(403, "token invalid!");
    // A tampered token of ours: another user's name with the same signature.
    let token = login(&node, ADMIN, ADMIN_PASSWORD).await;
    let mut tampered = token.clone().into_bytes();
    let at = token.find('.').expect("prefix") + 3;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    register_with(&node, &[("accessToken", &tampered)], &[])
        .await
        .assert_denied(403, "token invalid!");
    // URL variants Nacos's own route cache missed (#4701) are not routes: 404, never "allowed".
    for variant in [
        format!("{list_path}/"),
        format!("{NS}//instance/list"),
        format!("{NS}/Instance/list"),
    ] {
        let answer = call(&node, "GET", &variant, &list, &[]).await;
        assert_eq!(answer.status, 404, "{variant}: {}", answer.text);
    }
    // A bad token is refused even alongside a right password.
    register_with(
        &node,
        &[
            ("accessToken", "junk"),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ],
        &[],
    )
    .await
    .assert_denied(403, "token invalid!");
    // The registry is unchanged by all of the above.
    let listed = call(&node, "GET", &list_path, &list, &[("accessToken", &token)])
        .await
        .json();
    assert_eq!(
        listed["hosts"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
}
