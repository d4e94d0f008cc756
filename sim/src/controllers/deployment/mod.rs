//! The Deployment controller, split as kube-controller-manager's is
//! (pkg/controller/deployment): this file is `sync.go` — reading the spec,
//! finding or creating the new ReplicaSet, revisions and history; scaling
//! lives in [`rolling`] and [`recreate`], status and the progress deadline in
//! [`progress`].
//!
//! One sync reads the ReplicaSets once, acts, and writes only on change; what
//! it cannot finish now (pods becoming ready) a later event completes.

mod progress;
mod recreate;
mod rolling;

use super::{Ctl, MANAGER, RS, controller_uid, deleting, meta, owner_ref, template_hash};
use crate::admission;
use crate::cluster::WriteOpts;
use crate::store::Obj;
use crate::util::{annotation, ensure_map, get_i64, get_str};
use serde_json::{Map, Value, json};
use std::sync::Arc;

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";

/// One Deployment as a sync sees it: who it is and what its spec asks for.
struct Deployment<'a> {
    d: &'a Value,
    ns: String,
    name: String,
    uid: String,
    desired: i64,
    recreate: bool,
    paused: bool,
    /// Both 0 for Recreate.
    max_surge: i64,
    max_unavailable: i64,
    /// The pod template's hash: the new ReplicaSet is the one labelled with it.
    hash: String,
}

impl<'a> Deployment<'a> {
    fn read(d: &'a Value) -> Self {
        let desired = get_i64(d, &["spec", "replicas"]).unwrap_or(1);
        let recreate = get_str(d, &["spec", "strategy", "type"]) == Some("Recreate");
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            rolling::fenceposts(
                d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
                d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
                desired,
            )
        };
        Deployment {
            d,
            ns: meta(d, "namespace"),
            name: meta(d, "name"),
            uid: meta(d, "uid"),
            desired,
            recreate,
            paused: d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true),
            max_surge,
            max_unavailable,
            hash: template_hash(&template(d)),
        }
    }

    /// The ReplicaSet made from the current template, if any.
    fn new_rs(&self, all: &[Arc<Obj>]) -> Option<Arc<Obj>> {
        all.iter()
            .find(|r| {
                r.value
                    .pointer("/metadata/labels/pod-template-hash")
                    .and_then(Value::as_str)
                    == Some(self.hash.as_str())
            })
            .cloned()
    }
}

fn template(d: &Value) -> Value {
    d.pointer("/spec/template").cloned().unwrap_or(json!({}))
}

fn spec_replicas(r: &Obj) -> i64 {
    get_i64(&r.value, &["spec", "replicas"]).unwrap_or(0)
}

fn revision(r: &Value) -> i64 {
    annotation(r, REVISION)
        .and_then(|x| x.parse::<i64>().ok())
        .unwrap_or(0)
}

impl Ctl {
    pub(super) fn deployment(&mut self, d: &Value) {
        if deleting(d) {
            return;
        }
        let dep = Deployment::read(d);
        self.adopt(RS, &dep.ns, d, "Deployment");
        let mut all = self.replica_sets(&dep);
        let mut created_new = false;
        if dep.new_rs(&all).is_none() && !dep.paused {
            created_new = self.create_new_rs(&dep, &all);
            if created_new {
                all = self.replica_sets(&dep);
            }
        }
        if let Some(nrs) = dep.new_rs(&all)
            && !dep.paused
            && self.make_newest(&dep, &nrs, &all)
        {
            all = self.replica_sets(&dep);
        }
        if let (Some(nrs), false) = (dep.new_rs(&all), dep.paused) {
            let olds = old_replica_sets(&all, &nrs);
            if dep.recreate {
                self.recreate(&dep, &nrs, &olds);
            } else {
                let all_spec = all.iter().map(|r| spec_replicas(r)).sum();
                self.rolling(&dep, &nrs, &olds, all_spec);
            }
            self.cleanup_history(&dep, &olds);
        }
        self.sync_status(&dep, created_new);
    }

    /// The ReplicaSets this Deployment controls.
    fn replica_sets(&self, dep: &Deployment) -> Vec<Arc<Obj>> {
        self.c
            .store
            .list(RS, Some(&dep.ns), None, 0, &|o| {
                controller_uid(&o.value) == Some(dep.uid.as_str())
            })
            .0
    }

    /// Pods of a ReplicaSet that are Ready.
    fn ready_pods(&self, ns: &str, rs_uid: &str) -> i64 {
        self.owned_pods(ns, rs_uid)
            .iter()
            .filter(|p| admission::pod_ready(&p.value))
            .count() as i64
    }

    /// Creates the ReplicaSet for the current template, sized by the strategy;
    /// true when it was created.
    fn create_new_rs(&self, dep: &Deployment, all: &[Arc<Obj>]) -> bool {
        let old_spec: i64 = all.iter().map(|r| spec_replicas(r)).sum();
        let initial = if dep.recreate {
            let old_pods: usize = all
                .iter()
                .map(|r| self.owned_pods(&dep.ns, r.uid()).len())
                .sum();
            recreate::initial_replicas(dep.desired, old_spec, old_pods)
        } else {
            rolling::initial_replicas(dep.desired, dep.max_surge, old_spec)
        };
        let next_revision = all.iter().map(|r| revision(&r.value)).max().unwrap_or(0) + 1;
        let rs = new_replica_set(dep, initial, next_revision);
        let wo = WriteOpts {
            manager: MANAGER.into(),
            ..Default::default()
        };
        if self.c.create(&self.rs_rt, &dep.ns, rs, &wo).is_err() {
            return false;
        }
        self.record(
            dep.d,
            "ScalingReplicaSet",
            &format!(
                "Scaled up replica set {}-{} from 0 to {initial}",
                dep.name, dep.hash
            ),
        );
        true
    }

    /// A template that returns to an older ReplicaSet makes it the newest
    /// revision (as `kubectl rollout undo` expects); true when it changed.
    fn make_newest(&self, dep: &Deployment, nrs: &Obj, all: &[Arc<Obj>]) -> bool {
        let max_other = all
            .iter()
            .filter(|r| r.uid() != nrs.uid())
            .map(|r| revision(&r.value))
            .max()
            .unwrap_or(0);
        if revision(&nrs.value) > max_other {
            return false;
        }
        let next = (max_other + 1).to_string();
        self.c.modify(RS, &dep.ns, nrs.name(), |v| {
            ensure_map(v, &["metadata", "annotations"]).insert(REVISION.into(), json!(next));
            true
        });
        true
    }

    /// Sets a ReplicaSet's replicas, recording a scaling Event when they change.
    fn scale_rs(&self, dep: &Deployment, r: &Obj, n: i64) {
        let from = spec_replicas(r);
        if from == n {
            return;
        }
        let verb = if n > from { "up" } else { "down" };
        self.record(
            dep.d,
            "ScalingReplicaSet",
            &format!("Scaled {verb} replica set {} from {from} to {n}", r.name()),
        );
        self.c.modify(RS, &dep.ns, r.name(), |v| {
            v["spec"]["replicas"] = json!(n);
            true
        });
    }

    /// Drops the oldest empty ReplicaSets beyond `revisionHistoryLimit`
    /// (`olds` is oldest first, as read at the start of this sync).
    fn cleanup_history(&self, dep: &Deployment, olds: &[Arc<Obj>]) {
        let limit = get_i64(dep.d, &["spec", "revisionHistoryLimit"])
            .unwrap_or(10)
            .max(0) as usize;
        let empty: Vec<&Arc<Obj>> = olds
            .iter()
            .filter(|r| spec_replicas(r) == 0 && self.owned_pods(&dep.ns, r.uid()).is_empty())
            .collect();
        if empty.len() > limit {
            for r in &empty[..empty.len() - limit] {
                self.c.remove(RS, &dep.ns, r.name());
            }
        }
    }
}

/// Every ReplicaSet but the new one, oldest first.
fn old_replica_sets(all: &[Arc<Obj>], nrs: &Obj) -> Vec<Arc<Obj>> {
    let mut olds: Vec<Arc<Obj>> = all
        .iter()
        .filter(|r| r.uid() != nrs.uid())
        .cloned()
        .collect();
    olds.sort_by(|a, b| {
        get_str(&a.value, &["metadata", "creationTimestamp"])
            .cmp(&get_str(&b.value, &["metadata", "creationTimestamp"]))
    });
    olds
}

/// The new ReplicaSet: the template and selector gain the pod-template-hash
/// label so old and new pods stay apart.
fn new_replica_set(dep: &Deployment, replicas: i64, revision: i64) -> Value {
    let d = dep.d;
    let mut tpl = template(d);
    ensure_map(&mut tpl, &["metadata", "labels"]).insert(HASH_LABEL.into(), json!(dep.hash));
    let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    ensure_map(&mut selector, &["matchLabels"]).insert(HASH_LABEL.into(), json!(dep.hash));
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{}", dep.name, dep.hash), "namespace": dep.ns,
            "labels": tpl.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
            "annotations": new_rs_annotations(dep, revision),
            "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")],
        },
        "spec": {"replicas": replicas, "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)), "selector": selector, "template": tpl},
    })
}

/// The Deployment's annotations (without kubectl's last-applied copy) plus
/// the revision and the replica bounds the real controller writes.
fn new_rs_annotations(dep: &Deployment, revision: i64) -> Map<String, Value> {
    let mut anns = dep
        .d
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    anns.remove("kubectl.kubernetes.io/last-applied-configuration");
    anns.remove(REVISION);
    anns.insert(REVISION.into(), json!(revision.to_string()));
    anns.insert(
        "deployment.kubernetes.io/desired-replicas".into(),
        json!(dep.desired.to_string()),
    );
    anns.insert(
        "deployment.kubernetes.io/max-replicas".into(),
        json!((dep.desired + dep.max_surge).to_string()),
    );
    anns
}
