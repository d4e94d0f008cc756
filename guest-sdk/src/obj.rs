//! Small helpers to read Kubernetes objects held as `serde_json::Value`.

use serde_json::Value;

/// `metadata.name`, or "".
pub fn name(obj: &Value) -> &str {
    str_at(obj, "metadata.name").unwrap_or("")
}

/// `metadata.namespace`, or "" for cluster-scoped objects.
pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "metadata.namespace").unwrap_or("")
}

/// `Kind namespace/name` (or `Kind name` when cluster-scoped): a finding subject.
pub fn subject(obj: &Value) -> String {
    let kind = str_at(obj, "kind").unwrap_or("Object");
    match namespace(obj) {
        "" => format!("{kind} {}", name(obj)),
        ns => format!("{kind} {ns}/{}", name(obj)),
    }
}

/// A label value.
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// The value at a dotted path (`spec.template.spec.containers`); numeric segments index arrays.
pub fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(obj, |v, seg| match v {
            Value::Array(items) => items.get(seg.parse::<usize>().ok()?),
            _ => v.get(seg),
        })
}

/// A string at a dotted path.
pub fn str_at<'a>(obj: &'a Value, path: &str) -> Option<&'a str> {
    at(obj, path)?.as_str()
}

/// An integer at a dotted path.
pub fn i64_at(obj: &Value, path: &str) -> Option<i64> {
    at(obj, path)?.as_i64()
}

/// Whether every `key=value` of `selector` (a `matchLabels`-style object) is among the labels of `obj`.
pub fn matches_labels(obj: &Value, selector: &Value) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| label(obj, k) == v.as_str() && v.is_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_subjects() {
        let d = json!({"kind":"Deployment","metadata":{"name":"istiod","namespace":"istio-system","labels":{"app":"istiod"}},
                       "spec":{"replicas":2,"template":{"spec":{"containers":[{"image":"istio/pilot:1.8.6"}]}}}});
        assert_eq!(i64_at(&d, "spec.replicas"), Some(2));
        assert_eq!(
            str_at(&d, "spec.template.spec.containers.0.image"),
            Some("istio/pilot:1.8.6")
        );
        assert_eq!(subject(&d), "Deployment istio-system/istiod");
        assert!(matches_labels(&d, &json!({"app":"istiod"})));
        assert!(!matches_labels(&d, &json!({"app":"other"})));
        assert!(!matches_labels(&d, &json!({})));
    }
}
