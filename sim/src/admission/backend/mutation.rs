//! What a backend does to an object: its templates with the server's facts
//! filled in (`${name}`), merged into the object.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A backend's templates (`Value::Null`: none).
pub struct Templates<'a> {
    /// Merged, overwriting; lists appended to.
    pub add: &'a Value,
    /// Set: named list items merged into the object's item of the same name.
    pub set: &'a Value,
    /// Merged, keeping what the object has.
    pub add_if_absent: &'a Value,
}

/// Applies `add`, then `set`, then `add_if_absent` to `object`, each with
/// `${name}` replaced by the facts. Returns false, leaving the object alone,
/// when it already has a named item (`name`) that `add` would append: the
/// webhook has run on it before, and Kubernetes would reject the duplicate
/// anyway.
pub fn apply(object: &mut Value, templates: &Templates, facts: &BTreeMap<String, String>) -> bool {
    let add = resolve(templates.add, facts);
    if has_named_item(object, &add) {
        return false;
    }
    if !add.is_null() {
        merge(object, &add, true);
    }
    let set = resolve(templates.set, facts);
    if !set.is_null() {
        set_in(object, &set);
    }
    let add_if_absent = resolve(templates.add_if_absent, facts);
    if !add_if_absent.is_null() {
        merge(object, &add_if_absent, false);
    }
    true
}

/// The names of the `${name}` placeholders in every string of a template;
/// an error for an unterminated one.
pub fn placeholders(template: &Value) -> impl Iterator<Item = Result<String, String>> + '_ {
    strings(template).flat_map(|s| {
        let mut found = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    found.push(Ok(after[..end].to_string()));
                    rest = &after[end + 1..];
                }
                None => {
                    found.push(Err(format!("unterminated `${{` in {s:?}")));
                    break;
                }
            }
        }
        found
    })
}

fn strings(v: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        Value::String(s) => Box::new(std::iter::once(s.as_str())),
        Value::Array(a) => Box::new(a.iter().flat_map(strings)),
        Value::Object(m) => Box::new(m.values().flat_map(strings)),
        _ => Box::new(std::iter::empty()),
    }
}

/// The template with facts substituted; labels and annotations whose value
/// comes out empty are dropped (a fact the server does not have adds nothing).
fn resolve(template: &Value, facts: &BTreeMap<String, String>) -> Value {
    let mut v = substitute(template, facts);
    for section in ["labels", "annotations"] {
        if let Some(m) = v
            .pointer_mut(&format!("/metadata/{section}"))
            .and_then(Value::as_object_mut)
        {
            m.retain(|_, val| val.as_str() != Some(""));
        }
    }
    v
}

fn substitute(v: &Value, facts: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => Value::String(facts.iter().fold(s.clone(), |s, (name, value)| {
            s.replace(&format!("${{{name}}}"), value)
        })),
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, facts)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, facts)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether a list the patch appends to already holds an item of the same `name`.
fn has_named_item(target: &Value, patch: &Value) -> bool {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => p
            .iter()
            .any(|(k, pv)| t.get(k).is_some_and(|tv| has_named_item(tv, pv))),
        (Value::Array(t), Value::Array(p)) => p
            .iter()
            .filter_map(|i| i.get("name"))
            .any(|n| t.iter().any(|existing| existing.get("name") == Some(n))),
        _ => false,
    }
}

/// Maps merge key by key, lists are appended to, other values are set;
/// without `overwrite` only where the object has no value yet.
fn merge(target: &mut Value, patch: &Value, overwrite: bool) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => merge_maps(t, p, overwrite),
        (Value::Array(t), Value::Array(p)) if overwrite => t.extend(p.iter().cloned()),
        (t, p) if overwrite || t.is_null() => *t = p.clone(),
        _ => {}
    }
}

/// Maps are set key by key; a list whose items all have a `name` is set item
/// by item (each into the object's item of that name, or appended); other
/// values, other lists too, are replaced.
fn set_in(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                match t.get_mut(k) {
                    Some(tv) => set_in(tv, pv),
                    None => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (Value::Array(t), Value::Array(p)) if is_named_list(p) => {
            for item in p {
                match t.iter_mut().find(|e| e.get("name") == item.get("name")) {
                    Some(existing) => set_in(existing, item),
                    None => t.push(item.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// A non-empty list whose every item is a map with a `name`.
fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("name").is_some())
}

fn merge_maps(target: &mut Map<String, Value>, patch: &Map<String, Value>, overwrite: bool) {
    for (k, pv) in patch {
        match target.get_mut(k) {
            Some(tv) => merge(tv, pv, overwrite),
            None => {
                target.insert(k.clone(), pv.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templates<'a>(add: &'a Value, set: &'a Value, add_if_absent: &'a Value) -> Templates<'a> {
        Templates {
            add,
            set,
            add_if_absent,
        }
    }

    fn facts() -> BTreeMap<String, String> {
        BTreeMap::from([("tag".into(), "2.0".into()), ("team".into(), String::new())])
    }

    #[test]
    fn fills_in_facts_and_merges() {
        let mut pod = json!({"metadata": {"labels": {"keep": "me", "tier": "web"}},
            "spec": {"containers": [{"name": "app"}]}});
        let add = json!({"metadata": {"labels": {"tier": "mesh", "team": "${team}"}},
            "spec": {"containers": [{"name": "agent", "image": "example.com/agent:${tag}", "args": ["$(POD_NAME)"]}]}});
        let if_absent = json!({"metadata": {"labels": {"keep": "other", "new": "x"}}});
        assert!(apply(
            &mut pod,
            &templates(&add, &Value::Null, &if_absent),
            &facts()
        ));
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"keep": "me", "tier": "mesh", "new": "x"}},
                "spec": {"containers": [{"name": "app"},
                    {"name": "agent", "image": "example.com/agent:2.0", "args": ["$(POD_NAME)"]}]}})
        );
    }

    #[test]
    fn an_object_already_holding_a_named_item_is_left_alone() {
        let mut pod = json!({"spec": {"containers": [{"name": "app"}, {"name": "agent"}]}});
        let before = pod.clone();
        let add = json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "agent"}]}});
        assert!(!apply(
            &mut pod,
            &templates(&add, &Value::Null, &Value::Null),
            &facts()
        ));
        assert_eq!(pod, before);
    }

    #[test]
    fn set_fills_in_a_named_item_and_replaces_other_values() {
        let mut pod = json!({"metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "app", "image": "example.com/app:1"},
                {"name": "agent", "image": "auto", "args": ["--old"], "ports": [{"containerPort": 9}]}],
                "volumes": [{"name": "data", "emptyDir": {}}]}});
        let set = json!({"metadata": {"labels": {"a": "2", "team": "${team}"}},
            "spec": {"containers": [{"name": "agent", "image": "example.com/agent:${tag}", "args": ["--new"]}],
                "volumes": [{"name": "socket", "emptyDir": {}}]}});
        assert!(apply(
            &mut pod,
            &templates(&Value::Null, &set, &Value::Null),
            &facts()
        ));
        assert_eq!(
            pod,
            json!({"metadata": {"labels": {"a": "2"}},
                "spec": {"containers": [{"name": "app", "image": "example.com/app:1"},
                    {"name": "agent", "image": "example.com/agent:2.0", "args": ["--new"], "ports": [{"containerPort": 9}]}],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "socket", "emptyDir": {}}]}})
        );
        // setting again changes nothing: a named item is never duplicated
        let once = pod.clone();
        apply(
            &mut pod,
            &templates(&Value::Null, &set, &Value::Null),
            &facts(),
        );
        assert_eq!(pod, once);
    }

    #[test]
    fn set_on_an_object_without_the_item_appends_it() {
        let mut pod = json!({"spec": {"containers": [{"name": "app"}]}});
        let set = json!({"spec": {"containers": [{"name": "agent", "image": "x:${tag}"}]}});
        apply(
            &mut pod,
            &templates(&Value::Null, &set, &Value::Null),
            &facts(),
        );
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "app"}, {"name": "agent", "image": "x:2.0"}])
        );
    }

    #[test]
    fn finds_placeholders() {
        let t = json!({"a": ["${x} and ${y}", {"b": "$(NOT_ONE)"}], "c": "${z"});
        let found: Vec<_> = placeholders(&t).collect();
        assert_eq!(
            found,
            vec![
                Ok("x".into()),
                Ok("y".into()),
                Err("unterminated `${` in \"${z\"".into())
            ]
        );
    }
}
