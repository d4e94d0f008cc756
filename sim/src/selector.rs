//! Label and field selectors.
//!
//! Label selectors are parsed and matched by `meshup-vocab`, the vocabulary crate shared
//! with the host and the policy SDK: it is plain Kubernetes (apimachinery's selector
//! grammar) with nothing of meshup in it, so the simulator stays ignorant of meshup while
//! every part answers a selector the same way. What only an API server needs stays
//! here: building selectors from `metav1.LabelSelector` objects and Service maps, and
//! field selectors (a per-kind list of supported fields).

use meshup_vocab::selector::{Requirement as Req, Selector};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Selector);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        Selector::parse(s)
            .map(LabelSelector)
            .map_err(|e| e.to_string())
    }

    /// From a `metav1.LabelSelector` object (matchLabels + matchExpressions).
    /// `None` selector matches nothing, an empty one everything.
    pub fn from_object(v: &Value) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if let Some(ml) = v.get("matchLabels").and_then(Value::as_object) {
            for (k, val) in ml {
                reqs.push(Req::Eq(k.clone(), val.as_str().unwrap_or_default().into()));
            }
        }
        if let Some(me) = v.get("matchExpressions").and_then(Value::as_array) {
            for e in me {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(match e.get("operator").and_then(Value::as_str) {
                    Some("In") => Req::In(key, values),
                    Some("NotIn") => Req::NotIn(key, values),
                    Some("Exists") => Req::Exists(key),
                    Some("DoesNotExist") => Req::NotExists(key),
                    other => return Err(format!("invalid selector operator {other:?}")),
                });
            }
        }
        Ok(LabelSelector(Selector::from_requirements(reqs)))
    }

    /// From a plain map selector (Service `spec.selector`).
    pub fn from_map(m: &Map<String, Value>) -> Self {
        LabelSelector(Selector::from_requirements(
            m.iter()
                .map(|(k, v)| Req::Eq(k.clone(), v.as_str().unwrap_or_default().into()))
                .collect(),
        ))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.0.matches_labels(labels)
    }

    pub fn matches_obj(&self, obj: &Value) -> bool {
        self.matches(crate::util::labels(obj))
    }
}

/// Field selectors: `metadata.name`, `metadata.namespace` and a few common others
/// (`status.phase`, `spec.nodeName`, `type`, ...) with `=`, `==`, `!=`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    pub reqs: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid field selector {part:?}"));
            };
            let k = k.trim();
            if !matches!(
                k,
                "metadata.name"
                    | "metadata.namespace"
                    | "status.phase"
                    | "spec.nodeName"
                    | "type"
                    | "involvedObject.name"
                    | "involvedObject.kind"
                    | "involvedObject.namespace"
                    | "involvedObject.uid"
                    | "reason"
            ) {
                return Err(format!("field label not supported: {k}"));
            }
            reqs.push((k.to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The single name this selector pins (`metadata.name=x`), if any.
    pub fn pinned_name(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(k, eq, _)| k == "metadata.name" && *eq)
            .map(|(_, _, v)| v.as_str())
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(k, eq, v)| {
            let path: Vec<&str> = k.split('.').collect();
            let actual = crate::util::get_str(obj, &path).unwrap_or("");
            (actual == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn l(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn all_operators() {
        let labels = l(json!({"app": "web", "tier": "fe", "env": "prod"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&labels));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app!=web"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(m("env in (prod, staging)"));
        assert!(!m("env in (dev)"));
        assert!(m("env notin (dev,staging)"));
        assert!(!m("env notin (prod)"));
        assert!(m("missing notin (prod)"));
        assert!(m("tier"));
        assert!(!m("missing"));
        assert!(m("!missing"));
        assert!(!m("!tier"));
        assert!(m("app=web,env in (prod,dev),!missing,tier"));
        assert!(!m("app=web,env in (dev)"));
        assert!(m(""));
        assert!(LabelSelector::parse("a b c=d").is_err());
    }

    #[test]
    fn object_selector() {
        let s = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "v", "operator": "In", "values": ["1", "2"]},
                                 {"key": "z", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert!(s.matches(Some(&l(json!({"app": "x", "v": "2"})))));
        assert!(!s.matches(Some(&l(json!({"app": "x", "v": "3"})))));
        assert!(!s.matches(Some(&l(json!({"app": "x", "v": "1", "z": ""})))));
    }

    #[test]
    fn fields() {
        let obj =
            json!({"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}});
        let f = |s: &str| FieldSelector::parse(s).unwrap().matches(&obj);
        assert!(f("metadata.name=a"));
        assert!(f("metadata.name==a,metadata.namespace=ns"));
        assert!(!f("metadata.name!=a"));
        assert!(f("status.phase=Running"));
        assert!(FieldSelector::parse("spec.foo=1").is_err());
        assert_eq!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .pinned_name(),
            Some("a")
        );
    }
}
