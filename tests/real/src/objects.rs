//! The control plane's objects as a snapshot to compare (istioctl's and meshup's end states
//! side by side, or one state before and after another tool ran), read with kubectl.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cluster::Cluster;

/// The kinds an Istio install applies in its namespace (istioctl's prune list plus what the
/// charts render); pods, ReplicaSets, endpoints and events are what controllers make.
const NAMESPACED: &str = "deployments,daemonsets,services,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets,horizontalpodautoscalers,leases";
/// Cluster-wide, only what carries istioctl's ownership label (other tests' objects and
/// Kubernetes' own ClusterRoles are not the install's).
const CLUSTER: &str = "mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings,customresourcedefinitions";

/// `Kind namespace/name` → the object without what the server writes (managedFields,
/// resourceVersion, uid, timestamps, generation, status) and without meshup's own
/// bookkeeping (its history Secrets and its lock Lease), and without what Kubernetes
/// creates in every namespace (the root CA ConfigMap).
pub fn snapshot(c: &Cluster) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let namespaced = c.get_json(&[NAMESPACED, "-n", "istio-system"]);
    let cluster = c.get_json(&[CLUSTER, "-l", "operator.istio.io/managed=Reconcile"]);
    for item in namespaced["items"]
        .as_array()
        .into_iter()
        .chain(cluster["items"].as_array())
        .flatten()
    {
        let kind = item["kind"].as_str().unwrap_or_default();
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        if (kind == "Secret" && name.starts_with("meshup."))
            || kind == "Lease"
            || (kind == "ConfigMap" && name == "kube-root-ca.crt")
        {
            continue;
        }
        let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
        out.insert(format!("{kind} {ns}/{name}"), comparable(item));
    }
    out
}

fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            // The Deployment controller's count of rollouts: how many, not what runs.
            a.remove("deployment.kubernetes.io/revision");
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// Every difference between two snapshots, one line each: objects only one has, and for
/// objects both have, each top-level field (`spec`, `data`, `metadata.labels`, ...) that
/// differs, with both values cut short.
pub fn differences(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!("{k}: only before")),
            Some(vb) if va != vb => {
                for field in fields(va, vb) {
                    out.push(format!("{k}: {field}"));
                }
            }
            _ => {}
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{k}: only after"));
    }
    out
}

/// The differing fields of two objects, by leaf path (at most 10 per object).
fn fields(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    leaves(a, b, String::new(), &mut out);
    out.truncate(10);
    out
}

fn leaves(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                leaves(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                leaves(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ => {
            let cut = |v: &Value| v.to_string().chars().take(80).collect::<String>();
            out.push(format!("{path}: {} → {}", cut(a), cut(b)));
        }
    }
}
