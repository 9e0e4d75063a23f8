//! Who decides an instance's health. Every path that changes health (a
//! beat, the beat checker, health-policy plugins, the prober, an operator's
//! `PUT health`, a re-registration) asks this first and leaves alone what it
//! does not own. Without it, two deciders fight: a beat heals a persistent
//! instance the prober has just found dead, the prober fails it again, and
//! every flip is pushed to every subscriber.
//!
//! The rules are Nacos 1.4's:
//! - beats heal only ephemeral instances (`ClientBeatProcessor#run` walks
//!   `cluster.allIPs(true)`), and the beat checker judges only those
//!   (`ClientBeatCheckTask` reads `service.allIPs(true)`);
//! - the health checker of a cluster (TCP, HTTP) probes its persistent
//!   instances (`HealthCheckTask`), skipping marked ones;
//! - an operator may set health by hand only where no checker runs: the
//!   cluster's checker is `NONE` (`HealthController#update`, "health check is
//!   still working" otherwise);
//! - a (re-)registration of an existing instance keeps its health: "the
//!   checker has the most precise result" (`Cluster#updateIps`).
//!
//! Nacre adds two owners Nacos 1.4 lacks: a v2 client's connection (its
//! instances are healthy while it is connected), and the operator's mark
//! (`PUT health` marks the instance, and no checker touches it afterwards).

use crate::registry::model::{HealthChecker, Lease};

/// The decider of one instance's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HealthOwner {
    /// A v1 client's beats: a beat heals it, silence is judged by the beat
    /// checker and by the health-policy plugins that apply to its service.
    Beats,
    /// A v2 client's connection: healthy while it lasts.
    Connection,
    /// The prober, with its cluster's checker (TCP or HTTP).
    Prober,
    /// An operator: the instance is marked, or it is persistent in a cluster
    /// whose checker is `NONE`.
    Operator,
}

impl HealthOwner {
    /// The owner of an instance's health. `checker` is its cluster's (only
    /// persistent instances are probed, so it matters only for them).
    pub(crate) fn of(
        ephemeral: bool,
        lease: &Lease,
        marked: bool,
        checker: &HealthChecker,
    ) -> Self {
        if marked {
            return HealthOwner::Operator;
        }
        match (ephemeral, lease, checker) {
            (true, Lease::Beat, _) => HealthOwner::Beats,
            (true, Lease::Connection { .. }, _) => HealthOwner::Connection,
            (false, _, HealthChecker::None) => HealthOwner::Operator,
            (false, _, HealthChecker::Tcp | HealthChecker::Http { .. }) => HealthOwner::Prober,
        }
    }

    /// Whether an operator may set the health of instances in a cluster with
    /// this checker (`HealthController#update`: only where no checker runs).
    pub(crate) fn operator_may_set(checker: &HealthChecker) -> bool {
        *checker == HealthChecker::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_instance_has_one_owner() {
        let tcp = HealthChecker::Tcp;
        assert_eq!(
            HealthOwner::of(true, &Lease::Beat, false, &tcp),
            HealthOwner::Beats
        );
        assert_eq!(
            HealthOwner::of(false, &Lease::Beat, false, &tcp),
            HealthOwner::Prober
        );
        assert_eq!(
            HealthOwner::of(false, &Lease::Beat, false, &HealthChecker::None),
            HealthOwner::Operator
        );
        assert_eq!(
            HealthOwner::of(true, &Lease::Beat, true, &tcp),
            HealthOwner::Operator
        );
        let connection = Lease::Connection {
            node: ([127, 0, 0, 1], 8848).into(),
            incarnation: 1,
            connection: "c1".into(),
        };
        assert_eq!(
            HealthOwner::of(true, &connection, false, &tcp),
            HealthOwner::Connection
        );
        assert!(HealthOwner::operator_may_set(&HealthChecker::None));
        assert!(!HealthOwner::operator_may_set(&tcp));
    }
}
