//! The Recreate strategy (kube's `recreate.go`): every old pod is gone before
//! the new ReplicaSet gets any, so two versions never run side by side.

use super::{Deployment, spec_replicas};
use crate::controllers::Ctl;
use crate::store::Obj;
use std::sync::Arc;

/// Replicas for a freshly created new ReplicaSet: none while anything old is
/// still wanted or still has pods.
pub(super) fn initial_replicas(desired: i64, old_spec: i64, old_pods: usize) -> i64 {
    if old_spec > 0 || old_pods > 0 {
        0
    } else {
        desired
    }
}

impl Ctl {
    /// Scales every old ReplicaSet to 0; once they were already at 0 and
    /// their pods are gone, the new one to `desired`.
    pub(super) fn recreate(&self, dep: &Deployment, nrs: &Obj, olds: &[Arc<Obj>]) {
        let old_active = olds.iter().any(|r| spec_replicas(r) > 0);
        for r in olds {
            self.scale_rs(dep, r, 0);
        }
        let old_pods: usize = olds
            .iter()
            .map(|r| self.owned_pods(&dep.ns, r.uid()).len())
            .sum();
        if !old_active && old_pods == 0 {
            self.scale_rs(dep, nrs, dep.desired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_replica_set_starts_empty_while_old_pods_remain() {
        assert_eq!(initial_replicas(3, 0, 0), 3);
        assert_eq!(initial_replicas(3, 2, 0), 0);
        // scaled to 0 but pods still terminating
        assert_eq!(initial_replicas(3, 0, 1), 0);
    }
}
