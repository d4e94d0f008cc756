//! Value trees: merging, flattening to paths, and "what differs from a profile".
//!
//! A tree is an IstioOperator spec (see `iop` for the language and why). Lists of named
//! mappings (`components.ingressGateways`, `k8s.env`) merge item by item on `name`, the
//! way istioctl's strategic merge does, so an overlay that names one gateway changes that
//! gateway only. Paths name such items as `[name:<name>]`, which `--set` accepts back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How an installer merges one IstioOperator tree over another (a named profile over
/// `default`, `-f` files over each other, the user's over the profile): mappings key by
/// key, every list replaced whole but those at `by_name` (dotted paths), which merge item by
/// item on `name`. istioctl 1.7+ merges so (a strategic merge whose only merge keys are the
/// gateway lists'); 1.6 replaced every list (a JSON merge patch, `by_name` empty).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MergeRule {
    #[serde(default)]
    pub by_name: Vec<String>,
}

impl MergeRule {
    pub fn merge(&self, base: &mut Value, overlay: &Value) {
        self.merge_at(base, overlay, &mut Vec::new());
    }

    fn merge_at(&self, base: &mut Value, overlay: &Value, path: &mut Vec<String>) {
        match (base, overlay) {
            (Value::Object(b), Value::Object(o)) => {
                for (k, v) in o {
                    path.push(k.clone());
                    match b.get_mut(k) {
                        Some(slot) => self.merge_at(slot, v, path),
                        None => {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                    path.pop();
                }
            }
            (Value::Array(b), Value::Array(o)) if self.by_name.contains(&path.join(".")) => {
                for item in o {
                    match b
                        .iter_mut()
                        .find(|x| x["name"].is_string() && x["name"] == item["name"])
                    {
                        Some(slot) => self.merge_at(slot, item, path),
                        None => b.push(item.clone()),
                    }
                }
            }
            (slot, v) => *slot = v.clone(),
        }
    }
}

/// The value at `path` (mapping keys), if any.
pub fn lookup<'a>(tree: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(tree, |t, k| t.as_object()?.get(*k))
}

/// Set `path` (mapping keys) to `value`, creating mappings on the way.
pub fn insert(tree: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = tree;
    for k in parents {
        if !t[*k].is_object() {
            t[*k] = Value::Object(Map::new());
        }
        t = &mut t[*k];
    }
    t[*last] = value;
}

/// Remove and return the value at `path` (mapping keys), if any.
pub fn remove(tree: &mut Value, path: &[&str]) -> Option<Value> {
    let (last, parents) = path.split_last()?;
    let parent = parents
        .iter()
        .try_fold(tree, |t, k| t.as_object_mut()?.get_mut(*k))?;
    parent.as_object_mut()?.remove(*last)
}

/// A value that differs between two trees.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueChange {
    pub path: String,
    pub old: Value,
    pub new: Value,
}

/// How a deep merge treats two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    /// Lists of named mappings merge on `name` (istioctl's IstioOperator overlays).
    ByName,
    /// Every list is replaced whole (Helm's value coalescing).
    Replace,
}

/// Deep-merge `overlay` into `base`: mappings merge key by key, lists of named mappings
/// merge on `name`, anything else replaces.
pub fn merge(base: &mut Value, overlay: &Value) {
    merge_with(base, overlay, Lists::ByName)
}

/// Deep-merge `overlay` into `base`, lists as `lists` says.
pub fn merge_with(base: &mut Value, overlay: &Value, lists: Lists) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge_with(slot, v, lists),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o))
            if lists == Lists::ByName && named_list(b) && named_list(o) =>
        {
            for item in o {
                match b.iter_mut().find(|x| x["name"] == item["name"]) {
                    Some(slot) => merge_with(slot, item, lists),
                    None => b.push(item.clone()),
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// A non-empty list whose items are all mappings with a string `name`.
pub fn named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i["name"].is_string())
}

/// A named list's items by their `name` (a later item of the same name wins).
pub fn by_name(items: &[Value]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or_default().to_string(),
                i.clone(),
            )
        })
        .collect()
}

/// `a.b[name:x].c`, from path segments (`[...]` segments attach without a dot).
pub fn dotted(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if !s.is_empty() && !p.starts_with('[') {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}

/// Every leaf as (path, value), sorted: the unit of value diffs. Named lists are walked
/// item by item (`components.ingressGateways[name:istio-ingressgateway].enabled`); other
/// lists, empty mappings below the top and free-form places (`k8s.resources`) are leaves.
pub fn leaves(tree: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    collect(tree, &mut Vec::new(), &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn collect(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Value)>) {
    // A component's Kubernetes settings (`k8s.resources`, `k8s.service`) are whole values.
    if is_k8s_field(path) {
        out.push((dotted(path), v.clone()));
        return;
    }
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(k.clone());
                collect(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) if named_list(items) => {
            for item in items {
                let name = item["name"].as_str().unwrap_or_default();
                path.push(format!("[name:{name}]"));
                for (k, v) in item.as_object().into_iter().flatten() {
                    if k != "name" {
                        path.push(k.clone());
                        collect(v, path, out);
                        path.pop();
                    }
                }
                path.pop();
            }
        }
        // An empty tree has no leaves; an empty mapping below the top is a value (`env: {}`).
        Value::Object(_) if path.is_empty() => {}
        _ => out.push((dotted(path), v.clone())),
    }
}

/// The part of `tree` that differs from `base`: what someone set on top of a profile.
/// Leaves equal to `base`'s are dropped, and so are keys `base` does not have (values of a
/// chart meshup does not model cannot have been set through meshup's inputs), except in a
/// free-form place (`free_form(path)`: Kubernetes settings, string maps), which is compared
/// as a whole.
pub fn subtract(tree: &Value, base: &Value, free_form: &dyn Fn(&[String]) -> bool) -> Value {
    subtract_at(tree, base, &mut Vec::new(), free_form)
}

fn subtract_at(
    tree: &Value,
    base: &Value,
    path: &mut Vec<String>,
    free_form: &dyn Fn(&[String]) -> bool,
) -> Value {
    if free_form(path) {
        return if covers(base, tree) {
            Value::Null
        } else {
            tree.clone()
        };
    }
    match (tree, base) {
        (Value::Object(t), Value::Object(b)) if !b.is_empty() => {
            let mut out = Map::new();
            for (k, v) in t {
                path.push(k.clone());
                let d = match b.get(k) {
                    Some(bv) => subtract_at(v, bv, path, free_form),
                    // A field the profile leaves unset, in a free-form place (`k8s.replicaCount`).
                    None if free_form(path) => v.clone(),
                    None => Value::Null,
                };
                path.pop();
                if !is_empty_diff(&d) {
                    out.insert(k.clone(), d);
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(b)) if named_list(t) && named_list(b) => {
            let mut items = Vec::new();
            for item in t {
                let Some(base_item) = b.iter().find(|x| x["name"] == item["name"]) else {
                    continue;
                };
                path.push("[]".into());
                let mut d = subtract_at(item, base_item, path, free_form);
                path.pop();
                if !is_empty_diff(&d) {
                    d["name"] = item["name"].clone();
                    items.push(d);
                }
            }
            Value::Array(items)
        }
        (t, b) if t == b => Value::Null,
        (t, _) => t.clone(),
    }
}

pub use meshup_vocab::tree::covers;

fn is_empty_diff(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Whether `path` is a component's Kubernetes setting (`components.pilot.k8s.resources`):
/// a Kubernetes object, one value for diffs.
pub fn is_k8s_field(path: &[String]) -> bool {
    matches!(path, [.., k8s, _] if k8s == "k8s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_lists_merge_by_name() {
        let mut base = json!({"gws": [{"name": "in", "enabled": true, "k8s": {"a": 1}},
                                      {"name": "out", "enabled": false}]});
        merge(
            &mut base,
            &json!({"gws": [{"name": "out", "enabled": true}, {"name": "new"}]}),
        );
        assert_eq!(
            base,
            json!({"gws": [{"name": "in", "enabled": true, "k8s": {"a": 1}},
                           {"name": "out", "enabled": true}, {"name": "new"}]})
        );
        // Unnamed lists replace.
        let mut t = json!({"l": [1, 2]});
        merge(&mut t, &json!({"l": [3]}));
        assert_eq!(t, json!({"l": [3]}));
    }

    #[test]
    fn merge_rules_merge_only_their_lists_by_name() {
        let rule = MergeRule {
            by_name: vec!["gws".into()],
        };
        let mut base = json!({"gws": [{"name": "in", "enabled": true,
                                       "k8s": {"env": [{"name": "A"}], "r": {"cpu": 1, "mem": 2}}}],
                              "env": [{"name": "X"}]});
        rule.merge(
            &mut base,
            &json!({"gws": [{"name": "in", "k8s": {"env": [{"name": "B"}], "r": {"cpu": 3}}},
                            {"name": "eg"}],
                    "env": [{"name": "Y"}]}),
        );
        assert_eq!(
            base,
            json!({"gws": [{"name": "in", "enabled": true,
                            "k8s": {"env": [{"name": "B"}], "r": {"cpu": 3, "mem": 2}}},
                           {"name": "eg"}],
                   "env": [{"name": "Y"}]})
        );
        // A JSON merge patch's rule: every list replaced.
        let mut t = json!({"gws": [{"name": "in", "enabled": true}]});
        MergeRule::default().merge(&mut t, &json!({"gws": [{"name": "in"}]}));
        assert_eq!(t, json!({"gws": [{"name": "in"}]}));
    }

    #[test]
    fn paths_insert_find_and_remove() {
        let mut t = json!({"values": {"global": {"a": 1}}});
        insert(&mut t, &["values", "pilot", "env", "X"], json!(false));
        assert_eq!(
            lookup(&t, &["values", "pilot", "env", "X"]),
            Some(&json!(false))
        );
        assert_eq!(remove(&mut t, &["values", "global", "a"]), Some(json!(1)));
        assert_eq!(lookup(&t, &["values", "global", "a"]), None);
        assert_eq!(remove(&mut t, &["nope", "x"]), None);
    }

    #[test]
    fn leaves_name_list_items() {
        let l = leaves(&json!({"c": {"g": [{"name": "in", "enabled": true}]}, "e": {}, "p": [1]}));
        assert_eq!(
            l,
            vec![
                ("c.g[name:in].enabled".to_string(), json!(true)),
                ("e".to_string(), json!({})),
                ("p".to_string(), json!([1])),
            ]
        );
        assert!(leaves(&json!({})).is_empty());
    }

    #[test]
    fn subtract_keeps_only_what_differs() {
        let profile = json!({"tag": "1.8.6", "values": {"pilot": {"traceSampling": 1.0, "a": true}},
                             "components": {"gws": [{"name": "in", "enabled": true}]}});
        let spec = json!({"tag": "1.8.6", "values": {"pilot": {"traceSampling": 5.0, "a": true},
                                                     "unmodelled": {"x": 1}},
                          "components": {"gws": [{"name": "in", "enabled": false}]}});
        let never = |_: &[String]| false;
        assert_eq!(
            subtract(&spec, &profile, &never),
            json!({"values": {"pilot": {"traceSampling": 5.0}},
                   "components": {"gws": [{"name": "in", "enabled": false}]}})
        );
        assert_eq!(subtract(&profile, &profile, &never), json!({}));
    }
}
