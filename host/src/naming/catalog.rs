//! Listings over many services and instances: `service/list`, the console's
//! `catalog/*`, `service/names`. Read-only queries on the registry, with one
//! order everywhere (the grouped name, as Nacos 1.4's sorted service map
//! yields it) and real paging, so pages neither repeat nor skip between calls
//! (Nacos 2.x lost the order, alibaba/nacos#9503, #4066).
//!
//! Searches are literal, case-insensitive substrings. Nacos turns the
//! console's search fields into a Java regex (`.*group.*@@.*name.*`), so a
//! `.` or `(` typed into the box changes the meaning or fails; Nacre does not
//! copy that.

use std::sync::Arc;

use super::ServiceManager;
use crate::registry::Service;
use crate::registry::model::{Instance, META_BEAT_INTERVAL, ServiceKey, metadata_millis};

/// What a listing shows of one service (`catalog/services` rows).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServiceSummary {
    pub(crate) key: ServiceKey,
    /// Clusters defined in the service, with or without instances.
    pub(crate) cluster_count: usize,
    /// Every instance, enabled or not, healthy or not.
    pub(crate) instance_count: usize,
    pub(crate) healthy_count: usize,
    pub(crate) protect_threshold: f64,
}

impl ServiceSummary {
    /// The summary of `service` as it is now.
    pub(crate) fn of(service: &Service) -> ServiceSummary {
        let state = service.read_state();
        ServiceSummary {
            key: service.key().clone(),
            cluster_count: state.meta.clusters.len(),
            instance_count: state.instances.len(),
            healthy_count: state.instances.values().filter(|s| s.healthy).count(),
            protect_threshold: state.meta.protect_threshold,
        }
    }

    /// Whether the protect threshold is reached (`Service#triggerFlag`:
    /// healthy / all ≤ threshold; a service without instances never is, as
    /// 0/0 is NaN there).
    pub(crate) fn protection_triggered(&self) -> bool {
        self.instance_count > 0
            && (self.healthy_count as f64 / self.instance_count as f64) <= self.protect_threshold
    }
}

/// Which services a listing keeps. Empty strings match everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceFilter<'a> {
    /// Part of the service's name (case-insensitive).
    pub(crate) name: &'a str,
    /// Part of the group's name (case-insensitive).
    pub(crate) group: &'a str,
    /// Only services with at least one instance (`hasIpCount`).
    pub(crate) with_instances: bool,
    /// Only services with an instance at this `ip` or `ip:port`
    /// (`instance`, Nacos 1.4's catalog only).
    pub(crate) holding: &'a str,
}

impl ServiceFilter<'_> {
    fn keeps(&self, service: &Service) -> bool {
        let key = service.key();
        if !contains_ignoring_case(&key.name, self.name)
            || !contains_ignoring_case(&key.group, self.group)
        {
            return false;
        }
        if !self.with_instances && self.holding.is_empty() {
            return true;
        }
        let state = service.read_state();
        if self.with_instances && state.instances.is_empty() {
            return false;
        }
        self.holding.is_empty()
            || state
                .instances
                .keys()
                .any(|id| id.ip == self.holding || format!("{}:{}", id.ip, id.port) == self.holding)
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    needle.is_empty() || haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// A metadata condition of a label selector (`service/list?selector=`):
/// `INSTANCE.metadata.key = 'value'` keeps services with an instance whose
/// metadata has it, `SERVICE.metadata.key = 'value'` those whose own
/// metadata has it (`ServiceController#list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetadataMatch {
    Instance { key: String, value: String },
    Service { key: String, value: String },
}

impl MetadataMatch {
    fn keeps(&self, service: &Service) -> bool {
        let state = service.read_state();
        match self {
            MetadataMatch::Service { key, value } => state.meta.metadata.get(key) == Some(value),
            MetadataMatch::Instance { key, value } => state
                .instances
                .values()
                .any(|slot| slot.metadata.get(key) == Some(value)),
        }
    }
}

impl ServiceManager {
    /// The services clients see in `namespace`, ordered by grouped name.
    pub(crate) fn services_in(&self, namespace: &str) -> Vec<Arc<Service>> {
        let mut services: Vec<(String, Arc<Service>)> = self
            .registry
            .services()
            .into_iter()
            .filter(|s| s.key().namespace == namespace && s.is_listed())
            .map(|s| (s.key().grouped_name(), s))
            .collect();
        services.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        services.into_iter().map(|(_, s)| s).collect()
    }

    /// The services of `namespace` that `filter` keeps, ordered by grouped name.
    pub(crate) fn find_services(
        &self,
        namespace: &str,
        filter: &ServiceFilter<'_>,
    ) -> Vec<Arc<Service>> {
        self.services_in(namespace)
            .into_iter()
            .filter(|s| filter.keeps(s))
            .collect()
    }

    /// Grouped names of the services of `namespace` in `group` (every group
    /// for `None`), kept by `selector` if given, ordered by grouped name.
    pub(crate) fn service_keys(
        &self,
        namespace: &str,
        group: Option<&str>,
        selector: Option<&MetadataMatch>,
    ) -> Vec<ServiceKey> {
        self.services_in(namespace)
            .into_iter()
            .filter(|s| group.is_none_or(|g| s.key().group == g))
            .filter(|s| selector.is_none_or(|m| m.keeps(s)))
            .map(|s| s.key().clone())
            .collect()
    }

    /// The instances of one cluster of a service, every one of them (disabled
    /// and unhealthy too, no protect threshold: what an operator needs to
    /// see), ordered by address. `None` when the service or the cluster is
    /// not known (a cluster is known once defined or used, even if empty now).
    pub(crate) fn cluster_instances(
        &self,
        service: &ServiceKey,
        cluster: &str,
    ) -> Option<Vec<Instance>> {
        let found = self.registry.service(service)?;
        if !found.read_state().meta.clusters.contains_key(cluster) {
            return None;
        }
        Some(
            found
                .instances()
                .into_iter()
                .filter(|i| i.id.cluster == cluster)
                .collect(),
        )
    }
}

/// The beat timings that apply to one instance, in ms: its own
/// (`preserved.*` metadata) or the node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BeatTimings {
    /// How often its client should beat (`preserved.heart.beat.interval`,
    /// else the `clientBeatInterval` switch).
    pub(crate) interval: u64,
    /// Unhealthy after this long without a beat.
    pub(crate) unhealthy_after: u64,
    /// Deleted after this long without a beat.
    pub(crate) delete_after: u64,
}

impl ServiceManager {
    /// The beat timings that apply to `instance` on this node.
    pub(crate) fn beat_timings(&self, instance: &Instance) -> BeatTimings {
        let timeouts = self.beat_timeouts.for_instance(&instance.metadata);
        BeatTimings {
            interval: metadata_millis(&instance.metadata, META_BEAT_INTERVAL)
                .unwrap_or_else(|| self.switches.with(|s| s.client_beat_interval)),
            unhealthy_after: timeouts.unhealthy_after_ms,
            delete_after: timeouts.delete_after_ms,
        }
    }
}

/// One page of `items`: page `page_no` (from 1) of `page_size`; empty past the end.
pub(crate) fn page<T>(items: &[T], page_no: usize, page_size: usize) -> &[T] {
    let start = page_no
        .saturating_sub(1)
        .saturating_mul(page_size)
        .min(items.len());
    let end = start.saturating_add(page_size).min(items.len());
    &items[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_neither_repeat_nor_skip() {
        let items: Vec<u32> = (1..=25).collect();
        assert_eq!(page(&items, 1, 10), &items[..10]);
        assert_eq!(page(&items, 3, 10), &items[20..]);
        assert!(page(&items, 4, 10).is_empty());
        assert!(page(&items, usize::MAX, usize::MAX).is_empty());
        assert_eq!(page(&items, 0, 10), &items[..10]);
    }

    #[test]
    fn searches_are_literal_and_ignore_case() {
        assert!(contains_ignoring_case("Orders-API", "orders"));
        assert!(contains_ignoring_case("anything", ""));
        assert!(!contains_ignoring_case("orders", "ord.rs"));
    }
}
