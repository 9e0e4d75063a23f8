//! `/nacos/v1/ns/instance*` and `/nacos/v1/ns/health/instance`.

use axum::Json;
use axum::extract::State;
use axum::http::{Extensions, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, illegal};
use std::net::{IpAddr, SocketAddr};

use crate::clock::now_millis;
use crate::naming::client_agent::ClientAgent;
use crate::naming::list::{self, ListRequest};
use crate::naming::{BeatInfo, InstancePatch};
use crate::plugins::{FilterOutcome, SubscriberInfo};
use crate::push::PushSubscriber;
use crate::registry::feed::{Cause, Door};
use crate::registry::model::{Instance, InstanceId};

/// The change feed's cause of a client's own request on this door.
const FROM_CLIENT: Cause = Cause::Client { door: Door::Http };

/// Who makes an operator's edit, for the change feed: the signed-in user
/// the auth guard put in the request's extensions; `None` ("anonymous")
/// while auth is off.
fn editor(extensions: &Extensions) -> Option<String> {
    extensions
        .get::<crate::auth::Caller>()
        .and_then(|caller| caller.username.clone())
}

/// With `linearizable=true` (a Nacre extension), a read first makes sure this
/// node has applied every persistent write committed before the request
/// (Raft's ReadIndex through the leader). Without it, reads are local.
async fn leader_checked(state: &ApiState, params: &Params) -> Result<(), ApiError> {
    if params.flag("linearizable")? == Some(true) {
        state.naming.linearize().await?;
    }
    Ok(())
}

/// Reads the instance a register or update describes.
fn instance_from(params: &Params, state: &ApiState) -> Result<Instance, ApiError> {
    let enabled = match params.flag("enabled")? {
        Some(v) => Some(v),
        None => params.flag("enable")?,
    };
    let default_ephemeral = state
        .naming
        .switches()
        .with(|s| s.default_instance_ephemeral);
    Ok(Instance {
        id: params.instance_id()?,
        weight: params.weight()?.unwrap_or(1.0),
        healthy: params.flag("healthy")?.unwrap_or(true),
        enabled: enabled.unwrap_or(true),
        ephemeral: params.flag("ephemeral")?.unwrap_or(default_ephemeral),
        marked: false,
        metadata: params.metadata("metadata")?.unwrap_or_default(),
        last_beat: 0,
        version: Default::default(),
        lease: Default::default(),
    })
}

/// `POST instance`: register.
pub async fn register(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let service = params.service_key()?;
    let instance = instance_from(&params, &state)?;
    state
        .naming
        .register_instance(service, instance, FROM_CLIENT)
        .await?;
    Ok("ok")
}

/// `DELETE instance`: deregister.
pub async fn deregister(
    State(state): State<ApiState>,
    params: Params,
) -> Result<&'static str, ApiError> {
    let service = params.service_key()?;
    let id = params.instance_id()?;
    let default_ephemeral = state
        .naming
        .switches()
        .with(|s| s.default_instance_ephemeral);
    let ephemeral = params.flag("ephemeral")?.unwrap_or(default_ephemeral);
    state
        .naming
        .deregister_instance(service, id, ephemeral, FROM_CLIENT)
        .await?;
    Ok("ok")
}

/// `PUT instance`: replace an instance's fields. Nacos 1.4 keys this on the
/// client (`InstanceController#update`): a Java client from 1.0.0 updates,
/// and gets a 400 for an instance that does not exist; every other client
/// (curl, Python, Go, ...) registers, so its update after an expiry brings
/// the instance back.
pub async fn update(
    State(state): State<ApiState>,
    extensions: Extensions,
    params: Params,
) -> Result<&'static str, ApiError> {
    let service = params.service_key()?;
    let instance = instance_from(&params, &state)?;
    if ClientAgent::parse(&params.user_agent).is_java_since_1_0() {
        let by = editor(&extensions);
        state.naming.update_instance(service, instance, by).await?;
    } else {
        state
            .naming
            .register_instance(service, instance, FROM_CLIENT)
            .await?;
    }
    Ok("ok")
}

/// `PATCH instance`: change only the given fields.
pub async fn patch(
    State(state): State<ApiState>,
    extensions: Extensions,
    params: Params,
) -> Result<&'static str, ApiError> {
    let service = params.service_key()?;
    let id = params.instance_id()?;
    let enabled = match params.flag("enabled")? {
        Some(v) => Some(v),
        None => params.flag("enable")?,
    };
    let patch = InstancePatch {
        weight: params.weight()?,
        enabled,
        metadata: params.metadata("metadata")?,
    };
    let by = editor(&extensions);
    state.naming.patch_instance(service, id, patch, by).await?;
    Ok("ok")
}

/// `GET instance`: one instance's detail.
pub async fn detail(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let service = params.service_key()?;
    let id = params.instance_id()?;
    leader_checked(&state, &params).await?;
    let instance = state.naming.instance(&service, &id)?;
    Ok(Json(json!({
        "service": service.grouped_name(),
        "ip": id.ip,
        "port": id.port,
        "clusterName": id.cluster,
        "weight": instance.weight,
        "healthy": instance.healthy,
        "enabled": instance.enabled,
        "ephemeral": instance.ephemeral,
        "marked": instance.marked,
        "instanceId": id.nacos_instance_id(&service),
        "metadata": instance.metadata,
    }))
    .into_response())
}

/// `GET instance/list`: the instances of a service, as clients cache them.
pub async fn list(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let service = params.service_key()?;
    let clusters_param = params.or("clusters", "");
    let clusters: Vec<String> = clusters_param
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect();
    for cluster in &clusters {
        super::params::check_cluster("clusters", cluster)?;
    }
    let healthy_only = params.flag("healthyOnly")?.unwrap_or(false);
    leader_checked(&state, &params).await?;
    let agent = ClientAgent::parse(&params.user_agent);
    let subscribed = subscribe(&state, &params, &service, &agent, clusters_param)?;
    let cache_millis = state.naming.switches().with(|s| {
        if subscribed {
            s.default_push_cache_millis
        } else {
            s.default_cache_millis
        }
    });
    let request = ListRequest {
        clusters: &clusters,
        clusters_param,
        healthy_only,
        cache_millis,
        grouped_names: agent.is_java_since_1_0(),
        env: params.or("env", ""),
    };
    let body = match filtered_list(&state, &params, &service, &request).await {
        Some(body) => body,
        None => state.naming.list(&service, &request),
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The reply shaped by the push filters that apply to `service`, if any apply.
/// A filter that answers "skip" leaves a list reply unfiltered: the client asked.
/// Waits for the filters at most `plugins::runtime::limits::REQUEST_PATH_WAIT`.
async fn filtered_list(
    state: &ApiState,
    params: &Params,
    service: &crate::registry::model::ServiceKey,
    request: &ListRequest<'_>,
) -> Option<String> {
    let plugins = state.plugins.as_ref().filter(|p| p.filters(service))?;
    let found = state.naming.registry().service(service)?;
    let instances = found.instances();
    let ip = params
        .get("clientIP")
        .map(str::to_string)
        .or(params.remote.map(|r| r.ip().to_string()));
    let subscriber = SubscriberInfo {
        address: format!("{}:{}", ip.unwrap_or_default(), params.or("udpPort", "0")),
        client_agent: &params.user_agent,
        namespace: &service.namespace,
        clusters: request.clusters.to_vec(),
        app: params.or("app", ""),
    };
    match plugins.filter(&subscriber, service, &instances).await {
        FilterOutcome::Send(list) => {
            Some(list::render_instances(&found, &list, request, now_millis()))
        }
        FilterOutcome::Unchanged | FilterOutcome::Skip => None,
    }
}

/// Makes the caller of `instance/list` a push subscriber when it gave a
/// `udpPort` and its client can take pushes. The push goes to `clientIP` if
/// that is an IP address, else to the address the request came from.
fn subscribe(
    state: &ApiState,
    params: &Params,
    service: &crate::registry::model::ServiceKey,
    agent: &ClientAgent,
    clusters: &str,
) -> Result<bool, ApiError> {
    let udp_port = params.port_or_zero("udpPort")?;
    // An IPv6 `clientIP` may come in brackets, as Java's `InetSocketAddress` takes it.
    let client_ip = params
        .get("clientIP")
        .map(|ip| {
            super::params::check_ip("clientIP", ip)?;
            let bare = ip
                .strip_prefix('[')
                .and_then(|ip| ip.strip_suffix(']'))
                .unwrap_or(ip);
            Ok::<_, ApiError>(bare.parse::<IpAddr>().ok())
        })
        .transpose()?
        .flatten();
    if udp_port == 0 {
        return Ok(false);
    }
    let Some(ip) = client_ip.or(params.remote.map(|r| r.ip())) else {
        return Ok(false);
    };
    Ok(state.push.subscribe(
        service,
        PushSubscriber {
            addr: SocketAddr::new(ip, udp_port),
            agent: agent.clone(),
            user_agent: params.user_agent.clone(),
            clusters: clusters.to_string(),
            app: params.or("app", "").to_string(),
            last_refresh: std::time::Instant::now(),
            figures: Default::default(),
        },
    ))
}

/// `GET instance/statuses?key=namespace##group@@service`: `ip:port_healthy` per instance.
pub async fn statuses(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let key = params.required("key")?;
    let (namespace, service_name) = key.split_once("##").unwrap_or(("public", key));
    let service = Params::from_pairs(&[("namespaceId", namespace), ("serviceName", service_name)])
        .service_key()
        .map_err(|_| illegal("key", "expected namespaceId##groupName@@serviceName"))?;
    let found = state.naming.registry().service(&service).ok_or_else(|| {
        ApiError::NotFound(format!("service: {} not found.", service.grouped_name()))
    })?;
    let ips: Vec<String> = found
        .instances()
        .iter()
        .map(|i| format!("{}:{}_{}", i.id.ip, i.id.port, i.healthy))
        .collect();
    Ok(Json(json!({ "ips": ips })).into_response())
}

/// `PUT instance/beat`: a client's heartbeat.
pub async fn beat(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let body: Option<BeatInfo> = params
        .get("beat")
        .map(|raw| {
            serde_json::from_str(raw)
                .map_err(|e| illegal("beat", &format!("malformed beat JSON: {e}")))
        })
        .transpose()?;
    let mut cluster = params.instance_cluster()?;
    let (ip, port) = match &body {
        Some(beat) => {
            if !beat.cluster.trim().is_empty() {
                super::params::check_cluster("beat.cluster", beat.cluster.trim())?;
                cluster = beat.cluster.trim().to_string();
            }
            if beat.ip.trim().is_empty() {
                return Err(ApiError::BadRequest(
                    "Param 'beat' is illegal: ip is required".into(),
                ));
            }
            super::params::check_ip("beat.ip", beat.ip.trim())?;
            if beat.port == 0 {
                return Err(ApiError::BadRequest(
                    "Param 'beat' is illegal: port is required".into(),
                ));
            }
            if let Some(weight) = beat.weight {
                super::params::parse_weight(&weight.to_string())?;
            }
            (beat.ip.trim().to_string(), beat.port)
        }
        None => {
            let ip = params.required("ip")?;
            super::params::check_ip("ip", ip)?;
            let port = params
                .port("port")?
                .ok_or_else(|| ApiError::BadRequest("Param 'port' is required.".into()))?;
            (ip.to_string(), port)
        }
    };
    let service = params.service_key()?;
    let id = InstanceId::new(cluster, ip, port);
    let reply = state.naming.beat(service, id, body).await?;
    Ok(Json(reply).into_response())
}

/// `PUT health` and `PUT health/instance`: an operator sets an instance's
/// health by hand, where no checker owns it (`HealthController#update`: the
/// cluster's checker is `NONE`). `valid` is the old name of `healthy`.
pub async fn mark_health(
    State(state): State<ApiState>,
    extensions: Extensions,
    params: Params,
) -> Result<&'static str, ApiError> {
    let service = params.service_key()?;
    let id = params.instance_id()?;
    let healthy = match params.flag("healthy")? {
        Some(healthy) => healthy,
        None => params
            .flag("valid")?
            .ok_or_else(|| ApiError::BadRequest("Param 'healthy' is required.".into()))?,
    };
    let by = editor(&extensions);
    state.naming.mark_health(service, id, healthy, by).await?;
    Ok("ok")
}
