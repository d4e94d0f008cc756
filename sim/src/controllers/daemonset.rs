//! The DaemonSet controller on a one-node cluster: exactly one pod, of the
//! current template unless the update strategy is OnDelete.

use super::{Ctl, DS, PODS, deleting, meta, template_hash};
use crate::admission;
use crate::store::Obj;
use crate::util::{get_i64, get_str};
use serde_json::{Value, json};
use std::sync::Arc;

/// Whether a pod was made from the template with this hash.
fn is_current(p: &Obj, hash: &str) -> bool {
    get_str(
        &p.value,
        &["metadata", "labels", "controller-revision-hash"],
    ) == Some(hash)
}

impl Ctl {
    pub(super) fn daemonset(&mut self, ds: &Value) {
        if deleting(ds) {
            return;
        }
        let ns = meta(ds, "namespace");
        let uid = meta(ds, "uid");
        let hash = template_hash(ds.pointer("/spec/template").unwrap_or(&Value::Null));
        let on_delete = get_str(ds, &["spec", "updateStrategy", "type"]) == Some("OnDelete");
        if !on_delete {
            for p in self.owned_pods(&ns, &uid) {
                if !is_current(&p, &hash) {
                    self.c.remove(PODS, &ns, p.name());
                }
            }
        }
        // one node: extra pods are removed
        for p in self.owned_pods(&ns, &uid).iter().skip(1) {
            self.c.remove(PODS, &ns, p.name());
        }
        let mut pods = self.owned_pods(&ns, &uid);
        if pods.is_empty() {
            let generation = get_i64(ds, &["metadata", "generation"]).unwrap_or(1);
            self.create_pod(
                &ns,
                ds,
                "DaemonSet",
                &[
                    ("controller-revision-hash", hash.clone()),
                    ("pod-template-generation", generation.to_string()),
                ],
            );
            pods = self.owned_pods(&ns, &uid);
        }
        self.daemonset_status(ds, &pods, &hash);
    }

    fn daemonset_status(&self, ds: &Value, pods: &[Arc<Obj>], hash: &str) {
        let ready = pods
            .iter()
            .filter(|p| admission::pod_ready(&p.value))
            .count() as i64;
        let updated = pods.iter().filter(|p| is_current(p, hash)).count() as i64;
        let mut status = json!({
            "currentNumberScheduled": pods.len().min(1),
            "desiredNumberScheduled": 1,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": updated,
            "observedGeneration": get_i64(ds, &["metadata", "generation"]).unwrap_or(1),
        });
        if ready < 1 {
            status["numberUnavailable"] = json!(1 - ready);
        }
        if ds.get("status") != Some(&status) {
            self.c
                .modify(DS, &meta(ds, "namespace"), &meta(ds, "name"), |v| {
                    v["status"] = status;
                    true
                });
        }
    }
}
