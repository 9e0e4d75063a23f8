//! What one v2 client is shown of a service — in a subscribe or query
//! answer and in a push: the hosts in its clusters, shaped by the push
//! filter plugins that apply to the service (as UDP pushes and
//! `instance/list` are), wrapped as a `ServiceInfo`.

use super::GrpcDoor;
use super::connection::Connection;
use crate::naming::list;
use crate::naming::service_info::{self, InfoRequest};
use crate::plugins::{FilterOutcome, SubscriberInfo};
use crate::registry::Service;
use crate::registry::model::ServiceKey;

/// Instances shown to v2 clients carry the grouped `serviceName`
/// (`group@@service`), as Nacos 2.x renders them (NACOS-V2.md §5).
const GROUPED: bool = true;

/// What a push filter said for one client.
pub enum Shaped {
    /// Send this `ServiceInfo` JSON.
    Send(String),
    /// The filter asked not to push to this client.
    Skip,
}

/// What a client asked to be shown of a service: the hosts in its
/// clusters (the parameter as given, and the names in it; none: all),
/// healthy ones only or all.
pub struct Shown<'a> {
    /// The service.
    pub service: &'a ServiceKey,
    /// The `clusters` parameter as the client sent it (echoed in `ServiceInfo`).
    pub clusters_param: &'a str,
    /// The cluster names in it.
    pub clusters: Vec<String>,
    /// Only healthy hosts (a query's `healthyOnly`; pushes show all).
    pub healthy_only: bool,
}

impl<'a> Shown<'a> {
    /// The view of a subscription: `clusters_param` as stored, every host.
    pub fn subscribed(service: &'a ServiceKey, clusters_param: &'a str) -> Shown<'a> {
        let clusters = clusters_param
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        Shown {
            service,
            clusters_param,
            clusters,
            healthy_only: false,
        }
    }
}

impl GrpcDoor {
    /// The `ServiceInfo` JSON `conn` is shown: a subscribe or query answer.
    /// A filter's "do not push" leaves an answer unfiltered: the client asked.
    pub async fn service_info(&self, conn: &Connection, shown: &Shown<'_>) -> String {
        let ref_time = self.ref_times.next();
        match self.shaped_info(conn, shown, ref_time).await {
            Some(Shaped::Send(json)) => json,
            Some(Shaped::Skip) | None => self.plain_info(shown, ref_time),
        }
    }

    /// The `ServiceInfo` JSON every client shown this gets when no filter
    /// applies.
    pub fn plain_info(&self, shown: &Shown<'_>, ref_time: i64) -> String {
        let found = self.naming.registry().service(shown.service);
        let view = found
            .as_ref()
            .map(|s| list::hosts_view(s, &shown.clusters, GROUPED));
        service_info::render(
            shown.service,
            view.as_deref(),
            &self.info_request(shown),
            ref_time,
        )
    }

    /// Whether a push filter applies to `service` (else [`Self::shaped_info`]
    /// is always `None` for it).
    pub fn filtered(&self, service: &ServiceKey) -> bool {
        self.plugins.as_ref().is_some_and(|p| p.filters(service))
    }

    /// The filters' answer for `conn`, or `None` when no filter applies
    /// (or the service does not exist, or the filters left it unchanged).
    pub async fn shaped_info(
        &self,
        conn: &Connection,
        shown: &Shown<'_>,
        ref_time: i64,
    ) -> Option<Shaped> {
        let service = shown.service;
        let plugins = self.plugins.as_ref().filter(|p| p.filters(service))?;
        let found: std::sync::Arc<Service> = self.naming.registry().service(service)?;
        let client = conn.client().cloned().unwrap_or_default();
        let subscriber = SubscriberInfo {
            address: format!("{}:{}", client.ip, conn.remote.port()),
            client_agent: &client.version,
            namespace: &service.namespace,
            clusters: shown.clusters.clone(),
            app: &client.app,
        };
        match plugins
            .filter(&subscriber, service, &found.instances())
            .await
        {
            FilterOutcome::Unchanged => None,
            FilterOutcome::Skip => Some(Shaped::Skip),
            FilterOutcome::Send(instances) => {
                let view = list::hosts_view_of(&found, &instances, &shown.clusters, GROUPED);
                Some(Shaped::Send(service_info::render(
                    service,
                    Some(&view),
                    &self.info_request(shown),
                    ref_time,
                )))
            }
        }
    }

    fn info_request<'a>(&self, shown: &Shown<'a>) -> InfoRequest<'a> {
        InfoRequest {
            clusters_param: shown.clusters_param,
            healthy_only: shown.healthy_only,
            cache_millis: self.naming.switches().with(|s| s.default_push_cache_millis),
        }
    }
}
