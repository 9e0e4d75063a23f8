//! What a Nacos 2.x client sees of a service: the `ServiceInfo` JSON of query
//! and subscribe answers and of pushes (NACOS-V2.md §5).
//!
//! The hosts are the same rendering `instance/list` uses ([`super::list`]),
//! cached per revision, so a push to a thousand subscribers renders the list
//! once. What differs from v1 is the wrapper, and it matters to clients:
//! `name` is the bare service name (the Python client builds its cache key
//! as `groupName@@name`; a grouped name silently breaks every subscription),
//! no string or list is ever `null` (the Python client validates with
//! pydantic and rejects the whole answer), and `lastRefTime` grows with each
//! view the node renders (the Python client drops a push that is not newer
//! than what it holds).

use std::sync::atomic::{AtomicI64, Ordering};

use super::list::{HostsView, push_json_str};
use crate::clock::now_millis;
use crate::registry::model::ServiceKey;

/// What one v2 caller asked for.
pub struct InfoRequest<'a> {
    /// The `clusters` (or `cluster`) parameter as given, echoed back.
    pub clusters_param: &'a str,
    /// Only healthy instances (`ServiceQueryRequest.healthyOnly`).
    pub healthy_only: bool,
    /// `cacheMillis`: how long the client may trust the answer.
    pub cache_millis: u64,
}

/// Hands out `lastRefTime`s: the wall clock in ms, but always above the last
/// one handed out, so two views rendered in one millisecond still differ.
#[derive(Default)]
pub struct RefTimes(AtomicI64);

impl RefTimes {
    /// The next `lastRefTime`: now in ms, or one past the last one if that is later.
    pub fn next(&self) -> i64 {
        let now = now_millis();
        let previous = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }
}

/// Renders a `ServiceInfo` object. `view` is `None` for a service the node
/// does not know: an empty, valid answer, as Nacos gives.
pub fn render(
    key: &ServiceKey,
    view: Option<&HostsView>,
    request: &InfoRequest<'_>,
    last_ref_time: i64,
) -> String {
    let (hosts, checksum, protected) = match view {
        Some(v) if request.healthy_only => (
            v.healthy_hosts.as_str(),
            v.checksum.as_str(),
            v.reach_protection_threshold,
        ),
        Some(v) => (
            v.all_hosts.as_str(),
            v.checksum.as_str(),
            v.reach_protection_threshold,
        ),
        None => ("[]", "", false),
    };
    format!(
        "{{\"name\":{},\"groupName\":{},\"clusters\":{},\"cacheMillis\":{},\"hosts\":{hosts},\
         \"lastRefTime\":{last_ref_time},\"checksum\":{},\"allIps\":false,\
         \"reachProtectionThreshold\":{protected},\"valid\":true}}",
        json_str(&key.name),
        json_str(&key.group),
        json_str(request.clusters_param),
        request.cache_millis,
        json_str(checksum),
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_times_grow_even_within_one_millisecond() {
        let times = RefTimes::default();
        let a = times.next();
        let b = times.next();
        let c = times.next();
        assert!(a < b && b < c, "{a} {b} {c}");
    }

    #[test]
    fn unknown_service_renders_bare_name_and_no_nulls() -> Result<(), serde_json::Error> {
        let key = ServiceKey::new("public", "g", "orders");
        let request = InfoRequest {
            clusters_param: "",
            healthy_only: false,
            cache_millis: 10_000,
        };
        let json: serde_json::Value = serde_json::from_str(&render(&key, None, &request, 7))?;
        assert_eq!(json["name"], "orders");
        assert_eq!(json["groupName"], "g");
        assert_eq!(json["hosts"], serde_json::json!([]));
        assert_eq!(json["lastRefTime"], 7);
        assert!(
            json.as_object()
                .is_some_and(|o| o.values().all(|v| !v.is_null()))
        );
        Ok(())
    }
}
