//! The naming requests of Nacos 2.x clients (NACOS-V2.md §5): one function
//! per request type, each reading its JSON, checking it with the same rules
//! as the v1 API ([`crate::naming::checks`]), and answering its typed
//! response. A request the node understood but refuses gets that typed
//! response with errorCode 400 and a message naming the parameter; clients
//! raise it to the caller without retrying.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::GrpcDoor;
use super::connection::Connection;
use super::info::Shown;
use super::messages::{
    BatchInstanceRequest, InstanceBody, InstanceRequest, QueryRequest, Reply, ServiceListRequest,
    SubscribeRequest, Target, Targeted, read_naming,
};
use super::payload::{ErrorCode, error_response};
use super::proto::Payload;
use super::publish::{FROM_CLIENT, PublishError, kind_clash};
use crate::naming::NamingError;
use crate::naming::checks::{self, illegal, required};
use crate::registry::model::{
    DEFAULT_CLUSTER, DEFAULT_GROUP, DEFAULT_NAMESPACE, GROUP_SEPARATOR, Instance, InstanceId,
    ServiceKey,
};

/// Parses a body as `T`; a body that does not parse is answered 502.
/// (The answer is boxed: it is the rare path.)
pub fn parse<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T, Box<Payload>> {
    serde_json::from_slice(body).map_err(|e| bad_body(kind, e))
}

/// [`parse`] for a naming request (its target read as well, see
/// [`read_naming`]).
pub fn parse_naming<T: Targeted>(kind: &str, body: &[u8]) -> Result<T, Box<Payload>> {
    read_naming(body).map_err(|e| bad_body(kind, e))
}

fn bad_body(kind: &str, e: serde_json::Error) -> Box<Payload> {
    Box::new(error_response(
        ErrorCode::BadBody,
        &format!("the body of {kind} is not valid: {e}"),
    ))
}

/// A refused parameter: errorCode 400, `Param check invalid: ...`.
fn param_check(kind: &'static str, request_id: &str, e: NamingError) -> Payload {
    Reply::ok(kind, request_id)
        .fail(400, format!("Param check invalid: {e}"))
        .into_payload()
}

/// A refused operation: 400 for what the client asked wrongly, 500 (503
/// when worth retrying) for what the node could not do.
fn refused(kind: &'static str, request_id: &str, e: PublishError) -> Payload {
    let (code, message) = match e {
        PublishError::Released => {
            return error_response(ErrorCode::Unregistered, "Connection is unregistered.");
        }
        PublishError::Naming(NamingError::InvalidParam(m) | NamingError::NotFound(m)) => (400, m),
        PublishError::Naming(NamingError::Consistency(e)) if e.retryable() => (503, e.to_string()),
        PublishError::Naming(NamingError::Consistency(e)) => (500, e.to_string()),
    };
    Reply::ok(kind, request_id)
        .fail(code, message)
        .into_payload()
}

fn text(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The service a request names: `namespace` (`""` is `public`),
/// `groupName` and a bare `serviceName` (a grouped one is accepted too).
pub fn service_key(target: &Target) -> Result<ServiceKey, NamingError> {
    let namespace = text(&target.namespace).unwrap_or(DEFAULT_NAMESPACE);
    checks::check_name("namespace", namespace)?;
    let raw = text(&target.service_name).ok_or_else(|| required("serviceName"))?;
    let group = text(&target.group_name).unwrap_or(DEFAULT_GROUP);
    let (group, name) = match raw.split_once(GROUP_SEPARATOR) {
        Some((g, n)) if !g.is_empty() && !n.is_empty() && !n.contains(GROUP_SEPARATOR) => (g, n),
        Some(_) => {
            return Err(illegal(
                "serviceName",
                "it should be format as 'groupName@@serviceName'",
            ));
        }
        None => (group, raw),
    };
    checks::check_name("serviceName", name)?;
    checks::check_name("groupName", group)?;
    Ok(ServiceKey::new(namespace, group, name))
}

/// The instance a request describes, with Nacos's defaults.
pub fn instance_from(body: &InstanceBody) -> Result<Instance, NamingError> {
    let ip = text(&body.ip).ok_or_else(|| required("ip"))?;
    checks::check_ip("ip", ip)?;
    let port = checks::check_port("port", body.port.ok_or_else(|| required("port"))?)?;
    let cluster = text(&body.cluster_name).unwrap_or(DEFAULT_CLUSTER);
    checks::check_cluster("clusterName", cluster)?;
    let weight = checks::check_weight(body.weight.unwrap_or(1.0))?;
    let metadata = match &body.metadata {
        Some(map) => checks::metadata_from_json("metadata", map.clone())?,
        None => Default::default(),
    };
    Ok(Instance {
        id: InstanceId::new(cluster, ip, port),
        weight,
        healthy: body.healthy.unwrap_or(true),
        enabled: body.enabled.unwrap_or(true),
        ephemeral: body.ephemeral.unwrap_or(true),
        marked: false,
        metadata,
        last_beat: 0,
        version: Default::default(),
        lease: Default::default(),
    })
}

/// Comma-separated cluster names, each checked; empty means all.
pub fn cluster_list(param: &str, value: &str) -> Result<Vec<String>, NamingError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| checks::check_cluster(param, c).map(|()| c.to_string()))
        .collect()
}

/// `InstanceRequest`: register (replacing the connection's publication in
/// the service) or deregister (removing it).
pub async fn instance(door: &GrpcDoor, conn: &Connection, req: InstanceRequest) -> Payload {
    const KIND: &str = "InstanceResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let service = match service_key(&req.target) {
        Ok(s) => s,
        Err(e) => return param_check(KIND, &rid, e),
    };
    let op = text(&req.r#type).unwrap_or("").to_string();
    let result = match op.as_str() {
        "registerInstance" => {
            let instance = match req.instance.as_ref().map(instance_from) {
                Some(Ok(i)) if i.ephemeral => i,
                Some(Ok(_)) => {
                    let e = illegal(
                        "instance",
                        "InstanceRequest registers ephemeral instances; use PersistentInstanceRequest",
                    );
                    return param_check(KIND, &rid, e);
                }
                Some(Err(e)) => return param_check(KIND, &rid, e),
                None => return param_check(KIND, &rid, required("instance")),
            };
            door.publisher.publish(conn, service, vec![instance]).await
        }
        "deregisterInstance" => door.publisher.unpublish(conn, &service).await,
        _ => return param_check(KIND, &rid, illegal("type", &format!("unknown type {op:?}"))),
    };
    match result {
        Ok(()) => Reply::ok(KIND, &rid).with("type", op).into_payload(),
        Err(e) => refused(KIND, &rid, e),
    }
}

/// `BatchInstanceRequest`: the list replaces the connection's publication
/// in the service (clients deregister part of a batch by sending the rest).
pub async fn batch(door: &GrpcDoor, conn: &Connection, req: BatchInstanceRequest) -> Payload {
    const KIND: &str = "BatchInstanceResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let service = match service_key(&req.target) {
        Ok(s) => s,
        Err(e) => return param_check(KIND, &rid, e),
    };
    let op = text(&req.r#type).unwrap_or("").to_string();
    if op != "batchRegisterInstance" {
        let e = illegal("type", &format!("unknown type {op:?}"));
        return param_check(KIND, &rid, e);
    }
    let mut instances = Vec::new();
    for body in req.instances.iter().flatten() {
        match instance_from(body) {
            Ok(i) if i.ephemeral => instances.push(i),
            Ok(_) => {
                let e = illegal("instances", "a batch holds ephemeral instances only");
                return param_check(KIND, &rid, e);
            }
            Err(e) => return param_check(KIND, &rid, e),
        }
    }
    let result = if instances.is_empty() {
        door.publisher.unpublish(conn, &service).await
    } else {
        door.publisher.publish(conn, service, instances).await
    };
    match result {
        Ok(()) => Reply::ok(KIND, &rid).with("type", op).into_payload(),
        Err(e) => refused(KIND, &rid, e),
    }
}

/// `PersistentInstanceRequest`: a persistent instance, keyed by its address
/// and not tied to the connection (it lives until deregistered).
pub async fn persistent(door: &GrpcDoor, req: InstanceRequest) -> Payload {
    const KIND: &str = "InstanceResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let service = match service_key(&req.target) {
        Ok(s) => s,
        Err(e) => return param_check(KIND, &rid, e),
    };
    let mut instance = match req.instance.as_ref().map(instance_from) {
        Some(Ok(i)) => i,
        Some(Err(e)) => return param_check(KIND, &rid, e),
        None => return param_check(KIND, &rid, required("instance")),
    };
    instance.ephemeral = false;
    let op = text(&req.r#type).unwrap_or("").to_string();
    let result = match op.as_str() {
        "registerInstance" => match kind_clash(door.naming.registry(), &service, false) {
            Some(clash) => Err(NamingError::InvalidParam(clash)),
            None => {
                door.naming
                    .register_instance(service, instance, FROM_CLIENT)
                    .await
            }
        },
        "deregisterInstance" => {
            door.naming
                .deregister_instance(service, instance.id, false, FROM_CLIENT)
                .await
        }
        _ => return param_check(KIND, &rid, illegal("type", &format!("unknown type {op:?}"))),
    };
    match result {
        Ok(()) => Reply::ok(KIND, &rid).with("type", op).into_payload(),
        Err(e) => refused(KIND, &rid, e.into()),
    }
}

/// `SubscribeServiceRequest`: subscribes (or, with `subscribe: false`,
/// unsubscribes) the connection, and answers the service as it is now.
pub async fn subscribe(door: &GrpcDoor, conn: &Arc<Connection>, req: SubscribeRequest) -> Payload {
    const KIND: &str = "SubscribeServiceResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let clusters_param = text(&req.clusters).unwrap_or("");
    let checked = service_key(&req.target)
        .and_then(|s| cluster_list("clusters", clusters_param).map(|c| (s, c)));
    let (service, clusters) = match checked {
        Ok(v) => v,
        Err(e) => return param_check(KIND, &rid, e),
    };
    if req.subscribe {
        if !door.push.subscribe(conn, &service, clusters_param) {
            return error_response(ErrorCode::Unregistered, "Connection is unregistered.");
        }
    } else {
        door.push.unsubscribe(conn, &service);
    }
    let shown = Shown {
        service: &service,
        clusters_param,
        clusters,
        healthy_only: false,
    };
    let info = door.service_info(conn, &shown).await;
    Reply::ok(KIND, &rid)
        .with_raw("serviceInfo", info)
        .into_payload()
}

/// `ServiceQueryRequest`: the service as it is now, without subscribing.
pub async fn query(door: &GrpcDoor, conn: &Connection, req: QueryRequest) -> Payload {
    const KIND: &str = "QueryServiceResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let clusters_param = text(&req.cluster).unwrap_or("");
    let checked = service_key(&req.target)
        .and_then(|s| cluster_list("cluster", clusters_param).map(|c| (s, c)));
    let (service, clusters) = match checked {
        Ok(v) => v,
        Err(e) => return param_check(KIND, &rid, e),
    };
    let healthy_only = req.healthy_only.or(req.health_only).unwrap_or(false);
    let shown = Shown {
        service: &service,
        clusters_param,
        clusters,
        healthy_only,
    };
    let info = door.service_info(conn, &shown).await;
    Reply::ok(KIND, &rid)
        .with_raw("serviceInfo", info)
        .into_payload()
}

/// `ServiceListRequest`: one page of the bare names of a group's services,
/// sorted (so paging never repeats a name), with the total count.
pub fn service_list(door: &GrpcDoor, req: ServiceListRequest) -> Payload {
    const KIND: &str = "ServiceListResponse";
    let rid = req.target.request_id.clone().unwrap_or_default();
    let namespace = text(&req.target.namespace).unwrap_or(DEFAULT_NAMESPACE);
    let group = text(&req.target.group_name).unwrap_or(DEFAULT_GROUP);
    let page_no = req.page_no.unwrap_or(1).max(1);
    let page_size = req.page_size.unwrap_or(10);
    let checked = checks::check_name("namespace", namespace)
        .and_then(|()| checks::check_name("groupName", group))
        .and_then(|()| match page_size {
            1..=100_000 => Ok(page_size as usize),
            _ => Err(illegal("pageSize", "it should be between 1 and 100000")),
        });
    let page_size = match checked {
        Ok(size) => size,
        Err(e) => return param_check(KIND, &rid, e),
    };
    let names = door.naming.registry().service_names(namespace, group);
    let start = usize::try_from(page_no - 1)
        .ok()
        .and_then(|p| p.checked_mul(page_size))
        .unwrap_or(usize::MAX);
    let page: Vec<&String> = names.iter().skip(start).take(page_size).collect();
    Reply::ok(KIND, &rid)
        .with("count", names.len())
        .with("serviceNames", &page)
        .into_payload()
}
