//! Simulated controllers: Deployments, ReplicaSets, DaemonSets, pod readiness,
//! Endpoints, PodDisruptionBudgets, garbage collection, namespace deletion.
//!
//! One task reacts to store events: every event marks its namespace dirty, and
//! each dirty namespace is reconciled. Reconcilers write only on change, so the
//! loop settles. Time-based work (readiness delays, progress deadlines) uses
//! one-shot timers that write or wake the loop.

use crate::admission::{self, NODE_NAME};
use crate::cluster::{Cluster, WriteOpts};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::{Event, EventType, Obj};
use crate::util::{
    annotation, ensure_map, get_i64, get_str, int_or_percent, now_rfc3339, now_unix, parse_rfc3339,
    safe_encode, stable_hash,
};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};

pub const ANN_READY_DELAY: &str = "sim.meshup.dev/ready-delay-ms";
pub const ANN_NEVER_READY: &str = "sim.meshup.dev/never-ready";
const ANN_MANAGED: &str = "sim.meshup.dev/managed";
const MANAGER: &str = "kube-controller-manager";

const PODS: &str = "/pods";
const RS: &str = "apps/replicasets";
const DEPLOY: &str = "apps/deployments";
const DS: &str = "apps/daemonsets";
const SLICES: &str = "discovery.k8s.io/endpointslices";

struct Ctl {
    c: Arc<Cluster>,
    timers: Arc<Mutex<HashSet<String>>>,
    deadlines: HashMap<String, i64>,
    pods_rt: Arc<ResourceType>,
    rs_rt: Arc<ResourceType>,
    ep_rt: Arc<ResourceType>,
}

pub async fn run(
    c: Arc<Cluster>,
    mut wake: mpsc::UnboundedReceiver<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rx = c.store.subscribe();
    let mut ctl = Ctl {
        pods_rt: c.registry.lookup("", "v1", "pods").expect("pods"),
        rs_rt: c.registry.lookup("apps", "v1", "replicasets").expect("rs"),
        ep_rt: c.registry.lookup("", "v1", "endpoints").expect("endpoints"),
        c: c.clone(),
        timers: Arc::new(Mutex::new(HashSet::new())),
        deadlines: HashMap::new(),
    };
    let mut all = true;
    loop {
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        let mut deleted: Vec<Arc<Event>> = Vec::new();
        if !all {
            tokio::select! {
                _ = shutdown.changed() => return,
                ev = rx.recv() => match ev {
                    Ok(e) => absorb(&e, &mut dirty, &mut deleted),
                    Err(broadcast::error::RecvError::Lagged(_)) => all = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                ns = wake.recv() => match ns {
                    Some(ns) if ns.is_empty() => all = true,
                    Some(ns) => { dirty.insert(ns); }
                    None => return,
                },
            }
        }
        loop {
            match rx.try_recv() {
                Ok(e) => absorb(&e, &mut dirty, &mut deleted),
                Err(broadcast::error::TryRecvError::Lagged(_)) => all = true,
                Err(_) => break,
            }
        }
        while let Ok(ns) = wake.try_recv() {
            if ns.is_empty() {
                all = true;
            } else {
                dirty.insert(ns);
            }
        }
        if all {
            all = false;
            let (nss, _, _) = c.store.list("/namespaces", None, None, 0, &|_| true);
            dirty.extend(nss.iter().map(|n| n.name().to_string()));
        }
        for e in deleted {
            ctl.gc(&e);
        }
        for ns in dirty {
            ctl.reconcile_ns(&ns);
        }
        tokio::task::yield_now().await;
    }
}

fn absorb(e: &Arc<Event>, dirty: &mut BTreeSet<String>, deleted: &mut Vec<Arc<Event>>) {
    let ns = e.obj.namespace();
    if &*e.key == "/namespaces" {
        dirty.insert(e.obj.name().to_string());
    } else if !ns.is_empty() {
        dirty.insert(ns.to_string());
    }
    if e.ty == EventType::Deleted
        && !matches!(
            &*e.key,
            "/pods"
                | "/events"
                | "/endpoints"
                | "events.k8s.io/events"
                | "discovery.k8s.io/endpointslices"
        )
    {
        deleted.push(e.clone());
    }
}

fn controller_uid(o: &Value) -> Option<&str> {
    o.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?
        .get("uid")?
        .as_str()
}

/// A metadata string field (`namespace`, `name`, `uid`), empty when absent.
fn meta(v: &Value, field: &str) -> String {
    get_str(v, &["metadata", field])
        .unwrap_or_default()
        .to_string()
}

fn deleting(o: &Value) -> bool {
    o.pointer("/metadata/deletionTimestamp").is_some()
}

fn owner_ref(o: &Value, kind: &str, api_version: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": get_str(o, &["metadata", "name"]).unwrap_or_default(),
        "uid": get_str(o, &["metadata", "uid"]).unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Sets a condition, keeping transition time when the status is unchanged and
/// update time when nothing changed at all.
fn set_condition(
    conds: &mut Vec<Value>,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    touch: bool,
) {
    let now = now_rfc3339();
    match conds.iter_mut().find(|c| c["type"] == ty) {
        Some(c) => {
            let same_status = c["status"] == status;
            let same = same_status && c["reason"] == reason && c["message"] == message;
            if same && !touch {
                return;
            }
            if !same_status {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastUpdateTime"] = json!(now);
        }
        None => conds.push(json!({
            "type": ty, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now,
        })),
    }
}

fn template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove("pod-template-hash");
    }
    safe_encode(stable_hash(&t), 10)
}

impl Ctl {
    fn list(&self, key: &str, ns: &str) -> Vec<Arc<Obj>> {
        self.c.store.list(key, Some(ns), None, 0, &|_| true).0
    }

    fn owned_pods(&self, ns: &str, uid: &str) -> Vec<Arc<Obj>> {
        self.c
            .store
            .list(PODS, Some(ns), None, 0, &|o| {
                controller_uid(&o.value) == Some(uid) && !deleting(&o.value)
            })
            .0
    }

    fn gc(&mut self, e: &Event) {
        let uid = e.obj.uid().to_string();
        if uid.is_empty() {
            return;
        }
        for (key, dep) in self.c.dependents(&uid, e.obj.namespace()) {
            let refs = dep
                .value
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let others_alive = refs.iter().filter(|r| r["uid"] != uid.as_str()).any(|r| {
                let rt = self.c.registry.by_kind(
                    r["apiVersion"].as_str().unwrap_or(""),
                    r["kind"].as_str().unwrap_or(""),
                );
                rt.is_some_and(|rt| {
                    let ns = if rt.namespaced { dep.namespace() } else { "" };
                    self.c
                        .store
                        .get(&rt.key(), ns, r["name"].as_str().unwrap_or(""))
                        .is_some_and(|o| o.uid() == r["uid"])
                })
            });
            if others_alive {
                let u = uid.clone();
                self.c.modify(&key, dep.namespace(), dep.name(), |v| {
                    if let Some(a) = v
                        .pointer_mut("/metadata/ownerReferences")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|r| r["uid"] != u.as_str());
                    }
                    true
                });
            } else {
                self.c.remove(&key, dep.namespace(), dep.name());
            }
        }
    }

    fn reconcile_ns(&mut self, ns: &str) {
        if let Some(nso) = self.c.store.get("/namespaces", "", ns)
            && deleting(&nso.value)
        {
            for key in self.c.namespaced_keys() {
                for o in self.list(&key, ns) {
                    self.c.store.remove(&key, ns, o.name());
                }
            }
            self.c.store.remove("/namespaces", "", ns);
            return;
        }
        self.foreground(ns);
        for d in self.list(DEPLOY, ns) {
            self.deployment(&d.value);
        }
        for rs in self.list(RS, ns) {
            self.replicaset(&rs.value);
        }
        for ds in self.list(DS, ns) {
            self.daemonset(&ds.value);
        }
        let pods = self.list(PODS, ns);
        for p in &pods {
            self.readiness(&p.value);
        }
        self.endpoints(ns, &pods);
        self.pdbs(ns, &pods);
    }

    fn foreground(&mut self, ns: &str) {
        let pending: Vec<(String, String, String)> = self
            .c
            .foreground
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, n, _)| n == ns || n.is_empty())
            .cloned()
            .collect();
        for (key, n, name) in pending {
            let Some(obj) = self.c.store.get(&key, &n, &name) else {
                self.c
                    .foreground
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(key, n, name));
                continue;
            };
            let deps = self.c.dependents(obj.uid(), &n);
            if deps.is_empty() {
                self.c.modify(&key, &n, &name, |v| {
                    if let Some(a) = v
                        .pointer_mut("/metadata/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        a.retain(|f| f != "foregroundDeletion");
                    }
                    true
                });
                self.c
                    .foreground
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(key, n, name));
            } else {
                for (k, d) in deps {
                    if !deleting(&d.value) {
                        self.c.remove(&k, d.namespace(), d.name());
                    }
                }
            }
        }
    }

    fn deployment(&mut self, d: &Value) {
        if deleting(d) {
            return;
        }
        let ns = meta(d, "namespace");
        let name = meta(d, "name");
        let uid = meta(d, "uid");
        let desired = get_i64(d, &["spec", "replicas"]).unwrap_or(1);
        let recreate = get_str(d, &["spec", "strategy", "type"]) == Some("Recreate");
        let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            let s = int_or_percent(
                d.pointer("/spec/strategy/rollingUpdate/maxSurge"),
                desired,
                true,
                1,
            );
            let mut u = int_or_percent(
                d.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
                desired,
                false,
                0,
            );
            if s == 0 && u == 0 {
                u = 1;
            }
            (s, u.min(desired))
        };
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = template_hash(&template);
        self.adopt(RS, &ns, d, "Deployment");
        let rs_all = || -> Vec<Arc<Obj>> {
            self.c
                .store
                .list(RS, Some(&ns), None, 0, &|o| {
                    controller_uid(&o.value) == Some(uid.as_str())
                })
                .0
        };
        let mut all = rs_all();
        let find_new = |all: &[Arc<Obj>]| {
            all.iter()
                .find(|r| {
                    r.value
                        .pointer("/metadata/labels/pod-template-hash")
                        .and_then(Value::as_str)
                        == Some(hash.as_str())
                })
                .cloned()
        };
        let mut new_rs = find_new(&all);
        let mut created_new = false;
        let spec_of = |r: &Obj| get_i64(&r.value, &["spec", "replicas"]).unwrap_or(0);
        if new_rs.is_none() && !paused {
            let old_spec: i64 = all.iter().map(|r| spec_of(r)).sum();
            let old_pods: usize = all
                .iter()
                .map(|r| self.owned_pods(&ns, r.uid()).len())
                .sum();
            let initial = if recreate {
                if old_spec > 0 || old_pods > 0 {
                    0
                } else {
                    desired
                }
            } else if old_spec == 0 {
                desired
            } else {
                (desired + max_surge - old_spec).clamp(0, desired)
            };
            let revision = all
                .iter()
                .filter_map(|r| {
                    annotation(&r.value, "deployment.kubernetes.io/revision")?
                        .parse::<i64>()
                        .ok()
                })
                .max()
                .unwrap_or(0)
                + 1;
            let mut tpl = template.clone();
            ensure_map(&mut tpl, &["metadata", "labels"])
                .insert("pod-template-hash".into(), json!(hash));
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            ensure_map(&mut selector, &["matchLabels"])
                .insert("pod-template-hash".into(), json!(hash));
            let mut anns = d
                .pointer("/metadata/annotations")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            anns.remove("kubectl.kubernetes.io/last-applied-configuration");
            anns.remove("deployment.kubernetes.io/revision");
            anns.insert(
                "deployment.kubernetes.io/revision".into(),
                json!(revision.to_string()),
            );
            anns.insert(
                "deployment.kubernetes.io/desired-replicas".into(),
                json!(desired.to_string()),
            );
            anns.insert(
                "deployment.kubernetes.io/max-replicas".into(),
                json!((desired + max_surge).to_string()),
            );
            let rs = json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {
                    "name": format!("{name}-{hash}"), "namespace": ns,
                    "labels": tpl.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                    "annotations": anns,
                    "ownerReferences": [owner_ref(d, "Deployment", "apps/v1")],
                },
                "spec": {"replicas": initial, "minReadySeconds": d.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)), "selector": selector, "template": tpl},
            });
            let wo = WriteOpts {
                manager: MANAGER.into(),
                ..Default::default()
            };
            if self.c.create(&self.rs_rt, &ns, rs, &wo).is_ok() {
                created_new = true;
                self.record(
                    d,
                    "ScalingReplicaSet",
                    &format!("Scaled up replica set {name}-{hash} from 0 to {initial}"),
                );
                all = rs_all();
                new_rs = find_new(&all);
            }
        }
        // a template that returns to an older ReplicaSet makes it the newest revision
        if let Some(nrs) = &new_rs {
            let rev_of = |r: &Obj| {
                annotation(&r.value, "deployment.kubernetes.io/revision")
                    .and_then(|x| x.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            let max_other = all
                .iter()
                .filter(|r| r.uid() != nrs.uid())
                .map(|r| rev_of(r))
                .max()
                .unwrap_or(0);
            if rev_of(nrs) <= max_other && !paused {
                let next = (max_other + 1).to_string();
                self.c.modify(RS, &ns, nrs.name(), |v| {
                    ensure_map(v, &["metadata", "annotations"])
                        .insert("deployment.kubernetes.io/revision".into(), json!(next));
                    true
                });
                all = rs_all();
                new_rs = find_new(&all);
            }
        }
        let set_replicas = |r: &Obj, n: i64| {
            let from = spec_of(r);
            if from != n {
                let verb = if n > from { "up" } else { "down" };
                self.record(
                    d,
                    "ScalingReplicaSet",
                    &format!("Scaled {verb} replica set {} from {from} to {n}", r.name()),
                );
                self.c.modify(RS, &ns, r.name(), |v| {
                    v["spec"]["replicas"] = json!(n);
                    true
                });
            }
        };
        let ready_of = |r: &Obj| -> i64 {
            self.owned_pods(&ns, r.uid())
                .iter()
                .filter(|p| admission::pod_ready(&p.value))
                .count() as i64
        };
        if let (Some(nrs), false) = (new_rs.clone(), paused) {
            let olds: Vec<Arc<Obj>> = {
                let mut o: Vec<Arc<Obj>> = all
                    .iter()
                    .filter(|r| r.uid() != nrs.uid())
                    .cloned()
                    .collect();
                o.sort_by(|a, b| {
                    get_str(&a.value, &["metadata", "creationTimestamp"])
                        .cmp(&get_str(&b.value, &["metadata", "creationTimestamp"]))
                });
                o
            };
            if recreate {
                let old_active = olds.iter().any(|r| spec_of(r) > 0);
                for r in &olds {
                    set_replicas(r, 0);
                }
                let old_pods: usize = olds
                    .iter()
                    .map(|r| self.owned_pods(&ns, r.uid()).len())
                    .sum();
                if !old_active && old_pods == 0 {
                    set_replicas(&nrs, desired);
                }
            } else {
                let new_spec = spec_of(&nrs);
                let all_spec: i64 = all.iter().map(|r| spec_of(r)).sum();
                let max_total = desired + max_surge;
                let target = if new_spec > desired {
                    desired
                } else if all_spec < max_total {
                    (new_spec + max_total - all_spec).min(desired)
                } else {
                    new_spec
                };
                set_replicas(&nrs, target);
                let min_available = desired - max_unavailable;
                let new_unavailable = (target - ready_of(&nrs)).max(0);
                let mut olds_spec: Vec<i64> = olds.iter().map(|r| spec_of(r)).collect();
                let all_spec = target + olds_spec.iter().sum::<i64>();
                let max_scaled_down = all_spec - min_available - new_unavailable;
                if max_scaled_down > 0 {
                    let mut total = 0;
                    let readies: Vec<i64> = olds.iter().map(|r| ready_of(r)).collect();
                    for (i, _) in olds.iter().enumerate() {
                        if total >= max_scaled_down {
                            break;
                        }
                        let unhealthy = olds_spec[i] - readies[i];
                        if olds_spec[i] == 0 || unhealthy <= 0 {
                            continue;
                        }
                        let n = unhealthy.min(max_scaled_down - total);
                        olds_spec[i] -= n;
                        total += n;
                    }
                    let available: i64 = readies.iter().sum::<i64>() + ready_of(&nrs);
                    if available > min_available {
                        let mut remaining =
                            (available - min_available).min(max_scaled_down - total);
                        for s in olds_spec.iter_mut() {
                            if remaining <= 0 {
                                break;
                            }
                            let n = (*s).min(remaining);
                            *s -= n;
                            remaining -= n;
                        }
                    }
                    for (r, s) in olds.iter().zip(olds_spec.iter()) {
                        set_replicas(r, *s);
                    }
                }
            }
            // history limit: drop old, empty ReplicaSets beyond revisionHistoryLimit
            let limit = get_i64(d, &["spec", "revisionHistoryLimit"])
                .unwrap_or(10)
                .max(0) as usize;
            let empty: Vec<&Arc<Obj>> = olds
                .iter()
                .filter(|r| spec_of(r) == 0 && self.owned_pods(&ns, r.uid()).is_empty())
                .collect();
            if empty.len() > limit {
                for r in &empty[..empty.len() - limit] {
                    self.c.remove(RS, &ns, r.name());
                }
            }
        }
        // status
        let all = rs_all();
        let new_rs = find_new(&all);
        let (mut replicas, mut ready, mut updated, mut total_spec) = (0i64, 0i64, 0i64, 0i64);
        for r in &all {
            let pods = self.owned_pods(&ns, r.uid());
            let rd = pods
                .iter()
                .filter(|p| admission::pod_ready(&p.value))
                .count() as i64;
            replicas += pods.len() as i64;
            ready += rd;
            total_spec += spec_of(r);
            if new_rs.as_ref().is_some_and(|n| n.uid() == r.uid()) {
                updated = pods.len() as i64;
            }
        }
        let available = ready;
        let old_status = d.get("status").cloned().unwrap_or(json!({}));
        let st_i = |k: &str| old_status.get(k).and_then(Value::as_i64).unwrap_or(0);
        let generation = get_i64(d, &["metadata", "generation"]).unwrap_or(1);
        let mut conds: Vec<Value> = old_status
            .get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if available >= desired - max_unavailable {
            set_condition(
                &mut conds,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                false,
            );
        } else {
            set_condition(
                &mut conds,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                false,
            );
        }
        let rs_name = new_rs
            .as_ref()
            .map(|r| r.name().to_string())
            .unwrap_or_default();
        let complete = updated == desired && replicas == desired && available == desired;
        let progress = created_new
            || st_i("observedGeneration") < generation
            || updated > st_i("updatedReplicas")
            || ready > st_i("readyReplicas")
            || available > st_i("availableReplicas")
            || (replicas - updated) < (st_i("replicas") - st_i("updatedReplicas"));
        let prog = conds.iter().find(|c| c["type"] == "Progressing").cloned();
        let pds = get_i64(d, &["spec", "progressDeadlineSeconds"]).unwrap_or(600);
        if paused {
            set_condition(
                &mut conds,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                false,
            );
        } else if complete {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                false,
            );
        } else if created_new {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &format!("Created new replica set \"{rs_name}\""),
                true,
            );
        } else if progress {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs_name}\" is progressing."),
                true,
            );
        } else if let Some(p) = &prog {
            let last = p["lastUpdateTime"]
                .as_str()
                .and_then(parse_rfc3339)
                .unwrap_or_else(now_unix);
            if p["reason"] != "ProgressDeadlineExceeded" && p["reason"] != "NewReplicaSetAvailable"
            {
                if now_unix() >= last + pds {
                    set_condition(
                        &mut conds,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                        false,
                    );
                } else if self.deadlines.get(&uid) != Some(&(last + pds)) {
                    self.deadlines.insert(uid.clone(), last + pds);
                    let c = self.c.clone();
                    let ns2 = ns.clone();
                    let wait = (last + pds - now_unix()).max(0) as u64;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(wait * 1000 + 1100)).await;
                        c.wake_ns(&ns2);
                    });
                }
            }
        } else {
            set_condition(
                &mut conds,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                &format!("ReplicaSet \"{rs_name}\" is progressing."),
                true,
            );
        }
        // Keep a stable order: Available, Progressing.
        conds.sort_by_key(|c| if c["type"] == "Available" { 0 } else { 1 });
        let mut status = json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": conds,
        });
        let unavailable = (total_spec.max(desired) - available).max(0);
        if unavailable > 0 {
            status["unavailableReplicas"] = json!(unavailable);
        }
        if let Some(c) = old_status.get("collisionCount") {
            status["collisionCount"] = c.clone();
        }
        let rev = new_rs.as_ref().and_then(|r| {
            annotation(&r.value, "deployment.kubernetes.io/revision").map(String::from)
        });
        let rev_changed =
            rev.is_some() && annotation(d, "deployment.kubernetes.io/revision") != rev.as_deref();
        if status != old_status || rev_changed {
            self.c.modify(DEPLOY, &ns, &name, |v| {
                if get_str(v, &["metadata", "uid"]) != Some(uid.as_str()) {
                    return false;
                }
                v["status"] = status;
                if let Some(rev) = rev {
                    ensure_map(v, &["metadata", "annotations"])
                        .insert("deployment.kubernetes.io/revision".into(), json!(rev));
                }
                true
            });
        }
    }

    /// Adopts orphans (no controller owner) in `ns` that match `owner`'s selector,
    /// like the real controllers do.
    fn adopt(&self, key: &str, ns: &str, owner: &Value, kind: &str) {
        let Some(sel) = owner
            .pointer("/spec/selector")
            .and_then(|s| LabelSelector::from_object(s).ok())
            .filter(|s| !s.is_empty())
        else {
            return;
        };
        let orphans = self
            .c
            .store
            .list(key, Some(ns), None, 0, &|o| {
                controller_uid(&o.value).is_none()
                    && !deleting(&o.value)
                    && sel.matches_obj(&o.value)
            })
            .0;
        for o in orphans {
            let r = owner_ref(owner, kind, "apps/v1");
            self.c.modify(key, ns, o.name(), |v| {
                if controller_uid(v).is_some() {
                    return false;
                }
                let meta = ensure_map(v, &["metadata"]);
                let refs = meta.entry("ownerReferences").or_insert_with(|| json!([]));
                match refs.as_array_mut() {
                    Some(a) => a.push(r),
                    None => *refs = json!([r]),
                }
                true
            });
        }
    }

    /// Records a core/v1 Event about `obj` (as the real controllers do).
    fn record(&self, obj: &Value, reason: &str, message: &str) {
        let ns = get_str(obj, &["metadata", "namespace"]).unwrap_or("default");
        let name = get_str(obj, &["metadata", "name"]).unwrap_or("");
        let now = now_rfc3339();
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", crate::util::rand_u64()), "namespace": ns},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": name, "namespace": ns,
                "uid": obj.pointer("/metadata/uid"), "resourceVersion": obj.pointer("/metadata/resourceVersion"),
            },
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": if reason == "ScalingReplicaSet" { "deployment-controller" } else { "replicaset-controller" }},
            "reportingComponent": "",
        });
        if let Some(rt) = self.c.registry.lookup("", "v1", "events") {
            let wo = WriteOpts {
                manager: MANAGER.into(),
                ..Default::default()
            };
            let _ = self.c.create(&rt, ns, ev, &wo);
        }
    }

    fn create_pod(
        &self,
        ns: &str,
        owner: &Value,
        kind: &str,
        extra_labels: &[(&str, String)],
    ) -> Option<String> {
        let owner_name = get_str(owner, &["metadata", "name"]).unwrap_or_default();
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "generateName": format!("{owner_name}-"), "namespace": ns,
                "labels": owner.pointer("/spec/template/metadata/labels").cloned().unwrap_or(json!({})),
                "ownerReferences": [owner_ref(owner, kind, "apps/v1")],
            },
            "spec": owner.pointer("/spec/template/spec").cloned().unwrap_or(json!({})),
        });
        if let Some(a) = owner.pointer("/spec/template/metadata/annotations") {
            pod["metadata"]["annotations"] = a.clone();
        }
        for (k, v) in extra_labels {
            ensure_map(&mut pod, &["metadata", "labels"]).insert(k.to_string(), json!(v));
        }
        ensure_map(&mut pod, &["spec"]).insert("nodeName".into(), json!(NODE_NAME));
        let wo = WriteOpts {
            manager: MANAGER.into(),
            ..Default::default()
        };
        match self.c.create(&self.pods_rt, ns, pod, &wo) {
            Ok(v) => get_str(&v, &["metadata", "name"]).map(String::from),
            Err(e) => {
                tracing::warn!("creating pod for {kind} {ns}/{owner_name}: {}", e.message);
                None
            }
        }
    }

    fn replicaset(&mut self, rs: &Value) {
        if deleting(rs) {
            return;
        }
        let ns = meta(rs, "namespace");
        let name = meta(rs, "name");
        let uid = meta(rs, "uid");
        self.adopt(PODS, &ns, rs, "ReplicaSet");
        let desired = get_i64(rs, &["spec", "replicas"]).unwrap_or(1).max(0) as usize;
        let mut pods = self.owned_pods(&ns, &uid);
        if pods.len() < desired {
            for _ in pods.len()..desired {
                if let Some(p) = self.create_pod(&ns, rs, "ReplicaSet", &[]) {
                    self.record(rs, "SuccessfulCreate", &format!("Created pod: {p}"));
                }
            }
            pods = self.owned_pods(&ns, &uid);
        } else if pods.len() > desired {
            let mut victims = pods.clone();
            victims.sort_by(|a, b| {
                let ra = admission::pod_ready(&a.value);
                let rb = admission::pod_ready(&b.value);
                ra.cmp(&rb).then_with(|| {
                    get_str(&b.value, &["metadata", "creationTimestamp"])
                        .cmp(&get_str(&a.value, &["metadata", "creationTimestamp"]))
                })
            });
            for p in &victims[..pods.len() - desired] {
                self.c.remove(PODS, &ns, p.name());
                self.record(
                    rs,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", p.name()),
                );
            }
            pods = self.owned_pods(&ns, &uid);
        }
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
            self.c.modify(RS, &ns, &name, |v| {
                v["status"] = status;
                true
            });
        }
    }

    fn daemonset(&mut self, ds: &Value) {
        if deleting(ds) {
            return;
        }
        let ns = meta(ds, "namespace");
        let name = meta(ds, "name");
        let uid = meta(ds, "uid");
        let hash = template_hash(ds.pointer("/spec/template").unwrap_or(&Value::Null));
        let on_delete = get_str(ds, &["spec", "updateStrategy", "type"]) == Some("OnDelete");
        let generation = get_i64(ds, &["metadata", "generation"]).unwrap_or(1);
        let mut pods = self.owned_pods(&ns, &uid);
        let is_current = |p: &Obj| {
            get_str(
                &p.value,
                &["metadata", "labels", "controller-revision-hash"],
            ) == Some(hash.as_str())
        };
        if !on_delete {
            for p in pods.iter().filter(|p| !is_current(p)) {
                self.c.remove(PODS, &ns, p.name());
            }
        }
        // one node: extra pods are removed
        pods = self.owned_pods(&ns, &uid);
        for p in pods.iter().skip(1) {
            self.c.remove(PODS, &ns, p.name());
        }
        pods = self.owned_pods(&ns, &uid);
        if pods.is_empty() {
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
        let ready = pods
            .iter()
            .filter(|p| admission::pod_ready(&p.value))
            .count() as i64;
        let updated = pods.iter().filter(|p| is_current(p)).count() as i64;
        let mut status = json!({
            "currentNumberScheduled": pods.len().min(1),
            "desiredNumberScheduled": 1,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": updated,
            "observedGeneration": generation,
        });
        if ready < 1 {
            status["numberUnavailable"] = json!(1 - ready);
        }
        if ds.get("status") != Some(&status) {
            self.c.modify(DS, &ns, &name, |v| {
                v["status"] = status;
                true
            });
        }
    }

    /// Names a pod is known by for never-ready faults, and its readiness annotations.
    fn pod_settings(&self, pod: &Value) -> (Duration, bool) {
        let ns = get_str(pod, &["metadata", "namespace"]).unwrap_or_default();
        let mut chain: Vec<Value> = vec![pod.clone()];
        let mut cur = pod.clone();
        for _ in 0..2 {
            let Some(r) = cur
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|r| r["controller"] == true))
                .cloned()
            else {
                break;
            };
            let Some(rt) = self.c.registry.by_kind(
                r["apiVersion"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
            ) else {
                break;
            };
            let Some(o) = self
                .c
                .store
                .get(&rt.key(), ns, r["name"].as_str().unwrap_or(""))
            else {
                break;
            };
            cur = o.value.clone();
            chain.push(cur.clone());
        }
        let delay = chain
            .iter()
            .find_map(|o| annotation(o, ANN_READY_DELAY)?.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(self.c.ready_delay);
        let names: Vec<&str> = chain
            .iter()
            .filter_map(|o| get_str(o, &["metadata", "name"]))
            .collect();
        let never = chain
            .iter()
            .any(|o| annotation(o, ANN_NEVER_READY) == Some("true"))
            || self
                .c
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_never_ready(&names);
        (delay, never)
    }

    fn readiness(&mut self, pod: &Value) {
        if deleting(pod) {
            return;
        }
        let phase = get_str(pod, &["status", "phase"]).unwrap_or("");
        let ready = admission::pod_ready(pod);
        if ready || matches!(phase, "Succeeded" | "Failed") {
            return;
        }
        let uid = meta(pod, "uid");
        if self
            .timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&uid)
        {
            return;
        }
        let (delay, never) = self.pod_settings(pod);
        if phase == "Running" && never {
            return;
        }
        self.timers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid.clone());
        let c = self.c.clone();
        let timers = self.timers.clone();
        let ns = meta(pod, "namespace");
        let name = meta(pod, "name");
        let settings_ctl = Ctl {
            c: c.clone(),
            timers: timers.clone(),
            deadlines: HashMap::new(),
            pods_rt: self.pods_rt.clone(),
            rs_rt: self.rs_rt.clone(),
            ep_rt: self.ep_rt.clone(),
        };
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let current = c.store.get(PODS, &ns, &name);
            if let Some(p) = current.filter(|p| p.uid() == uid) {
                let (_, never) = settings_ctl.pod_settings(&p.value);
                let ip = get_str(&p.value, &["status", "podIP"])
                    .map(String::from)
                    .unwrap_or_else(|| c.next_pod_ip());
                c.modify(PODS, &ns, &name, |v| {
                    if get_str(v, &["metadata", "uid"]) != Some(uid.as_str()) {
                        return false;
                    }
                    let st = admission::pod_status(v, &ip, true, !never);
                    v["status"] = st;
                    true
                });
            }
            timers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&uid);
        });
    }

    fn endpoints(&mut self, ns: &str, pods: &[Arc<Obj>]) {
        let services = self.list("/services", ns);
        let mut wanted: HashSet<String> = HashSet::new();
        let mut wanted_slices: HashSet<String> = HashSet::new();
        for svc in &services {
            // LoadBalancer Services get an address, as with a local load-balancer
            if get_str(&svc.value, &["spec", "type"]) == Some("LoadBalancer")
                && svc.value.pointer("/status/loadBalancer/ingress").is_none()
            {
                self.c.modify("/services", ns, svc.name(), |v| {
                    ensure_map(v, &["status", "loadBalancer"]).insert(
                        "ingress".into(),
                        json!([{"ip": "127.0.0.1", "ipMode": "VIP"}]),
                    );
                    true
                });
            }
        }
        for svc in &services {
            let Some(sel) = svc
                .value
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
            else {
                continue;
            };
            wanted.insert(svc.name().to_string());
            let sel = LabelSelector::from_map(sel);
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            let mut matched: Vec<&Arc<Obj>> = pods
                .iter()
                .filter(|p| !deleting(&p.value) && sel.matches_obj(&p.value))
                .filter(|p| get_str(&p.value, &["status", "podIP"]).is_some())
                .collect();
            matched.sort_by_key(|p| {
                get_str(&p.value, &["status", "podIP"])
                    .unwrap_or("")
                    .to_string()
            });
            for p in &matched {
                let addr = json!({
                    "ip": get_str(&p.value, &["status", "podIP"]),
                    "nodeName": NODE_NAME,
                    "targetRef": {"kind": "Pod", "namespace": ns, "name": p.name(), "uid": p.uid()},
                });
                if admission::pod_ready(&p.value) {
                    ready.push(addr);
                } else {
                    not_ready.push(addr);
                }
            }
            let ports: Vec<Value> = svc
                .value
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            let port = match p.get("targetPort") {
                                Some(Value::Number(n)) => json!(n),
                                Some(Value::String(named)) => matched
                                    .iter()
                                    .find_map(|pod| {
                                        pod.value.pointer("/spec/containers")?.as_array()?.iter().find_map(|c| {
                                            c.get("ports")?.as_array()?.iter().find(|cp| cp["name"] == named.as_str())?.get("containerPort").cloned()
                                        })
                                    })
                                    .unwrap_or_else(|| p.get("port").cloned().unwrap_or(json!(0))),
                                _ => p.get("port").cloned().unwrap_or(json!(0)),
                            };
                            let mut e = json!({"port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                            if let Some(n) = p.get("name") {
                                e["name"] = n.clone();
                            }
                            e
                        })
                        .collect()
                })
                .unwrap_or_default();
            let subsets = if matched.is_empty() {
                json!([])
            } else {
                let mut s = json!({"ports": ports});
                if !ready.is_empty() {
                    s["addresses"] = json!(ready);
                }
                if !not_ready.is_empty() {
                    s["notReadyAddresses"] = json!(not_ready);
                }
                json!([s])
            };
            // EndpointSlice (discovery.k8s.io/v1), one per Service
            let slice_endpoints: Vec<Value> = matched
                .iter()
                .map(|p| {
                    let r = admission::pod_ready(&p.value);
                    json!({
                        "addresses": [get_str(&p.value, &["status", "podIP"])],
                        "conditions": {"ready": r, "serving": r, "terminating": false},
                        "nodeName": NODE_NAME,
                        "targetRef": {"kind": "Pod", "namespace": ns, "name": p.name(), "uid": p.uid()},
                    })
                })
                .collect();
            let slice_name = format!(
                "{}-{}",
                svc.name(),
                safe_encode(stable_hash(&json!(svc.name())), 5)
            );
            wanted_slices.insert(slice_name.clone());
            match self.c.store.get(SLICES, ns, &slice_name) {
                Some(es) => {
                    if es.value.get("endpoints") != Some(&json!(slice_endpoints))
                        || es.value.get("ports") != Some(&json!(ports))
                    {
                        let (e2, p2) = (slice_endpoints.clone(), ports.clone());
                        self.c.modify(SLICES, ns, &slice_name, |v| {
                            v["endpoints"] = json!(e2);
                            v["ports"] = json!(p2);
                            true
                        });
                    }
                }
                None => {
                    let es = json!({
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": slice_name, "namespace": ns,
                                     "labels": {"kubernetes.io/service-name": svc.name(),
                                                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                                     "annotations": {ANN_MANAGED: "true"},
                                     "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": svc.name(), "uid": svc.uid(),
                                                          "controller": true, "blockOwnerDeletion": true}]},
                        "addressType": "IPv4",
                        "endpoints": slice_endpoints,
                        "ports": ports,
                    });
                    if let Some(rt) =
                        self.c
                            .registry
                            .lookup("discovery.k8s.io", "v1", "endpointslices")
                    {
                        let wo = WriteOpts {
                            manager: MANAGER.into(),
                            ..Default::default()
                        };
                        let _ = self.c.create(&rt, ns, es, &wo);
                    }
                }
            }
            match self.c.store.get("/endpoints", ns, svc.name()) {
                Some(ep) => {
                    if ep.value.get("subsets").unwrap_or(&json!([])) != &subsets {
                        self.c.modify("/endpoints", ns, svc.name(), |v| {
                            v["subsets"] = subsets;
                            true
                        });
                    }
                }
                None => {
                    let ep = json!({
                        "apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": svc.name(), "namespace": ns,
                                     "labels": svc.value.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
                                     "annotations": {ANN_MANAGED: "true"}},
                        "subsets": subsets,
                    });
                    let wo = WriteOpts {
                        manager: MANAGER.into(),
                        ..Default::default()
                    };
                    let _ = self.c.create(&self.ep_rt, ns, ep, &wo);
                }
            }
        }
        for es in self.list(SLICES, ns) {
            if annotation(&es.value, ANN_MANAGED) == Some("true")
                && !wanted_slices.contains(es.name())
            {
                self.c.remove(SLICES, ns, es.name());
            }
        }
        for ep in self.list("/endpoints", ns) {
            if annotation(&ep.value, ANN_MANAGED) == Some("true") && !wanted.contains(ep.name()) {
                self.c.remove("/endpoints", ns, ep.name());
            }
        }
    }

    fn pdbs(&mut self, ns: &str, pods: &[Arc<Obj>]) {
        for pdb in self.list("policy/poddisruptionbudgets", ns) {
            let v = &pdb.value;
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
            let desired = if let Some(m) = v.pointer("/spec/minAvailable") {
                int_or_percent(Some(m), expected, true, 1)
            } else if let Some(m) = v.pointer("/spec/maxUnavailable") {
                (expected - int_or_percent(Some(m), expected, true, 0)).max(0)
            } else {
                1
            };
            let allowed = (healthy - desired).max(0);
            let mut conds: Vec<Value> = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let (st, reason, msg) = if allowed > 0 {
                ("True", "SufficientPods", "")
            } else {
                ("False", "InsufficientPods", "")
            };
            set_condition(&mut conds, "DisruptionAllowed", st, reason, msg, false);
            for c in conds.iter_mut() {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lastUpdateTime");
                    m.insert(
                        "observedGeneration".into(),
                        json!(get_i64(v, &["metadata", "generation"]).unwrap_or(1)),
                    );
                }
            }
            let status = json!({
                "observedGeneration": get_i64(v, &["metadata", "generation"]).unwrap_or(1),
                "currentHealthy": healthy,
                "desiredHealthy": desired,
                "disruptionsAllowed": allowed,
                "expectedPods": expected,
                "conditions": conds,
            });
            if v.get("status") != Some(&status) {
                self.c
                    .modify("policy/poddisruptionbudgets", ns, pdb.name(), |o| {
                        o["status"] = status;
                        true
                    });
            }
        }
    }
}
