//! The ReplicaSet controller: as many owned pods as `spec.replicas`, and a
//! status counting them.

use super::{Ctl, PODS, RS, deleting, meta};
use crate::admission;
use crate::store::Obj;
use crate::util::{get_i64, get_str};
use serde_json::{Value, json};
use std::sync::Arc;

impl Ctl {
    pub(super) fn replicaset(&mut self, rs: &Value) {
        if deleting(rs) {
            return;
        }
        let ns = meta(rs, "namespace");
        let uid = meta(rs, "uid");
        self.adopt(PODS, &ns, rs, "ReplicaSet");
        let desired = get_i64(rs, &["spec", "replicas"]).unwrap_or(1).max(0) as usize;
        let pods = self.owned_pods(&ns, &uid);
        if pods.len() < desired {
            self.create_pods(rs, &ns, desired - pods.len());
        } else if pods.len() > desired {
            self.delete_pods(rs, &ns, pods, desired);
        }
        let pods = self.owned_pods(&ns, &uid);
        self.replicaset_status(rs, &pods);
    }

    fn create_pods(&self, rs: &Value, ns: &str, count: usize) {
        for _ in 0..count {
            if let Some(p) = self.create_pod(ns, rs, "ReplicaSet", &[]) {
                self.record(rs, "SuccessfulCreate", &format!("Created pod: {p}"));
            }
        }
    }

    /// Deletes pods beyond `desired`: not-ready ones first, then the newest
    /// (as the real controller ranks them), so a scale-down costs the least
    /// availability.
    fn delete_pods(&self, rs: &Value, ns: &str, mut pods: Vec<Arc<Obj>>, desired: usize) {
        let excess = pods.len() - desired;
        pods.sort_by(|a, b| {
            let ra = admission::pod_ready(&a.value);
            let rb = admission::pod_ready(&b.value);
            ra.cmp(&rb).then_with(|| {
                get_str(&b.value, &["metadata", "creationTimestamp"])
                    .cmp(&get_str(&a.value, &["metadata", "creationTimestamp"]))
            })
        });
        for p in &pods[..excess] {
            self.c.remove(PODS, ns, p.name());
            self.record(
                rs,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", p.name()),
            );
        }
    }

    fn replicaset_status(&self, rs: &Value, pods: &[Arc<Obj>]) {
        let ready = pods
            .iter()
            .filter(|p| admission::pod_ready(&p.value))
            .count();
        let status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": pods.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": get_i64(rs, &["metadata", "generation"]).unwrap_or(1),
        });
        if rs.get("status") != Some(&status) {
            self.c
                .modify(RS, &meta(rs, "namespace"), &meta(rs, "name"), |v| {
                    v["status"] = status;
                    true
                });
        }
    }
}
