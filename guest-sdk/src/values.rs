//! Values trees (IstioOperator specs) flattened to istioctl `--set` paths.

use std::collections::BTreeMap;

use serde_json::Value;

/// Every leaf of `tree` by path (`values.global.proxy.resources.cpu`). Lists of named
/// mappings (gateways) are walked item by item as `[name:<name>]`
/// (`components.ingressGateways[name:istio-ingressgateway].enabled`); other lists, empty
/// objects and a component's Kubernetes settings (`k8s.<field>`) are leaves.
pub fn flatten(tree: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    walk(tree, String::new(), &mut out);
    out
}

fn walk(v: &Value, prefix: String, out: &mut BTreeMap<String, Value>) {
    // A component's Kubernetes settings (`k8s.resources`, `k8s.service`) are whole values.
    let mut segments = prefix.rsplit('.');
    if segments.next().is_some() && segments.next() == Some("k8s") {
        out.insert(prefix, v.clone());
        return;
    }
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
        Value::Array(items) if is_named_list(items) => {
            for item in items {
                let name = item["name"].as_str().unwrap_or_default();
                for (k, child) in item.as_object().into_iter().flatten() {
                    if k != "name" {
                        walk(child, format!("{prefix}[name:{name}].{k}"), out);
                    }
                }
            }
        }
        _ if prefix.is_empty() => {}
        _ => {
            out.insert(prefix, v.clone());
        }
    }
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
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
        // An empty string stays visible, and `--set path=""` reads it back as one.
        Some(Value::String(s)) if s.is_empty() => "\"\"".into(),
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
        assert_eq!(show(Some(&json!(""))), "\"\"");
        let g = flatten(&json!({"c":{"gw":[{"name":"in","enabled":true}]}}));
        assert_eq!(g.keys().collect::<Vec<_>>(), ["c.gw[name:in].enabled"]);
        assert!(touches(&g, "c.gw[name:in]"));
        let k = flatten(&json!({"c":{"k8s":{"service":{"ports":[{"name":"a","port":1}]}}}}));
        assert_eq!(k.keys().collect::<Vec<_>>(), ["c.k8s.service"]);
    }
}
