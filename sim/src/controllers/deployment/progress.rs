//! Deployment status and its conditions (kube's `progress.go` and the status
//! half of `sync.go`): counts from the ReplicaSets' pods, `Available` from
//! maxUnavailable, and `Progressing` with its deadline — a rollout that makes
//! no progress for `progressDeadlineSeconds` is marked as timed out, which is
//! what `kubectl rollout status` and upgrade tools wait on.

use super::{Deployment, REVISION, spec_replicas};
use crate::admission;
use crate::controllers::{Ctl, DEPLOY, set_condition};
use crate::store::Obj;
use crate::util::{annotation, ensure_map, get_i64, get_str, now_unix, parse_rfc3339};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Pod counts over all of a Deployment's ReplicaSets.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Counts {
    pub replicas: i64,
    pub updated: i64,
    pub ready: i64,
    /// Ready counts as available: the simulator has no minReadySeconds wait.
    pub available: i64,
    /// Sum of the ReplicaSets' `spec.replicas`.
    pub spec: i64,
}

/// Where the rollout stands this sync, most decisive first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Paused,
    Complete,
    /// The new ReplicaSet was created in this sync.
    Created,
    /// Counts moved towards the goal since the last recorded status.
    Progressed,
    /// Nothing moved: the progress deadline may run out.
    Idle,
}

/// A condition to set (see [`set_condition`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cond {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// Refresh lastUpdateTime even when nothing else changes: progress was made.
    pub touch: bool,
}

/// What to do about the Progressing condition.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Set(Cond),
    /// Leave it; look again at this Unix time, when the deadline passes.
    WakeAt(i64),
    Keep,
}

fn cond(status: &'static str, reason: &'static str, message: String, touch: bool) -> Cond {
    Cond {
        status,
        reason,
        message,
        touch,
    }
}

/// The Progressing condition's next state. `prog` is the current condition,
/// `deadline` is progressDeadlineSeconds, `rs` the new ReplicaSet's name.
pub(super) fn progressing(
    phase: Phase,
    prog: Option<&Value>,
    deadline: i64,
    now: i64,
    rs: &str,
) -> Step {
    let updated = || {
        cond(
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs}\" is progressing."),
            true,
        )
    };
    match phase {
        Phase::Paused => Step::Set(cond(
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
            false,
        )),
        Phase::Complete => Step::Set(cond(
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs}\" has successfully progressed."),
            false,
        )),
        Phase::Created => Step::Set(cond(
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{rs}\""),
            true,
        )),
        Phase::Progressed => Step::Set(updated()),
        Phase::Idle => match prog {
            None => Step::Set(updated()),
            Some(p) => idle(p, deadline, now, rs),
        },
    }
}

/// No progress this sync: the deadline counts from the condition's last
/// update. A completed or already timed-out rollout has no deadline.
fn idle(p: &Value, deadline: i64, now: i64, rs: &str) -> Step {
    if p["reason"] == "ProgressDeadlineExceeded" || p["reason"] == "NewReplicaSetAvailable" {
        return Step::Keep;
    }
    let last = p["lastUpdateTime"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or(now);
    if now >= last + deadline {
        Step::Set(cond(
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs}\" has timed out progressing."),
            false,
        ))
    } else {
        Step::WakeAt(last + deadline)
    }
}

/// Whether the counts moved towards the goal since `old` (the recorded status).
pub(super) fn made_progress(old: &Value, generation: i64, now: &Counts) -> bool {
    let was = |k: &str| old.get(k).and_then(Value::as_i64).unwrap_or(0);
    was("observedGeneration") < generation
        || now.updated > was("updatedReplicas")
        || now.ready > was("readyReplicas")
        || now.available > was("availableReplicas")
        || (now.replicas - now.updated) < (was("replicas") - was("updatedReplicas"))
}

/// Available once no more than maxUnavailable pods are missing.
pub(super) fn available(counts: &Counts, desired: i64, max_unavailable: i64) -> Cond {
    if counts.available >= desired - max_unavailable {
        cond(
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            false,
        )
    } else {
        cond(
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            false,
        )
    }
}

fn apply(conds: &mut Vec<Value>, ty: &str, c: &Cond) {
    set_condition(conds, ty, c.status, c.reason, &c.message, c.touch);
}

impl Ctl {
    /// Writes the Deployment's status (and the new ReplicaSet's revision
    /// annotation) when they changed.
    pub(super) fn sync_status(&mut self, dep: &Deployment, created_new: bool) {
        let all = self.replica_sets(dep);
        let new_rs = dep.new_rs(&all);
        let counts = self.counts(dep, &all, new_rs.as_deref());
        let old_status = dep.d.get("status").cloned().unwrap_or(json!({}));
        let generation = get_i64(dep.d, &["metadata", "generation"]).unwrap_or(1);
        let phase = self.phase(dep, &counts, created_new, &old_status, generation);
        let rs_name = new_rs.as_ref().map(|r| r.name()).unwrap_or_default();
        let conds = self.conditions(dep, &old_status, phase, &counts, rs_name);
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": counts.replicas,
            "updatedReplicas": counts.updated,
            "readyReplicas": counts.ready,
            "availableReplicas": counts.available,
            "conditions": conds,
        });
        let unavailable = (counts.spec.max(dep.desired) - counts.available).max(0);
        if unavailable > 0 {
            status["unavailableReplicas"] = json!(unavailable);
        }
        if let Some(c) = old_status.get("collisionCount") {
            status["collisionCount"] = c.clone();
        }
        let rev = new_rs
            .as_ref()
            .and_then(|r| annotation(&r.value, REVISION).map(String::from));
        let rev_changed = rev.is_some() && annotation(dep.d, REVISION) != rev.as_deref();
        if status != old_status || rev_changed {
            self.write_status(dep, status, rev);
        }
    }

    fn counts(&self, dep: &Deployment, all: &[Arc<Obj>], new_rs: Option<&Obj>) -> Counts {
        let mut c = Counts::default();
        for r in all {
            let pods = self.owned_pods(&dep.ns, r.uid());
            c.replicas += pods.len() as i64;
            c.ready += pods
                .iter()
                .filter(|p| admission::pod_ready(&p.value))
                .count() as i64;
            c.spec += spec_replicas(r);
            if new_rs.is_some_and(|n| n.uid() == r.uid()) {
                c.updated = pods.len() as i64;
            }
        }
        c.available = c.ready;
        c
    }

    fn phase(
        &self,
        dep: &Deployment,
        c: &Counts,
        created_new: bool,
        old: &Value,
        generation: i64,
    ) -> Phase {
        let d = dep.desired;
        if dep.paused {
            Phase::Paused
        } else if c.updated == d && c.replicas == d && c.available == d {
            Phase::Complete
        } else if created_new {
            Phase::Created
        } else if made_progress(old, generation, c) {
            Phase::Progressed
        } else {
            Phase::Idle
        }
    }

    /// Available and Progressing, in that order; arms the deadline timer
    /// when the rollout is idle.
    fn conditions(
        &mut self,
        dep: &Deployment,
        old: &Value,
        phase: Phase,
        c: &Counts,
        rs_name: &str,
    ) -> Vec<Value> {
        let mut conds: Vec<Value> = old
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        apply(
            &mut conds,
            "Available",
            &available(c, dep.desired, dep.max_unavailable),
        );
        let prog = conds.iter().find(|c| c["type"] == "Progressing").cloned();
        let deadline = get_i64(dep.d, &["spec", "progressDeadlineSeconds"]).unwrap_or(600);
        match progressing(phase, prog.as_ref(), deadline, now_unix(), rs_name) {
            Step::Set(p) => apply(&mut conds, "Progressing", &p),
            Step::WakeAt(at) => self.wake_at(dep, at),
            Step::Keep => {}
        }
        conds.sort_by_key(|c| if c["type"] == "Available" { 0 } else { 1 });
        conds
    }

    /// Wakes the namespace just after the progress deadline (once per
    /// deadline), since no event will arrive when nothing happens.
    fn wake_at(&mut self, dep: &Deployment, at: i64) {
        if self.deadlines.get(&dep.uid) == Some(&at) {
            return;
        }
        self.deadlines.insert(dep.uid.clone(), at);
        let c = self.c.clone();
        let ns = dep.ns.clone();
        let wait = (at - now_unix()).max(0) as u64;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait * 1000 + 1100)).await;
            c.wake_ns(&ns);
        });
    }

    fn write_status(&self, dep: &Deployment, status: Value, rev: Option<String>) {
        self.c.modify(DEPLOY, &dep.ns, &dep.name, |v| {
            // the Deployment may have been replaced by a namesake meanwhile
            if get_str(v, &["metadata", "uid"]) != Some(dep.uid.as_str()) {
                return false;
            }
            v["status"] = status;
            if let Some(rev) = rev {
                ensure_map(v, &["metadata", "annotations"]).insert(REVISION.into(), json!(rev));
            }
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::format_rfc3339;

    fn prog(reason: &str, updated: i64) -> Value {
        json!({"type": "Progressing", "status": "True", "reason": reason,
               "lastUpdateTime": format_rfc3339(updated)})
    }

    fn reason(s: Step) -> &'static str {
        match s {
            Step::Set(c) => c.reason,
            other => panic!("expected a condition, got {other:?}"),
        }
    }

    #[test]
    fn decisive_phases_set_their_reason() {
        let cases = [
            (Phase::Paused, "DeploymentPaused"),
            (Phase::Complete, "NewReplicaSetAvailable"),
            (Phase::Created, "NewReplicaSetCreated"),
            (Phase::Progressed, "ReplicaSetUpdated"),
            (Phase::Idle, "ReplicaSetUpdated"),
        ];
        for (phase, want) in cases {
            assert_eq!(
                reason(progressing(phase, None, 600, 0, "r")),
                want,
                "{phase:?}"
            );
        }
    }

    #[test]
    fn idle_rollout_times_out_at_the_deadline() {
        let p = prog("ReplicaSetUpdated", 1_000);
        assert_eq!(
            progressing(Phase::Idle, Some(&p), 60, 1_059, "r"),
            Step::WakeAt(1_060)
        );
        let Step::Set(c) = progressing(Phase::Idle, Some(&p), 60, 1_060, "web-1") else {
            panic!("deadline passed");
        };
        assert_eq!((c.status, c.reason), ("False", "ProgressDeadlineExceeded"));
        assert_eq!(c.message, "ReplicaSet \"web-1\" has timed out progressing.");
    }

    #[test]
    fn finished_or_timed_out_rollouts_have_no_deadline() {
        for r in ["NewReplicaSetAvailable", "ProgressDeadlineExceeded"] {
            let p = prog(r, 0);
            assert_eq!(
                progressing(Phase::Idle, Some(&p), 60, 10_000, "r"),
                Step::Keep
            );
        }
    }

    #[test]
    fn progress_is_any_count_moving_towards_the_goal() {
        let old = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1,
                         "readyReplicas": 3, "availableReplicas": 3});
        let same = Counts {
            replicas: 4,
            updated: 1,
            ready: 3,
            available: 3,
            spec: 4,
        };
        assert!(!made_progress(&old, 2, &same));
        assert!(made_progress(&old, 3, &same), "new generation");
        assert!(made_progress(
            &old,
            2,
            &Counts {
                ready: 4,
                available: 4,
                ..same
            }
        ));
        assert!(
            made_progress(
                &old,
                2,
                &Counts {
                    replicas: 3,
                    ..same
                }
            ),
            "an old pod went"
        );
        assert!(!made_progress(
            &old,
            2,
            &Counts {
                ready: 2,
                available: 2,
                ..same
            }
        ));
    }

    #[test]
    fn available_allows_max_unavailable_missing() {
        let c = Counts {
            available: 2,
            ..Counts::default()
        };
        assert_eq!(available(&c, 3, 1).status, "True");
        assert_eq!(available(&c, 3, 0).reason, "MinimumReplicasUnavailable");
    }
}
