//! Values trees (Helm/IstioOperator style JSON objects) flattened to dotted paths.

use std::collections::BTreeMap;

use serde_json::Value;

/// Every leaf of `tree` by dotted path (`global.proxy.resources.cpu`). Arrays and
/// empty objects are leaves.
pub fn flatten(tree: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    walk(tree, String::new(), &mut out);
    out
}

fn walk(v: &Value, prefix: String, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(child, p, out);
            }
        }
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix, v.clone());
        }
    }
}

/// Whether `path` or one of its ancestors/descendants is set in the flattened overlay.
pub fn touches(overlay: &BTreeMap<String, Value>, path: &str) -> bool {
    overlay.keys().any(|k| {
        k == path
            || k.strip_prefix(path).is_some_and(|r| r.starts_with('.'))
            || path
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with('.'))
    })
}

/// Render a JSON leaf compactly for messages (`"x"` → `x`).
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "(unset)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_and_touches() {
        let f = flatten(&json!({"a":{"b":1,"c":{"d":"x"}},"e":[1,2],"f":{}}));
        assert_eq!(f.keys().collect::<Vec<_>>(), ["a.b", "a.c.d", "e", "f"]);
        assert!(touches(&f, "a.c"));
        assert!(touches(&f, "a.c.d.z"));
        assert!(!touches(&f, "a.cc"));
        assert_eq!(show(f.get("a.c.d")), "x");
    }
}
