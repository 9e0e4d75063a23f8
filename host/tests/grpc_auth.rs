//! Auth on the gRPC door (NACOS-AUTH.md §4, §5, §7): the credential in
//! `metadata.headers`, the secured naming requests refused with their own
//! response type and errorCode 403, the connection's own requests open.

mod common;
mod grpc_client;

use std::time::Duration;

use common::{TestNode, wait_for};
use grpc_client::{Message, RawClient, grpc_addr};
use nacre::grpc::payload::payload;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "s3cret-admin-pw";

async fn form(node: &TestNode, path: &str, params: &[(&str, &str)]) -> Value {
    let reply = node
        .http
        .post(format!("{}{path}", node.base))
        .form(params)
        .send()
        .await
        .expect("sent");
    let status = reply.status();
    let text = reply.text().await.expect("body");
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).expect("JSON")
}

async fn call_with(
    client: &mut RawClient,
    kind: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> Message {
    let mut request = payload(kind, body.to_string());
    if let Some(metadata) = request.metadata.as_mut() {
        for (k, v) in headers {
            metadata.headers.insert(k.to_string(), v.to_string());
        }
    }
    client.try_call_raw(request).await.expect("unary call")
}

fn register_body(service: &str) -> Value {
    json!({"namespace": "public", "serviceName": service, "groupName": "DEFAULT_GROUP",
           "type": "registerInstance", "requestId": "r-1",
           "instance": {"ip": "10.0.0.1", "port": 80, "weight": 1.0, "healthy": true,
                        "enabled": true, "ephemeral": true, "clusterName": "DEFAULT", "metadata": {}}})
}

fn assert_refused(m: &Message, kind: &str, message: &str) {
    assert_eq!(m.kind, kind, "{m:?}");
    assert_eq!(m.body["resultCode"], 500, "{m:?}");
    assert_eq!(m.body["errorCode"], 403, "{m:?}");
    assert_eq!(m.body["message"], message, "{m:?}");
    assert_eq!(m.body["requestId"], "r-1", "{m:?}");
}

#[tokio::test]
async fn grpc_naming_requests_need_the_credential_in_their_headers() {
    let node = TestNode::start_with(|c| {
        c.auth.enabled = true;
        c.auth.admin_password = ADMIN_PASSWORD.into();
    })
    .await;
    let login = [("username", "nacos"), ("password", ADMIN_PASSWORD)];
    wait_for("the admin exists", Duration::from_secs(10), || async {
        let state = node
            .http
            .get(format!("{}/nacos/v1/console/server/state", node.base))
            .send()
            .await;
        match state {
            Ok(r) => r
                .json::<Value>()
                .await
                .is_ok_and(|s| s["auth_admin_request"] == "false"),
            Err(_) => false,
        }
    })
    .await;
    let admin = form(&node, "/nacos/v1/auth/login", &login).await["accessToken"]
        .as_str()
        .expect("token")
        .to_string();
    // The connection itself needs no credential, as in Nacos.
    let mut client =
        RawClient::connect(grpc_addr(&node), "Nacos-Java-Client:v2.4.3", "public").await;
    let check = client
        .call("HealthCheckRequest", json!({"requestId": "h"}))
        .await;
    assert_eq!(check.body["resultCode"], 200, "{check:?}");

    let none = call_with(&mut client, "InstanceRequest", register_body("orders"), &[]).await;
    assert_refused(&none, "InstanceResponse", "unknown user!");
    let forged = call_with(
        &mut client,
        "InstanceRequest",
        register_body("orders"),
        &[("accessToken", "forged")],
    )
    .await;
    assert_refused(&forged, "InstanceResponse", "token invalid!");
    let ok = call_with(
        &mut client,
        "InstanceRequest",
        register_body("orders"),
        &[("accessToken", &admin)],
    )
    .await;
    assert_eq!(ok.body["resultCode"], 200, "{ok:?}");
    let bearer = format!("Bearer {admin}");
    let ok = call_with(
        &mut client,
        "InstanceRequest",
        register_body("orders"),
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(ok.body["resultCode"], 200, "{ok:?}");

    // A reader may query and subscribe, not register.
    let as_admin = [("accessToken", admin.as_str())];
    let with_admin = |params: &[(&'static str, &'static str)]| {
        let mut all = params.to_vec();
        all.extend_from_slice(&as_admin);
        all
    };
    form(
        &node,
        "/nacos/v1/auth/users",
        &with_admin(&[("username", "reader"), ("password", "reader-password")]),
    )
    .await;
    form(
        &node,
        "/nacos/v1/auth/roles",
        &with_admin(&[("role", "readers"), ("username", "reader")]),
    )
    .await;
    form(
        &node,
        "/nacos/v1/auth/permissions",
        &with_admin(&[("role", "readers"), ("resource", ":*:*"), ("action", "r")]),
    )
    .await;
    let reader = [("username", "reader"), ("password", "reader-password")];
    let denied = call_with(
        &mut client,
        "InstanceRequest",
        register_body("orders"),
        &reader,
    )
    .await;
    assert_refused(&denied, "InstanceResponse", "authorization failed!");
    let query = json!({"namespace": "public", "serviceName": "orders", "groupName": "DEFAULT_GROUP",
                       "cluster": "", "healthyOnly": false, "udpPort": 0, "requestId": "r-1"});
    let read = call_with(&mut client, "ServiceQueryRequest", query.clone(), &reader).await;
    assert_eq!(read.body["resultCode"], 200, "{read:?}");
    assert_eq!(
        read.body["serviceInfo"]["hosts"].as_array().map(Vec::len),
        Some(1),
        "{read:?}"
    );
    let anonymous = call_with(&mut client, "ServiceQueryRequest", query, &[]).await;
    assert_refused(&anonymous, "QueryServiceResponse", "unknown user!");
    let list = json!({"namespace": "public", "groupName": "DEFAULT_GROUP", "pageNo": 1, "pageSize": 10, "requestId": "r-1"});
    let anonymous = call_with(&mut client, "ServiceListRequest", list, &[]).await;
    assert_refused(&anonymous, "ServiceListResponse", "unknown user!");
}
