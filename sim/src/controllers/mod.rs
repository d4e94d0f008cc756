//! Simulated controllers: Deployments, ReplicaSets, DaemonSets, pod readiness,
//! Endpoints, PodDisruptionBudgets, garbage collection, namespace deletion.
//!
//! One task reacts to store events: every event marks its namespace dirty, and
//! each dirty namespace is reconciled. Reconcilers write only on change, so the
//! loop settles. Time-based work (readiness delays, progress deadlines) uses
//! one-shot timers that write or wake the loop.
//!
//! This module holds the loop and what the controllers share (ownership,
//! adoption, Events, conditions); each controller is its own module.

mod daemonset;
mod deployment;
mod endpoints;
mod gc;
mod pdb;
mod pods;
mod replicaset;

use crate::cluster::{Cluster, WriteOpts};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::{Event, EventType, Obj};
use crate::util::{ensure_map, get_str, now_rfc3339, safe_encode, stable_hash};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
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
    let mut ctl = Ctl::new(c);
    // the first pass covers every namespace (seeded objects)
    let mut batch = Batch {
        all: true,
        ..Batch::default()
    };
    loop {
        batch.drain(&mut rx, &mut wake);
        ctl.pass(batch);
        tokio::task::yield_now().await;
        batch = Batch::default();
        if !batch.wait(&mut rx, &mut wake, &mut shutdown).await {
            return;
        }
    }
}

/// The work of one pass: namespaces to reconcile, deletions to collect.
#[derive(Default)]
struct Batch {
    dirty: BTreeSet<String>,
    deleted: Vec<Arc<Event>>,
    /// Every namespace: at start, after missed events, or when woken with "".
    all: bool,
}

impl Batch {
    fn event(&mut self, e: &Arc<Event>) {
        let ns = e.obj.namespace();
        if &*e.key == "/namespaces" {
            self.dirty.insert(e.obj.name().to_string());
        } else if !ns.is_empty() {
            self.dirty.insert(ns.to_string());
        }
        // deleted owners have dependents to collect; these kinds own nothing
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
            self.deleted.push(e.clone());
        }
    }

    fn wake(&mut self, ns: String) {
        if ns.is_empty() {
            self.all = true;
        } else {
            self.dirty.insert(ns);
        }
    }

    /// Waits for one event or wake-up; false when the loop must stop.
    async fn wait(
        &mut self,
        rx: &mut broadcast::Receiver<Arc<Event>>,
        wake: &mut mpsc::UnboundedReceiver<String>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        tokio::select! {
            _ = shutdown.changed() => false,
            ev = rx.recv() => match ev {
                Ok(e) => { self.event(&e); true }
                Err(broadcast::error::RecvError::Lagged(_)) => { self.all = true; true }
                Err(broadcast::error::RecvError::Closed) => false,
            },
            ns = wake.recv() => match ns {
                Some(ns) => { self.wake(ns); true }
                None => false,
            },
        }
    }

    /// Takes everything already queued, so one pass covers a burst.
    fn drain(
        &mut self,
        rx: &mut broadcast::Receiver<Arc<Event>>,
        wake: &mut mpsc::UnboundedReceiver<String>,
    ) {
        loop {
            match rx.try_recv() {
                Ok(e) => self.event(&e),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.all = true,
                Err(_) => break,
            }
        }
        while let Ok(ns) = wake.try_recv() {
            self.wake(ns);
        }
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
    fn new(c: Arc<Cluster>) -> Self {
        Ctl {
            pods_rt: c.registry.lookup("", "v1", "pods").expect("pods"),
            rs_rt: c.registry.lookup("apps", "v1", "replicasets").expect("rs"),
            ep_rt: c.registry.lookup("", "v1", "endpoints").expect("endpoints"),
            c,
            timers: Arc::new(Mutex::new(HashSet::new())),
            deadlines: HashMap::new(),
        }
    }

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

    fn pass(&mut self, mut batch: Batch) {
        if batch.all {
            let (nss, _, _) = self.c.store.list("/namespaces", None, None, 0, &|_| true);
            batch.dirty.extend(nss.iter().map(|n| n.name().to_string()));
        }
        for e in batch.deleted {
            self.gc(&e);
        }
        for ns in batch.dirty {
            self.reconcile_ns(&ns);
        }
    }

    fn reconcile_ns(&mut self, ns: &str) {
        if self.terminate_namespace(ns) {
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
                // Checked under the write lock: an owner deleted since this
                // sync read it (say with propagationPolicy=Orphan) must not
                // take its orphans back, or the garbage collector would
                // then remove them.
                if controller_uid(v).is_some() || !self.owner_alive(&r, ns) {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultConfig;
    use crate::registry::Registry;
    use std::time::Duration;

    fn cluster() -> Arc<Cluster> {
        let (wake, _) = mpsc::unbounded_channel();
        let c = Cluster::new(
            Registry::new(),
            FaultConfig::default(),
            "v1.30.4".into(),
            Duration::ZERO,
            wake,
            100,
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
        crate::seed::load(&c, vec![ns]).expect("namespace");
        Arc::new(c)
    }

    fn ctl(c: &Arc<Cluster>) -> Ctl {
        Ctl::new(c.clone())
    }

    fn write(c: &Cluster, resource: (&str, &str), obj: Value) -> Value {
        let rt = c
            .registry
            .lookup(resource.0, "v1", resource.1)
            .expect("type");
        c.create(&rt, "default", obj, &WriteOpts::default())
            .expect("create")
    }

    fn workload(kind: &str, name: &str) -> Value {
        let labels = json!({"app": "web"});
        json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "labels": labels},
               "spec": {"replicas": 0, "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels},
                                     "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    }

    fn owners(c: &Cluster) -> Value {
        let rs = c.store.get(RS, "default", "orphan").expect("rs");
        rs.value
            .pointer("/metadata/ownerReferences")
            .cloned()
            .unwrap_or(json!([]))
    }

    /// Deployment `web` and a ReplicaSet `orphan` its selector matches.
    fn deployment_and_orphan() -> (Arc<Cluster>, Value) {
        let c = cluster();
        let d = write(&c, ("apps", "deployments"), workload("Deployment", "web"));
        write(
            &c,
            ("apps", "replicasets"),
            workload("ReplicaSet", "orphan"),
        );
        (c, d)
    }

    #[test]
    fn orphans_are_adopted_by_a_matching_owner() {
        let (c, d) = deployment_and_orphan();
        ctl(&c).adopt(RS, "default", &d, "Deployment");
        assert_eq!(owners(&c)[0]["uid"], d["metadata"]["uid"]);
    }

    #[test]
    fn an_owner_deleted_since_it_was_read_adopts_nothing() {
        let (c, d) = deployment_and_orphan();
        c.remove(DEPLOY, "default", "web");
        ctl(&c).adopt(RS, "default", &d, "Deployment");
        assert_eq!(owners(&c), json!([]));
    }
}
