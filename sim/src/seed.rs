//! Loading plain multi-document Kubernetes YAML into the store.

use crate::admission;
use crate::cluster::{Cluster, WriteOpts};
use anyhow::{Context, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};

/// Parses multi-document YAML (`List` kinds are flattened).
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).with_context(|| format!("document {}", i + 1))?;
        if v.is_null() {
            continue;
        }
        if v.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
        {
            if let Some(items) = v.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
                continue;
            }
        }
        out.push(v);
    }
    Ok(out)
}

fn rank(v: &Value) -> u8 {
    match v.get("kind").and_then(Value::as_str) {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        Some("Pod") => 3,
        _ => 2,
    }
}

/// Loads objects: namespaces first, then CRDs, then everything else. Missing
/// namespaces are created. Pods keep their status if given, else are made
/// Running and Ready.
pub fn load(c: &Cluster, mut docs: Vec<Value>) -> anyhow::Result<usize> {
    docs.sort_by_key(rank);
    let ns_rt = c
        .registry
        .lookup("", "v1", "namespaces")
        .expect("namespaces");
    let wo = WriteOpts {
        manager: "meshup-sim-seed".into(),
        seed: true,
        ..Default::default()
    };
    let mut n = 0;
    for mut v in docs {
        let api_version = v
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = v
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let name = v
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let rt = c
            .registry
            .by_kind(&api_version, &kind)
            .ok_or_else(|| anyhow!("seed: unknown type {api_version}/{kind} ({name})"))?;
        let ns = if rt.namespaced {
            v.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        if rt.namespaced && c.store.get("/namespaces", "", &ns).is_none() {
            c.create(&ns_rt, "", json!({"metadata": {"name": ns}}), &wo)
                .map_err(|e| anyhow!("seed: namespace {ns}: {}", e.message))?;
        }
        if rt.plural == "pods" && rt.group.is_empty() {
            let ip = v
                .pointer("/status/podIP")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| c.next_pod_ip());
            if v.get("status").is_none_or(|s| s.get("phase").is_none()) {
                v["status"] = admission::pod_status(&v, &ip, true, true);
            } else if v.pointer("/status/podIP").is_none() {
                v["status"]["podIP"] = json!(ip);
            }
            crate::util::ensure_map(&mut v, &["spec"])
                .entry("nodeName")
                .or_insert(json!(admission::NODE_NAME));
        }
        if rt.plural == "namespaces" && c.store.get("/namespaces", "", &name).is_some() {
            continue;
        }
        c.create(&rt, &ns, v, &wo)
            .map_err(|e| anyhow!("seed: {kind} {ns}/{name}: {}", e.message))?;
        n += 1;
    }
    Ok(n)
}
