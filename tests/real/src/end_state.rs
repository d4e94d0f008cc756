//! A cluster's end state object by object, normalized so that two clusters brought to the
//! same state by different tools compare equal, and the differences between two such states.
//!
//! Read with kubectl: every listable kind in the given namespaces (but Events, and the
//! Endpoints and EndpointSlices the controllers derive from Pods and Services), and every
//! cluster-scoped object whose name says `istio`. Compared: kind, namespace, name, labels,
//! annotations, owner references (without uids), finalizers and everything outside
//! `metadata` and `status` (spec, data, rules, webhooks, ...). Left out: the rest of
//! `metadata` (managedFields, resourceVersion, uid, generation, timestamps), `status`,
//! meshup's history Secrets and Lease, Helm's release Secrets. What each cluster allocates
//! at random or has of its own is replaced by a placeholder: Pod names' random suffix,
//! the projected token volume's suffix (`kube-api-access-*`), Service cluster IPs and node
//! ports, and the cluster's CA (in `kube-root-ca.crt` and the webhooks' `caBundle`).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use crate::Cluster;

/// Kinds not compared: events, and what the endpoint controllers derive from Pods.
const DERIVED: [&str; 4] = [
    "events",
    "events.events.k8s.io",
    "endpoints",
    "endpointslices.discovery.k8s.io",
];

/// meshup's upgrade lock (`cluster::lock::LEASE_NAME`).
const MESHUP_LEASE: &str = "meshup-upgrade-lock";

/// Objects keyed `Kind namespace/name` (cluster-scoped: `Kind name`), normalized.
pub type State = BTreeMap<String, Value>;

/// The end state of `namespaces` and of the cluster's Istio objects.
#[track_caller]
pub fn snapshot(c: &Cluster, namespaces: &[&str]) -> State {
    let ca = std::fs::read_to_string(c.dir.path().join("pki/ca.crt")).expect("the cluster's CA");
    let kinds = |namespaced: bool| -> String {
        c.kubectl_ok(&[
            "api-resources",
            "--verbs=list",
            &format!("--namespaced={namespaced}"),
            "-o",
            "name",
        ])
        .lines()
        .filter(|k| !DERIVED.contains(k))
        .collect::<Vec<_>>()
        .join(",")
    };
    let mut items = Vec::new();
    let namespaced = kinds(true);
    for ns in namespaces {
        let list = c.get_json(&[&namespaced, "-n", ns]);
        items.extend(list["items"].as_array().cloned().unwrap_or_default());
    }
    let cluster = c.get_json(&[&kinds(false)]);
    items.extend(
        cluster["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| {
                o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains("istio"))
            })
            .cloned(),
    );
    let mut state = State::new();
    for o in items {
        if ignored(&o) {
            continue;
        }
        let (key, o) = normalize(o, &ca);
        let mut k = key.clone();
        let mut n = 2;
        while state.contains_key(&k) {
            k = format!("{key} #{n}");
            n += 1;
        }
        state.insert(k, o);
    }
    state
}

/// meshup's history and lock, Helm's release records.
fn ignored(o: &Value) -> bool {
    let kind = o["kind"].as_str().unwrap_or("");
    let owner = &o["metadata"]["labels"]["owner"];
    match kind {
        "Secret" => {
            let t = o["type"].as_str().unwrap_or("");
            t == "helm.sh/release.v1"
                || t == "meshup.dev/release.v1"
                || owner == "helm"
                || owner == "meshup"
        }
        "Lease" => o["metadata"]["name"] == MESHUP_LEASE,
        _ => false,
    }
}

fn normalize(mut o: Value, ca: &str) -> (String, Value) {
    let kind = o["kind"].as_str().unwrap_or("?").to_string();
    let ns = o["metadata"]["namespace"].as_str().map(str::to_string);
    let mut name = o["metadata"]["name"].as_str().unwrap_or("?").to_string();
    if kind == "Pod"
        && let Some(generated) = o["metadata"]["generateName"].as_str()
    {
        name = format!("{generated}*");
    }
    let key = match ns {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    };
    let obj = o.as_object_mut().unwrap();
    obj.remove("status");
    let meta = obj
        .remove("metadata")
        .and_then(|m| match m {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let mut kept = Map::new();
    for field in ["labels", "annotations", "ownerReferences", "finalizers"] {
        if let Some(v) = meta.get(field) {
            kept.insert(field.to_string(), v.clone());
        }
    }
    if let Some(Value::Array(refs)) = kept.get_mut("ownerReferences") {
        for r in refs {
            if let Some(r) = r.as_object_mut() {
                r.remove("uid");
            }
        }
    }
    obj.insert("metadata".into(), Value::Object(kept));
    if kind == "Service"
        && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
    {
        for field in ["clusterIP", "clusterIPs"] {
            if spec.contains_key(field) {
                spec.insert(field.into(), Value::String("<allocated>".into()));
            }
        }
        for port in spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(p) = port.as_object_mut().filter(|p| p.contains_key("nodePort")) {
                p.insert("nodePort".into(), Value::String("<allocated>".into()));
            }
        }
    }
    let ca_b64 = base64::engine::general_purpose::STANDARD.encode(ca);
    placeholders(&mut o, ca.trim(), &ca_b64);
    (key, o)
}

/// The cluster's CA and the token volume's random suffix, as placeholders.
fn placeholders(v: &mut Value, ca: &str, ca_b64: &str) {
    match v {
        Value::String(s) => {
            if s.trim() == ca || s == ca_b64 {
                *s = "<the cluster's CA>".into();
            } else if s.starts_with("kube-api-access-") {
                *s = "kube-api-access-*".into();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| placeholders(v, ca, ca_b64)),
        Value::Object(m) => m.values_mut().for_each(|v| placeholders(v, ca, ca_b64)),
        _ => {}
    }
}

/// The differences between two states, one line each: an object only in one, or a field
/// (`KEY path`) whose values differ.
pub fn differences(a: &State, b: &State, a_name: &str, b_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => out.push(format!("{k}: only after {a_name}")),
            Some(vb) => diff_values(k, "", va, vb, a_name, b_name, &mut out),
        }
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.push(format!("{k}: only after {b_name}"));
    }
    out
}

fn diff_values(
    key: &str,
    path: &str,
    a: &Value,
    b: &Value,
    a_name: &str,
    b_name: &str,
    out: &mut Vec<String>,
) {
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for f in keys {
                let p = format!("{path}.{f}");
                let null = Value::Null;
                let (x, y) = (ma.get(f).unwrap_or(&null), mb.get(f).unwrap_or(&null));
                diff_values(key, &p, x, y, a_name, b_name, out);
            }
        }
        (Value::Array(xa), Value::Array(xb)) if xa.len() == xb.len() => {
            for (i, (x, y)) in xa.iter().zip(xb).enumerate() {
                diff_values(key, &format!("{path}[{i}]"), x, y, a_name, b_name, out);
            }
        }
        _ if a != b => out.push(format!(
            "{key} {path}: {a_name} {} | {b_name} {}",
            short(a),
            short(b)
        )),
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "(absent)".to_string(),
        other => other.to_string(),
    };
    if s.chars().count() > 160 {
        format!("{}…", s.chars().take(160).collect::<String>())
    } else {
        s
    }
}
