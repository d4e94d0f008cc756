//! Pods: creation for the workload controllers, and the kubelet's part —
//! a pending pod starts, then becomes Ready after its readiness delay (or
//! never, when a fault or annotation says so).

use super::{ANN_NEVER_READY, ANN_READY_DELAY, Ctl, MANAGER, PODS, deleting, meta, owner_ref};
use crate::admission::{self, NODE_NAME};
use crate::cluster::{Cluster, WriteOpts};
use crate::util::{annotation, ensure_map, get_str};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a pod becomes ready: after `delay`, and only if not `never` ready.
struct Settings {
    delay: Duration,
    never: bool,
}

impl Ctl {
    /// Creates a pod from `owner`'s template; returns its generated name.
    pub(super) fn create_pod(
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

    /// Starts a one-shot timer that makes a pending pod Running (and Ready
    /// unless it must never be); at most one timer per pod.
    pub(super) fn readiness(&mut self, pod: &Value) {
        if deleting(pod) {
            return;
        }
        let phase = get_str(pod, &["status", "phase"]).unwrap_or("");
        if admission::pod_ready(pod) || matches!(phase, "Succeeded" | "Failed") {
            return;
        }
        let uid = meta(pod, "uid");
        if lock(&self.timers).contains(&uid) {
            return;
        }
        let settings = pod_settings(&self.c, pod);
        // A never-ready pod that already runs has nothing left to wait for.
        if phase == "Running" && settings.never {
            return;
        }
        lock(&self.timers).insert(uid.clone());
        let (c, timers) = (self.c.clone(), self.timers.clone());
        let (ns, name) = (meta(pod, "namespace"), meta(pod, "name"));
        tokio::spawn(async move {
            tokio::time::sleep(settings.delay).await;
            start_pod(&c, &ns, &name, &uid);
            lock(&timers).remove(&uid);
        });
    }
}

fn lock(timers: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    timers.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives the pod (if it is still the same one) an IP and a Running status;
/// never-readiness is read again because faults may have changed meanwhile.
fn start_pod(c: &Arc<Cluster>, ns: &str, name: &str, uid: &str) {
    let Some(p) = c.store.get(PODS, ns, name).filter(|p| p.uid() == uid) else {
        return;
    };
    let never = pod_settings(c, &p.value).never;
    let ip = get_str(&p.value, &["status", "podIP"])
        .map(String::from)
        .unwrap_or_else(|| c.next_pod_ip());
    c.modify(PODS, ns, name, |v| {
        if get_str(v, &["metadata", "uid"]) != Some(uid) {
            return false;
        }
        let st = admission::pod_status(v, &ip, true, !never);
        v["status"] = st;
        true
    });
}

/// The pod and up to two controller owners above it (ReplicaSet, Deployment):
/// readiness annotations and never-ready faults may name any of them.
fn owner_chain(c: &Cluster, pod: &Value) -> Vec<Value> {
    let ns = get_str(pod, &["metadata", "namespace"]).unwrap_or_default();
    let mut chain: Vec<Value> = vec![pod.clone()];
    for _ in 0..2 {
        let cur = chain.last().expect("chain starts with the pod");
        let Some(r) = cur
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|r| r["controller"] == true))
        else {
            break;
        };
        let Some(rt) = c.registry.by_kind(
            r["apiVersion"].as_str().unwrap_or(""),
            r["kind"].as_str().unwrap_or(""),
        ) else {
            break;
        };
        let Some(o) = c.store.get(&rt.key(), ns, r["name"].as_str().unwrap_or("")) else {
            break;
        };
        chain.push(o.value.clone());
    }
    chain
}

/// Names a pod is known by for never-ready faults, and its readiness annotations.
fn pod_settings(c: &Cluster, pod: &Value) -> Settings {
    let chain = owner_chain(c, pod);
    let delay = chain
        .iter()
        .find_map(|o| annotation(o, ANN_READY_DELAY)?.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(c.ready_delay);
    let names: Vec<&str> = chain
        .iter()
        .filter_map(|o| get_str(o, &["metadata", "name"]))
        .collect();
    let never = chain
        .iter()
        .any(|o| annotation(o, ANN_NEVER_READY) == Some("true"))
        || c.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_never_ready(&names);
    Settings { delay, never }
}
