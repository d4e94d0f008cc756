//! Server-side apply: field sets, ownership (managedFields), conflicts and merge.

use crate::patch::{item_key, list_keys};
use crate::util::now_rfc3339;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A set of leaf field paths in the FieldsV1 element syntax (`f:spec`,
/// `k:{"name":"app"}`, `.`).
pub type FieldSet = BTreeSet<Vec<String>>;

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

const SKIP_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// Leaf paths of an object, excluding identity/system fields and `status`.
pub fn fields_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        for (k, v) in m {
            if matches!(k.as_str(), "apiVersion" | "kind" | "status") {
                continue;
            }
            if k == "metadata" {
                if let Value::Object(meta) = v {
                    for (mk, mv) in meta {
                        if SKIP_META.contains(&mk.as_str()) {
                            continue;
                        }
                        walk(
                            mk,
                            mv,
                            &mut vec!["f:metadata".to_string(), format!("f:{mk}")],
                            &mut out,
                        );
                    }
                }
                continue;
            }
            walk(k, v, &mut vec![format!("f:{k}")], &mut out);
        }
    }
    out
}

fn walk(field: &str, v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                path.push(format!("f:{k}"));
                walk(k, c, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let sample = items.iter().find(|i| i.is_object());
            match list_keys(field, sample) {
                Some(keys) if items.iter().all(|i| item_key(i, keys).is_some()) => {
                    for item in items {
                        let key = item_key(item, keys).expect("checked");
                        path.push(format!("k:{}", Value::Object(key)));
                        path.push(".".to_string());
                        out.insert(path.clone());
                        path.pop();
                        if let Value::Object(im) = item {
                            for (k, c) in im {
                                path.push(format!("f:{k}"));
                                walk(k, c, path, out);
                                path.pop();
                            }
                        }
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone());
                }
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at a field path (`.` returns the item itself).
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        if p == "." {
            continue;
        }
        if let Some(f) = p.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            let keys: Vec<&str> = key.keys().map(String::as_str).collect();
            cur = cur
                .as_array()?
                .iter()
                .find(|i| item_key(i, &keys).as_ref() == Some(&key))?;
        } else {
            return None;
        }
    }
    Some(cur)
}

fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    if last == "." {
        // remove the keyed item
        let Some((item, parent)) = parent.split_last() else {
            return;
        };
        if let (Some(k), Some(Value::Array(list))) =
            (item.strip_prefix("k:"), value_at_mut(obj, parent))
            && let Ok(key) = serde_json::from_str::<Map<String, Value>>(k)
        {
            let keys: Vec<&str> = key.keys().map(String::as_str).collect();
            list.retain(|i| item_key(i, &keys).as_ref() != Some(&key));
        }
        return;
    }
    if let (Some(f), Some(Value::Object(m))) = (last.strip_prefix("f:"), value_at_mut(obj, parent))
    {
        m.remove(f);
    }
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for p in path {
        if p == "." {
            continue;
        }
        if let Some(f) = p.strip_prefix("f:") {
            cur = cur.get_mut(f)?;
        } else if let Some(k) = p.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            let keys: Vec<&str> = key.keys().map(String::as_str).collect();
            cur = cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| item_key(i, &keys).as_ref() == Some(&key))?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Human form of a path: `.spec.containers[name="app"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:")
            && let Ok(key) = serde_json::from_str::<Map<String, Value>>(k)
        {
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

pub fn set_to_json(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for p in path {
            cur = cur
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("object");
        }
    }
    Value::Object(root)
}

pub fn json_to_set(v: &Value) -> FieldSet {
    fn rec(v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, c) in m {
                    path.push(k.clone());
                    rec(c, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| ManagedEntry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .into(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .into(),
                    time: e.get("time").and_then(Value::as_str).unwrap_or("").into(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .map(String::from),
                    fields: e.get("fieldsV1").map(json_to_set).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": set_to_json(&e.fields),
            });
            if let Some(s) = &e.subresource {
                v["subresource"] = json!(s);
            }
            v
        })
        .collect();
    let meta = crate::util::ensure_map(obj, &["metadata"]);
    if arr.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(arr));
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub manager: String,
    pub api_version: String,
    pub path: String,
}

/// Deep merge for apply: maps merge, associative lists merge by key, everything
/// else is replaced by the applied value.
pub fn apply_merge(target: &mut Value, applied: &Value, field: &str) {
    match (target, applied) {
        (Value::Object(t), Value::Object(a)) => {
            for (k, v) in a {
                match t.get_mut(k) {
                    Some(slot) => apply_merge(slot, v, k),
                    None => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t @ Value::Array(_), Value::Array(items)) => {
            let sample = items.iter().find(|i| i.is_object());
            let keys = list_keys(field, sample);
            match keys {
                Some(keys)
                    if sample.is_some() && items.iter().all(|i| item_key(i, keys).is_some()) =>
                {
                    let cur = t.as_array_mut().expect("array");
                    for item in items {
                        let key = item_key(item, keys);
                        match cur.iter_mut().find(|c| item_key(c, keys) == key) {
                            Some(c) => apply_merge(c, item, field),
                            None => cur.push(item.clone()),
                        }
                    }
                }
                _ => *t = applied.clone(),
            }
        }
        (t, a) => *t = a.clone(),
    }
}

/// Whether an entry is `manager`'s own apply (the set an apply replaces).
fn is_applier(e: &ManagedEntry, manager: &str) -> bool {
    e.manager == manager && e.operation == "Apply" && e.subresource.is_none()
}

/// Fields other managers own that the apply would change: the conflicts,
/// with where each is owned (entry index, path) so forcing can take them.
fn conflicts(
    entries: &[ManagedEntry],
    live: &Value,
    applied: &Value,
    new_set: &FieldSet,
    manager: &str,
) -> (Vec<Conflict>, Vec<(usize, Vec<String>)>) {
    let mut conflicts = Vec::new();
    let mut taken = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if is_applier(e, manager) || e.subresource.is_some() {
            continue;
        }
        for p in e.fields.intersection(new_set) {
            if p.last().map(String::as_str) == Some(".") {
                continue;
            }
            if value_at(live, p) != value_at(applied, p) {
                conflicts.push(Conflict {
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                    path: path_string(p),
                });
                taken.push((i, p.clone()));
            }
        }
    }
    (conflicts, taken)
}

/// Removes fields this manager applied before and no longer applies, unless
/// someone else owns them, then the maps that removal left empty.
fn remove_unapplied(
    result: &mut Value,
    entries: &[ManagedEntry],
    new_set: &FieldSet,
    manager: &str,
) {
    let old_set: FieldSet = entries
        .iter()
        .find(|e| is_applier(e, manager))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut removed: Vec<&Vec<String>> = old_set
        .difference(new_set)
        .filter(|p| {
            !entries
                .iter()
                .any(|e| !is_applier(e, manager) && e.fields.contains(*p))
        })
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        remove_at(result, p);
        prune_empty_parents(result, p);
    }
}

fn prune_empty_parents(result: &mut Value, p: &[String]) {
    for end in (1..p.len()).rev() {
        let prefix = &p[..end];
        if prefix.last().is_some_and(|s| s.starts_with("f:"))
            && value_at(result, prefix).is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
        {
            remove_at(result, prefix);
        } else {
            break;
        }
    }
}

/// The applied object without what an apply cannot set (status, server-set
/// metadata).
fn applicable(applied: &Value) -> Value {
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
            meta.remove("uid");
            meta.remove("creationTimestamp");
            meta.remove("generation");
        }
    }
    body
}

/// The manager's Apply entry now owns exactly `new_set`.
fn record_apply(
    entries: &mut Vec<ManagedEntry>,
    manager: &str,
    api_version: &str,
    new_set: FieldSet,
) {
    let now = now_rfc3339();
    match entries.iter_mut().find(|e| is_applier(e, manager)) {
        Some(e) => {
            e.fields = new_set;
            e.time = now;
            e.api_version = api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now,
            subresource: None,
            fields: new_set,
        }),
    }
}

/// Applies `applied` on top of `live` for `manager`. Returns the merged object
/// with updated managedFields, or the conflicts (when not forced).
pub fn apply(
    live: &Value,
    applied: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_managed(live);
    let new_set = fields_of(applied);
    let (conflicts, taken) = conflicts(&entries, live, applied, &new_set, manager);
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    // forcing takes the conflicting fields from their owners
    for (i, p) in taken {
        entries[i].fields.remove(&p);
    }
    let mut result = live.clone();
    remove_unapplied(&mut result, &entries, &new_set, manager);
    apply_merge(&mut result, &applicable(applied), "");
    record_apply(&mut entries, manager, api_version, new_set);
    write_managed(&mut result, &entries);
    Ok(result)
}

/// Records an Update-style write (create/update/patch) by `manager`: it takes
/// ownership of every field it changed; fields that disappeared lose all owners.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: Option<&str>,
) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let new_leaves = fields_of(new);
    let changed: FieldSet = new_leaves
        .iter()
        .filter(|p| match old {
            Some(o) => value_at(o, p) != value_at(new, p),
            None => true,
        })
        .cloned()
        .collect();
    for e in entries.iter_mut() {
        e.fields
            .retain(|p| new_leaves.contains(p) && !changed.contains(p));
    }
    if !changed.is_empty() {
        let now = now_rfc3339();
        let found = entries.iter_mut().find(|e| {
            e.manager == manager
                && e.operation == "Update"
                && e.subresource.as_deref() == subresource
        });
        match found {
            Some(e) => {
                e.fields.extend(changed);
                e.time = now;
            }
            None => entries.push(ManagedEntry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now,
                subresource: subresource.map(String::from),
                fields: changed,
            }),
        }
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "d", "namespace": "ns", "labels": {"app": "d"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn fieldset_roundtrip() {
        let s = fields_of(&dep(1, "x"));
        assert!(s.contains(&vec!["f:spec".to_string(), "f:replicas".to_string()]));
        assert!(s.contains(&vec![
            "f:spec".to_string(),
            "f:template".to_string(),
            "f:spec".to_string(),
            "f:containers".to_string(),
            "k:{\"name\":\"c\"}".to_string(),
            ".".to_string()
        ]));
        assert_eq!(json_to_set(&set_to_json(&s)), s);
    }

    #[test]
    fn apply_create_and_conflict() {
        let live = apply(&json!({}), &dep(1, "x"), "a", "apps/v1", false).unwrap();
        assert_eq!(live["spec"]["replicas"], 1);
        assert_eq!(live["metadata"]["managedFields"][0]["manager"], "a");
        // same values from another manager: shared ownership, no conflict
        let live2 = apply(&live, &dep(1, "x"), "b", "apps/v1", false).unwrap();
        // different value: conflict with both owners
        let err = apply(&live2, &dep(3, "x"), "c", "apps/v1", false).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].path, ".spec.replicas");
        // force takes ownership
        let forced = apply(&live2, &dep(3, "x"), "c", "apps/v1", true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let entries = read_managed(&forced);
        let a = entries.iter().find(|e| e.manager == "a").unwrap();
        assert!(
            !a.fields
                .contains(&vec!["f:spec".into(), "f:replicas".into()])
        );
        // the owner can change its own field
        let again = apply(&forced, &dep(5, "x"), "c", "apps/v1", false).unwrap();
        assert_eq!(again["spec"]["replicas"], 5);
    }

    #[test]
    fn apply_removes_dropped_fields_and_merges_lists() {
        let live = apply(&json!({}), &dep(1, "x"), "a", "apps/v1", false).unwrap();
        let mut next = dep(1, "y");
        next["metadata"].as_object_mut().unwrap().remove("labels");
        let out = apply(&live, &next, "a", "apps/v1", false).unwrap();
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "y"
        );
        // a second manager adds a container: merged by name
        let side = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}});
        let out2 = apply(&out, &side, "b", "apps/v1", false).unwrap();
        assert_eq!(
            out2["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn update_tracking_takes_ownership() {
        let live = apply(&json!({}), &dep(1, "x"), "a", "apps/v1", false).unwrap();
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(4);
        track_update(Some(&live), &mut new, "kubectl-scale", "apps/v1", None);
        let err = apply(&new, &dep(1, "x"), "a", "apps/v1", false).unwrap_err();
        assert_eq!(err[0].manager, "kubectl-scale");
    }
}
