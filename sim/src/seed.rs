//! Loading plain multi-document Kubernetes YAML into the store.

use crate::admission;
use crate::cluster::{Cluster, WriteOpts};
use anyhow::{Context, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};

/// Parses multi-document YAML (`List` kinds are flattened).
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for_each_document(text, |v| {
        out.push(v);
        Ok(())
    })?;
    Ok(out)
}

fn for_each_document(
    text: &str,
    mut f: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(doc).with_context(|| format!("document {}", i + 1))?;
        if v.is_null() {
            continue;
        }
        if v.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
            && let Some(items) = v.get("items").and_then(Value::as_array)
        {
            for it in items {
                f(it.clone())?;
            }
            continue;
        }
        f(v)?;
    }
    Ok(())
}

/// Loads objects in one pass: missing namespaces are created on the way (a
/// later Namespace document still contributes its labels and annotations) and
/// objects of types not known yet (custom resources before their CRD) are
/// retried at the end. Pods keep their status if given, else are made Running
/// and Ready.
pub struct Loader<'a> {
    c: &'a Cluster,
    deferred: Vec<Value>,
    pub loaded: usize,
}

impl<'a> Loader<'a> {
    pub fn new(c: &'a Cluster) -> Self {
        Loader {
            c,
            deferred: Vec::new(),
            loaded: 0,
        }
    }

    pub fn add(&mut self, v: Value) -> anyhow::Result<()> {
        let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
        if self.c.registry.by_kind(api_version, kind).is_none() {
            self.deferred.push(v);
            return Ok(());
        }
        load_one(self.c, v)?;
        self.loaded += 1;
        Ok(())
    }

    pub fn finish(mut self) -> anyhow::Result<usize> {
        for v in std::mem::take(&mut self.deferred) {
            load_one(self.c, v)?;
            self.loaded += 1;
        }
        Ok(self.loaded)
    }
}

/// Loads a multi-document YAML text, one document at a time.
pub fn load_yaml(c: &Cluster, text: &str) -> anyhow::Result<usize> {
    let mut loader = Loader::new(c);
    for_each_document(text, |v| loader.add(v))?;
    loader.finish()
}

/// Loads already-parsed objects.
pub fn load(c: &Cluster, docs: Vec<Value>) -> anyhow::Result<usize> {
    let mut loader = Loader::new(c);
    for v in docs {
        loader.add(v)?;
    }
    loader.finish()
}

fn load_one(c: &Cluster, mut v: Value) -> anyhow::Result<()> {
    let wo = WriteOpts {
        manager: "meshup-sim-seed".into(),
        seed: true,
        ..Default::default()
    };
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
        let ns_rt = c
            .registry
            .lookup("", "v1", "namespaces")
            .expect("namespaces");
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
    if rt.plural == "namespaces"
        && rt.group.is_empty()
        && c.store.get("/namespaces", "", &name).is_some()
    {
        // created implicitly before its document: add its labels/annotations
        c.modify("/namespaces", "", &name, |cur| {
            for k in ["labels", "annotations"] {
                if let Some(m) = v
                    .pointer(&format!("/metadata/{k}"))
                    .and_then(Value::as_object)
                {
                    let t = crate::util::ensure_map(cur, &["metadata", k]);
                    for (a, b) in m {
                        t.insert(a.clone(), b.clone());
                    }
                }
            }
            true
        });
        return Ok(());
    }
    c.create(&rt, &ns, v, &wo)
        .map_err(|e| anyhow!("seed: {kind} {ns}/{name}: {}", e.message))?;
    Ok(())
}
