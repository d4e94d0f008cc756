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

/// The flag that sets `path` (as the context's values trees spell it) to `value`, in the
/// language of the source that renders the target: istioctl's `--set path=value` for a
/// bundle; Helm's `--set RELEASE:path=value` for charts, whose trees are keyed by release.
pub fn set_flag(source: crate::ReleaseSource, path: &str, value: &str) -> String {
    match (source, path.split_once('.')) {
        (crate::ReleaseSource::Charts, Some((release, rest))) => {
            format!("--set {release}:{rest}={value}")
        }
        _ => format!("--set {path}={value}"),
    }
}

pub use meshup_vocab::tree::covers;

/// What differs between two values, short: a scalar as `old → new`; a mapping or a list as
/// the entries added, removed and changed inside it (`ports[name:tcp] added,
/// ports[name:tcp-istiod] removed`), at most five, then how many more.
pub fn describe_change(old: Option<&Value>, new: Option<&Value>) -> String {
    let structured = |v: Option<&Value>| matches!(v, Some(Value::Object(_) | Value::Array(_)));
    if !structured(old) || !structured(new) {
        return format!("{} → {}", show(old), show(new));
    }
    let (a, b) = (
        inner(old.unwrap_or(&Value::Null)),
        inner(new.unwrap_or(&Value::Null)),
    );
    let mut parts = Vec::new();
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(_), None) => parts.push(format!("{k} removed")),
            (None, Some(v)) => parts.push(format!("{k} added ({})", show(Some(v)))),
            (Some(x), Some(y)) if x != y => {
                parts.push(format!("{k}: {}", describe_change(Some(x), Some(y))))
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return "only the order of its entries".into();
    }
    let more = parts.len().saturating_sub(5);
    parts.truncate(5);
    let mut out = parts.join(", ");
    if more > 0 {
        out.push_str(&format!(", and {more} more"));
    }
    out
}

/// The entries of a mapping or list, one level deep: keys; named items as `[name:x]`, or
/// by `port` for service ports; other items by position.
fn inner(v: &Value) -> BTreeMap<String, Value> {
    match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let key = match (&item["name"], &item["port"]) {
                    (Value::String(n), _) => format!("[name:{n}]"),
                    (_, Value::Number(p)) => format!("[port:{p}]"),
                    _ => format!("[{i}]"),
                };
                (key, item.clone())
            })
            .collect(),
        _ => BTreeMap::new(),
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
    fn set_flags_speak_the_sources_language() {
        use crate::ReleaseSource;
        assert_eq!(
            set_flag(ReleaseSource::Bundle, "values.pilot.traceSampling", "5"),
            "--set values.pilot.traceSampling=5"
        );
        assert_eq!(
            set_flag(ReleaseSource::Charts, "istiod.pilot.env.X", "1"),
            "--set istiod:pilot.env.X=1"
        );
    }

    #[test]
    fn structured_changes_are_described_by_what_differs() {
        let old = json!({"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}, {"name": "tls", "port": 15443}]});
        let new = json!({"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}, {"name": "tcp", "port": 31400}]});
        assert_eq!(
            describe_change(Some(&old), Some(&new)),
            r#"ports: [name:tcp] added ({"name":"tcp","port":31400}), [name:tls] removed"#
        );
        assert_eq!(describe_change(Some(&json!(1)), Some(&json!(2))), "1 → 2");
        assert_eq!(describe_change(None, Some(&json!("x"))), "(unset) → x");
    }

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
