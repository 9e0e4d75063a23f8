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

impl GrpcDoor {
    /// The `ServiceInfo` JSON of `service` for `conn`: a subscribe or query
    /// answer. A filter's "do not push" leaves an answer unfiltered: the
    /// client asked.
    pub async fn service_info(
        &self,
        conn: &Connection,
        service: &ServiceKey,
        clusters: &[String],
        clusters_param: &str,
        healthy_only: bool,
    ) -> String {
        let ref_time = self.ref_times.next();
        match self
            .shaped_info(
                conn,
                service,
                clusters,
                clusters_param,
                healthy_only,
                ref_time,
            )
            .await
        {
            Some(Shaped::Send(json)) => json,
            Some(Shaped::Skip) | None => {
                self.plain_info(service, clusters, clusters_param, healthy_only, ref_time)
            }
        }
    }

    /// The `ServiceInfo` JSON every client with these clusters gets when no
    /// filter applies.
    pub fn plain_info(
        &self,
        service: &ServiceKey,
        clusters: &[String],
        clusters_param: &str,
        healthy_only: bool,
        ref_time: i64,
    ) -> String {
        let found = self.naming.registry().service(service);
        let view = found
            .as_ref()
            .map(|s| list::hosts_view(s, clusters, GROUPED));
        service_info::render(
            service,
            view.as_deref(),
            &self.info_request(clusters_param, healthy_only),
            ref_time,
        )
    }

    /// The filters' answer for `conn`, or `None` when no filter applies
    /// (or the service does not exist, or the filters left it unchanged).
    pub async fn shaped_info(
        &self,
        conn: &Connection,
        service: &ServiceKey,
        clusters: &[String],
        clusters_param: &str,
        healthy_only: bool,
        ref_time: i64,
    ) -> Option<Shaped> {
        let plugins = self.plugins.as_ref().filter(|p| p.filters(service))?;
        let found: std::sync::Arc<Service> = self.naming.registry().service(service)?;
        let client = conn.client().cloned().unwrap_or_default();
        let subscriber = SubscriberInfo {
            address: format!("{}:{}", client.ip, conn.remote.port()),
            client_agent: &client.version,
            namespace: &service.namespace,
            clusters: clusters.to_vec(),
            app: &client.app,
        };
        match plugins
            .filter(&subscriber, service, &found.instances())
            .await
        {
            FilterOutcome::Unchanged => None,
            FilterOutcome::Skip => Some(Shaped::Skip),
            FilterOutcome::Send(instances) => {
                let view = list::hosts_view_of(&found, &instances, clusters, GROUPED);
                Some(Shaped::Send(service_info::render(
                    service,
                    Some(&view),
                    &self.info_request(clusters_param, healthy_only),
                    ref_time,
                )))
            }
        }
    }

    fn info_request<'a>(&self, clusters_param: &'a str, healthy_only: bool) -> InfoRequest<'a> {
        InfoRequest {
            clusters_param,
            healthy_only,
            cache_millis: self.naming.switches().with(|s| s.default_push_cache_millis),
        }
    }
}
