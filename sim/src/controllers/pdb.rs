//! The disruption controller: PodDisruptionBudget status from the pods its
//! selector matches.

use super::{Ctl, deleting, set_condition};
use crate::admission;
use crate::selector::LabelSelector;
use crate::store::Obj;
use crate::util::{get_i64, int_or_percent};
use serde_json::{Value, json};
use std::sync::Arc;

const PDBS: &str = "policy/poddisruptionbudgets";

impl Ctl {
    pub(super) fn pdbs(&mut self, ns: &str, pods: &[Arc<Obj>]) {
        for pdb in self.list(PDBS, ns) {
            let status = pdb_status(&pdb.value, pods);
            if pdb.value.get("status") != Some(&status) {
                self.c.modify(PDBS, ns, pdb.name(), |o| {
                    o["status"] = status;
                    true
                });
            }
        }
    }
}

/// Healthy pods the budget requires out of `expected`: minAvailable, or all
/// but maxUnavailable, or 1 when the budget says neither.
fn desired_healthy(pdb: &Value, expected: i64) -> i64 {
    if let Some(m) = pdb.pointer("/spec/minAvailable") {
        int_or_percent(Some(m), expected, true, 1)
    } else if let Some(m) = pdb.pointer("/spec/maxUnavailable") {
        (expected - int_or_percent(Some(m), expected, true, 0)).max(0)
    } else {
        1
    }
}

fn pdb_status(v: &Value, pods: &[Arc<Obj>]) -> Value {
    // A budget without a selector matches no pod (not every pod).
    let sel = v
        .pointer("/spec/selector")
        .map(LabelSelector::from_object)
        .and_then(Result::ok)
        .unwrap_or_default();
    let matched: Vec<&Arc<Obj>> = pods
        .iter()
        .filter(|p| {
            !deleting(&p.value)
                && v.pointer("/spec/selector").is_some()
                && sel.matches_obj(&p.value)
        })
        .collect();
    let expected = matched.len() as i64;
    let healthy = matched
        .iter()
        .filter(|p| admission::pod_ready(&p.value))
        .count() as i64;
    let desired = desired_healthy(v, expected);
    let allowed = (healthy - desired).max(0);
    let generation = get_i64(v, &["metadata", "generation"]).unwrap_or(1);
    json!({
        "observedGeneration": generation,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "disruptionsAllowed": allowed,
        "expectedPods": expected,
        "conditions": disruption_conditions(v, allowed > 0, generation),
    })
}

/// The `DisruptionAllowed` condition, shaped as policy/v1 has it (with
/// observedGeneration, without lastUpdateTime).
fn disruption_conditions(v: &Value, allowed: bool, generation: i64) -> Vec<Value> {
    let mut conds: Vec<Value> = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (st, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    set_condition(&mut conds, "DisruptionAllowed", st, reason, "", false);
    for c in conds.iter_mut() {
        if let Some(m) = c.as_object_mut() {
            m.remove("lastUpdateTime");
            m.insert("observedGeneration".into(), json!(generation));
        }
    }
    conds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_healthy_follows_the_budget() {
        let pdb = |spec: Value| json!({ "spec": spec });
        assert_eq!(desired_healthy(&pdb(json!({"minAvailable": 2})), 3), 2);
        assert_eq!(desired_healthy(&pdb(json!({"minAvailable": "50%"})), 3), 2);
        assert_eq!(desired_healthy(&pdb(json!({"maxUnavailable": 1})), 3), 2);
        assert_eq!(desired_healthy(&pdb(json!({"maxUnavailable": 5})), 3), 0);
        assert_eq!(desired_healthy(&pdb(json!({})), 3), 1);
    }
}
