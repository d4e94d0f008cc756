//! Loading plain multi-document Kubernetes YAML into the store.

use crate::admission;
use crate::cluster::{Cluster, WriteOpts};
use anyhow::{Context, anyhow};
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

/// Splits a multi-document YAML stream at `---` lines. Documents that are
/// JSON (a common export format) are parsed with serde_json, the rest with
/// serde_yaml.
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let l = line.trim_end();
        if l == "---" || l.starts_with("--- ") || l == "..." {
            docs.push(&text[start..pos]);
            start = pos + if l.starts_with("--- ") { 4 } else { line.len() };
        }
        pos += line.len();
    }
    docs.push(&text[start..]);
    docs
}

fn for_each_document(
    text: &str,
    mut f: impl FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for (i, doc) in split_documents(text).into_iter().enumerate() {
        let trimmed = doc.trim_start();
        if trimmed
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        let v: Value = if trimmed.starts_with('{') {
            match serde_json::from_str(trimmed) {
                Ok(v) => v,
                Err(_) => {
                    serde_yaml::from_str(doc).with_context(|| format!("document {}", i + 1))?
                }
            }
        } else {
            serde_yaml::from_str(doc).with_context(|| format!("document {}", i + 1))?
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let text = "# comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"b\"}}\n--- {apiVersion: v1, kind: Namespace, metadata: {name: c}}\n...\n---\nkind: List\napiVersion: v1\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: d}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: e}}\n";
        let docs = parse_documents(text).unwrap();
        let names: Vec<&str> = docs
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a", "b", "c", "d", "e"]);
        assert!(parse_documents("a: [").is_err());
    }
}
