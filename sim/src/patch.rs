//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.

use serde_json::{Map, Value};

/// Merge keys of associative lists, by field name (as in the Kubernetes
/// strategic-merge / server-side-apply schema). Returns `None` for atomic lists.
pub fn list_keys(field: &str, sample: Option<&Value>) -> Option<&'static [&'static str]> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "secrets" => Some(&["name"]),
        "volumeMounts" => Some(&["mountPath"]),
        "volumeDevices" => Some(&["devicePath"]),
        "conditions" => Some(&["type"]),
        "ownerReferences" => Some(&["uid"]),
        "hostAliases" => Some(&["ip"]),
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                Some(&["containerPort", "protocol"])
            } else {
                Some(&["port", "protocol"])
            }
        }
        _ => None,
    }
}

/// Key value of an item for the given key fields (protocol defaults to TCP).
pub fn item_key(item: &Value, keys: &[&str]) -> Option<Map<String, Value>> {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) if !v.is_null() => {
                m.insert(k.to_string(), v.clone());
            }
            _ if *k == "protocol" => {
                m.insert(k.to_string(), Value::from("TCP"));
            }
            _ => return None,
        }
    }
    Some(m)
}

pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn pointer_parts(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(vec![]);
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}"))?;
    Ok(rest.split('/').map(unescape).collect())
}

fn parent_mut<'a>(doc: &'a mut Value, parts: &[String]) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(p)
                .ok_or_else(|| format!("path element {p:?} not found"))?,
            Value::Array(a) => {
                let i: usize = p.parse().map_err(|_| format!("bad array index {p:?}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} out of range"))?
            }
            _ => return Err(format!("cannot descend into {p:?}")),
        };
    }
    Ok(cur)
}

fn op_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let parts = pointer_parts(path)?;
    let (last, parent) = parts.split_last().ok_or("cannot remove the root")?;
    match parent_mut(doc, parent)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| format!("{path}: not found")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if i >= a.len() {
                return Err(format!("{path}: index out of range"));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!("{path}: parent is not a container")),
    }
}

fn op_add(doc: &mut Value, path: &str, value: Value, replace: bool) -> Result<(), String> {
    let parts = pointer_parts(path)?;
    let Some((last, parent)) = parts.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut(doc, parent)? {
        Value::Object(m) => {
            if replace && !m.contains_key(last) {
                return Err(format!("{path}: not found"));
            }
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" && !replace {
                a.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| format!("bad index {last:?}"))?;
            if replace {
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| format!("{path}: index out of range"))?;
                *slot = value;
            } else {
                if i > a.len() {
                    return Err(format!("{path}: index out of range"));
                }
                a.insert(i, value);
            }
            Ok(())
        }
        _ => Err(format!("{path}: parent is not a container")),
    }
}

pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), String> {
    let ops = patch.as_array().ok_or("a JSON patch must be an array")?;
    let mut work = doc.clone();
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("op is required")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("path is required")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("{kind}: value is required"))
        };
        match kind {
            "add" => op_add(&mut work, path, value()?, false)?,
            "replace" => op_add(&mut work, path, value()?, true)?,
            "remove" => {
                op_remove(&mut work, path)?;
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("from is required")?;
                let v = if kind == "move" {
                    op_remove(&mut work, from)?
                } else {
                    work.pointer(from)
                        .cloned()
                        .ok_or_else(|| format!("{from}: not found"))?
                };
                op_add(&mut work, path, v, false)?;
            }
            "test" => {
                if work.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown JSON patch op {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

/// Strategic merge patch: maps merge, associative lists (containers, env, ports,
/// volumes, conditions, ...) merge by key, other lists are replaced. Supports the
/// `$patch: delete|replace` directives, `$deleteFromPrimitiveList/` and ignores
/// `$setElementOrder/` and `$retainKeys`.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut np = p.clone();
        np.remove("$patch");
        *target = Value::Object(np);
        strip_directives(target);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(cur)), Some(del)) = (t.get_mut(field), v.as_array()) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match v {
            Value::Array(items) => {
                let sample = items.iter().find(|i| i.is_object());
                let keys = list_keys(k, sample);
                match (keys, t.get_mut(k)) {
                    (Some(keys), Some(Value::Array(cur))) if sample.is_some() => {
                        merge_list(cur, items, keys)
                    }
                    (_, Some(Value::Array(cur))) if k == "finalizers" => {
                        for i in items {
                            if !cur.contains(i) {
                                cur.push(i.clone());
                            }
                        }
                    }
                    _ => {
                        let mut nv = Value::Array(
                            items
                                .iter()
                                .filter(|i| i.get("$patch").is_none())
                                .cloned()
                                .collect(),
                        );
                        strip_directives(&mut nv);
                        t.insert(k.clone(), nv);
                    }
                }
            }
            Value::Object(_) => {
                let slot = t.entry(k.clone()).or_insert(Value::Null);
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                strategic_merge(slot, v);
            }
            other => {
                t.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_list(cur: &mut Vec<Value>, items: &[Value], keys: &[&str]) {
    for item in items {
        let Some(key) = item_key(item, keys) else {
            continue;
        };
        let pos = cur
            .iter()
            .position(|c| item_key(c, keys).as_ref() == Some(&key));
        let directive = item.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                cur.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), Some("replace")) => {
                let mut n = item.clone();
                strip_directives(&mut n);
                cur[i] = n;
            }
            (Some(i), _) => strategic_merge(&mut cur[i], item),
            (None, _) => {
                let mut n = item.clone();
                strip_directives(&mut n);
                cur.push(n);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut d = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge_patch(&mut d, &json!({"a": null, "b": {"c": 5}, "l": [3]}));
        assert_eq!(d, json!({"b": {"c": 5, "d": 3}, "l": [3]}));
    }

    #[test]
    fn jsonpatch() {
        let mut d = json!({"metadata": {"labels": {"a": "1"}}, "l": [1, 2]});
        json_patch(
            &mut d,
            &json!([
                {"op": "add", "path": "/metadata/labels/b~1c", "value": "2"},
                {"op": "replace", "path": "/l/0", "value": 9},
                {"op": "add", "path": "/l/-", "value": 3},
                {"op": "remove", "path": "/metadata/labels/a"},
                {"op": "test", "path": "/l/1", "value": 2},
                {"op": "copy", "from": "/l/0", "path": "/x"},
                {"op": "move", "from": "/x", "path": "/y"}
            ]),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"metadata": {"labels": {"b/c": "2"}}, "l": [9, 2, 3], "y": 9})
        );
        let before = d.clone();
        assert!(json_patch(&mut d, &json!([{"op": "add", "path": "/z", "value": 1}, {"op": "test", "path": "/l/0", "value": 0}])).is_err());
        assert_eq!(d, before, "failed patch leaves the document untouched");
        assert!(
            json_patch(
                &mut d,
                &json!([{"op": "replace", "path": "/nope", "value": 1}])
            )
            .is_err()
        );
    }

    #[test]
    fn strategic() {
        let mut d = json!({"spec": {"template": {"metadata": {"annotations": {"a": "1"}}, "spec": {
            "containers": [{"name": "app", "image": "app:1", "env": [{"name": "X", "value": "1"}]},
                           {"name": "side", "image": "side:1"}],
            "tolerations": [{"key": "a"}]
        }}}});
        strategic_merge(
            &mut d,
            &json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {
                "$setElementOrder/containers": [{"name": "app"}, {"name": "side"}],
                "containers": [{"name": "app", "image": "app:2", "env": [{"name": "Y", "value": "2"}]},
                               {"name": "side", "$patch": "delete"},
                               {"name": "new", "image": "new:1"}],
                "tolerations": [{"key": "b"}]
            }}}}),
        );
        assert_eq!(
            d,
            json!({"spec": {"template": {"metadata": {"annotations": {"a": "1", "kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {
                "containers": [{"name": "app", "image": "app:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                               {"name": "new", "image": "new:1"}],
                "tolerations": [{"key": "b"}]
            }}}})
        );
        let mut l = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        strategic_merge(
            &mut l,
            &json!({"metadata": {"labels": {"a": null, "c": "3"}}}),
        );
        assert_eq!(l, json!({"metadata": {"labels": {"b": "2", "c": "3"}}}));
    }
}
