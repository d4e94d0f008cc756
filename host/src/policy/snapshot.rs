//! [`ClusterReader`] and [`Snapshot`]: cluster reads answered from memory, never blocking.

use std::path::Path;

use anyhow::Context as _;
use meshup_vocab::Selector;
use serde::Deserialize;
use serde_json::Value;

use crate::base::exit::Exit;

/// Synchronous, in-memory cluster access for policies. Must never block: host
/// functions run inside the guest's time budget and cannot be interrupted.
///
/// The errors stay `String`: they are the WIT contract. The sandbox hands them to the guest
/// unchanged as the `string` error of `cluster.get`/`cluster.list` (and the audit log
/// records them), so the text is all there is to them.
pub trait ClusterReader: Send + Sync {
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String>;
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String>;
}

/// Why a YAML text of objects cannot be a [`Snapshot`]: the user's input (an objects file of
/// `meshup policy test`), placed by document number; the caller names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document that is not YAML (or not one value).
    /// (The cause is part of the message, not a source: the error is printed on its own.)
    #[error("document {document}: {cause}")]
    Yaml {
        /// 1-based.
        document: usize,
        cause: serde_yaml::Error,
    },
    /// A document that is not a Kubernetes object: add its `apiVersion` and `kind`.
    #[error("document {document}: an object needs apiVersion and kind")]
    NotAnObject {
        /// 1-based.
        document: usize,
    },
}

/// Objects held in memory (e.g. read by the host before the precheck, or a YAML file).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    objects: Vec<Value>,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl Snapshot {
    /// A snapshot of these objects (each with `apiVersion`, `kind`, `metadata.name`). `List` kinds are flattened.
    pub fn from_objects(objects: Vec<Value>) -> Snapshot {
        let mut flat = Vec::with_capacity(objects.len());
        for o in objects {
            match o {
                Value::Object(_)
                    if s(&o, &["kind"]).ends_with("List") && o.get("items").is_some() =>
                {
                    if let Some(Value::Array(items)) = o.get("items") {
                        flat.extend(items.iter().cloned());
                    }
                }
                Value::Object(_) => flat.push(o),
                _ => {}
            }
        }
        Snapshot { objects: flat }
    }

    /// Parse a multi-document Kubernetes YAML file. Errors name the file and document.
    pub fn from_yaml_file(path: &Path) -> anyhow::Result<Snapshot> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read objects file {}", path.display()))?;
        Self::from_yaml_str(&text)
            .map_err(|e| Exit::bad_input(format!("objects file {}: {e}", path.display())).into())
    }

    /// Parse multi-document YAML.
    pub fn from_yaml_str(text: &str) -> Result<Snapshot, Error> {
        let mut objects = vec![];
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let document = i + 1;
            let v = Value::deserialize(doc).map_err(|cause| Error::Yaml { document, cause })?;
            if v.is_null() {
                continue;
            }
            if s(&v, &["apiVersion"]).is_empty() || s(&v, &["kind"]).is_empty() {
                return Err(Error::NotAnObject { document });
            }
            objects.push(v);
        }
        Ok(Snapshot::from_objects(objects))
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    fn of_kind<'a>(
        &'a self,
        api_version: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .filter(move |o| s(o, &["apiVersion"]) == api_version && s(o, &["kind"]) == kind)
    }
}

impl ClusterReader for Snapshot {
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String> {
        Ok(self
            .of_kind(api_version, kind)
            .find(|o| {
                s(o, &["metadata", "name"]) == name
                    && s(o, &["metadata", "namespace"]) == namespace.unwrap_or("")
            })
            .cloned())
    }

    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        let selector = label_selector
            .map(Selector::parse)
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(self
            .of_kind(api_version, kind)
            .filter(|o| namespace.is_none_or(|ns| s(o, &["metadata", "namespace"]) == ns))
            .filter(|o| selector.as_ref().is_none_or(|sel| sel.matches_object(o)))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, labels: Value) -> Value {
        json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":name,"namespace":ns,"labels":labels}})
    }

    #[test]
    fn get_list_and_selectors() {
        let snap = Snapshot::from_objects(vec![
            pod("a", "p1", json!({"app":"x","tier":"web"})),
            pod("b", "p2", json!({"app":"y"})),
            json!({"apiVersion":"v1","kind":"List","items":[pod("a","p3",json!({}))]}),
        ]);
        assert_eq!(snap.objects().len(), 3);
        assert!(snap.get("v1", "Pod", Some("a"), "p1").unwrap().is_some());
        assert!(snap.get("v1", "Pod", Some("b"), "p1").unwrap().is_none());
        assert_eq!(snap.list("v1", "Pod", None, None).unwrap().len(), 3);
        assert_eq!(snap.list("v1", "Pod", Some("a"), None).unwrap().len(), 2);
        let n = |sel: &str| snap.list("v1", "Pod", None, Some(sel)).unwrap().len();
        assert_eq!(n("app=x"), 1);
        assert_eq!(n("app!=x"), 2);
        assert_eq!(n("app in (x, y)"), 2);
        assert_eq!(n("app notin (x),tier"), 0);
        assert_eq!(n("!app"), 1);
        assert!(snap.list("v1", "Pod", None, Some("a b c")).is_err());
    }

    #[test]
    fn yaml_multi_doc() {
        let snap = Snapshot::from_yaml_str("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n---\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\n").unwrap();
        assert_eq!(snap.objects().len(), 2);
        let err = Snapshot::from_yaml_str("kind: X\n---\n: :\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1: an object needs apiVersion and kind"
        );
        let err = Snapshot::from_yaml_str("apiVersion: v1\nkind: X\n---\n[: :\n").unwrap_err();
        assert!(matches!(err, Error::Yaml { document: 2, .. }), "{err}");
    }
}
