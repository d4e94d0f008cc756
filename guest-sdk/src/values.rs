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

pub use meshup_vocab::tree::{covers, describe_change, show};

/// A values file that sets `path` (as the context's values trees spell it) to a structured
/// `value`, in the language of the source that renders the target: an IstioOperator for
/// `-f` with a bundle; a Helm values file for `-f RELEASE=FILE` with charts. Block YAML, so a
/// reader sees the port or the variable that matters instead of one line of JSON.
pub fn values_snippet(source: crate::ReleaseSource, path: &str, value: &Value) -> String {
    let (header, tree) = match (source, path.split_once('.')) {
        (crate::ReleaseSource::Charts, Some((release, rest))) => (
            format!("# a Helm values file for {release}: -f {release}=FILE\n"),
            nest(rest, value),
        ),
        _ => (
            "# an IstioOperator file: -f FILE\napiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\n"
                .to_string(),
            serde_json::json!({ "spec": nest(path, value) }),
        ),
    };
    let mut out = header;
    yaml(&tree, 0, &mut out);
    out.trim_end().to_string()
}

/// `value` at `path` (`a.b[name:x].c`), as a tree: a `[name:x]` segment is a list holding
/// the item named `x`.
fn nest(path: &str, value: &Value) -> Value {
    let mut segments: Vec<String> = Vec::new();
    for part in path.split('.') {
        match part.split_once("[name:") {
            Some((key, name)) => {
                segments.push(key.to_string());
                segments.push(format!("[name:{}", name));
            }
            None => segments.push(part.to_string()),
        }
    }
    let mut tree = value.clone();
    for seg in segments.iter().rev() {
        tree = match seg.strip_prefix("[name:").and_then(|n| n.strip_suffix(']')) {
            Some(name) => {
                let mut item = serde_json::Map::new();
                item.insert("name".into(), Value::String(name.to_string()));
                if let Value::Object(m) = tree {
                    item.extend(m);
                }
                Value::Array(vec![Value::Object(item)])
            }
            None => serde_json::json!({ seg.as_str(): tree }),
        };
    }
    tree
}

/// Block YAML of a JSON tree; scalars as JSON, which YAML reads the same.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            // A list item's `name` first, as people write them.
            let named = m.get_key_value("name").into_iter();
            for (k, child) in named.chain(m.iter().filter(|(k, _)| *k != "name")) {
                match child {
                    Value::Object(c) if !c.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(child, indent + 2, out);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(child, indent, out);
                    }
                    scalar => out.push_str(&format!("{pad}{k}: {scalar}\n")),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let mut inner = String::new();
                yaml(item, indent + 2, &mut inner);
                // The item's first line goes after `- `.
                let inner = inner.trim_start_matches(' ');
                if item.is_object() || item.is_array() {
                    out.push_str(&format!("{pad}- {inner}"));
                } else {
                    out.push_str(&format!("{pad}- {item}\n"));
                }
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
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
    fn snippets_speak_the_sources_language() {
        use crate::ReleaseSource;
        let service = json!({"type": "LoadBalancer", "ports": [{"name": "http2", "port": 80}, {"name": "tls", "port": 15443}]});
        assert_eq!(
            values_snippet(
                ReleaseSource::Bundle,
                "components.ingressGateways[name:istio-ingressgateway].k8s.service",
                &service
            ),
            "# an IstioOperator file: -f FILE\napiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec:\n  components:\n    ingressGateways:\n    - name: \"istio-ingressgateway\"\n      k8s:\n        service:\n          ports:\n          - name: \"http2\"\n            port: 80\n          - name: \"tls\"\n            port: 15443\n          type: \"LoadBalancer\""
        );
        assert_eq!(
            values_snippet(
                ReleaseSource::Charts,
                "istiod.pilot.env",
                &json!({"A": "x"})
            ),
            "# a Helm values file for istiod: -f istiod=FILE\npilot:\n  env:\n    A: \"x\""
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
