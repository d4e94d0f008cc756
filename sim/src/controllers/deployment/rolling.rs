//! Rolling updates (kube's `rolling.go`): the new ReplicaSet grows while the
//! total stays within `desired + maxSurge`, old ones shrink while availability
//! stays at `desired - maxUnavailable`. The arithmetic is pure; the `Ctl`
//! part only reads pod counts and writes the results.

use super::{Deployment, spec_replicas};
use crate::controllers::Ctl;
use crate::store::Obj;
use crate::util::int_or_percent;
use serde_json::Value;
use std::sync::Arc;

/// A ReplicaSet's wanted replicas and its Ready pods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Replicas {
    pub spec: i64,
    pub ready: i64,
}

/// maxSurge and maxUnavailable as pod counts (kube's ResolveFenceposts):
/// surge rounds up, unavailable down, and when both are 0 a rollout could
/// never start, so unavailable becomes 1.
pub(super) fn fenceposts(
    surge: Option<&Value>,
    unavailable: Option<&Value>,
    desired: i64,
) -> (i64, i64) {
    let s = int_or_percent(surge, desired, true, 1);
    let mut u = int_or_percent(unavailable, desired, false, 0);
    if s == 0 && u == 0 {
        u = 1;
    }
    (s, u.min(desired))
}

/// Replicas for a freshly created new ReplicaSet: all of them when nothing
/// old is wanted, else what the surge leaves room for.
pub(super) fn initial_replicas(desired: i64, max_surge: i64, old_spec: i64) -> i64 {
    if old_spec == 0 {
        desired
    } else {
        (desired + max_surge - old_spec).clamp(0, desired)
    }
}

/// The new ReplicaSet's next size (kube's NewRSNewReplicas): back to
/// `desired` if above it, else grown into the room left under the surge cap.
pub(super) fn new_rs_replicas(new_spec: i64, all_spec: i64, desired: i64, max_surge: i64) -> i64 {
    let max_total = desired + max_surge;
    if new_spec > desired {
        desired
    } else if all_spec < max_total {
        (new_spec + max_total - all_spec).min(desired)
    } else {
        new_spec
    }
}

/// The old ReplicaSets' next sizes, oldest first (kube's
/// reconcileOldReplicaSets): unhealthy replicas go first since removing them
/// costs no availability, then healthy ones while availability stays at
/// `desired - max_unavailable`. `new.spec` is the new ReplicaSet's size after
/// this sync scaled it.
pub(super) fn old_rs_replicas(
    olds: &[Replicas],
    new: Replicas,
    desired: i64,
    max_unavailable: i64,
) -> Vec<i64> {
    let mut specs: Vec<i64> = olds.iter().map(|r| r.spec).collect();
    let min_available = desired - max_unavailable;
    let new_unavailable = (new.spec - new.ready).max(0);
    let all_spec = new.spec + specs.iter().sum::<i64>();
    let max_scaled_down = all_spec - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return specs;
    }
    let cleaned = remove_unhealthy(olds, &mut specs, max_scaled_down);
    let available = olds.iter().map(|r| r.ready).sum::<i64>() + new.ready;
    if available > min_available {
        let budget = (available - min_available).min(max_scaled_down - cleaned);
        scale_down_oldest(&mut specs, budget);
    }
    specs
}

/// Removes up to `max` not-ready replicas, oldest ReplicaSet first; returns
/// how many.
fn remove_unhealthy(olds: &[Replicas], specs: &mut [i64], max: i64) -> i64 {
    let mut total = 0;
    for (r, spec) in olds.iter().zip(specs.iter_mut()) {
        if total >= max {
            break;
        }
        let unhealthy = *spec - r.ready;
        if *spec == 0 || unhealthy <= 0 {
            continue;
        }
        let n = unhealthy.min(max - total);
        *spec -= n;
        total += n;
    }
    total
}

/// Takes `budget` replicas away, oldest ReplicaSet first.
fn scale_down_oldest(specs: &mut [i64], mut budget: i64) {
    for s in specs.iter_mut() {
        if budget <= 0 {
            break;
        }
        let n = (*s).min(budget);
        *s -= n;
        budget -= n;
    }
}

impl Ctl {
    /// One rolling step: grow the new ReplicaSet, then shrink old ones.
    pub(super) fn rolling(&self, dep: &Deployment, nrs: &Obj, olds: &[Arc<Obj>], all_spec: i64) {
        let target = new_rs_replicas(spec_replicas(nrs), all_spec, dep.desired, dep.max_surge);
        self.scale_rs(dep, nrs, target);
        let new = Replicas {
            spec: target,
            ready: self.ready_pods(&dep.ns, nrs.uid()),
        };
        let current: Vec<Replicas> = olds
            .iter()
            .map(|r| Replicas {
                spec: spec_replicas(r),
                ready: self.ready_pods(&dep.ns, r.uid()),
            })
            .collect();
        let next = old_rs_replicas(&current, new, dep.desired, dep.max_unavailable);
        for (r, n) in olds.iter().zip(next) {
            self.scale_rs(dep, r, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(spec: i64, ready: i64) -> Replicas {
        Replicas { spec, ready }
    }

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        assert_eq!(fenceposts(None, None, 3), (1, 0));
        let (s, u) = (json!("25%"), json!("25%"));
        assert_eq!(fenceposts(Some(&s), Some(&u), 10), (3, 2));
        assert_eq!(fenceposts(Some(&json!(2)), Some(&json!(5)), 3), (2, 3));
    }

    #[test]
    fn fenceposts_never_both_zero() {
        let zero = json!(0);
        assert_eq!(fenceposts(Some(&zero), Some(&zero), 3), (0, 1));
        // 10% of 3 rounds down to 0: still one pod may be unavailable.
        assert_eq!(fenceposts(Some(&zero), Some(&json!("10%")), 3), (0, 1));
    }

    #[test]
    fn initial_size_fills_the_surge_room() {
        assert_eq!(initial_replicas(3, 1, 0), 3);
        assert_eq!(initial_replicas(3, 1, 3), 1);
        assert_eq!(initial_replicas(3, 0, 3), 0);
        assert_eq!(initial_replicas(3, 5, 1), 3);
    }

    #[test]
    fn new_rs_grows_within_the_surge_cap() {
        assert_eq!(new_rs_replicas(0, 3, 3, 1), 1);
        assert_eq!(new_rs_replicas(1, 4, 3, 1), 1);
        assert_eq!(new_rs_replicas(2, 3, 3, 1), 3);
        assert_eq!(new_rs_replicas(5, 5, 3, 1), 3);
    }

    #[test]
    fn old_rs_waits_for_new_pods_when_nothing_may_be_unavailable() {
        // maxUnavailable 0: the old ReplicaSet keeps 3 until a new pod is Ready.
        assert_eq!(old_rs_replicas(&[rs(3, 3)], rs(1, 0), 3, 0), vec![3]);
        assert_eq!(old_rs_replicas(&[rs(3, 3)], rs(1, 1), 3, 0), vec![2]);
    }

    #[test]
    fn old_rs_loses_unhealthy_replicas_first() {
        // The oldest set's 2 unready replicas cost no availability; only the
        // budget of 1 may go, and it is taken from them.
        let olds = [rs(2, 0), rs(2, 2)];
        assert_eq!(old_rs_replicas(&olds, rs(1, 0), 4, 1), vec![1, 2]);
    }

    #[test]
    fn old_rs_shrinks_oldest_first_down_to_min_available() {
        let olds = [rs(2, 2), rs(2, 2)];
        // desired 4, maxUnavailable 2: two of the four ready pods may go.
        assert_eq!(old_rs_replicas(&olds, rs(0, 0), 4, 2), vec![0, 2]);
    }
}
