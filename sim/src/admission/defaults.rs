//! Defaulting, as the API server's per-kind defaulters do it, on every write.

use crate::registry::ResourceType;
use crate::util::{base64_encode, ensure_map, get_str};
use serde_json::{Value, json};

fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs.iter_mut() {
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

/// Defaults applied on every write (create and update).
pub fn default(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => default_pod_spec(obj.get_mut("spec")),
        ("apps", _) => default_pod_spec(obj.pointer_mut("/spec/template/spec")),
        _ => {}
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => default_deployment(obj),
        ("apps", "replicasets") => {
            ensure_map(obj, &["spec"])
                .entry("replicas")
                .or_insert(json!(1));
        }
        ("apps", "daemonsets") => default_daemonset(obj),
        ("", "services") => default_service(obj),
        ("", "secrets") => default_secret(obj),
        ("", "namespaces") => default_namespace(obj),
        _ => {}
    }
}

fn default_deployment(obj: &mut Value) {
    let spec = ensure_map(obj, &["spec"]);
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    let strategy = spec
        .entry("strategy")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(s) = strategy {
        s.entry("type").or_insert(json!("RollingUpdate"));
        if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                ru.entry("maxSurge").or_insert(json!("25%"));
                ru.entry("maxUnavailable").or_insert(json!("25%"));
            }
        }
    }
}

fn default_daemonset(obj: &mut Value) {
    let spec = ensure_map(obj, &["spec"]);
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
    if let Some(s) = us.as_object_mut() {
        s.entry("type").or_insert(json!("RollingUpdate"));
        if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
            if let Some(ru) = ru.as_object_mut() {
                ru.entry("maxUnavailable").or_insert(json!(1));
                ru.entry("maxSurge").or_insert(json!(0));
            }
        }
    }
}

fn default_service(obj: &mut Value) {
    let spec = ensure_map(obj, &["spec"]);
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

/// `stringData` is write-only: it is folded into `data`, base64-encoded.
fn default_secret(obj: &mut Value) {
    let m = obj.as_object_mut().expect("object");
    m.entry("type").or_insert(json!("Opaque"));
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                d.insert(
                    k,
                    json!(base64_encode(v.as_str().unwrap_or_default().as_bytes())),
                );
            }
        }
    }
}

fn default_namespace(obj: &mut Value) {
    let name = get_str(obj, &["metadata", "name"])
        .unwrap_or_default()
        .to_string();
    ensure_map(obj, &["metadata", "labels"])
        .insert("kubernetes.io/metadata.name".into(), json!(name));
    ensure_map(obj, &["spec"])
        .entry("finalizers")
        .or_insert(json!(["kubernetes"]));
    let status = ensure_map(obj, &["status"]);
    if !status.contains_key("phase") {
        status.insert("phase".into(), json!("Active"));
    }
}
